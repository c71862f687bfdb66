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

Outcomes reach the employee as one notice through ``report(text, details)``: "Updated
to 1.4.2", or a refusal worth telling (:func:`core.update.words.worth_a_notice`) with
its next step, once per version and reason (not every six hours). Everything else is
logged. Threading: the engine's loop only.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from core.aio import cancel_and_wait, spawn
from core.update.errors import UpdateError
from core.update.updater import Outcome, Updater
from core.update.words import outcome_words, refusal_words, worth_a_notice

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
    """Runs ``make().run_once()`` at start and then periodically (see the module)."""

    def __init__(
        self,
        make: Callable[[], Updater],
        report: Report,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._make = make
        self._report = report
        self._sleep = sleep
        self._rand = rand
        self._task: asyncio.Task[None] | None = None
        self._told: tuple[str, str] | None = None

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
        delay = self.delays()[0]
        while True:
            await self._sleep(delay)
            await self.check_once()
            delay = self.delays()[1]

    async def check_once(self) -> Outcome | None:
        """One check: install a newer release, report what the employee should hear.
        Never raises (``None``: the check failed; logged)."""
        try:
            updater = self._make()
            outcome = await updater.run_once()
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
        if outcome.state == "installed":
            self._told = None
            self._report(
                outcome_words(outcome, updater.installed),
                {"code": "update_installed", "version": outcome.version or ""},
            )
        return outcome
