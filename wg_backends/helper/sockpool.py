"""A blocking, thread-safe pool of the tunnel's marked sockets, fetched from the helper.

The decider dials resources only through sockets the helper made: they carry the
tunnel's fwmark (so the kill switch lets them into the tunnel and the transparent
redirect leaves them alone) and are bound to the tunnel interface (``SO_BINDTODEVICE``:
a rogue, more specific LAN route cannot carry them). :class:`MarkedSockets` keeps its own
connection to the helper (the ``sockets`` verb, descriptors passed with ``SCM_RIGHTS``),
hands out one socket per ``take`` and refills in a background thread when a pool runs
below ``low``. With no tunnel (or no helper) ``take`` raises
:class:`~wg_backends.errors.NoTunnelSockets`: the decider then refuses — it never falls
back to a socket of its own on the OS's routes. Linux only (the helper refuses
elsewhere). :meth:`MarkedSockets.listeners` fetches, on the same connection, duplicates
of the transparent listening sockets the helper holds for the tunnel (``listeners``
verb), for the decider to accept on (``ProxyServer.adopt_transparent``).
"""

from __future__ import annotations

import array
import contextlib
import itertools
import socket
import struct
import threading
from collections import deque
from pathlib import Path
from typing import Final

from wg_backends.errors import NoTunnelSockets, ProtocolError
from wg_backends.helper import protocol as p

__all__ = ["MarkedSockets"]

_HEADER: Final = struct.Struct(">I")
_FAMILIES: Final = {4: 4, 6: 6, int(socket.AF_INET): 4, int(socket.AF_INET6): 6}
_KINDS: Final = ("tcp", "udp")


