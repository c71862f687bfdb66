"""Which notifications are raised, and that they are rate-limited."""

from __future__ import annotations

import dataclasses
import time

import pytest

from app.notify import EXPIRY_WARNING_S, RateLimiter, expiry_notice, notices_for
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


def test_sign_in_needed_when_the_session_ends_not_at_first_start() -> None:
    assert keys(None, ev(Snapshot())) == []
    notes = notices_for(far(demo_snapshot()), ev(Snapshot()), now=NOW)
    assert [(n.key, n.action) for n in notes] == [("signin-needed", Action.SIGN_IN)]


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
    notes = notices_for(s, extend, now=NOW)
    assert [(n.key, n.action) for n in notes] == [("expiring", Action.EXTEND)]
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
