"""Readiness callbacks for the proxy's connection sockets, on one epoll set of its own.

Every connection registers two sockets (the client's, the upstream's) and removes them
again at its end. Through the event loop that costs more than the epoll calls: asyncio
makes a selector key and a ``Handle`` per registration and per event; uvloop (libuv)
checks each new descriptor with an extra epoll add and delete, sets it non-blocking again
and deletes it up to three times on removal (12 epoll calls per connection where 4 do,
counted with strace). ``EpollReactor`` keeps these sockets in its own epoll set, which
the loop watches as one reader: one ``epoll_ctl`` per add or removal, and the events of
a wake-up dispatched straight to the callbacks.

The API is the loop's own subset (``add_reader``/``remove_reader``/``add_writer``/
``remove_writer`` by descriptor), so code written against a ``Poller`` runs on the
loop itself where there is no epoll (``make_poller``). Level-triggered like the loop:
a callback that leaves data unread is called again at the next wake-up. Callbacks run
on the loop's thread; an exception in one goes to the loop's exception handler and the
others still run.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["NOT_STARTED", "EpollReactor", "Poller", "make_poller"]

_MAX_EVENTS = 256  # per wake-up; more stay ready (level-triggered) for the next one


class Poller(Protocol):
    """Where the proxy registers a socket's readiness callbacks: a loop or a reactor."""

    def add_reader(self, fd: int, callback: Callable[..., object], *args: Any) -> object:
        """Call ``callback(*args)`` whenever ``fd`` is readable (replaces any reader)."""
        ...

    def remove_reader(self, fd: int) -> bool:
        """Stop watching ``fd`` for reading; False when it had no reader."""
        ...

    def add_writer(self, fd: int, callback: Callable[..., object], *args: Any) -> object:
        """Call ``callback(*args)`` whenever ``fd`` is writable (replaces any writer)."""
        ...

    def remove_writer(self, fd: int) -> bool:
        """Stop watching ``fd`` for writing; False when it had no writer."""
        ...


class _Entry:
    __slots__ = ("reader", "reader_args", "writer", "writer_args")

    def __init__(self) -> None:
        self.reader: Callable[..., object] | None = None
        self.reader_args: tuple[Any, ...] = ()
        self.writer: Callable[..., object] | None = None
        self.writer_args: tuple[Any, ...] = ()

    def mask(self) -> int:
        return (select.EPOLLIN if self.reader is not None else 0) | (
            select.EPOLLOUT if self.writer is not None else 0
        )


