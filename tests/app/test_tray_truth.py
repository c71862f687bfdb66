"""Issue 18, deliver 5: notifications and menus that tell the truth.

Each test was a finding when the tray was tried as an employee would: written to fail on
the code of the time, against real widgets offscreen and the scripted engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMenu, QMessageBox, QSystemTrayIcon

from app.notify import EXPIRY_WARNING_S, Notifier, RateLimiter
from app.presenter import Action
from core.engine.state import SessionState
from tests.fakes.scripted_engine import ScriptedEngine, demo_settings, demo_snapshot

pytestmark = pytest.mark.ui


async def until(pred: Callable[[], object], timeout: float = 3.0) -> None:
    """Let the loop run until ``pred()`` is true (fails the test after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.01)


def _submenu(menu: QMenu, title: str) -> QMenu:
    for qa in menu.actions():
        sub = qa.menu()
        if isinstance(sub, QMenu) and qa.text().replace("&&", "&") == title:
            return sub
    raise KeyError(title)


async def test_blocked_resource_submenu_shows_reason_and_fix_in_full(
    engine: ScriptedEngine, make_app
) -> None:
    long_fix = (
        "Turn on disk encryption in System Settings, restart this computer, then choose "
        "Check again in the Posture window so the controller hears of it"
    )
    resources = tuple(
        dataclasses.replace(r, fix=long_fix) if r.name == "Payroll" else r
        for r in demo_snapshot().resources
    )
    engine.publish(demo_snapshot(SessionState.DEGRADED, resources=resources))
    app = make_app(engine)
    payroll = _submenu(_submenu(app.tray.menu, "Resources"), "✕ Payroll — Disk encryption is off")
    rows = [qa.text().replace("&&", "&") for qa in payroll.actions() if not qa.isSeparator()]
    assert rows[0] == "Why: Disk encryption is off"
    # The whole fix is there, over several rows, each short enough for any screen.
    fix_rows = [r for r in rows if r.startswith(("To fix: ", "   "))]
    assert " ".join(r.removeprefix("To fix: ").strip() for r in fix_rows) == long_fix
    screen = QGuiApplication.primaryScreen().availableGeometry()
    assert payroll.sizeHint().width() <= screen.width()
    fm = payroll.fontMetrics()
    for qa in payroll.actions():
        assert fm.horizontalAdvance(qa.text()) < payroll.sizeHint().width()


async def test_retry_now_when_offline_asks_the_controller_at_once(
    engine: ScriptedEngine, make_app
) -> None:
    # Offline on the last policy (tunnel up): the engine's connect would do nothing, so
    # Retry now reports posture, whose answer brings a fresh policy.
    engine.publish(demo_snapshot(SessionState.OFFLINE))
    app = make_app(engine)
    assert ("Retry now", True) in app.tray.entries()
    app.tray.action("Retry now").trigger()
    await until(lambda: any(c[0] == "recheck_posture" for c in engine.calls))
    # Offline with nothing to connect with (no tunnel): connect again.
    engine.publish(demo_snapshot(SessionState.OFFLINE, tunnel=None))
    app.tray.action("Retry now").trigger()
    await until(lambda: any(c[0] == "connect" for c in engine.calls))
    engine.publish(demo_snapshot(SessionState.CONNECTED))
    assert ("Retry now", True) not in app.tray.entries()


async def test_menu_shows_session_end_with_extend(engine: ScriptedEngine, make_app) -> None:
    engine.publish(
        demo_snapshot(
            SessionState.CONNECTED,
            session_expires_at=time.time() + 3600,
            session_renewable=False,
        )
    )
    app = make_app(engine)
    entries = app.tray.entries()
    assert any(t.startswith("Signed in until ") for t, _ in entries)
    assert ("Extend sign-in…", True) in entries
    engine.gate = asyncio.Event()
    app.tray.action("Extend sign-in…").trigger()
    assert app.actions.windows["signin"].isVisible()
    await until(lambda: any(c[0] == "sign_in" for c in engine.calls))
    engine.gate.set()
    # A sign-in that renews itself needs no Extend.
    engine.publish(demo_snapshot(SessionState.CONNECTED, session_renewable=True))
    assert ("Extend sign-in…", True) not in app.tray.entries()


async def test_deliberate_sign_out_does_not_ask_to_sign_in(
    engine: ScriptedEngine, make_app
) -> None:
    from core.engine.state import EventKind, Snapshot

    engine.publish(demo_snapshot(SessionState.CONNECTED))
    app = make_app(engine)
    app.tray.notifier.shown.clear()
    app.tray.action("Sign out").trigger()
    await until(lambda: engine.snapshot.state is SessionState.SIGNED_OUT)
    # As the real engine does after a sign-out.
    engine.publish(
        Snapshot(), EventKind.NOTICE, message="Signed out", details={"action": "signed_out"}
    )
    assert [n.key for n in app.tray.notifier.shown] == []


