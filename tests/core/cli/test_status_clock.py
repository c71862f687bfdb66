"""``rustronaut status`` says when the clock is off and when the sign-in ends (issue 17).

Finding: with the clock a day off, errors mentioned nothing about the clock. The real CLI
runs in a subprocess against a real Engine (in-memory ports) on the local API; the
control port reports the skew the control-plane client measured.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest

from core.cli.commands.session import format_status
from core.engine.state import SessionState, Snapshot
from tests.core.engine.localapi.rig import BrowserAuth, engine, serve
from tests.core.engine.ports import ALICE
from tests.fakes.cli import isolated_env, run_cli

pytestmark = pytest.mark.integration

NOW = 1_800_000_000.0


class EndingAuth(BrowserAuth):
    """A sign-in without a refresh token: it ends when the access token does."""

    def session_renewable(self) -> bool | None:
        return False


async def test_status_names_the_clock_and_when_the_sign_in_ends(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir(mode=0o700)
    auth = EndingAuth(ALICE)
    auth.expires_at = time.time() + 3600
    eng = engine(auth=auth)
    eng._control.skew = -600.0  # type: ignore[attr-defined]  # measured: 10 min behind
    server = await serve(eng, tmp_path / "run" / "rustronaut" / "engine.sock")
    try:
        rc, out, _ = await run_cli(isolated_env(tmp_path), "status")
    finally:
        await server.stop()
        await eng.stop()
    assert rc == 0
    assert (
        "Clock:     this computer's clock is 10 minutes behind the controller's — "
        "set the date and time"
    ) in out
    at = datetime.datetime.fromtimestamp(auth.expires_at)
    expected = f"{at:%H:%M}" if at.date() == datetime.date.today() else f"{at:%a} {at.day}"
    assert "Session:   Signed in until " + expected in out
    assert "then you need to sign in again" in out


def _snap(**fields: object) -> Snapshot:
    return Snapshot(state=SessionState.CONNECTED, user="alice@example.com", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("skew", "line"),
    [
        (None, None),
        (45.0, None),  # network noise, NTP slew: not worth a word
        (-61.0, "this computer's clock is 1 minute behind the controller's"),
        (600.0, "this computer's clock is 10 minutes ahead of the controller's"),
        (2 * 3600.0, "this computer's clock is 2 hours ahead of the controller's"),
        (-86400.0, "this computer's clock is 24 hours behind the controller's"),
        (-3 * 86400.0, "this computer's clock is 3 days behind the controller's"),
    ],
)
def test_clock_line(skew: float | None, line: str | None) -> None:
    text = format_status(_snap(clock_skew_s=skew), now=NOW)
    clock = [x for x in text.splitlines() if x.startswith("Clock:")]
    if line is None:
        assert clock == []
    else:
        assert clock == [f"Clock:     {line} — set the date and time"]


@pytest.mark.parametrize(
    ("expires", "renewable", "line"),
    [
        (NOW + 600, True, "Signed in until {t}, renews automatically"),
        (None, True, "Signed in, renews automatically"),
        (NOW + 600, False, "Signed in until {t}, then you need to sign in again"),
        (NOW + 600, None, "Signed in until {t}"),
        (None, None, None),
    ],
)
def test_session_line(expires: float | None, renewable: bool | None, line: str | None) -> None:
    text = format_status(_snap(session_expires_at=expires, session_renewable=renewable), now=NOW)
    session = [x for x in text.splitlines() if x.startswith("Session:")]
    t = f"{datetime.datetime.fromtimestamp(NOW + 600):%H:%M}"
    assert session == ([] if line is None else [f"Session:   {line.format(t=t)}"])


def test_policy_time_left_is_counted_on_the_controllers_clock() -> None:
    # The policy ends at the controller's NOW + 30 min; this computer is a day ahead.
    snap = _snap(policy_version=3, policy_expires_at=NOW + 1800, clock_skew_s=86400.0)
    assert "Policy:    v3, valid for 30 min" in format_status(snap, now=NOW + 86400)


def test_status_names_the_controllers_problem_and_first_use_trust() -> None:
    from core.cli.commands.session import format_status
    from core.engine.state import ErrorInfo, SessionState, Snapshot

    snap = Snapshot(
        state=SessionState.CONNECTED,
        controller_problem=ErrorInfo(
            title="The controller has a problem",
            detail="Service Unavailable\x1b[2J",
            next_step="Rustronaut keeps retrying.",
            code="controller_unreachable",
        ),
        policy_trust_notice="Policy keys trusted on first use",
    )
    text = format_status(snap, now=0.0)
    assert "Controller: The controller has a problem: Service Unavailable" in text
    assert "\x1b" not in text
    assert "the last good policy stays in force" in text
    assert "Trust:     Policy keys trusted on first use" in text
