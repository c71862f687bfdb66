"""Always-on on every exit: Disconnect, Sign out and Quit (when the tray hosts the engine)
ask for a reason in one dialog with one minimum length, or show the engine's refusal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from app.link import AttachedLink
from app.windows.breakglass import BreakGlassDialog, Exit
from core.engine.api import MIN_REASON_LENGTH
from core.engine.state import SessionState
from tests.fakes.scripted_engine import ScriptedEngine, demo_settings, demo_snapshot

pytestmark = pytest.mark.ui

REASON = "The laptop goes to IT for repair"


async def until(pred: Callable[[], object], timeout: float = 3.0) -> None:
    """Let the loop run until ``pred()`` is true (fails the test after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.01)


def _always_on(**kwargs: object) -> ScriptedEngine:
    return ScriptedEngine(
        demo_snapshot(SessionState.CONNECTED, always_on=True), demo_settings(**kwargs)
    )


def _called(engine: ScriptedEngine, name: str) -> list[dict[str, object]]:
    return [kw for n, kw in engine.calls if n == name]


def _give_reason(dialog: BreakGlassDialog, reason: str) -> None:
    """Type a too-short reason (refused), then ``reason``, then press OK."""
    assert not dialog.ok.isEnabled()
    dialog.reason.setPlainText("x" * (MIN_REASON_LENGTH - 1) + "   ")
    assert not dialog.ok.isEnabled()  # one short of the minimum (blanks do not count)
    dialog.reason.setPlainText("y" * MIN_REASON_LENGTH)
    assert dialog.ok.isEnabled()  # exactly the minimum the CLI and the API use
    dialog.reason.setPlainText(reason)
    dialog.ok.click()


async def test_sign_out_under_always_on_asks_for_a_reason(make_app) -> None:
    engine = _always_on()
    app = make_app(engine)
    app.tray.action("Sign out").trigger()
    dialog = app.actions.windows["breakglass"]
    assert isinstance(dialog, BreakGlassDialog)
    assert dialog.exit is Exit.SIGN_OUT
    assert dialog.isVisible()
    assert dialog.ok.text() == "&Sign out"
    assert _called(engine, "sign_out") == []  # nothing happened yet
    _give_reason(dialog, REASON)
    await until(lambda: engine.snapshot.state is SessionState.SIGNED_OUT)
    assert _called(engine, "sign_out") == [{"break_glass_reason": REASON}]
    assert not dialog.isVisible()


async def test_sign_out_refused_when_break_glass_is_not_allowed(make_app) -> None:
    """No dialog: the engine is asked without a reason and its refusal is shown."""
    engine = _always_on()
    engine.set_managed("allow_break_glass", False)
    app = make_app(engine)
    app.tray.action("Sign out").trigger()
    assert "breakglass" not in app.actions.windows
    await until(lambda: app.tray.notifier.shown)
    refusal = app.tray.notifier.shown[-1]
    assert refusal.title == "Always-on is required by your organization"
    assert refusal.body.startswith("Your organization does not allow disconnecting.")
    assert engine.snapshot.state is SessionState.CONNECTED  # still signed in


async def test_disconnect_under_always_on_uses_the_same_dialog(make_app) -> None:
    engine = _always_on()
    app = make_app(engine)
    app.tray.action("Disconnect (break-glass)…").trigger()
    dialog = app.actions.windows["breakglass"]
    assert dialog.exit is Exit.DISCONNECT
    _give_reason(dialog, REASON)
    await until(lambda: engine.snapshot.state is SessionState.DISCONNECTED)
    assert _called(engine, "disconnect") == [{"break_glass_reason": REASON}]


async def test_quit_hosting_the_engine_under_always_on_asks_then_disconnects(make_app) -> None:
    engine = _always_on()
    app = make_app(engine)  # a bare engine: this process hosts it
    assert app.actions.quit_stops_engine
    quits: list[bool] = []
    app.actions.quit_requested.connect(lambda: quits.append(True))

    app.tray.action("Quit").trigger()
    dialog = app.actions.windows["breakglass"]
    assert dialog.exit is Exit.QUIT
    dialog.reject()  # "Stay connected": the tray keeps running
    assert not app.actions.quitting
    assert not engine.stopped
    assert quits == []

    app.tray.action("Quit").trigger()
    _give_reason(app.actions.windows["breakglass"], REASON)
    await until(lambda: quits)
    assert _called(engine, "disconnect") == [{"break_glass_reason": REASON}]
    assert engine.stopped


async def test_quit_hosting_the_engine_is_refused_without_break_glass(make_app) -> None:
    engine = _always_on()
    engine.set_managed("allow_break_glass", False)
    app = make_app(engine)
    quits: list[bool] = []
    app.actions.quit_requested.connect(lambda: quits.append(True))
    app.tray.action("Quit").trigger()
    await until(lambda: app.tray.notifier.shown)
    refusal = app.tray.notifier.shown[-1]
    assert refusal.body.startswith("Your organization does not allow disconnecting.")
    assert not engine.stopped
    assert quits == []
    assert not app.actions.quitting  # the tray runs on, Quit can be tried again


async def test_quit_attached_to_the_agent_never_asks(make_app) -> None:
    """Attached, Quit only detaches: the always-on connection is not touched, no reason."""
    engine = _always_on()
    app = make_app(AttachedLink(engine))
    quits: list[bool] = []
    app.actions.quit_requested.connect(lambda: quits.append(True))
    app.tray.action("Quit").trigger()
    await until(lambda: quits)
    assert "breakglass" not in app.actions.windows
    assert _called(engine, "disconnect") == []
    assert engine.snapshot.state is SessionState.CONNECTED
