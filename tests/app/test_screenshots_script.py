"""scripts/screenshots.py's pure parts, and the committed gallery it produces (issue 18:
"Screenshots … light and dark, including onboarding and a blocked resource; the README
shows them"). Taking the shots needs root, the test bed and Xvfb: run the script."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PySide6.QtGui import QColor, QPalette

from app.widgets import DARK_STATUS_COLOURS, is_dark

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "screenshots.py"
SHOTS = ROOT / "docs" / "screenshots"
#: Every shot the script takes (each light and dark).
EXPECTED = (
    "onboarding",
    "onboarding-found",
    "main",
    "tray-menu",
    "posture",
    "activity",
    "settings",
    "signin",
    "about",
    "breakglass",
)


def _script() -> ModuleType:
    name = "rt_screenshots_script"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _contrast(a: QColor, b: QColor) -> float:
    def lum(c: QColor) -> float:
        def lin(v: int) -> float:
            x = v / 255
            return x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4

        return 0.2126 * lin(c.red()) + 0.7152 * lin(c.green()) + 0.0722 * lin(c.blue())

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_shot_names_mark_the_dark_ones() -> None:
    s = _script()
    assert s.shot_name("main", "light") == "main.png"
    assert s.shot_name("main", "dark") == "main-dark.png"
    assert s.shot_name("tray-menu", "dark") == "tray-menu-dark.png"
    with pytest.raises(ValueError, match="unknown theme"):
        s.shot_name("main", "sepia")


def test_the_dark_palette_is_dark_and_status_words_stay_readable(qapp: object) -> None:
    del qapp
    palette = _script().dark_palette()
    assert is_dark(palette)
    role = QPalette.ColorRole
    for background in (role.Base, role.AlternateBase, role.Window):
        bg = palette.color(background)
        for key, colour in DARK_STATUS_COLOURS.items():
            ratio = _contrast(colour, bg)
            assert ratio >= 4.5, f"{key} on {bg.name()}: {ratio:.2f}:1"
        for text in (role.Text, role.WindowText):
            assert _contrast(palette.color(text), bg) >= 7
    disabled = palette.color(QPalette.ColorGroup.Disabled, role.Text)
    assert disabled != palette.color(role.Text)


def test_the_light_palette_is_not_dark(qapp: object) -> None:
    from PySide6.QtWidgets import QApplication, QStyleFactory

    del qapp
    style = QStyleFactory.create("Fusion")
    assert style is not None
    assert not is_dark(style.standardPalette())
    assert isinstance(QApplication.instance(), QApplication)


@pytest.mark.parametrize(
    ("screen", "submenu_left", "menu_bottom", "box"),
    [
        ((1280, 800), 500, 330, (810, 360, 470, 0)),  # the usual case
        ((1280, 800), 10, 330, (1280, 360, 0, 0)),  # the submenu at the left edge
        ((1280, 800), 500, 790, (810, 800, 470, 0)),  # a menu reaching the bottom
        ((1280, 800), 5000, -50, (1, 1, 1279, 0)),  # nonsense geometry stays on screen
    ],
)
def test_the_tray_menu_crop_stays_on_screen(
    screen: tuple[int, int],
    submenu_left: int,
    menu_bottom: int,
    box: tuple[int, int, int, int],
) -> None:
    assert _script().menu_crop(screen, submenu_left, menu_bottom) == box


def test_the_private_home_hides_and_restores_the_users_dirs(tmp_path: Path) -> None:
    s = _script()
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path / "mine")
    try:
        with s._private_home() as home:
            assert os.environ["XDG_CONFIG_HOME"] == str(home / "config")
            assert os.environ["XDG_DATA_HOME"] == str(home / "data")
        assert not home.exists()
        assert os.environ["XDG_CONFIG_HOME"] == str(tmp_path / "mine")
    finally:
        os.environ.pop("XDG_CONFIG_HOME", None)


def test_missing_tools_stop_it_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    s = _script()
    monkeypatch.setattr(s.shutil, "which", lambda tool: None if tool == "trayer" else "/x")
    assert s.main(["--out", str(tmp_path / "out")]) == 2
    assert "missing trayer" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_every_shot_is_committed_light_and_dark() -> None:
    s = _script()
    for name in EXPECTED:
        for theme in s.THEMES:
            assert (SHOTS / s.shot_name(name, theme)).is_file(), s.shot_name(name, theme)


def test_the_galleries_show_every_shot_and_only_real_files() -> None:
    s = _script()
    gallery = (SHOTS / "README.md").read_text()
    shown = set(re.findall(r"\(([\w-]+\.png)\)", gallery))
    wanted = {s.shot_name(n, t) for n in EXPECTED for t in s.THEMES}
    assert wanted <= shown, sorted(wanted - shown)
    readme = (ROOT / "README.md").read_text()
    in_readme = set(re.findall(r"docs/screenshots/([\w-]+\.png)", readme))
    assert {"main.png", "main-dark.png", "onboarding-found.png"} <= in_readme
    for name in shown | in_readme:
        assert (SHOTS / name).is_file(), name
