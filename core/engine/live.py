"""The live session's sources: what feeds the engine's inbox while it wants to be connected.

``Live`` runs, while the session is live:

* the health tick: every ``health_interval_s`` a ``HealthTick``, or a ``ClockJump`` when
  the tick came far too late (the machine slept) — measured on ``Ticks.elapsed``, which
  keeps counting during a suspend;
* the controller's event stream: each event becomes a ``ControlPlaneEvent``, the stream
  connecting or dropping a ``ControllerReach``; after a drop it reconnects with capped
  exponential backoff and asks for a ``resync`` (the stream being back does not prove the
  policy is current);
* the posture watcher, whose drift becomes ``PostureChanged``;
* short follow-up ticks right after a tunnel was applied, so the first handshake shows as
  "connected" in a fraction of a second rather than at the next tick;
* the offline retry: with nothing valid to connect with it waits (backoff with jitter),
  probes the controller cheaply and posts ``RetryDue`` once it answers, so the tray
  does not flap while the network is gone.

Nothing here changes the session: every source only posts to the inbox, and the engine
handles the messages one at a time. Imports: the ports, ``core.engine.config``,
``core.engine.inbox``, ``core.engine.reach`` and ``core.engine.ticks``; never the engine.
Threading: the engine's loop only.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from core.aio import cancel_and_wait, spawn
from core.engine.config import EngineConfig
from core.engine.inbox import (
    ClockJump,
    ControllerReach,
    ControlPlaneEvent,
    HealthTick,
    Message,
    PostureChanged,
    RetryDue,
)
from core.engine.ports import ControlPort, PostureFacts, PosturePort
from core.engine.reach import Reachability
from core.engine.ticks import Ticks

__all__ = ["FOLLOW_UP_S", "Backoff", "Live", "jitter"]

_log = logging.getLogger(__name__)

#: Delays of the follow-up ticks after a tunnel was applied (WireGuard handshakes within
#: milliseconds when the gateway answers).
FOLLOW_UP_S = (0.05, 0.15, 0.3, 0.6, 1.0)


class Backoff:
    """Capped exponential delays with jitter, from ``backoff_initial_s`` up to
    ``backoff_max_s`` (read from the config at each step, so settings apply at once)."""

    def __init__(self, config: Callable[[], EngineConfig], ticks: Ticks) -> None:
        self._config = config
        self._ticks = ticks
        self._delay = config().backoff_initial_s

    def reset(self) -> None:
        """Back to the first delay (the other side answered)."""
        self._delay = self._config().backoff_initial_s

    async def wait(self) -> None:
        """Sleep the current delay (jittered), then double it up to the cap."""
        await self._ticks.sleep(jitter(self._delay))
        self._delay = min(self._delay * 2, self._config().backoff_max_s)


def jitter(delay: float) -> float:
    """``delay`` spread over its upper half, so clients do not retry in lockstep."""
    # "Equal jitter" (AWS architecture blog): spreads reconnect storms after an outage
    # while keeping at least half the delay.
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - not security relevant


class Live:
    """The live tasks of one engine; each posts to the engine's inbox (``post``)."""

    def __init__(
        self,
        *,
        post: Callable[[Message], None],
        ticks: Ticks,
        config: Callable[[], EngineConfig],
        control: ControlPort,
        posture: PosturePort,
        reach: Reachability,
    ) -> None:
        self._post = post
        self._ticks = ticks
        self._config = config
        self._control = control
        self._posture = posture
        self._reach = reach
        self._tasks: list[asyncio.Task[Any]] = []
        self._follow_up: asyncio.Task[None] | None = None
        self._retry: asyncio.Task[None] | None = None
        self._retry_backoff: Backoff | None = None

    @property
    def running(self) -> bool:
        """Whether the live tasks run."""
        return bool(self._tasks)

    def start(self) -> None:
        """Start the posture watcher, the event stream and the health tick (once)."""
        if self._tasks:
            return
        self._posture.start(self._posture_changed)
        self._tasks = [
            spawn(self._events(), name="engine-events"),
            spawn(self._ticking(), name="engine-ticks"),
        ]

    async def stop(self) -> None:
        """Stop the live tasks, the follow-up ticks and the posture watcher. Idempotent."""
        tasks, self._tasks = self._tasks, []
        follow_up, self._follow_up = self._follow_up, None
        for task in (*tasks, follow_up):
            await cancel_and_wait(task)
        await self._posture.stop()

    def _posture_changed(self, facts: PostureFacts) -> None:
        self._post(PostureChanged(facts=facts))

    async def _ticking(self) -> None:
        last = self._ticks.elapsed()
        while True:
            interval = self._config().health_interval_s
            await self._ticks.sleep(interval)
            now = self._ticks.elapsed()
            gap, last = now - last, now
            if gap > max(3 * interval, interval + 10):
                _log.info("timer gap of %.0f s: the machine slept or the clock jumped", gap)
                self._post(ClockJump(gap_s=gap))
            else:
                self._post(HealthTick())

    def follow_up(self) -> None:
        """A few quick ticks after a tunnel was applied (replaces running ones)."""
        if self._follow_up is not None:
            self._follow_up.cancel()
        self._follow_up = spawn(self._following_up(), name="engine-follow-up")

    async def _following_up(self) -> None:
        waited = 0.0
        for at in FOLLOW_UP_S:
            await self._ticks.sleep(at - waited)
            waited = at
            self._post(HealthTick())

    async def _events(self) -> None:
        """Follow the controller's event stream, reconnecting with backoff."""
        backoff = Backoff(self._config, self._ticks)
        while True:
            try:
                connected = False
                async for event in self._control.events():
                    if not connected:
                        connected = True
                        backoff.reset()
                        self._post(ControllerReach(reachable=True))
                    self._post(ControlPlaneEvent(kind=event.kind, data=dict(event.data)))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._reach.unreachable(exc):
                    _log.warning("event stream failed: %s", exc)
                self._post(ControllerReach(reachable=False, error=exc))
            await backoff.wait()
            self._post(ControlPlaneEvent(kind="resync"))

    # ------------------------------------------------------------------- retry
    def ensure_retry(self) -> None:
        """Retry connecting in the background unless a retry is already waiting."""
        if self._retry is None or self._retry.done():
            if self._retry_backoff is None:
                self._retry_backoff = Backoff(self._config, self._ticks)
            self._retry = spawn(self._retrying(self._retry_backoff), name="engine-retry")

    async def cancel_retry(self) -> None:
        """Stop the background retry (if any) and forget its backoff."""
        task, self._retry = self._retry, None
        self._retry_backoff = None
        await cancel_and_wait(task)

    async def _retrying(self, backoff: Backoff) -> None:
        while True:
            await backoff.wait()
            if await self._reach.probe():
                self._post(RetryDue())
                return
