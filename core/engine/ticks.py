"""Time as the engine sees it: a wall clock, an awake-or-asleep clock and a tick source.

The engine never calls ``asyncio.sleep`` or ``time.time`` itself: it is handed a
``Ticks`` (``RealTicks`` in the product). Its periodic work (the health tick, the
controller's backoff, the offline retry, the short follow-ups after a tunnel comes up)
sleeps through ``Ticks.sleep``, so tests drive time by hand (``tests/fakes``'
``ManualTicks``) and never wait on the wall clock.

Imports only ``core.clock`` (``awake_or_asleep`` lives there so the policy store can
use it too). Threading: the engine's loop only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from core.clock import awake_or_asleep

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
