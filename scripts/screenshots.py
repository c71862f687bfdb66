"""Render every window and the tray menu under Xvfb to docs/screenshots/*.png.

Usage: ``.venv/bin/python scripts/screenshots.py [--out docs/screenshots]``

Starts its own Xvfb (a free display number) and ``trayer`` (a real XEmbed system tray),
drives the app against the test suite's scripted engine in a realistic state, grabs each
window with ``QWidget.grab()`` and the popup menu (which ``grab()`` cannot see) with
ImageMagick's ``import -window root``. Everything it starts it stops. Needs (apt): xvfb,
trayer, imagemagick, fonts-dejavu-core and the xcb libraries in scripts/apt/ui.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages and tests.fakes

WINDOW_SIZES = {
    "main": (860, 620),
    "posture": (820, 400),
    "activity": (1060, 500),
    "settings": (700, 760),
    "signin": (620, 460),
    "about": (620, 660),
}


async def _run(argv: list[str]) -> None:
    # In a thread: the Qt loop must keep painting the open menu while ImageMagick reads it.
    await asyncio.to_thread(subprocess.run, argv, check=True, timeout=30)


async def _settle(app: object, seconds: float = 0.3) -> None:
    # The qasync loop processes Qt events while we sleep; never processEvents() here (it
    # would re-enter the loop from inside a task).
    del app
    await asyncio.sleep(seconds)


async def _shoot(out: Path, display: str) -> list[Path]:
    import dataclasses

    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtGui import QColor, QLinearGradient, QPainter
    from PySide6.QtWidgets import QApplication, QWidget

    from app.autostart import XdgAutostart
    from app.tray_app import TrayApp
    from core.engine.state import EventKind, SessionState
    from tests.fakes.scripted_engine import DEMO_DECISIONS, ScriptedEngine, demo_settings

    qapp = QApplication.instance()
    assert isinstance(qapp, QApplication)
    written: list[Path] = []
    tmp = Path(tempfile.mkdtemp(prefix="rt-shots-"))

    class Wallpaper(QWidget):
        def paintEvent(self, _event: object) -> None:
            p = QPainter(self)
            g = QLinearGradient(0, 0, self.width(), self.height())
            g.setColorAt(0, QColor("#1e3a5f"))
            g.setColorAt(1, QColor("#3b6e8f"))
            p.fillRect(self.rect(), g)

    screen = qapp.primaryScreen().geometry()
    wall = Wallpaper()
    wall.setWindowFlag(Qt.WindowType.X11BypassWindowManagerHint)
    wall.setGeometry(screen)
    wall.show()
    wall.lower()

    engine = ScriptedEngine.demo(SessionState.DEGRADED)
    tray_app = TrayApp(
        engine,
        autostart=XdgAutostart(tmp, ["rustronaut-tray", "--autostart"]),
        open_signin_when_signed_out=False,
    )
    tray_app.start()
    now = time.time()
    for i, d in enumerate(DEMO_DECISIONS * 2):
        ev = engine.decide(*d, risk=35 if not d[2] else 5)
        del ev
        _ = i, now
    await _settle(qapp, 1.0)

    # -- windows ------------------------------------------------------------------
    for name, (w, h) in WINDOW_SIZES.items():
        if name == "signin":
            continue
        window = tray_app.actions.show_window(name)
        window.resize(w, h)
        await _settle(qapp)
        path = out / f"{name}.png"
        window.grab().save(str(path))
        written.append(path)
        window.hide()

    # Sign-in: a second, signed-out engine in the middle of the device-code flow.
    engine2 = ScriptedEngine(settings=demo_settings())
    signin_app = TrayApp(engine2, open_signin_when_signed_out=False)
    window = signin_app.actions.show_window("signin")
    engine2.set_state(SessionState.SIGNING_IN)
    engine2.emit(
        EventKind.NOTICE,
        details={
            "user_code": "WDJB-MJHT",
            "verification_uri": "https://login.corp.example/device",
        },
    )
    window.resize(*WINDOW_SIZES["signin"])
    await _settle(qapp)
    path = out / "signin.png"
    window.grab().save(str(path))
    written.append(path)
    window.hide()

    # -- tray menu (with the Resources submenu open) -------------------------------
    engine.publish(dataclasses.replace(engine.snapshot, state=SessionState.DEGRADED))
    await _settle(qapp, 0.5)
    icon_geo = tray_app.tray.icon.geometry()
    menu = tray_app.tray.menu
    menu.adjustSize()
    anchor = (
        QPoint(icon_geo.right() - menu.sizeHint().width(), icon_geo.bottom() + 4)
        if icon_geo.isValid() and icon_geo.width() > 0
        else QPoint(screen.width() - menu.sizeHint().width() - 40, 34)
    )
    menu.popup(anchor)
    await _settle(qapp, 0.4)
    resources = next(a for a in menu.actions() if a.menu() is not None)
    menu.setActiveAction(resources)
    sub = resources.menu()
    sub.adjustSize()
    geo = menu.actionGeometry(resources)
    sub_pos = menu.mapToGlobal(geo.topLeft()) - QPoint(sub.sizeHint().width() - 2, 0)
    sub.popup(sub_pos)
    await _settle(qapp, 0.6)
    left = max(0, sub_pos.x() - 30)
    bottom = min(screen.height(), menu.geometry().bottom() + 30)
    full = tmp / "root.png"
    await _run(["import", "-display", display, "-window", "root", str(full)])
    path = out / "tray-menu.png"
    await _run(
        [
            "convert",
            str(full),
            "-crop",
            f"{screen.width() - left}x{bottom}+{left}+0",
            "+repage",
            str(path),
        ]
    )
    written.append(path)
    sub.hide()
    menu.hide()

    # Break-glass: always-on, the employee asks to disconnect.
    engine.publish(dataclasses.replace(engine.snapshot, always_on=True))
    tray_app.actions.disconnect_session()
    dialog = tray_app.actions.windows["breakglass"]
    dialog.reason.setPlainText("The hotel's captive portal needs the VPN off to log in.")
    dialog.resize(560, dialog.sizeHint().height())
    await _settle(qapp)
    path = out / "breakglass.png"
    dialog.grab().save(str(path))
    written.append(path)
    dialog.reject()

    signin_app.shutdown()
    tray_app.shutdown()
    wall.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    for tool in ("Xvfb", "trayer", "import", "convert"):
        if shutil.which(tool) is None:
            print(f"screenshots: {tool} is missing (see scripts/apt/ui.txt)", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    from tests.fakes.xdisplay import XDisplay

    with XDisplay(tray=True) as x:
        os.environ.update(x.env())
        import qasync
        from PySide6.QtGui import QFont
        from PySide6.QtWidgets import QApplication

        qapp = QApplication(["rustronaut-screenshots"])
        qapp.setStyle("Fusion")
        qapp.setFont(QFont("DejaVu Sans", 10))
        loop = qasync.QEventLoop(qapp)
        asyncio.set_event_loop(loop)
        with loop:
            written = loop.run_until_complete(_shoot(args.out, x.display))
    for p in written:
        print(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
