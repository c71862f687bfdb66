"""The tray against a scripted engine: icon, tooltip and menu follow the state; menu
actions reach the engine without blocking the loop; always-on asks for a reason."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest
from PySide6.QtWidgets import QSystemTrayIcon

from app.presenter import IconKind
from core.engine.state import SessionState
from tests.fakes.scripted_engine import DEMO_DECISIONS, ScriptedEngine, demo_snapshot

pytestmark = pytest.mark.ui


async def until(pred: Callable[[], object], timeout: float = 3.0) -> None:
    """Let the loop run until ``pred()`` is true (fails the test after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.01)


async def test_state_changes_drive_icon_tooltip_and_menu(engine: ScriptedEngine, make_app) -> None:
    app = make_app(engine)
    tray = app.tray
    assert tray.icon_kind is IconKind.SIGNED_OUT
    assert tray.icon.toolTip() == "Rustronaut — Signed out"
    assert ("Sign in…", True) in tray.entries()
    assert not tray.icon.icon().isNull()

    engine.publish(demo_snapshot(SessionState.CONNECTING))
    assert tray.icon_kind is IconKind.BUSY
    assert tray.entries()[0] == ("Connecting…", False)

    engine.publish(demo_snapshot(SessionState.DEGRADED))
    assert tray.icon_kind is IconKind.DEGRADED
    assert "3 of 4 resources reachable" in tray.icon.toolTip()
    entries = tray.entries()
    assert ("Disconnect", True) in entries
    assert ("Sign out", True) in entries
    assert ("▸ ✕ Payroll — Disk encryption is off", True) in entries
    assert ("▸ ▸ Why: Disk encryption is off", True) in entries
    assert ("Sign in…", True) not in entries

    engine.fail("Helper missing", "The tunnel helper is not running.", "Reinstall Rustronaut.")
    assert tray.icon_kind is IconKind.ERROR
    assert tray.icon.toolTip().endswith("Reinstall Rustronaut.")


async def test_decisions_do_not_rebuild_the_menu(engine: ScriptedEngine, make_app) -> None:
    engine.publish(demo_snapshot(SessionState.CONNECTED))
    app = make_app(engine)
    before = app.tray.rebuilds
    for app_, dest, ok, rule, why in DEMO_DECISIONS * 20:
        engine.decide(app_, dest, ok, rule, why)
    engine.publish(dataclasses.replace(engine.snapshot, risk=80))  # not shown in the menu
    assert app.tray.rebuilds == before
    assert app.actions.activity.rowCount() == len(DEMO_DECISIONS) * 20


async def test_menu_actions_call_the_engine(engine: ScriptedEngine, make_app) -> None:
    engine.publish(demo_snapshot(SessionState.DISCONNECTED))
    app = make_app(engine)
    app.tray.action("Connect").trigger()
    await until(lambda: engine.snapshot.state is SessionState.CONNECTED)
    assert ("connect", {}) in engine.calls
    assert app.tray.icon_kind is IconKind.CONNECTED
    app.tray.action("Disconnect").trigger()
    await until(lambda: engine.snapshot.state is SessionState.DISCONNECTED)
    assert ("disconnect", {"break_glass_reason": None}) in engine.calls
    app.tray.action("Sign out").trigger()
    await until(lambda: engine.snapshot.state is SessionState.SIGNED_OUT)
    assert app.tray.entries()[0] == ("Signed out", False)


async def test_windows_open_from_the_menu(engine: ScriptedEngine, make_app) -> None:
    app = make_app(engine)
    for text, name in (
        ("Open Rustronaut", "main"),
        ("Posture", "posture"),
        ("Activity", "activity"),
        ("Settings", "settings"),
        ("About Rustronaut", "about"),
        ("Sign in…", "signin"),
    ):
        app.tray.action(text).trigger()
        assert app.actions.windows[name].isVisible(), name


