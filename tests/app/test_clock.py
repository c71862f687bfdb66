"""The tray menu and the main window say when the clock is off and when the sign-in ends.

Finding (issue 17): with the clock a day off, the tray sat on "connecting" and nothing
mentioned the clock. Real widgets, offscreen, driven by the scripted engine; the lines
are the same words as ``rustronaut status``.
"""

from __future__ import annotations

import dataclasses
import datetime
import time

import pytest

from app.presenter import Action, menu_model
from core.engine.state import SessionState
from tests.fakes.scripted_engine import ScriptedEngine, demo_snapshot

pytestmark = pytest.mark.ui

BEHIND = "This computer's clock is 24 hours behind the controller's — set the date and time"


def _hhmm(ts: float) -> str:
    return f"{datetime.datetime.fromtimestamp(ts):%H:%M}"


def _today(hours: float = 1.0) -> float:
    """A time later today (so the line has no date in it)."""
    now = datetime.datetime.now()
    later = now + datetime.timedelta(hours=hours)
    if later.date() != now.date():  # close to midnight: a minute from now instead
        later = now + datetime.timedelta(minutes=1)
    return later.timestamp()


async def test_tray_menu_shows_the_clock_and_the_sign_in_end(
    engine: ScriptedEngine, make_app
) -> None:
    ends = _today()
    engine.publish(
        demo_snapshot(
            SessionState.CONNECTING,
            clock_skew_s=-86400.0,
            session_expires_at=ends,
            session_renewable=False,
        )
    )
    app = make_app(engine)
    entries = app.tray.entries()
    assert entries[0] == ("Connecting…", False)
    assert entries[1] == (BEHIND, True)  # said right under the state, and clickable
    assert (f"Signed in until {_hhmm(ends)}, then you need to sign in again", False) in entries

    # The clock fixed and a renewing sign-in: the warning goes, the line changes.
    engine.publish(
        dataclasses.replace(
            engine.snapshot,
            state=SessionState.CONNECTED,
            clock_skew_s=0.4,
            session_renewable=True,
        )
    )
    entries = app.tray.entries()
    assert all("clock" not in text for text, _ in entries)
    assert (f"Signed in until {_hhmm(ends)}, renews automatically", False) in entries


async def test_main_window_shows_the_same_lines(engine: ScriptedEngine, make_app) -> None:
    ends = _today()
    engine.publish(
        demo_snapshot(
            SessionState.CONNECTED,
            clock_skew_s=600.0,
            session_expires_at=ends,
            session_renewable=True,
        )
    )
    app = make_app(engine)
    w = app.actions.show_window("main")
    assert w.clock.isVisibleTo(w)
    assert w.clock.text() == (
        "This computer's clock is 10 minutes ahead of the controller's — set the date and time"
    )
    assert w.session.text() == f"Signed in until {_hhmm(ends)}, renews automatically"

    engine.publish(dataclasses.replace(engine.snapshot, clock_skew_s=None))
    assert not w.clock.isVisibleTo(w)

    engine.publish(demo_snapshot(SessionState.SIGNED_OUT, user=None))
    assert not w.session.isVisibleTo(w)


def test_the_clock_entry_opens_the_main_window() -> None:
    snap = demo_snapshot(SessionState.ERROR, clock_skew_s=-86400.0)
    (entry,) = [e for e in menu_model(snap) if e.text == BEHIND]
    assert entry.action is Action.OPEN_MAIN


def test_a_sign_in_ending_another_day_names_the_day() -> None:
    ends = time.time() + 3 * 86400
    snap = demo_snapshot(SessionState.CONNECTED, session_expires_at=ends, session_renewable=False)
    at = datetime.datetime.fromtimestamp(ends)
    texts = [e.text for e in menu_model(snap)]
    assert f"Signed in until {at:%a} {at.day} {at:%b %H:%M}, then you need to sign in again" in (
        texts
    )
