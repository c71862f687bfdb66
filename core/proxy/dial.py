"""Reaching destinations and saying goodbye: resolver/connector seams and the final answer.

``Resolver`` and ``Connector`` are the injection points the engine uses to resolve with
the tunnel's DNS and connect through the tunnel; ``system_resolver``/``system_connector``
are the OS defaults. ``tunnel_connector`` builds a connector from a ``SocketSource``:
sockets the privileged helper has already marked and bound to the tunnel interface
(``SO_MARK`` + ``SO_BINDTODEVICE``), so a dial can only leave through the tunnel — a
LAN route more specific than a resource's range, or an IPv6 path beside an IPv4-only
tunnel, is never followed. With no tunnel socket to be had it raises ``TunnelDown``: it
never falls back to the OS's routes. ``send_final`` writes a refusal and closes politely
(lingering).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence

from core.proxy.reactor import Poller

__all__ = [
    "TUNNEL_DOWN",
    "CallbackDial",
    "Connector",
    "DialDone",
    "Dialer",
    "Resolver",
    "SocketSource",
    "TunnelDown",
    "plain_socket",
    "send_final",
    "system_connector",
    "system_resolver",
    "tunnel_connector",
    "tunnel_opener",
]

_log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``resolve(host, port) -> addresses``; may raise OSError (treated as unresolvable)."""
Connector = Callable[[Sequence[str], int], Awaitable[socket.socket]]
"""``connect(addresses, port) -> connected socket``; raises OSError when none answer."""

SocketSource = Callable[[int, str], socket.socket]
"""``source(family, kind) -> socket``: an unconnected socket of ``family`` (AF_INET or
AF_INET6) and ``kind`` ("tcp"), already marked and bound to the tunnel by the helper
(``wg_backends.helper.sockpool.MarkedSockets.take``). Raises (``NoTunnelSockets``, an
``OSError``…) when there is no tunnel to bind to."""

TUNNEL_DOWN = "the tunnel is down: not sent over the local network"
"""The reason given when a connection was allowed but no tunnel socket could be had."""

_LINGER = 1.0  # seconds a refused client gets to read its answer before the close
_LINGER_BYTES = 1 << 16


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """Resolve ``host`` with the OS resolver (``loop.getaddrinfo``)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


class TunnelDown(OSError):
    """No socket bound to the tunnel could be had: the connection is refused rather
    than sent by the OS's routes. ``str()`` is ``TUNNEL_DOWN``; ``detail`` says what
    the socket source answered. The errno is ENETUNREACH (SOCKS5 "network unreachable")."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(errno.ENETUNREACH, TUNNEL_DOWN)
        self.detail = detail

    def __str__(self) -> str:
        return TUNNEL_DOWN


async def _dial(sock: socket.socket, address: str, port: int) -> socket.socket:
    """Connect ``sock`` (made non-blocking) to ``address:port``; closed on any failure."""
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except BaseException:
        sock.close()
        raise
    return sock