async def test_expiry_warning_at_ten_minutes_and_the_end_is_told(qapp) -> None:
    now = [1_800_000_000.0]
    icon = QSystemTrayIcon()
    shown: list[Action] = []
    snap = dataclasses.replace(
        demo_snapshot(SessionState.CONNECTED),
        session_expires_at=now[0] + 30 * 60,
        session_renewable=False,
    )
    notifier = Notifier(
        icon,
        shown.append,
        RateLimiter(per_key_s=0, burst=10_000),
        clock=lambda: now[0],
        initial=snap,
    )
    keys = lambda: [n.key for n in notifier.shown]  # noqa: E731
    notifier.check_expiry()
    assert keys() == []
    now[0] += 30 * 60 - EXPIRY_WARNING_S  # exactly 10 minutes left
    notifier.check_expiry()
    notifier.check_expiry()  # told once per sign-in, not every tick
    assert keys() == ["expiring"]
    assert "10 min" in notifier.shown[-1].body
    now[0] += EXPIRY_WARNING_S + 1
    notifier.check_expiry()
    notifier.check_expiry()
    assert keys() == ["expiring", "signin-needed"]
    assert notifier.shown[-1].title == "Your sign-in has ended"
    icon.messageClicked.emit()
    assert shown == [Action.SIGN_IN]


async def test_diagnostics_say_where_with_show_in_folder(
    engine: ScriptedEngine, make_app, tmp_path: Path
) -> None:
    engine.publish(demo_snapshot())
    app = make_app(engine)
    app.actions._diagnostics_dir = lambda: tmp_path
    opened: list[Path] = []
    app.actions.open_folder = opened.append
    app.tray.action("Collect diagnostics…").trigger()
    await until(lambda: app.tray.notifier.shown)
    n = app.tray.notifier.shown[-1]
    path = tmp_path / "rustronaut-diagnostics.zip"
    assert n.title == "Diagnostics saved"
    assert n.body.startswith(f"Saved to {path}")
    assert n.action is Action.SHOW_DIAGNOSTICS
    app.tray.icon.messageClicked.emit()
    assert opened == [tmp_path]


async def test_diagnostics_failure_is_told(engine: ScriptedEngine, make_app, tmp_path) -> None:
    engine.publish(demo_snapshot())
    app = make_app(engine)
    app.actions._diagnostics_dir = lambda: tmp_path / "missing"
    app.tray.action("Collect diagnostics…").trigger()
    await until(lambda: app.tray.notifier.shown)
    assert app.tray.notifier.shown[-1].title == "Diagnostics not saved"


async def test_minimised_main_window_is_restored(engine: ScriptedEngine, make_app) -> None:
    engine.publish(demo_snapshot())
    app = make_app(engine)
    main = app.actions.show_window("main")
    main.showMinimized()
    assert main.isMinimized()
    app.tray.icon.activated.emit(QSystemTrayIcon.ActivationReason.Trigger)  # tray click
    assert not main.isMinimized()
    assert main.isVisible()
    main.showMaximized()
    main.setWindowState(main.windowState() | Qt.WindowState.WindowMinimized)
    app.actions.show_window("main")  # second launch does the same
    assert not main.isMinimized()
    assert main.windowState() & Qt.WindowState.WindowMaximized  # stays maximised


async def test_autostart_is_asked_once_never_switched_on_silently(make_app) -> None:
    engine = ScriptedEngine(demo_snapshot(SessionState.CONNECTED), demo_settings())
    app = make_app(engine, ask_autostart=True)
    app.start(tray_available=True)
    await until(lambda: "autostart" in app.actions.windows)
    assert not app.actions.autostart.enabled()  # not before the answer
    box = app.actions.windows["autostart"]
    assert isinstance(box, QMessageBox)
    assert box.text() == "Start Rustronaut when you log in?"
    box.button(QMessageBox.StandardButton.Yes).click()
    await until(lambda: app.actions.autostart.enabled())
    assert {s.key: s.source for s in engine.settings()}["autostart"] == "user"
    assert app.ask_autostart() is None  # answered: never asked again


async def test_autostart_set_by_it_is_not_asked(make_app) -> None:
    settings = [
        dataclasses.replace(s, source="managed", locked=True, value=True)
        if s.key == "autostart"
        else s
        for s in demo_settings()
    ]
    engine = ScriptedEngine(demo_snapshot(SessionState.CONNECTED), settings)
    app = make_app(engine, ask_autostart=True)
    assert app.actions.autostart.enabled()  # IT's choice applies at once
    assert app.ask_autostart() is None
