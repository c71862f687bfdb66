"""``PostureMonitor``: full collection on a schedule, cheap watchers, change events.

At ``start`` the monitor collects everything once (awaited, so facts are ready when it
returns) and reports every fact as new. A background task (``core.aio.spawn``) then
runs the cheap collectors (firewall, disk, screen lock) every ``watch_interval_s`` and
all of them every ``full_interval_s``; each run is diffed against the snapshot and the
changed facts go to ``on_change`` at once, so the engine re-evaluates policy within a
watcher interval of the drift. One run at a time: ``refresh`` and the loop share a lock.
Everything runs on the event loop's thread; ``on_change`` is called there too.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType

from core.aio import cancel_and_wait, spawn
from core.posture.collector import CollectContext, Collector, collect
from core.posture.errors import PostureConfigError
from core.posture.model import FactChange, diff_facts
from core.posture.runner import SubprocessRunner
from core.wire.posture import Fact

__all__ = ["ChangeHandler", "PostureMonitor"]

_log = logging.getLogger(__name__)

ChangeHandler = Callable[[tuple[FactChange, ...]], Awaitable[None] | None]


class PostureMonitor:
    """Keeps the current posture facts and reports drift.

    Raises ``PostureConfigError`` on bad intervals. ``start``/``stop`` are idempotent;
    use from one event loop only. ``on_change`` errors are logged, never propagated.
    """

    def __init__(
        self,
        collectors: Iterable[Collector],
        *,
        full_interval_s: float,
        watch_interval_s: float,
        on_change: ChangeHandler,
        context: CollectContext | None = None,
    ) -> None:
        if not (0 < watch_interval_s <= full_interval_s):
            raise PostureConfigError(
                "intervals must satisfy 0 < watch_interval_s <= full_interval_s, got "
                f"{watch_interval_s!r} and {full_interval_s!r}"
            )
        self._all = tuple(collectors)
        self._cheap = tuple(c for c in self._all if c.cheap)
        self._full_s = float(full_interval_s)
        self._watch_s = float(watch_interval_s)
        self._on_change = on_change
        self._ctx = context or CollectContext(runner=SubprocessRunner())
        self._facts: dict[str, Fact] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._next_full = 0.0
        # Bumped by start and stop: a start whose first collection is overtaken by a stop
        # (or by a newer start) must not launch the loop afterwards.
        self._generation = 0
        self.full_runs = 0
        self.watch_runs = 0

    @property
    def facts(self) -> Mapping[str, Fact]:
        """A read-only view of the latest facts by name (empty before ``start``)."""
        return MappingProxyType(dict(self._facts))

    @property
    def running(self) -> bool:
        """True between ``start`` and ``stop``."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Collect everything once, report it, then watch in the background. Idempotent.

        A ``stop`` that arrives while this first collection runs wins: no loop starts.
        """
        if self.running:
            return
        self._generation += 1
        generation = self._generation
        await self.refresh()
        if generation == self._generation and not self.running:
            self._task = spawn(self._loop(), name="posture-monitor")

    async def stop(self) -> None:
        """Stop watching and wait until the loop (and any tool it ran) is gone. Idempotent."""
        self._generation += 1
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def refresh(self) -> tuple[FactChange, ...]:
        """Run a full collection now; returns (and reports) what changed."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            changes = await self._run(self._all, partial=False)
            self.full_runs += 1
            self._next_full = loop.time() + self._full_s
        return changes

    async def tick(self) -> tuple[FactChange, ...]:
        """Run the cheap watchers once now; returns (and reports) what changed."""
        async with self._lock:
            changes = await self._run(self._cheap, partial=True)
            self.watch_runs += 1
        return changes

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._watch_s)
            if loop.time() >= self._next_full:
                await self.refresh()
            else:
                await self.tick()

    async def _run(
        self, collectors: tuple[Collector, ...], *, partial: bool
    ) -> tuple[FactChange, ...]:
        new = await collect(collectors, self._ctx)
        changes = diff_facts(self._facts, new, partial=partial)
        if partial:
            self._facts.update(new)
        else:
            self._facts = dict(new)
        if changes:
            await self._notify(changes)
        return changes

    async def _notify(self, changes: tuple[FactChange, ...]) -> None:
        try:
            result = self._on_change(changes)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("posture on_change handler failed")
