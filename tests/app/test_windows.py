"""Each window against the scripted engine: it shows the snapshot, reacts to events, and
its controls reach the engine (or refuse, for managed settings)."""

from __future__ import annotations

import asyncio
import dataclasses
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QWidget,
)

from app.windows.activity import risk_text
from app.windows.settings import label_for
from core.engine.state import EventKind, SessionState
from core.settings.errors import SettingValueError
from tests.fakes.scripted_engine import DEMO_DECISIONS, ScriptedEngine, demo_snapshot

pytestmark = pytest.mark.ui


async def until(pred: Callable[[], object], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.01)


def tree_rows(tree) -> list[list[str]]:
    return [
        [tree.topLevelItem(i).text(c) for c in range(tree.columnCount())]
        for i in range(tree.topLevelItemCount())
    ]


async def test_main_window_shows_user_tunnel_and_resources(
    engine: ScriptedEngine, make_app
) -> None:
    engine.publish(demo_snapshot(SessionState.DEGRADED))
    app = make_app(engine)
    w = app.actions.show_window("main")
    assert w.state_line.text() == "Connected — some access blocked"
    assert w.who.text() == "Signed in as ada@corp.example at Example Corp"
    assert w.gateway.text() == "gw.corp.example:51820 (rt0)"
    assert w.handshake.text() == "12 s ago"
    assert "46.0 MiB received" in w.traffic.text()
    rows = tree_rows(w.resources)
    assert [
        "Payroll",
        "payroll.corp.example:443",
        "Blocked",
        "Disk encryption is off — Turn on disk encryption in System Settings",
    ] in rows
    assert ["Git server", "git.corp.example:443", "Reachable", ""] in rows
    assert w.primary.text() == "Disconnect"
    assert w.error_box.isHidden()

    engine.fail("Controller unreachable", "No answer from access.corp.example.", "Check Wi-Fi.")
    assert not w.error_box.isHidden()
    assert w.error_box.title() == "Controller unreachable"
    assert "What to do: Check Wi-Fi." in w.error_text.text()
    assert w.primary.text() == "Connect"
    w.primary.click()
    await until(lambda: engine.snapshot.state is SessionState.CONNECTED)


async def test_main_window_signed_out_offers_sign_in(engine: ScriptedEngine, make_app) -> None:
    app = make_app(engine)
    w = app.actions.show_window("main")
    assert w.primary.text() == "Sign in…"
    assert w.gateway.text() == "Not connected"
    assert tree_rows(w.resources)[0][0] == "No resources yet"
    w.primary.click()
    assert app.actions.windows["signin"].isVisible()


async def test_posture_window_lists_checks_and_fixes(engine: ScriptedEngine, make_app) -> None:
    engine.publish(demo_snapshot())
    app = make_app(engine)
    w = app.actions.show_window("posture")
    assert w.summary.text() == "1 check needs attention · 3 of 5 pass"
    rows = tree_rows(w.table)
    assert ["Firewall", "active (nftables)", "✓ Pass", ""] in rows
    assert [
        "Disk encryption",
        "off",
        "✕ Fail",
        "Turn on disk encryption (LUKS) and restart.",
    ] in rows
    assert ["Endpoint protection", "not reported", "? Unknown", "Start the EDR agent."] in rows
    w.recheck.click()
    await until(lambda: ("recheck_posture", {}) in engine.calls)
    fixed = tuple(dataclasses.replace(p, status="pass") for p in engine.snapshot.posture)
    engine.publish(dataclasses.replace(engine.snapshot, posture=fixed), EventKind.POSTURE)
    assert w.summary.text() == "All good · 5 of 5 checks pass"


