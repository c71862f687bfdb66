"""The "what does the employee see in state X" table: labels, icons, tooltip, menu."""

from __future__ import annotations

import dataclasses

import pytest

from app.presenter import (
    Action,
    IconKind,
    format_age,
    format_bytes,
    icon_for,
    menu_model,
    state_label,
    tooltip,
    tunnel_summary,
)
from core.engine.state import ErrorInfo, SessionState, Snapshot
from tests.fakes.scripted_engine import demo_snapshot

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("state", "icon"),
    [
        (SessionState.SIGNED_OUT, IconKind.SIGNED_OUT),
        (SessionState.SIGNING_IN, IconKind.BUSY),
        (SessionState.ENROLLING, IconKind.BUSY),
        (SessionState.CHECKING_POSTURE, IconKind.BUSY),
        (SessionState.CONNECTING, IconKind.BUSY),
        (SessionState.CONNECTED, IconKind.CONNECTED),
        (SessionState.DEGRADED, IconKind.DEGRADED),
        (SessionState.BLOCKED, IconKind.BLOCKED),
        (SessionState.OFFLINE, IconKind.OFFLINE),
        (SessionState.DISCONNECTING, IconKind.BUSY),
        (SessionState.DISCONNECTED, IconKind.DISCONNECTED),
        (SessionState.ERROR, IconKind.ERROR),
    ],
)
def test_every_state_has_an_icon_and_a_label(state: SessionState, icon: IconKind) -> None:
    assert icon_for(state) is icon
    assert state_label(Snapshot(state=state))


def test_the_state_table_covers_every_state() -> None:
    for state in SessionState:
        assert icon_for(state) in IconKind
        assert state_label(Snapshot(state=state))


def _actions(s: Snapshot) -> list[tuple[str, Action | None, bool]]:
    return [(e.text, e.action, e.enabled) for e in menu_model(s) if e.kind == "action"]


def _texts(s: Snapshot) -> list[str]:
    return [e.text for e in menu_model(s) if e.kind != "separator"]


def test_signed_out_menu_offers_sign_in_not_connect() -> None:
    texts = _texts(Snapshot())
    assert texts[0] == "Signed out"
    assert "Sign in…" in texts
    assert "Connect" not in texts
    assert "Disconnect" not in texts
    assert "Sign out" not in texts
    for needed in ("Resources", "Open Rustronaut", "Posture", "Activity", "Settings"):
        assert needed in texts
    assert texts[-3:] == ["Collect diagnostics…", "About Rustronaut", "Quit"]


@pytest.mark.parametrize(
    ("state", "always_on", "expected"),
    [
        (SessionState.CONNECTED, False, ("Disconnect", Action.DISCONNECT, True)),
        (SessionState.DEGRADED, False, ("Disconnect", Action.DISCONNECT, True)),
        (SessionState.OFFLINE, False, ("Disconnect", Action.DISCONNECT, True)),
        (SessionState.CONNECTED, True, ("Disconnect (break-glass)…", Action.DISCONNECT, True)),
        (SessionState.DISCONNECTED, False, ("Connect", Action.CONNECT, True)),
        (SessionState.ERROR, False, ("Connect", Action.CONNECT, True)),
        (SessionState.DISCONNECTING, False, ("Disconnecting…", Action.DISCONNECT, False)),
    ],
)
def test_connect_entry_follows_state(
    state: SessionState, always_on: bool, expected: tuple[str, Action, bool]
) -> None:
    s = demo_snapshot(state, always_on=always_on)
    acts = _actions(s)
    assert expected in acts
    assert ("Sign out", Action.SIGN_OUT, True) in acts
    assert ("Sign in…", Action.SIGN_IN, True) not in acts


def test_signing_in_shows_disabled_progress_entry() -> None:
    acts = _actions(Snapshot(state=SessionState.SIGNING_IN))
    assert ("Signing in…", Action.SIGN_IN, False) in acts


def test_error_without_user_offers_sign_in_with_the_problem_title() -> None:
    s = Snapshot(state=SessionState.ERROR, error=ErrorInfo("Sign-in failed", "x", "Try again"))
    texts = _texts(s)
    assert texts[0] == "Problem: Sign-in failed"
    assert "Sign in…" in texts


