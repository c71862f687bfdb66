"""``EngineLock``: one engine per user session, whoever would start it.

The agent (or a tray hosting the engine) takes an exclusive lock on ``engine.lock`` beside
the local API socket before it builds the engine, and holds it until it exits; the OS
drops the lock when the process dies, so a crash never leaves a stale lock. The file
holds the owner's pid, so a refused second engine can say which process runs.

- Linux/macOS: ``fcntl.flock(LOCK_EX | LOCK_NB)``.
- Windows: ``msvcrt.locking(LK_NBLCK)`` on one byte past the pid (a locked range cannot
  be read by others there, and the pid must stay readable).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from types import TracebackType

from core.engine.localapi.errors import EngineAlreadyRunningError
from core.engine.localapi.transport import default_lock_path, secure_dir
from core.i18n import translate

__all__ = ["EngineLock"]

_WIN_LOCK_OFFSET = 4096  # far past any pid text


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


class EngineLock:
    """The per-user engine lock. ``acquire``/``release`` (or ``with``); re-entrant-safe.

    ``path`` defaults to ``engine.lock`` in the local API's runtime directory (0700).
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_lock_path()
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def owner(self) -> int | None:
        """The pid recorded by the current (or last) holder, if readable."""
        try:
            text = self.path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def acquire(self) -> None:
        """Take the lock and record our pid. Idempotent for the holder.

        Raises :class:`EngineAlreadyRunningError` (naming the pid) when another process
        holds it, ``OSError`` / ``UnsafeDirectoryError`` when the file cannot be made.
        """
        if self._fd is not None:
            return
        secure_dir(self.path.parent)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.path, flags, 0o600)
        if not _try_lock(fd):
            os.close(fd)
            pid = self.owner()
            message = (
                translate(
                    "core.engine.localapi.lock",
                    "Rustronaut already runs for this user (process {pid}).",
                ).format(pid=pid)
                if pid
                else translate(
                    "core.engine.localapi.lock",
                    "Rustronaut already runs for this user (another process).",
                )
            )
            raise EngineAlreadyRunningError(message, pid=pid)
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (the file stays; removing it would race a new holder)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            _unlock(fd)
        os.close(fd)

    def __enter__(self) -> EngineLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
