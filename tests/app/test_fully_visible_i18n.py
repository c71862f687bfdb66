"""Every window at its default size shows its key texts in full, in English and in German
(issue 18, "Done when"): reasons, fixes, status words, labels and buttons are neither
clipped nor elided. German runs on the real catalogue (the ``.qm`` built from
``resources/i18n/rustronaut_de.ts``), and the reasons and fixes come from the real policy
engine's explanation in that language, so a long German sentence that does not fit fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QGroupBox, QLabel, QWidget

from app import i18n as app_i18n
from app.windows.breakglass import BreakGlassDialog, Exit
from app.windows.onboarding import OnboardingWindow
from app.windows.startup_error import StartupErrorWindow
from core import i18n
from core.engine.state import ResourceView, SessionState
from core.policy.engine import PolicyEngine
from tests.core.policy.helpers import NOW, bundle, fact, req, rule
from tests.fakes.scripted_engine import RESOURCES, ScriptedEngine, demo_snapshot

pytestmark = pytest.mark.ui


@pytest.fixture(params=["en", "de"])
def lang(request: pytest.FixtureRequest, qapp: object) -> Iterator[str]:
    """The language every text of the test is in (the real catalogue for German)."""
    if request.param == "de":
        qm = i18n.i18n_dir() / "rustronaut_de.qm"
        if not qm.exists():
            pytest.fail(f"{qm} is not built: run scripts/i18n.sh build (bootstrap does)")
        assert app_i18n.install("de") == "de"
    try:
        yield request.param
    finally:
        app_i18n.uninstall()


def _explained(condition: object, **facts: object) -> tuple[str, str]:
    """The real engine's reason and fix for a request ``condition`` denies."""
    engine = PolicyEngine(clock=lambda: NOW, record=False)
    engine.load(bundle(rule("r1", conditions=condition)))  # type: ignore[arg-type]
    engine.set_facts({k.replace("__", "."): v for k, v in facts.items()})
    decision = engine.decide(req())
    assert not decision.allowed
    return decision.unmet[0].plain, decision.unmet[0].remediation


def blocked_payroll() -> ResourceView:
    """Payroll, blocked for three reasons, in the installed language."""
    parts = [
        _explained(fact("posture.firewall.enabled", "eq", True), posture__firewall__enabled=False),
        _explained(fact("posture.disk.encrypted", "eq", True), posture__disk__encrypted=False),
        _explained(fact("user.groups", "eq", "Finance")),
    ]
    reason = "; ".join(p for p, _ in parts)
    fix = " ".join(f for _, f in parts)
    return ResourceView("Payroll", "payroll.corp.example:443", False, reason, fix, fixable=True)


