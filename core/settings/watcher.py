"""Live reload: poll the settings' files (or registry) and tell subscribers of changes.

The watcher keeps the last good managed payload: a managed change that is rejected
leaves the one in force applied and shows why in ``current.managed_rejected``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

from core import paths
from core.aio import cancel_and_wait, spawn
from core.settings.loader import EffectiveSettings, load
from core.settings.managed import ManagedSource, default_sources
from core.settings.managed._files import stat_token

__all__ = ["SettingsWatcher"]

_log = logging.getLogger(__name__)

Subscriber = Callable[[EffectiveSettings], None]
FORCE_EVERY = 12  # polls between unconditional reloads


class SettingsWatcher:
    """Re-reads the settings when their sources change and notifies subscribers.

    Every ``interval`` seconds it compares a cheap fingerprint (file identity and mtime,
    registry values); only when that moved does it reload (in a worker thread), and only
    when the resulting snapshot differs — a value, source, origin, problem or managed
    rejection — are the subscribers called, in subscription order, on the event loop's
    thread. A subscriber that raises is logged and does not stop the others. All methods
    run on the loop's thread.
    """

    def __init__(
        self,
        *,
        interval: float = 5.0,
        managed_sources: Sequence[ManagedSource] | None = None,
        user_path: Path | None = None,
        initial: EffectiveSettings | None = None,
    ) -> None:
        self._sources = tuple(default_sources() if managed_sources is None else managed_sources)
        self._user_path = user_path if user_path is not None else paths.user_settings_file()
        self._interval = interval
        self._current = initial or load(managed_sources=self._sources, user_path=self._user_path)
        self._fingerprint: Hashable = self._fingerprint_now()
        self._subscribers: list[Subscriber] = []
        self._task: asyncio.Task[None] | None = None
        self._polls = 0

    @property
    def current(self) -> EffectiveSettings:
        """The latest snapshot."""
        return self._current

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(new_snapshot)`` on every change; returns an unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _fingerprint_now(self) -> Hashable:
        parts: list[Hashable] = [stat_token([self._user_path])]
        for source in self._sources:
            try:
                parts.append(source.fingerprint())
            except Exception:  # treat a failing reader as "changed" so its problem shows
                _log.exception("fingerprint of %s failed", source.describe())
                parts.append(object())
        return tuple(parts)

    async def poll(self) -> bool:
        """Check once; reload and notify if something changed. Returns True if it notified."""
        fingerprint = self._fingerprint_now()
        self._polls += 1
        # Some file systems keep a coarse mtime: a same-size in-place edit within one tick
        # looks unchanged, so every ``FORCE_EVERY`` polls reload regardless.
        if fingerprint == self._fingerprint and self._polls % FORCE_EVERY:
            return False
        self._fingerprint = fingerprint
        # The managed payload in force stays if the one read now is rejected.
        fresh = await asyncio.to_thread(
            load,
            managed_sources=self._sources,
            user_path=self._user_path,
            last_good=self._current.managed,
        )
        if fresh == self._current:
            return False
        self._current = fresh
        for callback in list(self._subscribers):
            try:
                callback(fresh)
            except Exception:
                _log.exception("settings subscriber %r failed", callback)
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.poll()
            except Exception:  # keep watching; the next round may succeed
                _log.exception("settings reload failed")

    def start(self) -> None:
        """Start polling in the background. Idempotent; call on the loop's thread."""
        if self._task is None or self._task.done():
            self._task = spawn(self._run(), name="settings-watcher")

    async def stop(self) -> None:
        """Stop polling and wait until the task has ended. Idempotent."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
