"""When the client checks for updates: shortly after start, then every few hours.

:class:`UpdateSchedule` is a watcher the engine starts and stops with itself
(``core.engine.engine.Watcher``). It runs only where the client updates itself
(:func:`applies`: Windows and macOS); each check builds a fresh
:class:`~core.update.updater.Updater` from the current settings (``make``), so a
managed change (``auto_update`` off, a new pin, new keys) counts at the next check
without a restart. The first check waits :data:`FIRST_DELAY` (plus up to as much
again), later ones :data:`INTERVAL` ± :data:`JITTER`, so a fleet started together does
not hit the update server at once. Time comes from an injected ``sleep`` (tests move
it by hand).

Outcomes reach the employee as one notice through ``report(text, details)``:
"Installing update 1.4.2…" when the helper has started the installer, or a refusal
worth telling (:func:`core.update.words.worth_a_notice`) with its next step, once per
version and reason (not every six hours). Whether an install worked is told once it is
known (:mod:`core.update.pending`): at the agent's start (the installer stops the agent
and the new build is started) "Updated to 1.4.2", or, once the installer has had
:data:`~core.update.pending.SETTLE` seconds and this build still runs, "The update to
1.4.2 did not install" with a next step; the loop wakes for that moment. While an
installer still has time, no new check starts (no second install on top of it).
Everything else is logged. Threading: the engine's loop only.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from core import __version__
from core.aio import cancel_and_wait, spawn
from core.paths import data_dir
from core.update.errors import UpdateError
from core.update.pending import PENDING_FILE_NAME, Pending, PendingUpdate, Settled
from core.update.updater import Outcome, Updater
from core.update.words import outcome_words, refusal_words, settled_words, worth_a_notice

__all__ = ["FIRST_DELAY", "INTERVAL", "JITTER", "UpdateSchedule", "applies"]

_log = logging.getLogger(__name__)

FIRST_DELAY: Final = 120.0
"""Seconds after start before the first check (the session comes first)."""
INTERVAL: Final = 6 * 3600.0
"""Seconds between checks."""
JITTER: Final = 0.1
"""Each interval is INTERVAL × (1 ± JITTER), drawn anew."""

Report = Callable[[str, Mapping[str, str]], None]


def applies(sys_platform: str = sys.platform) -> bool:
    """Whether this client updates itself: Windows and macOS (Linux: apt/dnf). Pure."""
    return sys_platform in ("win32", "darwin")


class UpdateSchedule:
    """Runs ``make().run_once()`` at start and then periodically (see the module).

    ``pending`` keeps the update started last (default: ``update-pending.json`` in the
    data dir, the one ``rustronaut update`` writes too); ``running`` is this build's
    version; ``clock`` returns Unix seconds."""

    def __init__(
        self,
        make: Callable[[], Updater],
        report: Report,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        pending: PendingUpdate | None = None,
        running: str = __version__,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._make = make
        self._report = report
        self._sleep = sleep
        self._rand = rand
        self._pending = pending
        self._running = running
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._told: tuple[str, str] | None = None
        self._settled: Pending | None = None

    @property
    def pending(self) -> PendingUpdate:
        """The pending-update record (made on first use)."""
        if self._pending is None:
            self._pending = PendingUpdate(data_dir() / PENDING_FILE_NAME, clock=self._clock)
        return self._pending

    def start(self) -> None:
        """Start checking (idempotent). From the loop's thread."""
        if self._task is None or self._task.done():
            self._task = spawn(self._loop(), name="update-schedule")

    async def stop(self) -> None:
        """Stop checking; a check in progress is cancelled (the helper finishes an
        install it has started on its own). Idempotent."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def delays(self) -> tuple[float, float]:
        """The next first delay and interval, drawn (for tests and logs)."""
        return (
            FIRST_DELAY * (1.0 + self._rand()),
            INTERVAL * (1.0 - JITTER + 2 * JITTER * self._rand()),
        )

    async def _loop(self) -> None:
        self.settle()  # the agent's start: how an update started earlier ended
        delay = self.delays()[0]
        while True:
            due = self._due()
            if due is not None and due < delay:
                due = max(due, 1.0)  # never a busy loop, whatever the record says
                await self._sleep(due)
                delay -= due
                self.settle()
                continue
            await self._sleep(delay)
            await self.check_once()
            delay = self.delays()[1]

    def _due(self) -> float | None:
        """Seconds until the pending update can be judged (None: nothing to judge)."""
        try:
            pending = self.pending.read()
            if pending is None or pending == self._settled:
                return None
            return self.pending.due_in(self._running)
        except Exception:
            _log.exception("pending update unreadable")
            return None

    def settle(self) -> Settled | None:
        """Tell how the update started earlier ended, once, when it is known (see the
        module). Never raises."""
        try:
            settled = self.pending.settle(self._running)
        except Exception:
            _log.exception("pending update not settled")
            return None
        if settled is None or settled.pending == self._settled:
            return None
        self._settled = settled.pending  # told once, even if the record stays behind
        text, next_step = settled_words(settled.installed, settled.version)
        _log.warning(
            "update %s: %s", settled.version, "installed" if settled.installed else "not installed"
        )
        if settled.installed:
            self._report(text, {"code": "update_installed", "version": settled.version})
        else:
            self._report(
                text, {"code": "update_install", "version": settled.version, "next": next_step}
            )
        return settled

    async def check_once(self) -> Outcome | None:
        """One check: install a newer release, report what the employee should hear.
        Never raises (``None``: the check failed, or an installer started earlier still
        has time; logged)."""
        self.settle()
        due = self._due()
        if due is not None and due > 0:
            _log.info("update check skipped: an installer started earlier still has time")
            return None
        try:
            updater = self._make()
            outcome = await updater.run_once(record=self.pending)
        except asyncio.CancelledError:
            raise
        except UpdateError as exc:
            _log.warning("update check: %s (%s)", exc.message, exc.code)
            told = (exc.code, exc.message)
            if worth_a_notice(exc) and told != self._told:
                self._told = told
                headline, next_step = refusal_words(exc)
                self._report(headline, {"next": next_step, "code": exc.code})
            return None
        except Exception:
            _log.exception("update check failed")
            return None
        _log.info("update check: %s %s", outcome.state, outcome.version or "")
        if outcome.state == "started":
            self._told = None
            self._report(
                outcome_words(outcome, updater.installed),
                {"code": "update_started", "version": outcome.version or ""},
            )
        return outcome
