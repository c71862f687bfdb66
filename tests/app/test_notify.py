"""Which notifications are raised, and that they are rate-limited."""

from __future__ import annotations

import dataclasses
import time

import pytest

from app.notify import (
    EXPIRY_WARNING_S,
    RateLimiter,
    expiry_notice,
    notices_for,
    session_ended_notice,
)
from app.presenter import Action
from core.engine.state import ErrorInfo, Event, EventKind, SessionState, Snapshot
from tests.fakes.scripted_engine import demo_snapshot

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


def ev(snapshot: Snapshot, kind: EventKind = EventKind.STATE, **kw: object) -> Event:
    return Event(kind=kind, snapshot=snapshot, time=NOW, **kw)  # type: ignore[arg-type]


def far(s: Snapshot) -> Snapshot:
    return dataclasses.replace(s, session_expires_at=NOW + 8 * 3600)


def keys(prev: Snapshot | None, event: Event) -> list[str]:
    return [n.key for n in notices_for(prev, event, now=NOW)]


def test_connected_once_on_arrival_not_while_staying() -> None:
    connecting = far(demo_snapshot(SessionState.CONNECTING, resources=()))
    connected = far(demo_snapshot(SessionState.CONNECTED, resources=()))
    assert keys(connecting, ev(connected)) == ["connected"]
    assert keys(connected, ev(connected)) == []


def test_access_withdrawn_names_resource_reason_and_fix() -> None:
    before = far(demo_snapshot(SessionState.CONNECTED, resources=demo_snapshot().resources[:2]))
    after = far(demo_snapshot(SessionState.DEGRADED))
    notes = notices_for(before, ev(after), now=NOW)
    assert [n.key for n in notes] == ["blocked:Payroll"]
    assert notes[0].title == "Access to Payroll withdrawn"
    assert "Disk encryption is off" in notes[0].body
    assert "To fix: Turn on disk encryption" in notes[0].body
    assert notes[0].severity == "warning"


def test_sign_in_needed_when_the_provider_ends_the_session_not_at_first_start() -> None:
    assert keys(None, ev(Snapshot())) == []
    # The state change alone (the engine's STATE event comes first) says nothing...
    assert keys(far(demo_snapshot()), ev(Snapshot())) == []
    # ...the engine's notice that the provider ended the sign-in does.
    ended = ev(
        Snapshot(),
        EventKind.NOTICE,
        message="Sign-in needed: Your sign-in was revoked.",
        details={"action": "sign_in", "next": "Sign in again."},
    )
    notes = notices_for(Snapshot(), ended, now=NOW)
    assert [(n.key, n.action) for n in notes] == [("signin-needed", Action.SIGN_IN)]
    assert notes[0].body.startswith("Your sign-in was revoked.")


def test_a_deliberate_sign_out_never_asks_to_sign_in() -> None:
    """Issue 18: a deliberate Sign out triggered "Sign-in needed". The real engine sends
    the STATE event (SIGNED_OUT) and then the NOTICE "Signed out" (action signed_out)."""
    before = far(demo_snapshot(SessionState.CONNECTED))
    assert keys(before, ev(Snapshot())) == []
    signed_out = ev(
        Snapshot(), EventKind.NOTICE, message="Signed out", details={"action": "signed_out"}
    )
    assert keys(Snapshot(), signed_out) == []


def test_connected_says_reachable_only_when_every_resource_is() -> None:
    """Issue 18: "Your work resources are reachable" while Payroll was blocked."""
    connecting = far(demo_snapshot(SessionState.CONNECTING))
    all_ok = far(demo_snapshot(SessionState.CONNECTED, resources=demo_snapshot().resources[:2]))
    (ok,) = notices_for(connecting, ev(all_ok), now=NOW)
    assert (ok.title, ok.body) == ("Connected", "Your work resources are reachable.")
    for state in (SessionState.CONNECTED, SessionState.DEGRADED):
        notes = notices_for(connecting, ev(far(demo_snapshot(state))), now=NOW)
        assert [n.key for n in notes] == ["connected"]  # not also "withdrawn"
        n = notes[0]
        assert "reachable." not in n.body.splitlines()[-1]
        assert n.title == "Connected — some access blocked"
        assert n.body.splitlines() == [
            "3 of 4 work resources are reachable.",
            "Payroll is blocked: Disk encryption is off",
            "To fix: Turn on disk encryption in System Settings",
        ]
        assert n.action is Action.OPEN_MAIN


def test_expiry_warning_is_at_ten_minutes_on_the_controllers_clock() -> None:
    """Issue 18: the warning came at 6 minutes, not 10: the tray read the provider's expiry
    on this computer's clock. A clock 4 minutes behind (skew -240) still warns at 10."""
    behind = dataclasses.replace(
        demo_snapshot(), session_expires_at=NOW + 14 * 60, clock_skew_s=-240.0
    )
    n = expiry_notice(behind, now=NOW)
    assert n is not None
    assert "10 min" in n.body
    assert expiry_notice(dataclasses.replace(behind, clock_skew_s=None), now=NOW) is None
    renewing = dataclasses.replace(
        demo_snapshot(), session_expires_at=NOW + 300, session_renewable=True
    )
    assert expiry_notice(renewing, now=NOW) is None  # it renews itself: nothing to do


