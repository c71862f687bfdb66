"""Time as the engine sees it: a wall clock, an awake-or-asleep clock and a tick source.

The engine never calls ``asyncio.sleep`` or ``time.time`` itself: it is handed a
``Ticks`` (``RealTicks`` in the product). Its periodic work (the health tick, the
controller's backoff, the offline retry, the short follow-ups after a tunnel comes up)
sleeps through ``Ticks.sleep``, so tests drive time by hand (``tests/fakes``'
``ManualTicks``) and never wait on the wall clock.

Imports nothing from the project. Threading: the engine's loop only.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["RealTicks", "Ticks", "awake_or_asleep"]


class Ticks(Protocol):
    """The engine's sense of time."""

    def now(self) -> float:
        """Wall-clock seconds since the epoch (bundle and token expiries are in it)."""
        ...

    def elapsed(self) -> float:
        """Seconds on a clock that keeps counting while the machine is suspended."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` (cancellable)."""
        ...


def awake_or_asleep() -> float:
    """Seconds on a clock that keeps counting while the machine is suspended."""
    # time.monotonic (and asyncio's timers) stop during suspend on Linux and macOS, so a
    # timer gap measured with it never shows a sleep: after a resume the tick simply
    # comes late by the machine's reckoning. CLOCK_BOOTTIME (Linux) and Darwin's
    # CLOCK_MONOTONIC include the suspended time. Elsewhere (Windows) time.monotonic.
    if sys.platform == "darwin":
        return time.clock_gettime(time.CLOCK_MONOTONIC)
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        return time.clock_gettime(boottime)
    return time.monotonic()


class RealTicks:
    """The machine's clocks and asyncio's timers (``wall``: another wall clock)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall

    def now(self) -> float:
        """``time.time()`` (or the given wall clock)."""
        return self._wall()

    def elapsed(self) -> float:
        """``awake_or_asleep()``."""
        return awake_or_asleep()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep(seconds)``."""
        await asyncio.sleep(seconds)
