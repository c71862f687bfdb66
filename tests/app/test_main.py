"""Start-up pieces: the engine factory, the binding guard, icons and packaging files."""

from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import app.main as app_main
from app import icons
from app.presenter import IconKind

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parents[2]


async def test_make_engine_reports_a_missing_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def fake(name: str, *a: object) -> object:
        if name == app_main.ENGINE_MODULE:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *a)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(app_main.EngineUnavailable, match="engine is not installed"):
        await app_main.build_engine()


async def test_make_engine_reports_a_failing_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    class Wiring:
        @staticmethod
        async def build_engine(**_: object) -> object:
            raise RuntimeError("No controller URL is set.")

    monkeypatch.setattr(importlib, "import_module", lambda name, *a: Wiring)
    with pytest.raises(app_main.EngineUnavailable, match="could not start: No controller URL"):
        await app_main.build_engine()


async def test_make_engine_with_the_real_wiring_and_no_controller(
    tmp_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real ``build_engine`` on an unconfigured machine: one clear message, no crash."""
    with pytest.raises(app_main.EngineUnavailable, match="could not start"):
        await app_main.build_engine()


def test_the_installed_qt_binding_does_not_leak_references(qapp) -> None:
    """PySide6 6.12.0 leaks a None/True reference per call and aborts the app: refuse it."""
    from app.qtcompat import binding_leaks

    assert binding_leaks() == []


@pytest.mark.parametrize("name", icons.names())
def test_every_icon_renders_at_every_size(qapp, name: str) -> None:
    from PySide6.QtGui import QIcon

    qicon = icons.icon(name)
    assert isinstance(qicon, QIcon)
    sizes = {(s.width(), s.height()) for s in qicon.availableSizes()}
    assert {(n, n) for n in icons.SIZES} <= sizes
    image = qicon.pixmap(22, 22).toImage()
    opaque = sum(image.pixelColor(x, y).alpha() > 200 for x in range(22) for y in range(22))
    assert opaque > 22 * 22 // 3  # a solid silhouette, not a hairline


def _luminance(c) -> float:
    def ch(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * ch(c.redF()) + 0.7152 * ch(c.greenF()) + 0.0722 * ch(c.blueF())


def _contrast(a: float, b: float) -> float:
    hi, lo = max(a, b), min(a, b)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("kind", list(IconKind))
@pytest.mark.parametrize(("panel", "lum"), [("light", 1.0), ("dark", 0.0116)])  # #fff, #1e1e1e
def test_icons_stand_out_on_light_and_dark_panels(
    qapp, kind: IconKind, panel: str, lum: float
) -> None:
    """Enough of each icon's pixels contrast ≥ 3:1 with the panel to read the silhouette."""
    image = icons.icon(kind).pixmap(32, 32).toImage()
    opaque = [
        image.pixelColor(x, y)
        for x in range(32)
        for y in range(32)
        if image.pixelColor(x, y).alpha() > 200
    ]
    visible = sum(_contrast(_luminance(c), lum) >= 3.0 for c in opaque)
    assert visible >= len(opaque) * 0.15, f"{kind} on {panel}: {visible}/{len(opaque)}"


def test_states_have_distinct_icons() -> None:
    bodies = [icons.svg(k) for k in IconKind]
    assert len(set(bodies)) == len(bodies)


def test_exported_svgs_match_the_source() -> None:
    for name in icons.names():
        path = ROOT / "resources" / "icons" / f"{name}.svg"
        assert path.read_text() == icons.svg(name), "run: python -m app.icons resources/icons"
    desktop = ROOT / "resources" / "icons" / f"{icons.DESKTOP_ID}.svg"
    assert desktop.read_text() == icons.svg(icons.APP_ICON)


def test_desktop_entries_and_metainfo_are_well_formed() -> None:
    linux = ROOT / "resources" / "linux"
    for name in ("com.rustronaut.Client.desktop", "com.rustronaut.Client-autostart.desktop"):
        lines = (linux / name).read_text().splitlines()
        assert lines[0] == "[Desktop Entry]"
        keys = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
        assert keys["Type"] == "Application"
        assert keys["Exec"].startswith("rustronaut-tray")
        assert keys["Icon"] == "com.rustronaut.Client"
    root = ET.parse(linux / "com.rustronaut.Client.metainfo.xml").getroot()
    assert root.tag == "component"
    assert root.findtext("id") == "com.rustronaut.Client"
    assert root.find("launchable").text == "com.rustronaut.Client.desktop"
    shots = [s.findtext("image") for s in root.iter("screenshot")]
    assert shots
    for url in shots:
        assert (ROOT / "docs" / "screenshots" / url.rsplit("/", 1)[1]).is_file(), url
