"""Byte relays between an accepted client socket and its upstream socket.

Two engines with one small interface (``Relay``): ``SpliceRelay`` moves bytes
socket → pipe → socket with ``os.splice`` (Linux; the data never enters Python), and
``BufferedRelay`` uses asyncio ``BufferedProtocol`` with one large buffer shared by all
connections of a loop (memory per idle connection stays small: only the transports).
Both honour half-close (EOF in one direction becomes ``shutdown(SHUT_WR)`` on the other
and the rest keeps flowing), apply backpressure (a direction stops reading while its
destination cannot take more), hold at most one chunk per direction in flight, and close
both sockets exactly once. Everything runs on the loop thread, but for a splice relay
that has moved ``bulk_after`` bytes in one direction: it moves, both directions at once, to
one of a few worker threads (``BulkLoops``, each with its own event loop), so the kernel
work of bulk streams (``os.splice`` releases the GIL) spreads over the CPUs while the
loop thread keeps accepting and deciding. ``close`` is idempotent and synchronous from
the loop thread either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from core.proxy.reactor import Poller

__all__ = [
    "BufferedRelay",
    "BulkLoops",
    "PipePool",
    "Relay",
    "SpliceRelay",
    "splice_available",
]

_F_SETPIPE_SZ = 1031
_PIPE_DEFAULT = 1 << 16  # a new pipe's capacity (16 pages)
_GROW_AFTER = 1 << 16  # bytes one direction moves before its pipe grows to ``chunk``
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
# An int: enum "|" per call is slow. MSG_DONTWAIT is absent on Windows (splice is Linux only).
_COPY_WRITES = sys.version_info >= (3, 12)  # later asyncio may keep the written view
# Splice rounds per wake-up: a few on the loop thread (it also serves new connections),
# more on a bulk worker (fewer trips through its loop; measured with 32 streams).
_SHORT_READ = 16 << 10  # a read this short ends a wake-up's rounds
_COPY_MAX = 16 << 10  # a direction copies its reads until one fills this, then splices
_ROUNDS = 4
_BULK_ROUNDS = 16
_CLOSE_WAIT = 5.0  # seconds the loop thread waits for a worker to close a relay's sockets


def splice_available() -> bool:
    """True when ``os.splice`` exists (Linux, Python ≥ 3.10)."""
    return hasattr(os, "splice")


class Relay:
    """Common state of a relay: byte counts, last activity and the close callback.

    ``on_closed(relay)`` is called exactly once, on the loop thread, after both sockets
    are closed.
    """

    __slots__ = ("_on_closed", "bytes_down", "bytes_up", "close_reason", "closed", "last_active")

    def __init__(self, on_closed: Callable[[Relay], None]) -> None:
        self._on_closed = on_closed
        self.bytes_up = 0
        self.bytes_down = 0
        self.last_active = time.monotonic()
        self.closed = False
        self.close_reason = ""

    def start(self) -> None:
        """Begin relaying. Called once, on the loop thread."""
        raise NotImplementedError

    def close(self, reason: str = "closed") -> None:
        """Stop relaying and close both sockets. Idempotent."""
        raise NotImplementedError

    def trim(self) -> None:
        """Release per-connection buffers an idle relay does not need. Idempotent."""

    def _closed(self, reason: str) -> None:
        self.closed = True
        self.close_reason = reason
        self._on_closed(self)


class PipePool:
    """Empty splice pipes kept for the next relays (loop thread only).

    A short connection would otherwise pay ``pipe2``, ``F_SETPIPE_SZ`` and two closes
    per direction. Only pipes at the default capacity are kept: a pipe grown to
    ``chunk`` for bulk traffic counts against the account's pipe budget
    (``/proc/sys/fs/pipe-user-pages-soft``) and is closed when its relay ends. A pipe
    comes back only when its relay's accounting says it is empty (``give``), so no byte
    of one connection can reach another; ``give`` checks the kernel's count too.
    """

    __slots__ = ("_free", "_keep", "chunk")

    def __init__(self, chunk: int, *, keep: int = 64) -> None:
        self.chunk = chunk
        self._keep = keep
        self._free: list[tuple[int, int]] = []

    def take(self) -> tuple[int, int]:
        """(read end, write end) of an empty non-blocking pipe. Raises OSError."""
        if self._free:
            return self._free.pop()
        return os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def __len__(self) -> int:
        return len(self._free)

    def give(self, pr: int, pw: int, grown: bool) -> None:
        """Return an empty pipe (``grown``: raised above the default: closed)."""
        if grown or len(self._free) >= self._keep or _pipe_holds(pr):
            os.close(pr)
            os.close(pw)
            return
        self._free.append((pr, pw))

    def clear(self) -> None:
        """Close every kept pipe. Idempotent."""
        while self._free:
            pr, pw = self._free.pop()
            os.close(pr)
            os.close(pw)


def _pipe_holds(pr: int) -> bool:
    """Whether the pipe still holds bytes (FIONREAD); True when that cannot be read."""
    import fcntl  # here, not at the top: the package must import on Windows too
    import termios

    buf = bytearray(4)
    try:
        fcntl.ioctl(pr, termios.FIONREAD, buf)
    except OSError:
        return True
    return int.from_bytes(buf, sys.byteorder) != 0


class _Worker:
    """One worker thread running its own selector event loop."""

    __slots__ = ("ident", "loop", "relays", "thread")

    def __init__(self, name: str) -> None:
        # A selector loop whatever the policy says (the tray's is Qt's).
        self.loop = asyncio.SelectorEventLoop()
        self.relays = 0  # relays living here (counted on the home loop's thread)
        ready = threading.Event()

        def run() -> None:
            self.ident = threading.get_ident()
            asyncio.set_event_loop(self.loop)
            ready.set()
            try:
                self.loop.run_forever()
            finally:
                self.loop.close()

        self.ident = -1
        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()
        ready.wait()

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # already closed
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(_CLOSE_WAIT)


class BulkLoops:
    """A few worker threads that carry bulk splice relays (home loop's thread only).

    One loop thread issuing every ``splice`` of many streams runs on one CPU, and half of
    that is kernel work; a thread per stream (what C forwarders do) would cost a thread
    to every short connection. So a relay moves to a worker only once it has carried
    ``bulk_after`` bytes in one direction, and the workers are few (``threads``); each
    multiplexes its relays with its own event loop, the least loaded one is chosen.
    Threads start on first use; ``close`` stops them (after the relays are closed).
    """

    __slots__ = ("_workers", "bulk_after", "threads")

    def __init__(self, threads: int, bulk_after: int) -> None:
        self.threads = threads
        self.bulk_after = bulk_after
        self._workers: list[_Worker] = []

    def pick(self) -> _Worker | None:
        """The worker with the fewest relays (starting one while fewer than ``threads``
        run and all have relays); None when no thread can start."""
        best = min(self._workers, key=lambda w: w.relays, default=None)
        if (best is None or best.relays) and len(self._workers) < self.threads:
            try:
                best = _Worker(f"proxy-bulk-{len(self._workers)}")
            except (OSError, RuntimeError):  # no thread or no epoll left: stay on the loop
                return best
            self._workers.append(best)
        return best

    def close(self) -> None:
        """Stop the worker threads (they may start again). Idempotent."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()

    def __len__(self) -> int:
        return len(self._workers)


class _Flow:
    """One direction of a splice relay."""

    __slots__ = (
        "count_up",
        "dst",
        "eof",
        "grown",
        "pending",
        "pr",
        "pw",
        "reading",
        "src",
        "src_sock",
        "writing",
    )

    def __init__(self, src_sock: socket.socket, dst: int, count_up: bool) -> None:
        self.src_sock = src_sock
        self.src = src_sock.fileno()
        self.dst = dst
        self.pr = -1
        self.pw = -1
        self.pending = 0
        self.grown = False
        self.eof = False
        self.reading = False
        self.writing = False
        self.count_up = count_up


class SpliceRelay(Relay):
    """Zero-copy relay with ``os.splice`` through one pipe per direction (Linux only).

    Pipes are taken on a direction's first data (from ``pipes``, a ``PipePool``, when
    given), so idle connections cost only their two sockets; a pipe's size is raised to
    ``chunk`` (when the system allows it) once its direction has moved 64 KiB: bulk.
    With ``bulk`` (``BulkLoops``) the relay moves to a worker thread once a direction has
    moved ``bulk.bulk_after`` bytes. From then on the worker owns the sockets and pipes
    (pipes are closed there, never pooled: the pool is the loop thread's); ``close``
    from the loop thread has the worker close them and waits, and ``on_closed`` always
    runs on the loop thread.
    """

    __slots__ = (
        "_bulk",
        "_chunk",
        "_dead",
        "_down",
        "_home",
        "_home_poll",
        "_loop",
        "_pipes",
        "_poll",
        "_socks",
        "_up",
        "_worker",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: socket.socket,
        upstream: socket.socket,
        *,
        chunk: int,
        on_closed: Callable[[Relay], None],
        pipes: PipePool | None = None,
        bulk: BulkLoops | None = None,
        poller: Poller | None = None,
    ) -> None:
        super().__init__(on_closed)
        self._home = loop  # where on_closed runs and the relay starts
        self._loop = loop  # the loop that owns the sockets now (the home or a worker's)
        # Where the sockets' callbacks are registered: the proxy's reactor at home (or
        # the loop itself), a worker's loop after a move.
        self._home_poll: Poller = loop if poller is None else poller
        self._poll = self._home_poll
        self._worker: _Worker | None = None
        self._bulk = bulk if bulk is not None and bulk.threads > 0 else None
        self._dead = False  # sockets closed (set by the owning thread)
        self._chunk = chunk
        self._pipes = pipes
        self._socks = (client, upstream)
        for sock in self._socks:
            if sock.gettimeout() != 0.0:  # the proxy's are non-blocking already
                sock.setblocking(False)
        self._up = _Flow(client, upstream.fileno(), True)
        self._down = _Flow(upstream, client.fileno(), False)

    @property
    def threaded(self) -> bool:
        """Whether a worker thread carries this relay."""
        return self._worker is not None

    def start(self) -> None:
        """See ``Relay.start``."""
        for flow in (self._up, self._down):
            self._poll.add_reader(flow.src, self._readable, flow)
            flow.reading = True

    def _pool(self) -> PipePool | None:
        """The pipe pool, on the home thread only (a worker makes and closes its own)."""
        return self._pipes if self._worker is None else None

    def _pipe(self, flow: _Flow) -> bool:
        pool = self._pool()
        try:
            if pool is not None:
                flow.pr, flow.pw = pool.take()
            else:
                flow.pr, flow.pw = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            self.close("out of file descriptors")
            return False
        return True

    def _grow(self, flow: _Flow) -> None:
        """Raise a full pipe to ``chunk``: this direction carries bulk traffic."""
        import fcntl  # here, not at the top: the package must import on Windows too

        flow.grown = True
        with contextlib.suppress(OSError):  # EPERM past the per-user pipe budget: keep 64K
            fcntl.fcntl(flow.pw, _F_SETPIPE_SZ, self._chunk)

    def _unpipe(self, flow: _Flow) -> None:
        """Give the direction's pipe back (to the pool when it is empty) or close it."""
        pr, pw = flow.pr, flow.pw
        flow.pr = flow.pw = -1
        if pr < 0:
            return
        pool = self._pool()
        if pool is not None and flow.pending == 0:
            pool.give(pr, pw, flow.grown)
        else:
            os.close(pr)
            os.close(pw)
        flow.grown = False

    def _readable(self, flow: _Flow) -> None:
        if self._dead:
            return
        if flow.pw < 0 and not self._copy(flow):
            return
        # A few rounds per wake-up: fewer trips through the event loop at full speed.
        for _ in range(_ROUNDS if self._worker is None else _BULK_ROUNDS):
            try:
                n = os.splice(flow.src, flow.pw, self._chunk, flags=_SPLICE_FLAGS)
            except BlockingIOError:
                return
            except OSError as exc:
                self.close(f"read error: {os.strerror(exc.errno or errno.EIO)}")
                return
            if n == 0:
                self._eof(flow)
                return
            flow.pending += n
            if flow.count_up:
                self.bytes_up += n
                moved = self.bytes_up
            else:
                self.bytes_down += n
                moved = self.bytes_down
            if moved >= _GROW_AFTER and not flow.grown and self._chunk > _PIPE_DEFAULT:
                self._grow(flow)
            if not self._flush(flow):
                return
            bulk = self._bulk
            if bulk is not None and moved >= bulk.bulk_after and self._worker is None:
                self._move(bulk)
                return
            if n < _SHORT_READ:
                # The socket is very likely drained: another splice would only fail with
                # EAGAIN (a system call per direction of every short connection). The
                # loop polls level-triggered, so anything that did arrive wakes it again.
                break
        self.last_active = time.monotonic()

    def _copy(self, flow: _Flow) -> bool:
        """Carry one read of a direction that has no pipe yet by copying (recv, write).

        Most connections move a few small messages: two copies cost the kernel less
        than two splices through a pipe, and need no pipe at all (nor its return to the
        pool). A read that fills ``_COPY_MAX`` takes a pipe: True, splice from now on.
        A write the destination takes only in part leaves the rest in a new pipe (an
        empty pipe holds 64 KiB), which then drains as spliced data does.
        """
        try:
            data = flow.src_sock.recv(_COPY_MAX)
        except BlockingIOError:
            return False
        except OSError as exc:
            self.close(f"read error: {os.strerror(exc.errno or errno.EIO)}")
            return False
        n = len(data)
        if n == 0:
            self._eof(flow)
            return False
        if flow.count_up:
            self.bytes_up += n
        else:
            self.bytes_down += n
        self.last_active = time.monotonic()
        try:
            sent = os.write(flow.dst, data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.close(f"write error: {os.strerror(exc.errno or errno.EIO)}")
            return False
        if sent == n and n < _COPY_MAX:
            return False
        if not self._pipe(flow):
            return False
        if sent < n:
            rest = memoryview(data)[sent:]
            try:
                written = os.write(flow.pw, rest)
            except OSError:
                written = -1
            if written != len(rest):  # an empty pipe takes 16 KiB whole: never in practice
                self.close("internal error: could not buffer the rest of a write")
                return False
            flow.pending = written
            self._flush(flow)  # waits for the destination to drain
            return False
        return True

    def _move(self, bulk: BulkLoops) -> None:
        """Hand both directions to a worker thread (home thread; both pipes are empty or
        not yet taken, the sockets' readers and writers move to the worker's loop)."""
        self._bulk = None  # one try: stays here when no worker can start
        worker = bulk.pick()
        if worker is None:
            return
        # A pooled pipe goes back now: a worker never touches the pool.
        for flow in (self._up, self._down):
            if flow.pending == 0 and flow.pr >= 0 and not flow.grown:
                self._unpipe(flow)
        for flow in (self._up, self._down):
            if flow.reading:
                self._poll.remove_reader(flow.src)
            if flow.writing:
                self._poll.remove_writer(flow.dst)
        worker.relays += 1
        self._worker = worker
        self._loop = self._poll = worker.loop
        try:
            worker.loop.call_soon_threadsafe(self._resume)
        except RuntimeError:  # the worker's loop is gone: back home
            worker.relays -= 1
            self._worker = None
            self._loop, self._poll = self._home, self._home_poll
            self._resume()

    def _resume(self) -> None:
        """Register the relay's readers and writers on its (new) loop's thread."""
        if self._dead:
            return
        for flow in (self._up, self._down):
            if flow.reading:
                self._poll.add_reader(flow.src, self._readable, flow)
            if flow.writing:
                self._poll.add_writer(flow.dst, self._writable, flow)

    def _flush(self, flow: _Flow) -> bool:
        """Drain the pipe into the destination; False when it is full (backpressure)."""
        while flow.pending:
            try:
                m = os.splice(flow.pr, flow.dst, flow.pending, flags=_SPLICE_FLAGS)
            except BlockingIOError:
                break
            except OSError as exc:
                self.close(f"write error: {os.strerror(exc.errno or errno.EIO)}")
                return False
            flow.pending -= m
        self.last_active = time.monotonic()
        if flow.pending:
            if flow.reading:
                self._poll.remove_reader(flow.src)
                flow.reading = False
            if not flow.writing:
                self._poll.add_writer(flow.dst, self._writable, flow)
                flow.writing = True
            return False
        if flow.writing:
            self._poll.remove_writer(flow.dst)
            flow.writing = False
        if flow.eof:
            self._shutdown(flow)
            return False
        if not flow.reading:
            self._poll.add_reader(flow.src, self._readable, flow)
            flow.reading = True
        return True

    def trim(self) -> None:
        """Close the pipes of drained directions (an idle connection keeps only sockets)."""
        if self._worker is not None and threading.get_ident() != self._worker.ident:
            with contextlib.suppress(RuntimeError):  # the worker is gone
                self._loop.call_soon_threadsafe(self.trim)
            return
        if self._dead:
            return
        for flow in (self._up, self._down):
            if flow.pending == 0 and flow.pr >= 0:
                self._unpipe(flow)

    def _writable(self, flow: _Flow) -> None:
        if not self._dead:
            self._flush(flow)

    def _eof(self, flow: _Flow) -> None:
        flow.eof = True
        if flow.reading:
            self._poll.remove_reader(flow.src)
            flow.reading = False
        if flow.pending == 0:
            self._shutdown(flow)

    def _shutdown(self, flow: _Flow) -> None:
        other = self._down if flow.count_up else self._up
        if other.eof and not other.pending:
            # The other direction is already finished: closing sends this FIN too (both
            # receive queues are drained, so no RST), one system call fewer.
            self.close("both directions finished")
            return
        sock = self._socks[1] if flow.count_up else self._socks[0]
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close("peer gone")
            return
        if self._up.eof and self._down.eof and not self._up.pending and not self._down.pending:
            self.close("both directions finished")

    def close(self, reason: str = "closed") -> None:
        """See ``Relay.close``. From the loop thread while a worker owns the relay: the
        worker closes the sockets and pipes, the loop thread waits for that (a few µs)
        and then reports the close; the worker's own closes report through the loop."""
        if self.closed:
            return
        worker = self._worker
        if worker is None:
            if not self._dead:
                self._teardown()
                self._closed(reason)
            return
        if threading.get_ident() == worker.ident:
            if self._dead:
                return
            self._teardown()
            self.close_reason = reason  # for a close from the loop thread before the report
            with contextlib.suppress(RuntimeError):  # the home loop is gone: no report
                self._home.call_soon_threadsafe(self._report, reason)
            return
        if self._dead:  # closed by the worker, its report still queued: report now
            self._report(self.close_reason or reason)
            return
        done = threading.Event()
        try:
            worker.loop.call_soon_threadsafe(self._teardown, done)
        except RuntimeError:  # the worker's loop is gone: nobody else holds the sockets
            self._teardown()
        else:
            done.wait(_CLOSE_WAIT)
        self._report(reason)

    def _teardown(self, done: threading.Event | None = None) -> None:
        """Unregister and close the pipes and both sockets (on the owning thread)."""
        try:
            if self._dead:
                return
            self._dead = True
            for flow in (self._up, self._down):
                if flow.reading:
                    self._poll.remove_reader(flow.src)
                    flow.reading = False
                if flow.writing:
                    self._poll.remove_writer(flow.dst)
                    flow.writing = False
                self._unpipe(flow)
            for sock in self._socks:
                sock.close()
        finally:
            if done is not None:
                done.set()

    def _report(self, reason: str) -> None:
        """Report the close once (home thread) and free the worker's slot."""
        if self.closed:
            return
        if self._worker is not None:
            self._worker.relays -= 1
        self._closed(reason)


class _Side(asyncio.BufferedProtocol):
    """One socket of a BufferedRelay; reads into the loop-wide shared buffer."""

    __slots__ = ("eof", "peer", "relay", "transport", "up")

    def __init__(self, relay: BufferedRelay, up: bool) -> None:
        self.relay = relay
        self.up = up
        self.peer: _Side | None = None
        self.transport: Any = None
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.relay.shared

    def buffer_updated(self, nbytes: int) -> None:
        relay = self.relay
        if self.up:
            relay.bytes_up += nbytes
        else:
            relay.bytes_down += nbytes
        relay.last_active = time.monotonic()
        assert self.peer is not None
        data = relay.shared[:nbytes]
        # 3.11's transport copies what it cannot send at once, so the shared buffer can
        # be reused at the next read; later versions may keep the view, so copy there.
        self.peer.transport.write(bytes(data) if _COPY_WRITES else data)

    def eof_received(self) -> bool:
        self.eof = True
        assert self.peer is not None
        if self.peer.transport.can_write_eof():
            self.peer.transport.write_eof()
        if self.peer.eof:
            self.relay.close("both directions finished")
        return True

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.eof:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.close("connection lost" if exc is None else f"connection lost: {exc}")
        self.peer = None  # break the side <-> side cycle: freed without waiting for GC
        self.transport = None


class BufferedRelay(Relay):
    """Relay over asyncio transports with a BufferedProtocol per side (any OS).

    ``shared`` is a buffer shared by all relays on the loop: data is handed to the other
    transport before the next read, so no per-connection receive buffer is kept.
    """

    __slots__ = ("_client", "_loop", "_sides", "_upstream", "shared")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: socket.socket,
        upstream: socket.socket,
        *,
        shared: memoryview,
        on_closed: Callable[[Relay], None],
    ) -> None:
        super().__init__(on_closed)
        self._loop = loop
        self._client = client
        self._upstream = upstream
        self.shared = shared
        self._sides: tuple[_Side, _Side] | None = None

    async def attach(self) -> None:
        """Wrap both sockets in transports (they start paused until ``start``)."""
        up, down = _Side(self, True), _Side(self, False)
        up.peer, down.peer = down, up
        self._sides = (up, down)
        try:
            await self._loop.connect_accepted_socket(lambda: up, self._client)
            up.transport.pause_reading()
            await self._loop.connect_accepted_socket(lambda: down, self._upstream)
            down.transport.pause_reading()
        except BaseException:
            self.close("could not attach")
            raise

    def start(self) -> None:
        """See ``Relay.start`` (call after ``attach``); a no-op once closed."""
        if self._sides is None or self.closed:
            return
        for side in self._sides:
            if side.transport is not None:
                side.transport.resume_reading()

    def close(self, reason: str = "closed") -> None:
        """See ``Relay.close``."""
        if self.closed:
            return
        self.closed = True
        graceful = reason == "both directions finished"
        sides: tuple[_Side | None, _Side | None] = self._sides or (None, None)
        for side, sock in zip(sides, (self._client, self._upstream), strict=True):
            if side is not None and side.transport is not None:
                # Graceful close flushes what is still queued; anything else aborts.
                if graceful:
                    side.transport.close()
                else:
                    side.transport.abort()
            else:
                sock.close()
        self._sides = None
        self._closed(reason)