class EpollReactor:
    """An epoll set of the proxy's sockets, watched by ``loop`` as one reader (Linux).

    Loop thread only. ``close`` stops it; the sockets still registered are not closed
    (their owners close them). A descriptor must be removed before its socket is closed,
    as with the loop's own ``add_reader``.
    """

    __slots__ = ("_dispatching", "_ep", "_fds", "_fresh", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._ep: select.epoll | None = select.epoll()
        self._fds: dict[int, _Entry] = {}
        # Descriptors registered while a wake-up's events are being dispatched: an event
        # of that batch for the same number belongs to a socket closed meanwhile.
        self._fresh: set[int] = set()
        self._dispatching = False
        loop.add_reader(self._ep.fileno(), self._dispatch)

    def __len__(self) -> int:
        return len(self._fds)

    def add_reader(self, fd: int, callback: Callable[..., object], *args: Any) -> None:
        """See ``Poller.add_reader``."""
        entry = self._fds.get(fd)
        if entry is None:
            entry = self._register(fd, select.EPOLLIN)
            entry.reader, entry.reader_args = callback, args
            return
        had = entry.reader is not None
        entry.reader, entry.reader_args = callback, args
        if not had:
            self._modify(fd, entry)

    def add_writer(self, fd: int, callback: Callable[..., object], *args: Any) -> None:
        """See ``Poller.add_writer``."""
        entry = self._fds.get(fd)
        if entry is None:
            entry = self._register(fd, select.EPOLLOUT)
            entry.writer, entry.writer_args = callback, args
            return
        had = entry.writer is not None
        entry.writer, entry.writer_args = callback, args
        if not had:
            self._modify(fd, entry)

    def remove_reader(self, fd: int) -> bool:
        """See ``Poller.remove_reader``."""
        entry = self._fds.get(fd)
        if entry is None or entry.reader is None:
            return False
        entry.reader, entry.reader_args = None, ()
        self._settle(fd, entry)
        return True

    def remove_writer(self, fd: int) -> bool:
        """See ``Poller.remove_writer``."""
        entry = self._fds.get(fd)
        if entry is None or entry.writer is None:
            return False
        entry.writer, entry.writer_args = None, ()
        self._settle(fd, entry)
        return True

    def close(self) -> None:
        """Stop watching (idempotent); callbacks still registered are never called."""
        ep, self._ep = self._ep, None
        if ep is None:
            return
        with contextlib.suppress(RuntimeError, ValueError, OSError):  # the loop is closed
            self._loop.remove_reader(ep.fileno())
        ep.close()
        self._fds.clear()

    # -- internals -----------------------------------------------------------------

    def _register(self, fd: int, mask: int) -> _Entry:
        ep = self._ep
        if ep is None:
            raise RuntimeError("the reactor is closed")
        try:
            ep.register(fd, mask)
        except FileExistsError:
            # Still in the set under a closed socket's number (its owner skipped the
            # removal and something else holds the file open): take it over.
            ep.modify(fd, mask)
        entry = _Entry()
        self._fds[fd] = entry
        if self._dispatching:
            self._fresh.add(fd)
        return entry

    def _modify(self, fd: int, entry: _Entry) -> None:
        ep = self._ep
        if ep is None:
            return
        try:
            ep.modify(fd, entry.mask())
        except FileNotFoundError:
            # The kernel dropped it (the socket under this number was closed unremoved):
            # register the socket that has the number now.
            ep.register(fd, entry.mask())

    def _settle(self, fd: int, entry: _Entry) -> None:
        """After a removal: unregister ``fd`` when nothing is left, else narrow it."""
        if entry.reader is None and entry.writer is None:
            del self._fds[fd]
            ep = self._ep
            if ep is not None:
                with contextlib.suppress(OSError):  # already gone with its socket
                    ep.unregister(fd)
            return
        self._modify(fd, entry)

    def _dispatch(self) -> None:
        ep = self._ep
        if ep is None:
            return
        try:
            events = ep.poll(0, _MAX_EVENTS)
        except InterruptedError:
            return
        fds = self._fds
        fresh = self._fresh
        self._dispatching = True
        try:
            for fd, ev in events:
                if fresh and fd in fresh:
                    continue
                entry = fds.get(fd)
                if entry is None:
                    continue
                # As asyncio's selector: an error or hang-up wakes the reader and the
                # writer (they find out with their next call).
                if ev & ~select.EPOLLOUT and entry.reader is not None:
                    try:
                        entry.reader(*entry.reader_args)
                    except Exception as exc:
                        self._report(entry.reader, exc)
                    if fds.get(fd) is not entry:
                        continue  # removed (or replaced) by the reader
                if ev & ~select.EPOLLIN and entry.writer is not None:
                    try:
                        entry.writer(*entry.writer_args)
                    except Exception as exc:
                        self._report(entry.writer, exc)
        finally:
            self._dispatching = False
            fresh.clear()

    def _report(self, callback: Callable[..., object], exc: Exception) -> None:
        self._loop.call_exception_handler(
            {"message": f"Exception in proxy callback {callback!r}", "exception": exc}
        )


class _NotStarted:
    """The poller of a proxy that is not running: nothing can be added."""

    def add_reader(self, fd: int, callback: Callable[..., object], *args: Any) -> None:
        raise RuntimeError("the proxy is not running")

    def add_writer(self, fd: int, callback: Callable[..., object], *args: Any) -> None:
        raise RuntimeError("the proxy is not running")

    def remove_reader(self, fd: int) -> bool:
        return False

    def remove_writer(self, fd: int) -> bool:
        return False


NOT_STARTED: Poller = _NotStarted()
"""A proxy's poller before ``start``."""


def make_poller(loop: asyncio.AbstractEventLoop) -> EpollReactor | asyncio.AbstractEventLoop:
    """An ``EpollReactor`` on ``loop`` where epoll exists, else ``loop`` itself."""
    if hasattr(select, "epoll"):
        return EpollReactor(loop)
    return loop
