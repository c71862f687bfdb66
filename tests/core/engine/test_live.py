"""The live session's timing: sleep detection and backoff (``core.engine.live``)."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.engine.config import EngineConfig
from core.engine.live import Backoff, jitter
from core.engine.ports import ControlEvent
from core.engine.state import EventKind
from core.engine.state import SessionState as S

from .test_engine import make, until

pytestmark = pytest.mark.unit


@pytest.mark.skipif(not hasattr(time, "CLOCK_BOOTTIME"), reason="Linux clocks")
async def test_a_suspend_is_noticed_although_the_monotonic_clock_stood_still(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Linux stops CLOCK_MONOTONIC (time.monotonic, asyncio's timers) while suspended: after
    # a resume only CLOCK_BOOTTIME shows that the machine slept.
    slept = 0.0
    real = time.clock_gettime

    def clock_gettime(clock: int) -> float:
        return real(clock) + (slept if clock == time.CLOCK_BOOTTIME else 0.0)

    monkeypatch.setattr(time, "clock_gettime", clock_gettime)
    rig = make()
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    await asyncio.sleep(0.2)  # a few health ticks without a gap
    assert len(rig.tunnel.up_specs) == 1
    ups = len(rig.tunnel.up_specs)
    slept = 3600.0
    await until(
        lambda: any(
            e.kind is EventKind.NOTICE and e.message == "Reconnecting after sleep"
            for e in rig.events
        )
    )
    await until(lambda: len(rig.tunnel.up_specs) > ups)  # re-established
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    await rig.engine.stop()


def test_jitter_keeps_at_least_half_the_delay() -> None:
    for _ in range(200):
        assert 5.0 <= jitter(10.0) <= 10.0


async def test_backoff_doubles_up_to_the_cap_and_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    def no_wait(delay: float) -> float:
        slept.append(delay)
        return 0.0

    monkeypatch.setattr("core.engine.live.jitter", no_wait)
    backoff = Backoff(lambda: EngineConfig(backoff_initial_s=1.0, backoff_max_s=5.0))
    for _ in range(5):
        await backoff.wait()
    backoff.reset()
    await backoff.wait()
    assert slept == [1.0, 2.0, 4.0, 5.0, 5.0, 1.0]


async def test_an_expired_bundle_is_withdrawn_once_even_while_the_lock_is_busy() -> None:
    rig = make()
    await rig.engine.connect()
    rig.control.reachable = False
    rig.control.queue.put_nowait(ControlEvent("policy_changed", {}))
    await until(lambda: rig.engine.snapshot.state is S.OFFLINE)
    # Something slow holds the engine's lock (a gateway switch, a connect) while the
    # bundle expires: every health tick meanwhile sees the expiry.
    async with rig.engine._lock:
        rig.clock.now += 3601
        await asyncio.sleep(0.3)
    await until(lambda: not rig.tunnel.is_up)
    await asyncio.sleep(0.2)
    withdrawn = [
        e
        for e in rig.events
        if e.kind is EventKind.NOTICE and e.message.startswith("Access withdrawn")
    ]
    assert len(withdrawn) == 1
    await rig.engine.stop()