async def test_activity_shows_decisions_as_they_arrive_and_filters(
    engine: ScriptedEngine, make_app
) -> None:
    engine.publish(demo_snapshot())
    app = make_app(engine)
    engine.decide(*DEMO_DECISIONS[0])  # before the window exists: still recorded
    w = app.actions.show_window("activity")
    assert w.proxy.rowCount() == 1
    assert w.risk.text() == (
        "Risk 35 / 100 (elevated): new app → resource pair, posture: disk encryption off"
    )
    for d in DEMO_DECISIONS[1:]:
        engine.decide(*d)
    assert w.proxy.rowCount() == len(DEMO_DECISIONS)
    assert w.count.text() == f"{len(DEMO_DECISIONS)} decisions"
    last = [w.proxy.index(w.proxy.rowCount() - 1, c).data() for c in range(6)]
    assert last[1:] == [
        "/usr/lib/firefox/firefox",
        "hr.corp.example:443",
        "Denied",
        "hr-only",
        "HR group only",
    ]
    w.effect.setCurrentIndex(w.effect.findData("denied"))
    assert w.proxy.rowCount() == 3
    w.search.setText("PAYROLL")
    assert w.proxy.rowCount() == 1
    assert w.count.text() == f"1 of {len(DEMO_DECISIONS)} decisions shown"
    engine.decide("/usr/bin/curl", "payroll.corp.example:443", False, "payroll-posture", "x")
    assert w.proxy.rowCount() == 2  # new matching decisions appear under the filter too
    w.search.clear()
    w.effect.setCurrentIndex(w.effect.findData("allowed"))
    assert all(w.proxy.index(r, 3).data() == "Allowed" for r in range(w.proxy.rowCount()))
    engine.publish(dataclasses.replace(engine.snapshot, risk=80, risk_signals=("burst",)))
    assert w.risk.text() == "Risk 80 / 100 (high): burst"


def test_activity_effect_filter_rejects_bad_values(qapp) -> None:
    from app.activity_model import ActivityFilter

    with pytest.raises(ValueError, match="all, allowed or denied"):
        ActivityFilter().set_effect("maybe")


def test_activity_model_keeps_the_newest_rows(qapp) -> None:
    from app.activity_model import ActivityModel

    engine = ScriptedEngine()
    model = ActivityModel(limit=3)
    for i in range(5):
        model.add_event(engine.decide("app", f"host{i}:443", True, "r", "ok"))
    assert [r.destination for r in model.rows] == ["host2:443", "host3:443", "host4:443"]


@pytest.mark.parametrize(
    ("score", "text"), [(0, "Risk 0 / 100 (low)"), (69, "Risk 69 / 100 (elevated)")]
)
def test_risk_text(score: int, text: str) -> None:
    assert risk_text(score, ()) == text


async def test_managed_settings_are_locked_and_say_so(engine: ScriptedEngine, make_app) -> None:
    engine.publish(demo_snapshot())
    app = make_app(engine)
    w = app.actions.show_window("settings")
    url = w.editors["controller_url"]
    assert isinstance(url, QLineEdit)
    assert not url.isEnabled()
    assert url.text() == "https://access.corp.example"
    notes = [lbl.text() for lbl in w.findChildren(QLabel)]
    assert "Set by your organization (Example Corp)" in notes
    # "Get help" is a fixed link; the validated support URL is what it opens.
    links = {
        lbl.property("link_url")
        for lbl in w.findChildren(QLabel)
        if lbl.text() and not lbl.isHidden() and lbl.textFormat() is Qt.TextFormat.RichText
    }
    assert links == {"https://help.corp.example"}
    always_on = w.editors["always_on"]
    assert isinstance(always_on, QCheckBox)
    assert not always_on.isEnabled()
    # Even if a click got through, nothing reaches the engine for a disabled editor.
    always_on.click()
    assert always_on.isChecked()
    assert not any(c[0] == "set_setting" for c in engine.calls)


async def test_user_settings_apply_and_invalid_values_are_refused(
    engine: ScriptedEngine, make_app
) -> None:
    app = make_app(engine)
    w = app.actions.show_window("settings")
    auto = w.editors["auto_connect"]
    assert auto.isEnabled()
    auto.click()
    await until(lambda: not w.pending)  # applied in the background (the engine may be remote)
    assert ("set_setting", {"key": "auto_connect", "value": False}) in engine.calls
    assert {s.key: s.value for s in engine.settings()}["auto_connect"] is False

    port = w.editors["proxy_port"]
    assert isinstance(port, QSpinBox)
    port.setValue(80)
    port.editingFinished.emit()
    await until(lambda: not w.errors["proxy_port"].isHidden())
    assert ("set_setting", {"key": "proxy_port", "value": 80}) in engine.calls
    # The engine's words: what is wrong, then what to do (no class name).
    assert w.errors["proxy_port"].text() == (
        "Local proxy port must be between 1024 and 65535\n" + SettingValueError.next_step
    )  # the setting's title, never its key (issue 18)
    assert not w.errors["proxy_port"].isHidden()
    assert port.value() == 1080  # back to the value still in force
    assert {s.key: s.value for s in engine.settings()}["proxy_port"] == 1080