class Dialer:
    """A ``Connector`` that can also open the unconnected socket for one address at
    once (``open``), so the proxy can connect with loop callbacks (``CallbackDial``)
    instead of a task awaiting ``sock_connect``. Calling it dials like any connector:
    ``addresses`` in order, the first that answers wins.

    ``opener(family)`` returns an unconnected TCP socket of ``family`` or raises:
    ``TunnelDown`` when there is none to be had (the address is skipped; when no address
    got a socket, ``TunnelDown`` is raised), any other ``OSError`` counts as that
    address's failure.
    """

    __slots__ = ("_opener",)

    def __init__(self, opener: Callable[[int], socket.socket]) -> None:
        self._opener = opener

    def open(self, address: str) -> socket.socket:
        """An unconnected, non-blocking TCP socket for ``address``. Raises
        ``TunnelDown`` or ``OSError``."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = self._opener(family)
        if sock.gettimeout() != 0.0:
            try:
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
        return sock

    async def __call__(self, addresses: Sequence[str], port: int) -> socket.socket:
        """Connect to the first of ``addresses`` that answers. Raises OSError."""
        if not addresses:
            raise OSError("no address to connect to")
        last: OSError | None = None
        missing = ""
        got_socket = False
        for address in addresses:
            try:
                sock = self.open(address)
            except TunnelDown as exc:
                missing = missing or exc.detail
                continue
            except OSError as exc:
                got_socket, last = True, exc
                continue
            got_socket = True
            try:
                return await _dial(sock, address, port)
            except OSError as exc:
                last = exc
        if last is not None or got_socket:
            raise last or OSError("no address to connect to")
        _log.debug("no tunnel socket for %s: %s", list(addresses), missing)
        raise TunnelDown(missing)


def plain_socket(family: int) -> socket.socket:
    """An unconnected TCP socket of ``family`` (the OS's routes): ``system_connector``'s
    opener."""
    # Non-blocking from birth where the OS allows it: one system call fewer per dial.
    return socket.socket(family, socket.SOCK_STREAM | _NONBLOCK)


_NONBLOCK = getattr(socket, "SOCK_NONBLOCK", 0)


system_connector = Dialer(plain_socket)
"""Connect to the first of ``addresses`` that answers (in order), with plain sockets
(the OS's routes). Raises OSError. A ``Dialer``."""


def tunnel_opener(source: SocketSource) -> Callable[[int], socket.socket]:
    """A ``Dialer`` opener over ``source``: what it gives, checked to be a TCP socket of
    the family asked for; ``TunnelDown`` when it gives nothing (or anything else)."""

    def opener(family: int) -> socket.socket:
        try:
            sock = source(family, "tcp")
        except Exception as exc:  # NoTunnelSockets, OSError, a broken pool: fail closed
            raise TunnelDown(f"{type(exc).__name__}: {exc}") from exc
        if sock.family != family or sock.type != socket.SOCK_STREAM:
            sock.close()  # not what was asked for: never dial with it
            raise TunnelDown(f"the socket source gave a {sock.family!r} {sock.type!r}")
        return sock

    return opener


def tunnel_connector(source: SocketSource, *, offload: bool = False) -> Connector:
    """A ``Connector`` that dials only with sockets from ``source`` (see
    ``SocketSource``), trying ``addresses`` in order.

    An address whose family has no tunnel socket is skipped (an AAAA answer beside an
    IPv4-only tunnel is never dialled over the LAN); when no address got a socket at
    all, ``TunnelDown`` is raised; otherwise the last connect error. ``source`` is called
    on the proxy's loop thread, so it must answer at once (a pre-filled pool); the
    connector is then a ``Dialer`` (callback connects). With ``offload`` it is called on
    the loop's default executor instead (a slower path for a source that may block).
    Anything ``source`` raises counts as "no tunnel socket": a broken source can refuse
    connections, never leak them.
    """
    opener = tunnel_opener(source)
    if not offload:
        return Dialer(opener)

    async def connect(addresses: Sequence[str], port: int) -> socket.socket:
        if not addresses:
            raise OSError("no address to connect to")
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        missing = ""
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            try:
                sock = await loop.run_in_executor(None, opener, family)
            except TunnelDown as exc:
                missing = missing or exc.detail
                continue
            try:
                return await _dial(sock, address, port)
            except OSError as exc:
                last = exc
        if last is not None:
            raise last
        _log.debug("no tunnel socket for %s: %s", list(addresses), missing)
        raise TunnelDown(missing)

    return connect


DialDone = Callable[[socket.socket | None, BaseException | None], None]
"""``done(sock, None)`` with the connected socket, or ``done(None, error)``."""


class CallbackDial:
    """Connects to the first of ``addresses`` that answers, driven by loop callbacks
    (non-blocking ``connect`` and a writer callback: no task, future or timeout
    context). ``done`` is called exactly once on the loop thread — with the connected
    socket, or with the error a ``Dialer`` call would raise (``TimeoutError`` after
    ``timeout`` seconds) — unless ``cancel`` came first. It may be called before the
    constructor returns (a connect that completes at once, or no address at all)."""

    __slots__ = (
        "_addresses",
        "_dialer",
        "_done",
        "_i",
        "_last",
        "_loop",
        "_missing",
        "_poll",
        "_port",
        "_sock",
        "_timer",
        "_tried",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        dialer: Dialer,
        addresses: Sequence[str],
        port: int,
        timeout: float,
        done: DialDone,
        *,
        poller: Poller | None = None,
    ) -> None:
        self._loop = loop
        self._poll: Poller = loop if poller is None else poller
        self._dialer = dialer
        self._addresses = addresses
        self._port = port
        self._done: DialDone | None = done
        self._i = 0
        self._sock: socket.socket | None = None
        self._last: BaseException | None = None
        self._missing = ""
        self._tried = False
        self._timer: asyncio.TimerHandle | None = loop.call_later(timeout, self._timeout)
        self._next()

    def _next(self) -> None:
        addresses = self._addresses
        while self._i < len(addresses):
            address = addresses[self._i]
            self._i += 1
            try:
                sock = self._dialer.open(address)
            except TunnelDown as exc:
                self._missing = self._missing or exc.detail
                continue
            except OSError as exc:
                self._tried, self._last = True, exc
                continue
            self._tried = True
            try:
                err = sock.connect_ex((address, self._port))
            except OSError as exc:
                sock.close()
                self._last = exc
                continue
            if err == 0:
                self._finish(sock, None)
                return
            if err in _IN_PROGRESS:
                # A local destination has usually answered by the time connect returns
                # (the kernel processes the SYN-ACK as the socket is released): one
                # getpeername spares the writer callback and a trip through the loop.
                try:
                    sock.getpeername()
                except OSError:
                    pass
                else:
                    self._finish(sock, None)
                    return
                self._sock = sock
                self._poll.add_writer(sock.fileno(), self._writable)
                return
            sock.close()
            self._last = _os_error(err)
        if self._last is not None or self._tried:
            self._finish(None, self._last or OSError("no address to connect to"))
        elif not addresses:
            self._finish(None, OSError("no address to connect to"))
        else:
            _log.debug("no tunnel socket for %s: %s", list(addresses), self._missing)
            self._finish(None, TunnelDown(self._missing))

    def _writable(self) -> None:
        sock = self._sock
        if sock is None or self._done is None:
            return
        self._poll.remove_writer(sock.fileno())
        self._sock = None
        try:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except OSError as exc:
            err = exc.errno or errno.EIO
        if err == 0:
            self._finish(sock, None)
            return
        sock.close()
        self._last = _os_error(err)
        self._next()

    def _timeout(self) -> None:
        self._timer = None
        self._drop()
        self._finish(None, TimeoutError())

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            self._poll.remove_writer(sock.fileno())
            sock.close()

    def _finish(self, sock: socket.socket | None, exc: BaseException | None) -> None:
        done, self._done = self._done, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if done is None:  # cancelled meanwhile
            if sock is not None:
                sock.close()
            return
        done(sock, exc)

    def cancel(self) -> None:
        """Stop dialling and close the socket in progress; ``done`` is not called.
        Idempotent."""
        self._done = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._drop()


_IN_PROGRESS = frozenset((errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK, errno.EALREADY))
_IN_PROGRESS |= {getattr(errno, "WSAEWOULDBLOCK", errno.EWOULDBLOCK)}


def _os_error(err: int) -> OSError:
    """The ``OSError`` subclass for ``err`` (ConnectionRefusedError for ECONNREFUSED…)."""
    return OSError(err, os.strerror(err))


async def send_final(loop: asyncio.AbstractEventLoop, conn: socket.socket, data: bytes) -> None:
    """Best-effort final answer, then a short lingering close.

    Closing a socket with unread input makes the kernel send RST, which can destroy the
    answer before the client reads it; so the write side is shut and a bounded amount of
    input is drained for a moment first (what HTTP servers call a lingering close).
    """
    if not data:
        return
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(_LINGER):
            await loop.sock_sendall(conn, data)
            conn.shutdown(socket.SHUT_WR)
            drained = 0
            while drained < _LINGER_BYTES:
                chunk = await loop.sock_recv(conn, 16384)
                if not chunk:
                    break
                drained += len(chunk)
