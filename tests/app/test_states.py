"""States that are true, on real widgets (offscreen): BLOCKED shows its fix, a resource is
"reachable" only while connected, an ERROR always tells its next step and notifies once."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest
from PySide6.QtWidgets import QTreeWidget

from app.notify import RateLimiter
from app.presenter import REACHABLE_STATES, IconKind, menu_model, tooltip
from core.engine.state import ErrorInfo, EventKind, ResourceView, SessionState
from tests.fakes.scripted_engine import ScriptedEngine, demo_snapshot

pytestmark = pytest.mark.ui

FIREWALL_FIX = "Turn the firewall on (sudo ufw enable)"

BLOCKED_RESOURCES = (
    ResourceView("Wiki", "wiki.corp.example:443", False, "Firewall is off", FIREWALL_FIX, True),
    ResourceView(
        "Git server", "git.corp.example:443", False, "Firewall is off", FIREWALL_FIX, True
    ),
)


async def until(pred: Callable[[], object], timeout: float = 3.0) -> None:
    """Let the loop run until ``pred()`` is true (fails the test after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.01)


def _statuses(tree: QTreeWidget) -> dict[str, tuple[str, str]]:
    items = (tree.topLevelItem(i) for i in range(tree.topLevelItemCount()))
    return {it.text(0): (it.text(2), it.text(3)) for it in items if it is not None}


async def test_blocked_shows_the_fix_in_the_tray_menu_and_the_main_window(make_app) -> None:
    """Connected, but every resource blocked until the firewall is on: not "Connecting…",
    but its own state, icon and tooltip, with the fix where the employee looks."""
    engine = ScriptedEngine(demo_snapshot(SessionState.CONNECTED))
    app = make_app(engine)
    main = app.actions.show_window("main")
    assert main.fix_box.isHidden()

    engine.set_state(SessionState.BLOCKED, resources=BLOCKED_RESOURCES)

    tray = app.tray
    assert tray.icon_kind is IconKind.BLOCKED
    entries = tray.entries()
    assert entries[0] == ("Connected — access blocked", False)
    assert entries[1] == (f"To fix: {FIREWALL_FIX}", True)  # once, though two need it
    assert sum(text.startswith("To fix:") for text, _ in entries) == 1
    assert ("Disconnect", True) in entries  # the tunnel is up
    assert tray.icon.toolTip().splitlines() == [
        "Rustronaut — Connected — access blocked",
        "Signed in as ada@corp.example (Example Corp)",
        f"To fix: {FIREWALL_FIX}",
    ]
    assert main.state_line.text() == "Connected — access blocked"
    assert main.fix_box.isVisibleTo(main)
    assert f"To fix: {FIREWALL_FIX}" in main.fix_text.text()
    assert _statuses(main.resources)["Wiki"] == ("Blocked", f"Firewall is off — {FIREWALL_FIX}")
    assert [n.key for n in tray.notifier.shown] == ["access-blocked"]
    assert FIREWALL_FIX in tray.notifier.shown[0].body

    # The firewall comes back on: connected, the fix disappears.
    engine.set_state(SessionState.CONNECTED, resources=demo_snapshot().resources)
    assert tray.icon_kind is IconKind.CONNECTED
    assert not any(text.startswith("To fix:") for text, _ in tray.entries())
    assert main.fix_box.isHidden()


@pytest.mark.parametrize(
    "state",
    [
        SessionState.SIGNED_OUT,
        SessionState.CONNECTING,
        SessionState.CHECKING_POSTURE,
        SessionState.OFFLINE,
        SessionState.DISCONNECTING,
        SessionState.DISCONNECTED,
        SessionState.ERROR,
        SessionState.BLOCKED,
    ],
)
def test_no_resource_is_reachable_unless_connected(state: SessionState) -> None:
    snap = demo_snapshot(state)  # the policy allows three of its four resources
    assert state not in REACHABLE_STATES
    texts = [child.text for e in menu_model(snap) for child in e.children]
    assert texts, "the resources submenu is there"
    assert not any("reachable" in t for t in texts), texts
    assert "○ Wiki — not connected" in texts
    assert "✕ Payroll — Disk encryption is off" in texts  # blocked says why in any state
    assert "reachable" not in tooltip(snap)


async def test_reachable_is_not_shown_while_disconnected(make_app) -> None:
    engine = ScriptedEngine(demo_snapshot(SessionState.CONNECTED))
    app = make_app(engine)
    main = app.actions.show_window("main")
    assert ("▸ ✓ Wiki — reachable", True) in app.tray.entries()
    assert _statuses(main.resources)["Wiki"] == ("Reachable", "")

    app.tray.action("Disconnect").trigger()
    await until(lambda: engine.snapshot.state is SessionState.DISCONNECTED)
    assert engine.snapshot.resources[1].reachable  # the engine's view: allowed by policy
    entries = app.tray.entries()
    assert ("▸ ○ Wiki — not connected", True) in entries
    assert not any("reachable" in text for text, _ in entries)
    assert "reachable" not in app.tray.icon.toolTip()
    assert _statuses(main.resources)["Wiki"] == ("Not connected", "Connect to reach it")


async def test_an_error_by_any_event_shows_its_next_step_and_notifies_once(make_app) -> None:
    """The helper is lost: the engine goes to ERROR with a STATE event (no ERROR event).
    The tray says so with the next step and one notification, even after a burst."""
    limiter = RateLimiter(per_key_s=60, burst=2, window_s=30)
    engine = ScriptedEngine(demo_snapshot(SessionState.CONNECTING))
    app = make_app(engine, limiter=limiter)
    engine.set_state(SessionState.CONNECTED)  # "Connected" notice
    engine.set_state(SessionState.DEGRADED, resources=BLOCKED_RESOURCES[:1])  # "withdrawn"
    assert len(app.tray.notifier.shown) == 2  # the burst cap is now reached

    err = ErrorInfo(
        "The Rustronaut helper stopped",
        "The tunnel helper is not running.",
        "",
        "helper_unavailable",
    )
    engine.set_state(SessionState.ERROR, error=err)
    engine.publish(engine.snapshot, EventKind.ERROR, message=err.title)  # same error again

    tray = app.tray
    assert tray.icon_kind is IconKind.ERROR
    errors = [n for n in tray.notifier.shown if n.severity == "critical"]
    assert len(errors) == 1
    assert errors[0].title == "The Rustronaut helper stopped"
    step = "Start the Rustronaut helper service (or reinstall Rustronaut), then Connect again."
    assert errors[0].body == f"The tunnel helper is not running.\n{step}"
    entries = tray.entries()
    assert entries[0] == ("Problem: The Rustronaut helper stopped", False)
    assert entries[1] == (step, True)
    assert tray.icon.toolTip().splitlines()[-1] == step
    main = app.actions.show_window("main")
    assert main.error_box.isVisibleTo(main)
    assert main.error_text.text().endswith(f"What to do: {step}")

    # A different error later is told too; the engine's own next step wins.
    engine.set_state(
        SessionState.ERROR,
        error=dataclasses.replace(err, title="Helper refused", next_step="Reinstall.", code="x"),
    )
    assert [n.title for n in tray.notifier.shown if n.severity == "critical"] == [
        "The Rustronaut helper stopped",
        "Helper refused",
    ]
    assert tray.entries()[1] == ("Reinstall.", True)