async def test_settings_window_follows_changes_made_elsewhere(
    engine: ScriptedEngine, make_app
) -> None:
    """A change by the CLI or IT reaches the open window (a ``SETTINGS`` event), without
    closing and opening it again."""
    app = make_app(engine)
    w = app.actions.show_window("settings")
    log_level = w.editors["log_level"]
    assert isinstance(log_level, QLineEdit)
    assert log_level.text() == "info"
    settings_events: list[bool] = []
    app.bridge.settings_changed.connect(lambda: settings_events.append(True))

    engine.set_managed("log_level", "debug")  # e.g. `rustronaut config set log_level debug`

    assert settings_events == [True]
    assert w.isVisible()
    log_level = w.editors["log_level"]
    assert isinstance(log_level, QLineEdit)
    assert log_level.text() == "debug"
    assert not log_level.isEnabled()  # now managed: locked


async def test_autostart_setting_writes_the_entry(engine: ScriptedEngine, make_app) -> None:
    app = make_app(engine)
    path = app.actions.autostart.path
    assert not path.exists()  # its default never switches it on silently (issue 18)
    w = app.actions.show_window("settings")
    assert not w.editors["autostart"].isChecked()  # says what is really in force
    w.editors["autostart"].click()
    await until(path.is_file)
    w.editors["autostart"].click()
    await until(lambda: not path.exists())


async def test_autostart_checkbox_without_an_engine_setting(make_app) -> None:
    from tests.fakes.scripted_engine import demo_settings

    engine = ScriptedEngine(settings=[s for s in demo_settings() if s.key != "autostart"])
    app = make_app(engine)
    w = app.actions.show_window("settings")
    path = app.actions.autostart.path
    assert w.autostart.isVisibleTo(w)
    assert not w.autostart.isChecked()
    w.autostart.click()
    assert path.is_file()
    w.autostart.click()
    assert not path.exists()


@pytest.mark.parametrize(
    ("key", "label"),
    [("controller_url", "Controller URL"), ("oidc_client_id", "OIDC client ID"), ("x", "X")],
)
def test_setting_labels(key: str, label: str) -> None:
    assert label_for(key) == label


async def test_sign_in_shows_progress_then_success(engine: ScriptedEngine, make_app) -> None:
    app = make_app(engine)
    w = app.actions.show_window("signin")
    assert w.progress.isHidden()
    engine.gate = asyncio.Event()
    w.browser.click()
    await until(lambda: engine.snapshot.state is SessionState.SIGNING_IN)
    assert not w.progress.isHidden()
    assert w.title.text() == "Finish signing in"
    assert not w.browser.isEnabled()
    engine.gate.set()
    await until(lambda: engine.snapshot.state is SessionState.CONNECTED)
    assert w.title.text() == "You're signed in"
    assert w.progress.isHidden()
    # The tray that asked opened the sign-in page itself (the engine may run elsewhere).
    assert app.opened == [engine.sign_in_url]
    assert [c[1]["device_code"] for c in engine.calls if c[0] == "sign_in"] == [False]


async def test_sign_in_device_code_fallback_shows_the_code(
    engine: ScriptedEngine, make_app
) -> None:
    app = make_app(engine)
    w = app.actions.show_window("signin")
    engine.gate = asyncio.Event()
    w.device.click()
    await until(lambda: not w.code_box.isHidden())
    assert w.code.text() == "WDJB-MJHT"
    assert "https://login.corp.example/device" in w.code_hint.text()
    w.copy.click()
    assert QApplication.clipboard().text() == "WDJB-MJHT"
    engine.gate.set()
    await until(lambda: engine.snapshot.state is SessionState.CONNECTED)
    assert w.code_box.isHidden()


async def test_sign_in_error_shows_the_next_step(engine: ScriptedEngine, make_app) -> None:
    app = make_app(engine)
    w = app.actions.show_window("signin")
    engine.fail("Sign-in failed", "The sign-in page did not answer.", "Check your connection.")
    assert not w.error_box.isHidden()
    assert w.error_box.title() == "Sign-in failed"
    assert "What to do: Check your connection." in w.error_text.text()
    assert w.browser.text() == "Try &again"
    assert w.browser.isEnabled()


async def test_about_exports_diagnostics(engine: ScriptedEngine, make_app, tmp_path: Path) -> None:
    engine.publish(demo_snapshot())
    app = make_app(engine)
    app.actions._diagnostics_dir = lambda: tmp_path
    w = app.actions.show_window("about")
    assert "https://help.corp.example" in w.support.text()
    assert w.policy.text() == "version 42"
    w.save.click()
    await until(lambda: w.result.text().startswith("Saved to"))
    path = tmp_path / "rustronaut-diagnostics.zip"
    assert w.result.text() == f"Saved to {path}"
    assert zipfile.ZipFile(path).namelist() == ["state.txt"]


