"""Every status colour is readable in light and dark themes (issue 18, Deliver 7): WCAG
contrast of at least 4.5:1 against the backgrounds it is drawn on, and the windows pick
the colours that suit the palette in use, with a word and a shape beside each colour."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from app.widgets import DARK_STATUS_COLOURS, STATUS_COLOURS, is_dark, status_colour
from app.windows.posture import STATUS_TEXT
from core.engine.state import SessionState
from tests.fakes.scripted_engine import ScriptedEngine, demo_snapshot

pytestmark = pytest.mark.ui

#: (base, alternate base) of common themes: Fusion, KDE Breeze, GNOME Adwaita, Windows 11.
LIGHT_BACKGROUNDS = ("#ffffff", "#f7f7f7", "#fcfcfc", "#eff0f1", "#fafafa", "#f3f3f3")
DARK_BACKGROUNDS = ("#191919", "#2a2a2a", "#1b1e20", "#232629", "#242424", "#303030", "#2b2b2b")


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: QColor) -> float:
    """WCAG 2.x relative luminance."""
    return (
        0.2126 * _linear(colour.red())
        + 0.7152 * _linear(colour.green())
        + 0.0722 * _linear(colour.blue())
    )


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio (1–21)."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_formula_matches_wcag() -> None:
    assert contrast(QColor("#000000"), QColor("#ffffff")) == pytest.approx(21.0)
    assert contrast(QColor("#777777"), QColor("#ffffff")) == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize("key", sorted(STATUS_COLOURS))
@pytest.mark.parametrize("background", LIGHT_BACKGROUNDS)
def test_light_theme_status_colours_reach_4_5(key: str, background: str) -> None:
    ratio = contrast(STATUS_COLOURS[key], QColor(background))
    assert ratio >= 4.5, f"{key} on {background}: {ratio:.2f}:1"


@pytest.mark.parametrize("key", sorted(DARK_STATUS_COLOURS))
@pytest.mark.parametrize("background", DARK_BACKGROUNDS)
def test_dark_theme_status_colours_reach_4_5(key: str, background: str) -> None:
    ratio = contrast(DARK_STATUS_COLOURS[key], QColor(background))
    assert ratio >= 4.5, f"{key} on {background}: {ratio:.2f}:1"


def dark_palette() -> QPalette:
    p = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, "#353535"),
        (QPalette.ColorRole.WindowText, "#ffffff"),
        (QPalette.ColorRole.Base, "#191919"),
        (QPalette.ColorRole.AlternateBase, "#2a2a2a"),
        (QPalette.ColorRole.Text, "#ffffff"),
        (QPalette.ColorRole.Button, "#353535"),
        (QPalette.ColorRole.ButtonText, "#ffffff"),
    ):
        p.setColor(role, QColor(colour))
    return p


def test_the_palette_chooses_the_set(qapp: object) -> None:
    assert is_dark(dark_palette())
    assert status_colour("unknown", dark_palette()) == DARK_STATUS_COLOURS["unknown"]
    light = QPalette(QColor("#efefef"), QColor("#ffffff"))
    assert not is_dark(light)
    assert status_colour("fail", light) == STATUS_COLOURS["fail"]


def test_every_status_has_a_word_and_a_shape() -> None:
    for status, (word, _colour) in STATUS_TEXT.items():
        shape, _, name = word.partition(" ")
        assert shape in {"✓", "✕", "?"}, status
        assert name.isalpha(), status


def _rows_readable(tree, column: int) -> None:
    base = tree.palette().color(QPalette.ColorRole.Base)
    alternate = tree.palette().color(QPalette.ColorRole.AlternateBase)
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        colour = item.foreground(column).color()
        if not item.text(column):
            continue
        for background in (base, alternate):
            ratio = contrast(colour, background)
            assert ratio >= 4.5, f"{item.text(column)!r}: {ratio:.2f}:1"


@pytest.fixture
def restore_palette(qapp: QApplication) -> Iterator[QApplication]:
    before = QPalette(qapp.palette())
    yield qapp
    qapp.setPalette(before)


@pytest.mark.parametrize("name", ["main", "posture"])
async def test_windows_recolour_for_a_dark_theme(
    make_app, restore_palette: QApplication, name: str
) -> None:
    engine = ScriptedEngine(demo_snapshot(SessionState.DEGRADED))
    app = make_app(engine)
    w = app.actions.show_window(name)
    tree = w.resources if name == "main" else w.table
    _rows_readable(tree, 2)  # light
    restore_palette.setPalette(dark_palette())  # the desktop switched to a dark theme
    QApplication.processEvents()
    assert is_dark(tree.palette())
    _rows_readable(tree, 2)
    unknown = [
        tree.topLevelItem(i)
        for i in range(tree.topLevelItemCount())
        if tree.topLevelItem(i).text(2) in ("? Unknown", "Not connected")
    ]
    for item in unknown:
        assert item.foreground(2).color() == DARK_STATUS_COLOURS["unknown"]


async def test_the_details_status_and_clock_follow_the_theme(
    make_app, restore_palette: QApplication
) -> None:
    engine = ScriptedEngine(demo_snapshot(SessionState.DEGRADED, clock_skew_s=900.0))
    w = make_app(engine).actions.show_window("main")
    w.resources.setCurrentItem(w.resources.topLevelItem(2))  # Payroll, blocked
    QApplication.processEvents()
    assert w.detail_status.text() == "✕ Blocked"
    role = w.detail_status.foregroundRole()
    assert w.detail_status.palette().color(role) == STATUS_COLOURS["fail"]
    restore_palette.setPalette(dark_palette())
    QApplication.processEvents()
    assert w.detail_status.palette().color(role) == DARK_STATUS_COLOURS["fail"]
    window = w.palette().color(QPalette.ColorRole.Window)
    assert contrast(w.detail_status.palette().color(role), window) >= 4.5
    if w.clock.isVisibleTo(w):
        assert w.clock.palette().color(role) == DARK_STATUS_COLOURS["warn"]