def _without_mnemonic(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def fully_visible(w: QWidget, window: QWidget) -> None:
    """``w`` (a label, button or group box) shows all of its text inside ``window``."""
    text = w.title() if isinstance(w, QGroupBox) else w.text()  # type: ignore[attr-defined]
    if isinstance(w, QAbstractButton | QGroupBox) or (isinstance(w, QLabel) and w.buddy()):
        text = _without_mnemonic(text)
    what = f"{type(w).__name__} {text[:50]!r}"
    rect = QRect(w.mapTo(window, QPoint(0, 0)), w.size())
    assert window.rect().contains(rect), f"{what} is outside the window"
    metrics = w.fontMetrics()
    if isinstance(w, QLabel):
        if w.wordWrap():
            need = w.heightForWidth(w.width())
            assert w.height() >= need - 1, f"{what}: {w.height()} px high, needs {need}"
            longest = max((metrics.horizontalAdvance(word) for word in text.split()), default=0)
            assert w.width() >= longest, f"{what}: a word is wider than the label"
        else:
            wide = max(metrics.horizontalAdvance(line) for line in text.splitlines() or [""])
            assert w.width() >= wide - 1, f"{what} is cut off"
    elif isinstance(w, QAbstractButton):
        assert w.width() >= metrics.horizontalAdvance(text), f"{what} is cut off"
    else:
        assert w.width() >= metrics.horizontalAdvance(text), f"{what} title is cut off"


def _checked_text(w: QWidget) -> str:
    """The text ``w`` shows that these tests check ("" for none)."""
    if isinstance(w, QLabel) and w.textFormat() != Qt.TextFormat.RichText:
        return w.text()
    if isinstance(w, QAbstractButton) and w.parent() is not None:
        return w.text()
    return w.title() if isinstance(w, QGroupBox) else ""


def every_text_fully_visible(window: QWidget) -> int:
    """Check every visible label, button and group title of ``window``; how many."""
    QApplication.processEvents()
    checked = 0
    for w in window.findChildren(QWidget):
        if not w.isVisibleTo(window):
            continue
        if not _checked_text(w):
            continue
        fully_visible(w, window)
        checked += 1
    return checked


def _english(window: QWidget) -> set[str]:
    return {w.text() for w in window.findChildren(QLabel) if w.text()}


def _app_window(make_app, name: str, state: SessionState = SessionState.DEGRADED):
    resources = (RESOURCES[0], blocked_payroll(), *RESOURCES[2:])
    engine = ScriptedEngine(demo_snapshot(state, resources=resources))
    app = make_app(engine)
    window = app.actions.show_window(name)
    QApplication.processEvents()
    return engine, window


async def test_main_window_reason_fix_and_status_in_full(make_app, lang: str) -> None:
    _engine, w = _app_window(make_app, "main")
    default = w.size()
    assert w.detail_box.title() == "Payroll"
    for label in (w.detail_status, w.detail_address, w.detail_why, w.detail_fix, w.state_line):
        fully_visible(label, w)
    if lang == "de":
        assert w.detail_status.text() == "✕ Gesperrt"
        assert "Firewall" in w.detail_why.text()
        assert "Sie sind in" in w.detail_why.text()
    else:
        assert w.detail_status.text() == "✕ Blocked"
    assert every_text_fully_visible(w) > 10
    assert w.size() == default


async def test_main_window_every_state_in_full(make_app, lang: str) -> None:
    engine, w = _app_window(make_app, "main", SessionState.BLOCKED)
    every_text_fully_visible(w)
    engine.fail("Controller unreachable", "No answer from access.corp.example.", "Check Wi-Fi.")
    every_text_fully_visible(w)
    engine.publish(demo_snapshot(SessionState.DISCONNECTED, tunnel=None))
    every_text_fully_visible(w)


@pytest.mark.parametrize("name", ["posture", "activity", "settings", "signin", "about"])
async def test_tray_windows_in_full(make_app, lang: str, name: str) -> None:
    _engine, w = _app_window(make_app, name)
    assert every_text_fully_visible(w) >= 3
    if name == "posture":
        fully_visible(w.detail, w)
        fully_visible(w.summary, w)
        words = {w.table.topLevelItem(i).text(2) for i in range(w.table.topLevelItemCount())}
        german = {"✓ Bestanden", "✕ Nicht bestanden", "? Unbekannt"}
        if lang == "de":
            assert words & german, words
        header = w.table.header()
        metrics = w.table.fontMetrics()
        for i in range(w.table.topLevelItemCount()):  # the status column shows its word
            word = w.table.topLevelItem(i).text(2)
            assert header.sectionSize(2) >= metrics.horizontalAdvance(word), word


async def test_settings_field_error_in_full(make_app, lang: str) -> None:
    _engine, w = _app_window(make_app, "settings")
    every_text_fully_visible(w)
    errors = [label for label in w.findChildren(QLabel) if label.objectName() == "field-error"]
    for label in errors:
        if label.isVisibleTo(w):
            fully_visible(label, w)


async def test_onboarding_in_full(qapp: object, lang: str) -> None:
    async def find(_typed: str) -> object:
        raise ValueError("")

    w = OnboardingWindow(find=find, save=lambda _url: None)  # type: ignore[arg-type]
    try:
        w.show()
        assert every_text_fully_visible(w) >= 3
        if lang == "de":
            assert not _english(w) & {"Enter your work email or your organisation's address"}
        w.look_up()  # nothing typed: told what to type
        every_text_fully_visible(w)
    finally:
        w.close()
        w.deleteLater()


def test_startup_error_in_full(qapp: object, lang: str) -> None:
    w = StartupErrorWindow("No answer.", "Check Wi-Fi.")
    try:
        w.show()
        assert every_text_fully_visible(w) >= 2
        if lang == "de":
            assert w.retry_button.text() != "&Retry"
    finally:
        w.close()
        w.deleteLater()


@pytest.mark.parametrize("exit", list(Exit))
def test_breakglass_in_full(qapp: object, lang: str, exit: Exit) -> None:
    dialog = BreakGlassDialog("Example Corp", None, exit=exit)
    try:
        dialog.show()
        assert every_text_fully_visible(dialog) >= 3
    finally:
        dialog.close()
        dialog.deleteLater()


def test_german_is_really_installed(lang: str) -> None:
    # The German half of these tests must not pass on English text.
    word = i18n.translate("app.windows.main_window", "Blocked")
    assert (word == "Blocked") == (lang == "en"), word
    assert dataclasses.is_dataclass(blocked_payroll())
