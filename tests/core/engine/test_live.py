"""The live session's timing: sleep detection, backoff, expiry (``core.engine.live``)."""

from __future__ import annotations

import time

import pytest

from core.engine.config import EngineConfig
from core.engine.inbox import HealthTick
from core.engine.live import Backoff, jitter
from core.engine.ports import ControlEvent
from core.engine.state import EventKind
from core.engine.state import SessionState as S
from core.engine.ticks import awake_or_asleep

from .test_engine import make, until

pytestmark = pytest.mark.unit


async def test_a_suspend_is_noticed_and_the_session_re_established() -> None:
    rig = make()
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    await rig.advance(0.2)  # a few health ticks without a gap
    assert len(rig.tunnel.up_specs) == 1
    rig.ticks.slept = 3600.0  # only the clock that counts a suspend moved
    await rig.advance(0.05)
    assert any(
        e.kind is EventKind.NOTICE and e.message == "Reconnecting after sleep" for e in rig.events
    )
    assert len(rig.tunnel.up_specs) == 2  # re-established
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    await rig.engine.stop()


@pytest.mark.skipif(not hasattr(time, "CLOCK_BOOTTIME"), reason="Linux clocks")
def test_the_engine_measures_gaps_on_a_clock_that_counts_suspend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Linux stops CLOCK_MONOTONIC (time.monotonic, asyncio's timers) while suspended: after
    # a resume only CLOCK_BOOTTIME shows that the machine slept.
    real = time.clock_gettime
    monkeypatch.setattr(
        time,
        "clock_gettime",
        lambda clock: real(clock) + (3600.0 if clock == time.CLOCK_BOOTTIME else 0.0),
    )
    assert awake_or_asleep() - time.monotonic() > 3000


def test_jitter_keeps_at_least_half_the_delay() -> None:
    for _ in range(200):
        assert 5.0 <= jitter(10.0) <= 10.0


class _Recorder:
    def __init__(self) -> None:
        self.slept: list[float] = []

    def now(self) -> float:
        return 0.0

    def elapsed(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_backoff_doubles_up_to_the_cap_and_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.engine.live.jitter", lambda delay: delay)
    ticks = _Recorder()
    backoff = Backoff(lambda: EngineConfig(backoff_initial_s=1.0, backoff_max_s=5.0), ticks)
    for _ in range(5):
        await backoff.wait()
    backoff.reset()
    await backoff.wait()
    assert ticks.slept == [1.0, 2.0, 4.0, 5.0, 5.0, 1.0]


async def test_an_expired_bundle_is_withdrawn_once_however_many_ticks_saw_it() -> None:
    rig = make()
    await rig.engine.connect()
    rig.control.reachable = False
    rig.control.queue.put_nowait(ControlEvent("policy_changed", {}))
    await until(lambda: rig.engine.snapshot.state is S.OFFLINE)
    # Ticks pile up in the inbox behind something slow, all after the expiry.
    rig.clock.now += 3601
    for _ in range(5):
        rig.engine._post(HealthTick())
    await rig.settle()
    assert not rig.tunnel.is_up
    await rig.advance(0.2)
    withdrawn = [
        e
        for e in rig.events
        if e.kind is EventKind.NOTICE and e.message.startswith("Access withdrawn")
    ]
    assert len(withdrawn) == 1
    await rig.engine.stop()