class MarkedSockets:
    """Marked, interface-bound sockets of ``interface``, ``batch`` at a time.

    ``take(family, kind)`` accepts ``family`` as 4/6 or ``socket.AF_INET``/``AF_INET6``.
    All methods may be called from any thread. Sockets are unconnected and blocking (the
    caller sets non-blocking); a socket handed out is the caller's to close.
    """

    def __init__(
        self,
        socket_path: Path,
        interface: str,
        *,
        batch: int = p.MAX_SOCKETS,
        low: int = 16,
        timeout: float = 5.0,
    ) -> None:
        if not 1 <= batch <= p.MAX_SOCKETS:
            raise ValueError(f"batch must be 1-{p.MAX_SOCKETS}")
        self.socket_path = Path(socket_path)
        self.interface = interface
        self.batch = batch
        self.low = max(0, min(low, batch))
        self.timeout = timeout
        self._pools: dict[tuple[int, str], deque[socket.socket]] = {}
        self._lock = threading.Lock()  # pools, generation, wanted, closed
        self._io = threading.Lock()  # the helper connection (one request at a time)
        self._wake = threading.Condition(self._lock)
        self._wanted: set[tuple[int, str]] = set()
        self._generation = 0
        self._closed = False
        self._conn: socket.socket | None = None
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None

    # ----- public ----------------------------------------------------------------------

    def take(self, family: int, kind: str = "tcp") -> socket.socket:
        """One marked socket. Raises :class:`NoTunnelSockets` (no tunnel, helper gone,
        refused) or ``ValueError`` (bad family/kind)."""
        key = self._key(family, kind)
        with self._lock:
            if self._closed:
                raise NoTunnelSockets("the socket pool is closed")
            pool = self._pools.setdefault(key, deque())
            if pool:
                sock = pool.popleft()
                if len(pool) < self.low:
                    self._want(key)
                return sock
            generation = self._generation
        socks = self._fetch(key)  # empty pool: fetch now, in the caller's thread
        first, rest = socks[0], socks[1:]
        with self._lock:
            if generation == self._generation and not self._closed:
                self._pools.setdefault(key, deque()).extend(rest)
                rest = []
        for s in rest:  # flushed meanwhile: those came from the old tunnel
            s.close()
        return first

    def listeners(self) -> list[socket.socket]:
        """Duplicates of the tunnel's transparent listening sockets (127.0.0.1 and, where
        the host has it, ::1, one port), the caller's to close. Raises
        :class:`NoTunnelSockets` when the tunnel has no redirect (or no tunnel, helper
        gone, refused) or the helper sent anything but listening loopback TCP sockets."""
        with self._lock:
            if self._closed:
                raise NoTunnelSockets("the socket pool is closed")
        msg = p.Listeners(id=next(self._ids), interface=self.interface)
        socks, result = self._exchange(msg)
        try:
            names = [s.getsockname() for s in socks]
            ok = (
                0 < len(socks) <= 2
                and all(_is_loopback_listener(s) for s in socks)
                and len({n[1] for n in names}) == 1
                and result.get("redirect_port") == names[0][1]
            )
        except OSError:
            ok = False
        if not ok:
            _close_all(socks)
            raise NoTunnelSockets("the helper sent no usable listening sockets")
        return socks

    def flush(self) -> None:
        """Drop every pooled socket (e.g. the tunnel was replaced). Idempotent."""
        with self._lock:
            self._generation += 1
            pools, self._pools = self._pools, {}
            self._wanted.clear()
        for pool in pools.values():
            for s in pool:
                s.close()

    def close(self) -> None:
        """Flush, stop the refill thread and close the helper connection. Idempotent."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        self.flush()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.timeout + 1)
        with self._io:
            self._drop_conn()

    def __enter__(self) -> MarkedSockets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- refill ----------------------------------------------------------------------

    def _key(self, family: int, kind: str) -> tuple[int, str]:
        fam = (
            _FAMILIES.get(family)
            if isinstance(family, int) and not isinstance(family, bool)
            else None
        )
        if fam is None:
            raise ValueError(f"family must be 4 or 6, not {family!r}")
        if kind not in _KINDS:
            raise ValueError(f"kind must be tcp or udp, not {kind!r}")
        return fam, kind

    def _want(self, key: tuple[int, str]) -> None:
        # Called with self._lock held.
        self._wanted.add(key)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._refiller, name="marked-sockets", daemon=True
            )
            self._thread.start()
        self._wake.notify()

    def _refiller(self) -> None:
        while True:
            with self._lock:
                while not self._wanted and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                key = self._wanted.pop()
                generation = self._generation
            try:
                socks = self._fetch(key)
            except NoTunnelSockets:
                continue  # the next take() fetches in its own thread and raises there
            with self._lock:
                if generation == self._generation and not self._closed:
                    self._pools.setdefault(key, deque()).extend(socks)
                    socks = []
            for s in socks:
                s.close()

    # ----- helper I/O ------------------------------------------------------------------

    def _fetch(self, key: tuple[int, str]) -> list[socket.socket]:
        family, kind = key
        msg = p.Sockets(
            id=next(self._ids), interface=self.interface, family=family, kind=kind,
            count=self.batch,
        )  # fmt: skip
        socks, _result = self._exchange(msg)
        want_family = socket.AF_INET if family == 4 else socket.AF_INET6
        want_type = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
        if not socks or any(s.family != want_family or s.type != want_type for s in socks):
            _close_all(socks)
            raise NoTunnelSockets("the helper sent no usable sockets")
        return socks

    def _exchange(self, msg: p.Request) -> tuple[list[socket.socket], dict[str, object]]:
        """Send ``msg``; the descriptors that came with the ``ok`` answer and its result.
        Raises :class:`NoTunnelSockets` (descriptors closed then)."""
        with self._io:
            try:
                conn = self._connect()
                conn.sendall(p.encode(msg))
                body, fds = _recv_frame(conn)
            except (OSError, ProtocolError) as exc:
                self._drop_conn()
                raise NoTunnelSockets(f"helper not reachable for sockets: {exc}") from None
        socks: list[socket.socket] = []
        try:
            for fd in fds:
                socks.append(socket.socket(fileno=fd))
        except OSError as exc:  # not a socket: close what was made and the rest
            _close_all(socks)
            for fd in fds[len(socks) :]:
                with contextlib.suppress(OSError):
                    socket.close(fd)
            raise NoTunnelSockets(f"the helper sent a non-socket descriptor: {exc}") from None
        try:
            reply = p.decode_reply(body)
        except ProtocolError as exc:
            _close_all(socks)
            raise NoTunnelSockets(f"bad answer from the helper: {exc}") from None
        if isinstance(reply, p.ErrorReply):
            _close_all(socks)
            raise NoTunnelSockets(f"{reply.code}: {reply.message}", reply.code)
        return socks, reply.result

    def _connect(self) -> socket.socket:
        if self._conn is None:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(self.timeout)
            try:
                conn.connect(str(self.socket_path))
            except OSError:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _drop_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _is_loopback_listener(sock: socket.socket) -> bool:
    """A listening TCP socket bound to 127.0.0.1 or ::1."""
    if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    host = sock.getsockname()[0]
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    return bool(listening) and host in ("127.0.0.1", "::1")


def _close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()


def _recv_frame(conn: socket.socket) -> tuple[bytes, list[int]]:
    """One frame and every descriptor that came with it. Raises ``OSError`` /
    :class:`ProtocolError` (descriptors already received are closed then)."""
    buf = bytearray()
    fds: list[int] = []
    fd_size = array.array("i").itemsize
    try:
        while True:
            if len(buf) >= _HEADER.size:
                (length,) = _HEADER.unpack_from(buf)
                if length > p.MAX_FRAME:
                    raise ProtocolError(f"frame of {length} bytes exceeds {p.MAX_FRAME}")
                if len(buf) >= _HEADER.size + length:
                    if len(buf) > _HEADER.size + length:
                        raise ProtocolError("unexpected bytes after the answer")
                    return bytes(buf[_HEADER.size :]), fds
            data, anc, flags, _ = conn.recvmsg(65536, socket.CMSG_SPACE(p.MAX_SOCKETS * fd_size))
            for level, ctype, cdata in anc:
                if level == socket.SOL_SOCKET and ctype == socket.SCM_RIGHTS:
                    usable = len(cdata) - len(cdata) % fd_size
                    fds.extend(array.array("i", cdata[:usable]))
            if flags & socket.MSG_CTRUNC:
                raise ProtocolError("too many descriptors in one answer")
            if not data:
                raise ConnectionError("the helper closed the connection")
            buf += data
    except BaseException:
        for fd in fds:
            with contextlib.suppress(OSError):
                socket.close(fd)
        raise
