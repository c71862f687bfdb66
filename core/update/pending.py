"""An update the helper was asked to install, until the client knows how it ended.

The helper answers ``install_update`` once the installer has *started* (detached: it
stops the helper and this agent, then replaces them), so whether it worked is known
only later, when a build runs again. :class:`PendingUpdate` keeps ``{"version",
"since"}`` (Unix seconds) in ``update-pending.json`` in the client's data dir (0600,
written atomically). It is recorded just *before* the helper is asked, so an installer
that stops this process before the helper's answer arrives still leaves it, and removed
again when the helper refuses.

:meth:`PendingUpdate.settle` compares it with the running version (at the agent's start
and at each scheduled check): the same or newer → installed; still older once
:data:`SETTLE` seconds have passed since it was recorded → not installed (both
installers stop the running agent, so one still running the old build that long after
is one whose installer failed); otherwise still waiting (:meth:`PendingUpdate.due_in`
says for how long). A settled record is removed, so each outcome is told once.

The file is the employee's own: a forged one can only give them a false notice. It is
read with a size limit; a malformed one is removed without a word; one dated in the
future (the clock set back, or forged) restarts the wait from now, so it cannot hold
the verdict off for ever. Errors writing or removing it are logged, never raised: the
update itself matters more than its confirmation. Not thread-safe: one caller at a time
(the schedule's task, or the CLI).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from wg_backends.signed.update_manifest import parse_version

__all__ = ["PENDING_FILE_NAME", "SETTLE", "Pending", "PendingUpdate", "Settled"]

_log = logging.getLogger(__name__)

PENDING_FILE_NAME: Final = "update-pending.json"
SETTLE: Final = 1800.0
"""Seconds an installer has to finish before its update is told as not installed."""
_MAX_FILE: Final = 4096


@dataclass(frozen=True, slots=True)
class Pending:
    """An update asked for: ``version`` at ``since`` (Unix seconds)."""

    version: str
    since: float


@dataclass(frozen=True, slots=True)
class Settled:
    """How the update ``pending`` ended: ``installed`` (``version`` is the one now
    running) or not (``version`` is the one that did not install)."""

    installed: bool
    version: str
    pending: Pending


def _at_least(running: str, version: str) -> bool:
    """Whether ``running`` is ``version`` or newer (a running build whose version is not
    MAJOR.MINOR.PATCH, a development build, counts only when equal)."""
    try:
        return parse_version(running) >= parse_version(version)
    except ValueError:
        return running == version


class PendingUpdate:
    """The record kept at ``path``; ``clock`` returns Unix seconds."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock

    def read(self) -> Pending | None:
        """The record (None: none, or unreadable, or malformed: then removed)."""
        try:
            with self.path.open("rb") as fh:
                data = fh.read(_MAX_FILE + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            _log.warning("pending update %s unreadable: %s", self.path, exc)
            return None
        try:
            if len(data) > _MAX_FILE:
                raise ValueError("oversized")
            doc = json.loads(data)
            version, since = doc["version"], doc["since"]
            parse_version(version)
            if isinstance(since, bool) or not isinstance(since, int | float):
                raise TypeError("since is not a number")
            if not 0 <= since < 1e11:  # a finite Unix time (no inf, no nan)
                raise ValueError("since out of range")
        except (ValueError, KeyError, TypeError) as exc:
            _log.warning("pending update %s malformed (%s); removed", self.path, exc)
            self.clear()
            return None
        return Pending(str(version), float(since))

    def record(self, version: str) -> None:
        """Record that ``version`` is about to be installed, now. Atomic, 0600."""
        self._write(Pending(version, self._clock()))

    def clear(self) -> None:
        """Remove the record (idempotent)."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            _log.warning("pending update %s not removed: %s", self.path, exc)

    def due_in(self, running: str) -> float | None:
        """Seconds until :meth:`settle` can tell how the pending update ended (0: now);
        None when there is none."""
        pending = self._current()
        if pending is None:
            return None
        if _at_least(running, pending.version):
            return 0.0
        return max(0.0, pending.since + SETTLE - self._clock())

    def settle(self, running: str) -> Settled | None:
        """How the pending update ended, judged against the ``running`` version, and the
        record removed; None when there is none or it is too early to tell."""
        pending = self._current()
        if pending is None:
            return None
        if _at_least(running, pending.version):
            self.clear()
            return Settled(True, running, pending)
        if self._clock() - pending.since >= SETTLE:
            self.clear()
            return Settled(False, pending.version, pending)
        return None

    def _current(self) -> Pending | None:
        """The record, re-dated to now when it claims a time still to come."""
        pending = self.read()
        now = self._clock()
        if pending is not None and pending.since > now:
            _log.warning("pending update dated in the future; the wait starts again")
            pending = Pending(pending.version, now)
            self._write(pending)
        return pending

    def _write(self, pending: Pending) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".update-pending-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w") as fh:
                    json.dump({"version": pending.version, "since": pending.since}, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            _log.warning("pending update %s not written: %s", self.path, exc)