async def test_ui_never_blocks_the_loop_while_the_engine_works(
    engine: ScriptedEngine, make_app
) -> None:
    """A connect that takes long must not stall Qt: timers keep firing while it awaits."""
    from PySide6.QtCore import QTimer

    engine.publish(demo_snapshot(SessionState.DISCONNECTED))
    app = make_app(engine)
    engine.gate = asyncio.Event()
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        ticks += 1

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(5)
    app.tray.action("Connect").trigger()  # returns at once; the call is now pending
    assert engine.snapshot.state is SessionState.CONNECTING or not engine.calls
    await until(lambda: ("connect", {}) in engine.calls)
    start = ticks
    await until(lambda: ticks >= start + 10)  # the loop keeps ticking while connect awaits
    assert engine.snapshot.state is SessionState.CONNECTING
    assert app.tray.icon_kind is IconKind.BUSY
    engine.gate.set()
    await until(lambda: engine.snapshot.state is SessionState.CONNECTED)
    timer.stop()


async def test_always_on_disconnect_asks_for_a_reason(engine: ScriptedEngine, make_app) -> None:
    from app.windows.breakglass import BreakGlassDialog

    engine.publish(demo_snapshot(SessionState.CONNECTED, always_on=True))
    app = make_app(engine)
    app.tray.action("Disconnect (break-glass)…").trigger()
    dialog = app.actions.windows["breakglass"]
    assert isinstance(dialog, BreakGlassDialog)
    assert dialog.isVisible()
    assert not any(c[0] == "disconnect" for c in engine.calls)  # nothing happened yet
    assert not dialog.ok.isEnabled()
    dialog.reason.setPlainText("   short  ")
    assert not dialog.ok.isEnabled()
    dialog.accept()  # refused while too short
    assert dialog.isVisible()
    dialog.reason.setPlainText("Hotel captive portal needs the VPN off")
    assert dialog.ok.isEnabled()
    dialog.ok.click()
    await until(lambda: engine.snapshot.state is SessionState.DISCONNECTED)
    assert ("disconnect", {"break_glass_reason": "Hotel captive portal needs the VPN off"}) in (
        engine.calls
    )
    assert not dialog.isVisible()


async def test_break_glass_cancel_keeps_the_connection(engine: ScriptedEngine, make_app) -> None:
    engine.publish(demo_snapshot(SessionState.CONNECTED, always_on=True))
    app = make_app(engine)
    app.actions.disconnect_session()
    dialog = app.actions.windows["breakglass"]
    dialog.reason.setPlainText("I would rather not be connected")
    dialog.reject()
    assert not dialog.isVisible()
    # Nothing was started that could still disconnect later (no background task at all).
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("ui.")]
    assert not any(c[0] == "disconnect" for c in engine.calls)
    assert engine.snapshot.state is SessionState.CONNECTED


async def test_no_tray_opens_the_main_window_and_says_why(engine: ScriptedEngine, make_app) -> None:
    from app.tray_app import NO_TRAY_NOTICE

    app = make_app(engine)
    assert not QSystemTrayIcon.isSystemTrayAvailable()  # offscreen has no tray
    shown = app.start()
    assert shown is False
    main = app.actions.windows["main"]
    assert main.isVisible()
    assert main.notice.text() == NO_TRAY_NOTICE
    assert not main.notice.isHidden()
    await until(lambda: engine.started)


async def test_start_opens_sign_in_when_signed_out(engine: ScriptedEngine, make_app) -> None:
    app = make_app(engine, open_signin_when_signed_out=True)
    app.start(tray_available=True)
    await until(lambda: "signin" in app.actions.windows)
    assert app.actions.windows["signin"].isVisible()
    assert "main" not in app.actions.windows


async def test_notifications_are_shown_and_extend_signs_in(
    engine: ScriptedEngine, make_app
) -> None:
    import time

    engine.publish(demo_snapshot(SessionState.CONNECTING))
    app = make_app(engine)
    engine.publish(demo_snapshot(SessionState.CONNECTED, session_expires_at=time.time() + 120))
    shown = [n.key for n in app.tray.notifier.shown]
    assert shown == ["connected", "expiring"]
    engine.gate = asyncio.Event()
    app.tray.icon.messageClicked.emit()  # the employee clicks the "expires soon" bubble
    assert app.actions.windows["signin"].isVisible()
    await until(lambda: any(c[0] == "sign_in" for c in engine.calls))  # at once
    engine.gate.set()


