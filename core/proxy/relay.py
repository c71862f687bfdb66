"""Byte relays between an accepted client socket and its upstream socket.

Two engines with one small interface (``Relay``): ``SpliceRelay`` moves bytes
socket → pipe → socket with ``os.splice`` (Linux; the data never enters Python), and
``BufferedRelay`` uses asyncio ``BufferedProtocol`` with one large buffer shared by all
connections of a loop (memory per idle connection stays small: only the transports).
Both honour half-close (EOF in one direction becomes ``shutdown(SHUT_WR)`` on the other
and the rest keeps flowing), apply backpressure (a direction stops reading while its
destination cannot take more), hold at most one chunk per direction in flight, and close
both sockets exactly once. Everything runs on the loop thread, but for a splice relay
that has moved ``bulk_after`` bytes in one direction: from then on a thread per direction
carries it with blocking ``splice`` (``BulkThreads`` caps how many), which is how C
forwarders keep up with many bulk streams: ``os.splice`` releases the GIL, so the kernel
work spreads over the CPUs while the loop thread keeps accepting and deciding. ``close``
is idempotent and synchronous from the loop thread either way.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import errno
import functools
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
    "BulkThreads",
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
_SHORT_READ = 16 << 10  # a read this short ends a wake-up's rounds
_COPY_MAX = 16 << 10  # a direction copies its reads until one fills this, then splices
_ROUNDS = 4  # splice rounds per wake-up on the loop thread (it also serves new connections)
_CLOSE_WAIT = 5.0  # seconds the loop thread waits for a bulk relay's threads to end


_PR_SET_NAME = 15
_prctl: Any = None


def _name_thread(name: bytes) -> None:
    """Name the calling OS thread (``top -H``, ``ps -L``, ``/proc/<pid>/task/*/comm``)."""
    global _prctl
    if _prctl is None:
        import ctypes  # here: Linux only (splice relays), and only once bulk starts

        try:
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            _prctl = False
    if _prctl:
        _prctl(_PR_SET_NAME, name, 0, 0, 0)


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


class _Carrier:
    """One bulk thread's hand-off: the job it runs next and the lock it parks on."""

    __slots__ = ("job", "wake")

    def __init__(self, job: Callable[[], None] | None) -> None:
        self.job = job
        self.wake = _thread.allocate_lock()
        self.wake.acquire()  # held: a parked thread waits until a job releases it


class BulkThreads:
    """Bulk splice relays carried by their own threads, and the cap on them.

    A loop thread issuing every ``splice`` of many streams runs on one CPU, and half of
    that is kernel work. Worker threads multiplexing streams with their own event loops
    measured 0.84-0.91x of a C forwarder with 32 streams; a thread per direction with
    blocking ``splice``, as the C forwarder does it, 1.0x (docs/performance.md). A thread
    per direction for every short connection would cost far more than it saves, so a
    relay gets its two threads only once it has carried ``bulk_after`` bytes in one
    direction, and only while fewer than ``threads`` run (2 per relay): past that it stays
    on the loop thread, where it works as before, and it moves when a place frees up.

    A thread whose direction has ended parks for ``idle_wait`` seconds (named
    ``proxy-bulk-idle``; busy ones ``proxy-bulk``) and carries the next bulk direction
    instead of a new thread (a thread's start and end cost about 80 µs of CPU). Parked
    and busy threads together stay within ``threads``. ``admit``, ``release`` and ``run``
    are for the loop thread; ``close`` ends the parked threads.
    """

    __slots__ = (
        "_busy",
        "_closed",
        "_idle",
        "_lock",
        "_relays",
        "bulk_after",
        "idle_wait",
        "threads",
    )

    def __init__(self, threads: int, bulk_after: int, *, idle_wait: float = 60.0) -> None:
        self.threads = threads
        self.bulk_after = bulk_after
        self.idle_wait = idle_wait
        self._relays: set[SpliceRelay] = set()
        self._idle: list[_Carrier] = []  # parked threads (under _lock)
        self._busy = 0  # threads running a job (under _lock)
        self._lock = threading.Lock()
        self._closed = False

    def admit(self, relay: SpliceRelay) -> bool:
        """Take a place for ``relay``'s two threads; False when none is free."""
        if 2 * (len(self._relays) + 1) > self.threads:
            return False
        self._relays.add(relay)
        return True

    def release(self, relay: SpliceRelay) -> None:
        """Give ``relay``'s place back (its threads have ended, or are ending)."""
        self._relays.discard(relay)

    def run(self, job: Callable[[], None]) -> None:
        """Run ``job`` on a parked thread, or a new one. Raises RuntimeError when no
        thread can start."""
        with self._lock:
            carrier = self._idle.pop() if self._idle else None
            self._closed = False
            self._busy += 1
        if carrier is not None:
            carrier.job = job
            carrier.wake.release()
            return
        # _thread, not threading.Thread: Thread.start waits until the new thread holds
        # the GIL, which took 1.5-2.2 ms per relay with 32 busy streams (measured), and
        # the loop thread, which also accepts and decides, stood still meanwhile.
        try:
            _thread.start_new_thread(self._serve, (_Carrier(job),))
        except RuntimeError:
            with self._lock:
                self._busy -= 1
            raise

    def _serve(self, carrier: _Carrier) -> None:
        """A bulk thread: run the job, park, run the next one; end when idle too long,
        when the pool is full or closed."""
        while True:
            job, carrier.job = carrier.job, None
            if job is None:
                return
            _name_thread(b"proxy-bulk")
            job()
            job = None  # a parked thread keeps no relay alive
            with self._lock:
                self._busy -= 1
                if self._closed or len(self._idle) + self._busy >= self.threads:
                    return
                self._idle.append(carrier)
            _name_thread(b"proxy-bulk-idle")
            if carrier.wake.acquire(timeout=self.idle_wait):
                continue
            with self._lock:
                if carrier in self._idle:
                    self._idle.remove(carrier)
                    return
            carrier.wake.acquire()  # taken just as the wait ran out: its job is coming

    def close(self) -> None:
        """Close every relay still carried by threads (``stop`` closes them first) and
        end the parked threads; threads still busy end when their job does."""
        for relay in list(self._relays):
            relay.close("proxy stopped")
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for carrier in idle:
            carrier.job = None
            carrier.wake.release()

    def __len__(self) -> int:
        """The number of threads placed (2 per threaded relay)."""
        return 2 * len(self._relays)


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

    Pipes are taken on a direction's first full read (from ``pipes``, a ``PipePool``,
    when given), so idle connections cost only their two sockets; a pipe's size is raised
    to ``chunk`` (when the system allows it) once its direction has moved 64 KiB: bulk.
    With ``bulk`` (``BulkThreads``) the relay goes threaded once a direction has moved
    ``bulk.bulk_after`` bytes: the sockets turn blocking and a thread per direction
    splices until its direction ends. From then on the threads own the pipes (closed,
    never pooled) and only read the relay's state; a close from the loop thread shuts
    both sockets down (which wakes any blocked ``splice``), joins the threads and only
    then closes the descriptors, so no thread ever touches a closed (or reused)
    descriptor. ``on_closed`` always runs on the loop thread.
    """

    __slots__ = (
        "_bulk",
        "_chunk",
        "_claimed",
        "_dead",
        "_done",
        "_down",
        "_home",
        "_left",
        "_lock",
        "_orphan",
        "_pipes",
        "_placed",
        "_poll",
        "_socks",
        "_up",
        "_why",
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
        bulk: BulkThreads | None = None,
        poller: Poller | None = None,
    ) -> None:
        super().__init__(on_closed)
        self._home = loop  # where on_closed runs and the relay starts
        # Where the sockets' callbacks are registered: the proxy's reactor (or the loop).
        self._poll: Poller = loop if poller is None else poller
        self._bulk = bulk if bulk is not None and bulk.threads >= 2 else None
        self._placed: BulkThreads | None = None  # whose place the threads hold
        self._done: threading.Event | None = None  # set when threaded; then: threads ended
        self._left = 0  # threads still running (under _lock)
        self._lock: threading.Lock | None = None
        self._orphan = False  # closed while a thread ran on: the last one out closes fds
        self._claimed = False  # someone has taken the closing of a threaded relay's fds
        self._why = ""  # the first error a thread met
        self._dead = False  # closing or closed: nothing relays any more
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
        """Whether threads (one per direction) carry this relay."""
        return self._done is not None

    def start(self) -> None:
        """See ``Relay.start``."""
        for flow in (self._up, self._down):
            self._poll.add_reader(flow.src, self._readable, flow)
            flow.reading = True

    def _pool(self) -> PipePool | None:
        """The pipe pool, while no thread carries the relay (its pipes turn blocking)."""
        return self._pipes if self._done is None else None

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
        for _ in range(_ROUNDS):
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
            if bulk is not None and moved >= bulk.bulk_after and bulk.admit(self):
                self._go_threaded(bulk)
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

    def _go_threaded(self, bulk: BulkThreads) -> None:
        """Hand both directions to a thread each (loop thread; ``bulk`` has admitted us).

        Whatever a direction holds in its pipe goes first, in order; an empty pooled pipe
        goes back to the pool now (a threaded relay makes and closes its own).
        """
        self._bulk = None
        self._placed = bulk
        for flow in (self._up, self._down):
            self._unregister(flow)
            if flow.pr >= 0 and flow.pending == 0 and not flow.grown:
                self._unpipe(flow)
        for flow in (self._up, self._down):
            if flow.pr >= 0:
                os.set_blocking(flow.pr, True)
                os.set_blocking(flow.pw, True)
        for sock in self._socks:
            sock.setblocking(True)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._left = 2
        try:
            bulk.run(functools.partial(self._carry, self._up))
        except RuntimeError:  # no thread can start: stay on the loop thread
            self._done = None
            self._left = 0
            self._placed = None
            bulk.release(self)
            self._back_home()
            return
        try:
            bulk.run(functools.partial(self._carry, self._down))
        except RuntimeError:
            self._why = "out of threads"
            self._wake_threads()
            self._ended_one()

    def _back_home(self) -> None:
        """Undo ``_go_threaded`` before any thread ran: non-blocking, loop callbacks."""
        for sock in self._socks:
            sock.setblocking(False)
        for flow in (self._up, self._down):
            if flow.pr >= 0:
                os.set_blocking(flow.pr, False)
                os.set_blocking(flow.pw, False)
            if flow.pending:
                self._poll.add_writer(flow.dst, self._writable, flow)
                flow.writing = True
            elif not flow.eof:
                self._poll.add_reader(flow.src, self._readable, flow)
                flow.reading = True

    def _carry(self, flow: _Flow) -> None:
        """One direction of a threaded relay, with blocking ``splice`` (its own thread).

        Only this thread writes the direction's pipe, pending count and byte count. EOF
        becomes ``shutdown(SHUT_WR)`` on the destination; an error shuts both sockets
        down, which ends the other direction too.
        """
        try:
            if flow.pr < 0:
                flow.pr, flow.pw = os.pipe2(os.O_CLOEXEC)
            if not flow.grown:
                self._grow(flow)
            while not self._dead:
                while flow.pending:
                    try:
                        flow.pending -= os.splice(flow.pr, flow.dst, flow.pending)
                    except OSError as exc:
                        self._fail(f"write error: {os.strerror(exc.errno or errno.EIO)}")
                        return
                if flow.eof:
                    break
                try:
                    n = os.splice(flow.src, flow.pw, self._chunk)
                except OSError as exc:
                    self._fail(f"read error: {os.strerror(exc.errno or errno.EIO)}")
                    return
                if n == 0:
                    flow.eof = True
                    break
                flow.pending = n
                if flow.count_up:
                    self.bytes_up += n
                else:
                    self.bytes_down += n
                self.last_active = time.monotonic()
            if not self._dead:
                with contextlib.suppress(OSError):  # the peer is gone: the other side sees it
                    self._socks[1 if flow.count_up else 0].shutdown(socket.SHUT_WR)
        except OSError as exc:  # pipe2: out of file descriptors
            self._fail(f"could not relay: {os.strerror(exc.errno or errno.EIO)}")
        finally:
            self._ended_one()

    def _fail(self, why: str) -> None:
        """A thread met an error: keep the first reason, end both directions."""
        if not self._why:
            self._why = why
        self._wake_threads()

    def _wake_threads(self) -> None:
        """Shut both sockets down: every blocked ``splice`` returns (EOF or EPIPE)."""
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _ended_one(self) -> None:
        """A thread is done with the relay's descriptors; the last one out says so and
        has the loop thread finish the relay (or closes them, if the loop gave up)."""
        assert self._lock is not None
        assert self._done is not None
        with self._lock:
            self._left -= 1
            last = self._left == 0
            orphan = self._orphan
        if not last:
            return
        if orphan:  # the loop thread already reported the close and left the fds to us
            self._close_fds_once()
            return
        self._done.set()
        try:
            self._home.call_soon_threadsafe(self._threads_done)
        except RuntimeError:  # the loop is closed: nobody may be left to close them
            self._close_fds_once()

    def _threads_done(self) -> None:
        """Both directions have ended on their own (loop thread)."""
        if self.closed:
            return
        self.close(self._why or "both directions finished")

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
        if self._dead or self._done is not None:  # a threaded relay's pipes are its own
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
        """See ``Relay.close`` (loop thread). A threaded relay's threads are woken by
        shutting both sockets down and waited for before any descriptor is closed; should
        one not end within ``_CLOSE_WAIT`` s, the last thread out closes them instead."""
        if self.closed:
            return
        done = self._done
        if done is None:
            if not self._dead:
                self._teardown()
                self._closed(reason)
            return
        self._dead = True
        self._wake_threads()
        done.wait(_CLOSE_WAIT)
        assert self._lock is not None
        with self._lock:
            self._orphan = self._left > 0
            orphan = self._orphan
        if not orphan:
            self._close_fds_once()
        if self._placed is not None:
            self._placed.release(self)
        self._closed(reason)

    def _close_fds_once(self) -> None:
        """Close the pipes and both sockets of a threaded relay once no thread uses
        them; whichever side gets here first does it, the other does nothing."""
        assert self._lock is not None
        with self._lock:
            if self._claimed:
                return
            self._claimed = True
        self._close_fds()

    def _close_fds(self) -> None:
        """Close the pipes and both sockets of a threaded relay (no thread runs on)."""
        for flow in (self._up, self._down):
            flow.pending = 0
            self._unpipe(flow)
        for sock in self._socks:
            sock.close()

    def _teardown(self) -> None:
        """Unregister and close the pipes and both sockets (loop thread, no threads)."""
        self._dead = True
        for flow in (self._up, self._down):
            self._unregister(flow)
            self._unpipe(flow)
        for sock in self._socks:
            sock.close()

    def _unregister(self, flow: _Flow) -> None:
        """Take the direction's reader and writer off the poller."""
        if flow.reading:
            self._poll.remove_reader(flow.src)
            flow.reading = False
        if flow.writing:
            self._poll.remove_writer(flow.dst)
            flow.writing = False


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
