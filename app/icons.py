"""Tray and window icons: one SVG per ``IconKind``, rendered crisp at every size.

The SVG text lives here (one source of truth, nothing to lose at install time);
``resources/icons/*.svg`` are exported from it with ``python -m app.icons <dir>`` for
packaging (desktop entry, AppStream) and a test keeps them in sync.

Legibility on light *and* dark panels: each glyph sits on a filled shield with a darker
rim of the same hue, so the silhouette reads on white and on near-black alike; state is
carried by shape as well as colour (check, dots, bang, bar, slash, power, person, cross), so it
survives colour-blindness and monochrome panels. ``icon()`` renders the SVG through QtSvg
at 16–256 px so HiDPI panels get real pixels, not upscaled ones. GUI thread only.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtGui import QIcon
from functools import cache
from pathlib import Path


class IconKind(StrEnum):
    """The tray icon variants; one SVG each. (Here, not in ``presenter``, so the start-up
    icon can be drawn before ``core`` is imported.)"""

    SIGNED_OUT = "signed-out"
    BUSY = "busy"
    CONNECTED = "connected"
    DEGRADED = "degraded"
    BLOCKED = "blocked"  # connected, every resource blocked until the device is fixed
    OFFLINE = "offline"
    DISCONNECTED = "disconnected"
    ERROR = "error"


__all__ = [
    "APP_ICON",
    "DESKTOP_ID",
    "LOCK_ICON",
    "SIZES",
    "IconKind",
    "export",
    "icon",
    "names",
    "svg",
]

#: Pixel sizes rendered into each QIcon (panel sizes 16–48 at 1×, 2× and beyond).
SIZES = (16, 22, 24, 32, 44, 48, 64, 96, 128, 256)

#: Name of the application (window / desktop entry) icon.
APP_ICON = "rustronaut"

#: The padlock shown next to settings managed by the organization.
LOCK_ICON = "lock"

#: The desktop/AppStream id; the app icon is also exported under this name.
DESKTOP_ID = "com.rustronaut.Client"

_SHIELD = "M32 3 L57 11.5 V30 C57 45.5 46.5 56 32 61 C17.5 56 7 45.5 7 30 V11.5 Z"


def _shield(fill: str, rim: str) -> str:
    return (
        f'<path d="{_SHIELD}" fill="{fill}" stroke="{rim}" stroke-width="3" '
        'stroke-linejoin="round"/>'
    )


_W = 'fill="none" stroke="#ffffff" stroke-width="6" stroke-linecap="round" stroke-linejoin="round"'
_D = 'fill="none" stroke="#1f2937" stroke-width="6" stroke-linecap="round" stroke-linejoin="round"'

_GLYPHS: dict[str, str] = {
    IconKind.CONNECTED: _shield("#16a34a", "#0f5f2c")
    + f'<path d="M20 32 L28.5 40.5 L44 24" {_W}/>',
    IconKind.BUSY: _shield("#2563eb", "#173f96")
    + "".join(f'<circle cx="{x}" cy="32" r="4.2" fill="#ffffff"/>' for x in (20, 32, 44)),
    IconKind.DEGRADED: _shield("#f59e0b", "#8a5a06")
    + f'<path d="M32 18 V35" {_D}/><circle cx="32" cy="45" r="3.8" fill="#1f2937"/>',
    # A "no entry" bar on orange: the tunnel is up but nothing passes until fixed.
    IconKind.BLOCKED: _shield("#ea580c", "#7c2d12")
    + '<rect x="17" y="28" width="30" height="8" rx="2" fill="#ffffff"/>',
    IconKind.OFFLINE: _shield("#64748b", "#334155")
    + '<circle cx="32" cy="32" r="12" fill="none" stroke="#ffffff" stroke-width="5"/>'
    + f'<path d="M22 42 L42 22" {_W}/>',
    IconKind.DISCONNECTED: _shield("#e5e7eb", "#4b5563")
    + '<path d="M24.5 24.5 A12 12 0 1 0 39.5 24.5" fill="none" stroke="#374151" '
    'stroke-width="5" stroke-linecap="round"/>'
    + '<path d="M32 17 V32" fill="none" stroke="#374151" stroke-width="5" '
    'stroke-linecap="round"/>',
    IconKind.SIGNED_OUT: _shield("#6b7280", "#374151")
    + '<circle cx="32" cy="25" r="7" fill="#ffffff"/>'
    + '<path d="M19 45 C19 37 25 34 32 34 C39 34 45 37 45 45 Z" fill="#ffffff"/>',
    IconKind.ERROR: _shield("#dc2626", "#7f1d1d") + f'<path d="M23 23 L41 41 M41 23 L23 41" {_W}/>',
    LOCK_ICON: '<path d="M21 30 V22 A11 11 0 0 1 43 22 V30" fill="none" stroke="#4b5563" '
    'stroke-width="7"/>'
    + '<rect x="12" y="28" width="40" height="31" rx="6" fill="#4b5563"/>'
    + '<circle cx="32" cy="41" r="4.5" fill="#ffffff"/><rect x="30" y="43" width="4" height="8" '
    'fill="#ffffff"/>',
    APP_ICON: _shield("#2563eb", "#173f96")
    + '<circle cx="32" cy="31" r="15" fill="#ffffff"/>'
    + '<rect x="21" y="25" width="22" height="11" rx="5.5" fill="#0f172a"/>'
    + '<rect x="25" y="27.5" width="7" height="3" rx="1.5" fill="#7dd3fc"/>',
}


def svg(name: str) -> str:
    """The SVG document for icon ``name`` (an ``IconKind`` value or ``APP_ICON``).

    Raises ``KeyError`` for an unknown name. Pure; any thread.
    """
    body = _GLYPHS[name]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        f"{body}</svg>\n"
    )


def names() -> tuple[str, ...]:
    """Every icon name, for export and tests."""
    return tuple(str(n) for n in _GLYPHS)


@cache
def icon(name: str) -> QIcon:
    """A ``QIcon`` for ``name`` with a pixmap per size in ``SIZES``. Cached; GUI thread only.

    Qt is imported here, not at module level, so ``export`` runs without a display.
    Raises ``KeyError`` for an unknown name.
    """
    from PySide6.QtCore import QByteArray, Qt
    from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(QByteArray(svg(name).encode()))
    result = QIcon()
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        result.addPixmap(QPixmap.fromImage(image))
    return result


def export(directory: Path) -> list[Path]:
    """Write every icon as ``<name>.svg`` into ``directory``; returns the paths. Idempotent."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names():
        path = directory / f"{name}.svg"
        path.write_text(svg(name), encoding="utf-8")
        written.append(path)
    # The application icon under its desktop id, for hicolor/scalable/apps in packages.
    path = directory / f"{DESKTOP_ID}.svg"
    path.write_text(svg(APP_ICON), encoding="utf-8")
    written.append(path)
    return written


if __name__ == "__main__":  # python -m app.icons resources/icons
    for p in export(Path(sys.argv[1] if len(sys.argv) > 1 else "resources/icons")):
        print(p)
