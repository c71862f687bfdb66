"""One DNS exchange with one server over UDP or TCP, on sockets the caller provides.

The socket comes from a factory (the helper's marked, tunnel-bound sockets in the
product; plain sockets in tests) and is closed after the exchange, so every query has a
fresh kernel-chosen source port. UDP sockets are connected to the server (the kernel
then drops datagrams from anyone else) and the source of every datagram is checked
again; datagrams that are not our answer are ignored until the deadline, and the query
is sent once more halfway through (a lost datagram costs half the timeout, not all of
it). Must run on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable

from core.dns.errors import BadAnswer, DnsError, DnsUnreachable
from core.dns.message import MAX_MESSAGE, Query, Reply
from core.dns.names import Server

__all__ = ["SockFactory", "exchange"]

SockFactory = Callable[[int, str], socket.socket]
"""``(family, "udp" | "tcp") -> an unconnected socket`` (blocking or not: it is made
non-blocking here). Called in a worker thread (it may block); must be thread-safe.
May raise anything: mapped to :class:`DnsUnreachable`."""


def plain_socket(family: int, kind: str) -> socket.socket:
    """A plain socket (no mark, no device binding): for tests and the bed's own tools."""
    return socket.socket(family, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)


async def exchange(
    factory: SockFactory, server: Server, query: Query, *, tcp: bool, within: float
) -> Reply:
    """Ask ``server`` the ``query`` over UDP (or TCP) within ``within`` seconds; the reply.

    Raises :class:`DnsUnreachable` on a timeout, a socket error or no socket;
    :class:`~core.dns.errors.BadAnswer` from :meth:`Query.read`.
    """
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    kind = "tcp" if tcp else "udp"
    try:
        sock = await _socket(factory, family, kind)
    except Exception as exc:  # the factory's own error type (the pool's) is unknown here
        raise DnsUnreachable(f"no {kind} socket into the tunnel: {exc}") from exc
    try:
        sock.setblocking(False)
        async with asyncio.timeout(within):
            if tcp:
                return await _tcp(sock, server, query)
            return await _udp(sock, server, query, resend_after=within / 2)
    except TimeoutError:
        raise DnsUnreachable(f"{_show(server)} did not answer within {within:g} s") from None
    except DnsError:
        raise  # already ours (BadAnswer from the checks): an OSError, but not the socket's
    except OSError as exc:
        raise DnsUnreachable(f"{_show(server)} over {kind}: {exc.strerror or exc}") from exc
    finally:
        sock.close()


async def _udp(sock: socket.socket, server: Server, query: Query, *, resend_after: float) -> Reply:
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, server)
    await loop.sock_sendall(sock, query.wire)
    resend = loop.time() + resend_after
    while True:
        try:
            async with asyncio.timeout_at(resend):
                data, source = await loop.sock_recvfrom(sock, MAX_MESSAGE)
        except TimeoutError:
            resend = float("inf")
            await loop.sock_sendall(sock, query.wire)
            continue
        if not _same(source, server):
            continue
        reply = query.read(data)
        if reply is not None:
            return reply


async def _tcp(sock: socket.socket, server: Server, query: Query) -> Reply:
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, server)
    await loop.sock_sendall(sock, len(query.wire).to_bytes(2, "big") + query.wire)
    # One query per connection: the first complete message must be our answer.
    size = int.from_bytes(await _exactly(sock, 2), "big")
    reply = query.read(await _exactly(sock, size))
    if reply is None:
        raise BadAnswer(f"{_show(server)} over tcp: the answer does not match the query")
    return reply


async def _exactly(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    buf = bytearray()
    while len(buf) < size:
        chunk = await loop.sock_recv(sock, min(size - len(buf), 65536))
        if not chunk:
            raise ConnectionResetError("the server closed the connection mid-answer")
        buf += chunk
    return bytes(buf)


def _same(source: object, server: Server) -> bool:
    if not isinstance(source, tuple) or len(source) < 2:
        return False
    try:
        address = ipaddress.ip_address(str(source[0]).partition("%")[0]).compressed
    except ValueError:
        return False
    return address == server[0] and source[1] == server[1]


async def _socket(factory: SockFactory, family: int, kind: str) -> socket.socket:
    """A socket from ``factory``, called in a worker thread unless it is ``plain_socket``.

    The helper's pool fetches from the helper in the caller's thread when it runs dry
    (up to seconds): called on the loop, that would stall every connection. A socket
    that arrives after the caller was cancelled is closed, not leaked.
    """
    if factory is plain_socket:
        return plain_socket(family, kind)
    future = asyncio.get_running_loop().run_in_executor(None, factory, family, kind)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(_close_late)
        raise


def _close_late(future: asyncio.Future[socket.socket]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


def _show(server: Server) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