async def test_quit_stops_the_engine(engine: ScriptedEngine, make_app) -> None:
    app = make_app(engine)
    quit_seen = asyncio.Event()
    app.actions.quit_requested.connect(quit_seen.set)
    app.tray.action("Quit").trigger()
    await asyncio.wait_for(quit_seen.wait(), 2)
    assert ("stop", {}) in engine.calls
    app.shutdown()
    assert engine.subscribers == 0


async def test_tray_shows_starting_until_the_engine_is_attached(
    engine: ScriptedEngine, make_app
) -> None:
    from tests.fakes.scripted_engine import demo_snapshot as snap

    app = make_app(None)
    app.start(tray_available=True)
    assert app.tray.icon_kind is IconKind.BUSY
    assert app.tray.icon.toolTip() == "Rustronaut — Starting…"
    assert [t for t, _ in app.tray.entries()] == [
        "Starting…",
        "Open Rustronaut",
        "About Rustronaut",
        "Quit",
    ]
    assert app.actions.connect_session() is None  # nothing to call yet, and no crash
    assert await app.actions.set_setting("auto_connect", False) == (
        "Rustronaut is still starting; try again in a moment."
    )
    engine.publish(snap(SessionState.CONNECTED))
    app.attach_engine(engine)
    assert app.tray.icon_kind is IconKind.CONNECTED
    assert ("Disconnect", True) in app.tray.entries()
    await until(lambda: engine.started)  # start() runs once attached


async def test_a_refused_intent_is_shown_to_the_employee(engine: ScriptedEngine, make_app) -> None:
    engine.publish(demo_snapshot(SessionState.DISCONNECTED))
    app = make_app(engine)
    engine.raise_next = RuntimeError("The tunnel helper is not running. Reinstall Rustronaut.")
    app.tray.action("Connect").trigger()
    await until(lambda: app.tray.notifier.shown)
    n = app.tray.notifier.shown[-1]
    assert (n.title, n.severity) == ("Could not connect", "critical")
    assert n.body == "The tunnel helper is not running. Reinstall Rustronaut."


async def test_settings_drive_autostart_notifications_and_break_glass(
    engine: ScriptedEngine, make_app
) -> None:
    engine.publish(demo_snapshot(SessionState.CONNECTING, always_on=True))
    app = make_app(engine)
    # autostart=True by default only: the XDG entry is not written silently (issue 18).
    assert not app.actions.autostart.enabled()
    assert await app.actions.set_setting("autostart", True) is None
    assert app.actions.autostart.enabled()
    assert await app.actions.set_setting("autostart", False) is None
    assert not app.actions.autostart.enabled()

    assert await app.actions.set_setting("notifications", False) is None
    engine.publish(demo_snapshot(SessionState.CONNECTED, always_on=True))
    assert app.tray.notifier.shown == []  # "Connected" suppressed by the setting

    # IT forbids break-glass (a SETTINGS event from the engine): the entry is disabled at
    # once; asked anyway, the engine refuses and its words are shown; nothing changes.
    engine.set_managed("allow_break_glass", False)
    assert ("Disconnect (not allowed)", False) in app.tray.entries()
    engine.publish(demo_snapshot(SessionState.DEGRADED, always_on=True))
    assert app.actions.disconnect_session() is None
    assert "breakglass" not in app.actions.windows
    await until(lambda: app.tray.notifier.shown)
    refusal = app.tray.notifier.shown[-1]
    assert refusal.title == "Always-on is required by your organization"
    assert refusal.body.startswith("Your organization does not allow disconnecting.")
    assert engine.snapshot.state is SessionState.DEGRADED