async def test_diagnostics_failure_is_reported(engine: ScriptedEngine, make_app, tmp_path) -> None:
    app = make_app(engine)
    w = app.actions.show_window("about")
    app.actions._diagnostics_dir = lambda: tmp_path / "missing"
    w.save.click()
    await until(lambda: w.result.text().startswith("Could not save"))
    assert w.save.isEnabled()


# -- accessibility -------------------------------------------------------------------

WINDOWS = ("main", "posture", "activity", "settings", "signin", "about")
INTERACTIVE = (QAbstractButton, QLineEdit, QComboBox, QSpinBox, QAbstractItemView, QPlainTextEdit)


def _interactive(w: QWidget) -> list[QWidget]:
    return [
        c
        for c in w.findChildren(QWidget)
        if isinstance(c, INTERACTIVE)
        and not isinstance(c, QHeaderView)
        and not isinstance(c.parent(), QSpinBox)  # the spin box's own inner line edit
        and c.isVisibleTo(w)
    ]


@pytest.mark.parametrize("name", WINDOWS)
async def test_every_control_has_an_accessible_name_and_takes_focus(
    engine: ScriptedEngine, make_app, name: str
) -> None:
    engine.publish(demo_snapshot())
    app = make_app(engine)
    w = app.actions.show_window(name)
    controls = _interactive(w)
    assert controls, name
    for c in controls:
        label = c.accessibleName() or (c.text() if isinstance(c, QAbstractButton) else "")
        assert label, f"{name}: {type(c).__name__} {c.objectName()!r} has no accessible name"
        if c.isEnabled():
            assert c.focusPolicy() & Qt.FocusPolicy.TabFocus, f"{name}: {label} not tabbable"


@pytest.mark.parametrize("name", WINDOWS)
async def test_tab_reaches_every_enabled_control(
    engine: ScriptedEngine, make_app, name: str
) -> None:
    engine.publish(demo_snapshot())
    app = make_app(engine)
    w = app.actions.show_window(name)
    wanted = {
        c for c in _interactive(w) if c.isEnabled() and c.focusPolicy() & Qt.FocusPolicy.TabFocus
    }
    # Walk the focus chain the way Tab does, from the window itself.
    seen: set[QWidget] = set()
    c = w.nextInFocusChain()
    for _ in range(500):
        if c in wanted:
            seen.add(c)
        c = c.nextInFocusChain()
        if c is w:
            break
    assert wanted <= seen


@pytest.mark.parametrize("name", WINDOWS)
async def test_text_fits_at_double_font_size(engine: ScriptedEngine, make_app, name: str) -> None:
    """At 200 % text size every label still gets the width its words need (no clipping)."""
    engine.publish(demo_snapshot(always_on=True))
    app = make_app(engine)
    w = app.actions.show_window(name)
    font = QFont(w.font())
    font.setPointSizeF(font.pointSizeF() * 2)
    w.setFont(font)
    w.adjustSize()
    w.resize(w.sizeHint())
    QApplication.processEvents()  # the posted layout requests run here
    for lbl in w.findChildren(QLabel):
        if not lbl.isVisibleTo(w) or not lbl.text():
            continue
        need = lbl.minimumSizeHint()
        assert lbl.width() >= need.width() - 1, f"{name}: {lbl.text()[:40]!r} clipped"
        if lbl.wordWrap():
            assert lbl.height() >= lbl.heightForWidth(lbl.width()) - 1, lbl.text()[:40]


async def test_list_settings_are_shown_read_only(engine: ScriptedEngine, make_app) -> None:
    app = make_app(engine)
    w = app.actions.show_window("settings")
    pins = w.editors["tls_pin_sha256"]
    assert isinstance(pins, QLineEdit)
    assert pins.text() == "pin1, pin2"
    # An engine-owned "autostart" setting replaces the separate checkbox.
    assert w.editors["autostart"].isEnabled()
    assert not w.autostart.isVisibleTo(w)


async def test_sign_in_without_a_browser_says_to_use_a_code(
    engine: ScriptedEngine, make_app
) -> None:
    """The tray opens the sign-in page itself; offscreen there is no browser, so the
    employee is told what to do instead of waiting for a page nobody sees."""
    from app.actions import NO_BROWSER

    app = make_app(engine)
    app.actions.open_url = app.actions._open_in_browser  # the real default (QDesktopServices)
    w = app.actions.show_window("signin")
    w.browser.click()
    await until(lambda: any(n.body == NO_BROWSER for n in app.tray.notifier.shown))
    assert "Use a code instead" in NO_BROWSER