def test_resources_submenu_says_reachable_or_blocked_and_why() -> None:
    sub = next(e for e in menu_model(demo_snapshot()) if e.kind == "submenu")
    texts = [c.text for c in sub.children]
    assert "✓ Git server — reachable" in texts
    assert "✕ Payroll — Disk encryption is off" in texts
    payroll = next(c for c in sub.children if "Payroll" in c.text)
    # The reason and the fix are rows of its own submenu (not only a hover tooltip).
    assert payroll.kind == "submenu"
    rows = [c.text for c in payroll.children]
    assert rows[:2] == [
        "Why: Disk encryption is off",
        "To fix: Turn on disk encryption in System Settings",
    ]
    assert "payroll.corp.example:443" in rows
    assert "Turn on disk encryption" in payroll.tooltip
    empty = next(e for e in menu_model(Snapshot()) if e.kind == "submenu")
    assert [c.text for c in empty.children] == ["No resources yet"]


def test_menu_model_is_equal_for_equal_snapshots_and_differs_on_change() -> None:
    a = demo_snapshot()
    assert menu_model(a) == menu_model(dataclasses.replace(a, risk=99))  # not in the menu
    assert menu_model(a) != menu_model(dataclasses.replace(a, state=SessionState.CONNECTED))


def test_tooltip_summarises_state_user_and_resources() -> None:
    tip = tooltip(demo_snapshot())
    assert tip.splitlines() == [
        "Rustronaut — Connected — some access blocked",
        "Signed in as ada@corp.example (Example Corp)",
        "3 of 4 resources reachable",
    ]
    err = Snapshot(state=SessionState.ERROR, error=ErrorInfo("Helper missing", "d", "Reinstall"))
    assert tooltip(err).splitlines() == ["Rustronaut — Problem: Helper missing", "Reinstall"]


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 2**30, "5.0 GiB")]
)
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text


@pytest.mark.parametrize(
    ("age", "text"), [(None, "never"), (5.4, "5 s ago"), (125, "2 min ago"), (7300, "2 h ago")]
)
def test_format_age(age: float | None, text: str) -> None:
    assert format_age(age) == text


def test_tunnel_summary() -> None:
    assert tunnel_summary(None) == "No tunnel"
    assert "gw.corp.example:51820 via rt0" in tunnel_summary(demo_snapshot().tunnel)


def test_always_on_without_break_glass_disables_disconnect() -> None:
    s = demo_snapshot(SessionState.CONNECTED, always_on=True)
    entry = next(e for e in menu_model(s, break_glass=False) if e.action is Action.DISCONNECT)
    assert (entry.text, entry.enabled) == ("Disconnect (not allowed)", False)
    assert "always on" in entry.tooltip


def test_access_line_says_which_way_applies() -> None:
    from app.presenter import access_line
    from core.engine.state import AccessView

    assert access_line(Snapshot()) == "—"
    transparent = Snapshot(
        access=AccessView(mode="transparent", fenced=True, dns_suffixes=("corp.example",))
    )
    line = access_line(transparent)
    assert line.startswith("Every app reaches company resources directly")
    assert "corp.example resolve through the tunnel" in line
    proxy = Snapshot(access=AccessView(mode="proxy", fenced=True, proxy_address="127.0.0.1:9080"))
    assert "through the proxy 127.0.0.1:9080" in access_line(proxy)
    assert "cannot redirect" not in access_line(proxy)
    unfenced = Snapshot(access=AccessView(mode="proxy", fenced=False))
    assert "cannot redirect other apps" in access_line(unfenced)
    rogue = Snapshot(
        access=AccessView(
            mode="transparent", fenced=True, overridden_routes=("10.243.0.0/25 via eth0",)
        )
    )
    assert "10.243.0.0/25 via eth0 is overridden" in access_line(rogue)


def test_reconnecting_is_busy_and_never_reads_connected() -> None:
    from app.presenter import IconKind, icon_for, state_label

    snap = Snapshot(state=SessionState.RECONNECTING)
    assert icon_for(snap.state) is IconKind.BUSY
    assert "Reconnecting" in state_label(snap)