def test_session_end_is_told() -> None:
    s = dataclasses.replace(demo_snapshot(), session_expires_at=NOW - 1)
    n = session_ended_notice(s, now=NOW)
    assert n is not None
    assert (n.title, n.action) == ("Your sign-in has ended", Action.SIGN_IN)
    assert (
        session_ended_notice(dataclasses.replace(s, session_expires_at=NOW + 60), now=NOW) is None
    )


def test_expiry_warning_offers_extend() -> None:
    s = dataclasses.replace(demo_snapshot(), session_expires_at=NOW + 300)
    n = expiry_notice(s, now=NOW)
    assert n is not None
    assert n.action is Action.EXTEND
    assert "5 min" in n.body
    assert (
        expiry_notice(
            dataclasses.replace(s, session_expires_at=NOW + EXPIRY_WARNING_S + 1), now=NOW
        )
        is None
    )
    assert expiry_notice(dataclasses.replace(s, session_expires_at=NOW - 1), now=NOW) is None


def test_error_and_engine_notice_events_become_notifications() -> None:
    err = dataclasses.replace(
        Snapshot(),
        state=SessionState.ERROR,
        error=ErrorInfo("Helper missing", "The tunnel helper is not running.", "Reinstall."),
    )
    notes = notices_for(Snapshot(), ev(err, EventKind.ERROR), now=NOW)
    assert [(n.title, n.severity) for n in notes] == [("Helper missing", "critical")]
    assert "Reinstall." in notes[0].body
    notice = ev(Snapshot(), EventKind.NOTICE, message="Policy updated", details={"key": "policy"})
    assert keys(Snapshot(), notice) == ["policy"]


def test_rate_limiter_per_key_and_burst() -> None:
    t = [0.0]
    lim = RateLimiter(per_key_s=60, burst=3, window_s=30, clock=lambda: t[0])
    assert lim.admit("a")
    assert not lim.admit("a")  # same key within a minute
    assert lim.admit("b")
    assert lim.admit("c")
    assert not lim.admit("d")  # burst of 3 per 30 s reached
    t[0] = 31
    assert lim.admit("d")
    assert not lim.admit("a")
    t[0] = 61
    assert lim.admit("a")
    assert lim.admit("e", per_key_s=300)
    assert not lim.admit("e", per_key_s=300)


def test_a_flood_of_events_yields_few_notices() -> None:
    lim = RateLimiter(clock=time.monotonic)
    shown = 0
    prev: Snapshot | None = None
    for i in range(200):
        s = far(demo_snapshot(SessionState.CONNECTED if i % 2 else SessionState.CONNECTING))
        for n in notices_for(prev, ev(s), now=NOW):
            shown += lim.admit(n.key)
        prev = s
    assert shown == 1


def test_engine_notices_do_not_duplicate_what_the_ui_derives() -> None:
    s = far(demo_snapshot(SessionState.CONNECTED))
    for message, details in (
        ("Connected", {}),
        ("Access withdrawn: firewall is off", {}),
        ("Open https://idp/device and enter the code AB-CD", {"user_code": "AB-CD"}),
    ):
        assert keys(s, ev(s, EventKind.NOTICE, message=message, details=details)) == []
    extend = ev(
        s,
        EventKind.NOTICE,
        message="Your sign-in ends in 9 minutes.",
        details={"action": "extend_session"},
    )
    # The tray warns itself at EXPIRY_WARNING_S (the engine's warning comes earlier).
    assert keys(far(s), extend) == []
    other = ev(s, EventKind.NOTICE, message="Reconnecting after sleep")
    assert keys(s, other) == ["notice:Reconnecting after sleep"]


def test_entering_error_notifies_once_whatever_the_event_kind() -> None:
    """The engine may enter ERROR with a STATE event (a lost helper) and then send the
    ERROR event with the same snapshot: one notification, with the next step."""
    connecting = far(demo_snapshot(SessionState.CONNECTING))
    err = dataclasses.replace(
        connecting,
        state=SessionState.ERROR,
        error=ErrorInfo("Helper lost", "The helper stopped.", "", "helper_unavailable"),
    )
    notes = notices_for(connecting, ev(err), now=NOW)
    assert [(n.key, n.severity) for n in notes] == [("error:helper_unavailable", "critical")]
    assert notes[0].body.startswith("The helper stopped.\nStart the Rustronaut helper")
    assert keys(err, ev(err, EventKind.ERROR)) == []  # the same error: not again


def test_an_urgent_notice_passes_the_burst_cap_but_not_its_own_repeat() -> None:
    t = [0.0]
    lim = RateLimiter(per_key_s=60, burst=2, window_s=30, clock=lambda: t[0])
    assert lim.admit("a")
    assert lim.admit("b")
    assert not lim.admit("c")  # the cap
    assert lim.admit("error:x", urgent=True)  # an error is never hidden by the cap
    assert not lim.admit("error:x", urgent=True, per_key_s=10)  # but not repeated at once
    t[0] = 11
    assert lim.admit("error:x", urgent=True, per_key_s=10)
