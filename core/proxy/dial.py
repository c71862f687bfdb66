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
import socket
from collections.abc import Awaitable, Callable, Sequence

__all__ = [
    "TUNNEL_DOWN",
    "Connector",
    "Resolver",
    "SocketSource",
    "TunnelDown",
    "send_final",
    "system_connector",
    "system_resolver",
    "tunnel_connector",
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


async def system_connector(addresses: Sequence[str], port: int) -> socket.socket:
    """Connect to the first of ``addresses`` that answers (in order). Raises OSError."""
    last: OSError = OSError("no address to connect to")
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            return await _dial(socket.socket(family, socket.SOCK_STREAM), address, port)
        except OSError as exc:
            last = exc
    raise last


async def _dial(sock: socket.socket, address: str, port: int) -> socket.socket:
    """Connect ``sock`` (made non-blocking) to ``address:port``; closed on any failure."""
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except BaseException:
        sock.close()
        raise
    return sock


class TunnelDown(OSError):
    """No socket bound to the tunnel could be had: the connection is refused rather
    than sent by the OS's routes. ``str()`` is ``TUNNEL_DOWN``; ``detail`` says what
    the socket source answered. The errno is ENETUNREACH (SOCKS5 "network unreachable")."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(errno.ENETUNREACH, TUNNEL_DOWN)
        self.detail = detail

    def __str__(self) -> str:
        return TUNNEL_DOWN


def tunnel_connector(source: SocketSource, *, offload: bool = False) -> Connector:
    """A ``Connector`` that dials only with sockets from ``source`` (see
    ``SocketSource``), trying ``addresses`` in order.

    An address whose family has no tunnel socket is skipped (an AAAA answer beside an
    IPv4-only tunnel is never dialled over the LAN); when no address got a socket at
    all, ``TunnelDown`` is raised; otherwise the last connect error. ``source`` is called
    on the proxy's loop thread, so it must answer at once (a pre-filled pool); with
    ``offload`` it is called on the loop's default executor instead (a slower path for
    a source that may block). Anything ``source`` raises counts as "no tunnel socket":
    a broken source can refuse connections, never leak them.
    """

    async def connect(addresses: Sequence[str], port: int) -> socket.socket:
        if not addresses:
            raise OSError("no address to connect to")
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        missing = ""
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            try:
                if offload:
                    sock = await loop.run_in_executor(None, source, family, "tcp")
                else:
                    sock = source(family, "tcp")
            except Exception as exc:  # NoTunnelSockets, OSError, a broken pool: fail closed
                missing = missing or f"{type(exc).__name__}: {exc}"
                continue
            if sock.family != family or sock.type != socket.SOCK_STREAM:
                sock.close()  # not what was asked for: never dial with it
                missing = missing or f"the socket source gave a {sock.family!r} {sock.type!r}"
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
