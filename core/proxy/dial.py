"""Reaching destinations and saying goodbye: resolver/connector seams and the final answer.

``Resolver`` and ``Connector`` are the injection points the engine uses to resolve with
the tunnel's DNS and connect through the tunnel; ``system_resolver``/``system_connector``
are the OS defaults. ``send_final`` writes a refusal and closes politely (lingering).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Sequence

__all__ = ["Connector", "Resolver", "send_final", "system_connector", "system_resolver"]

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``resolve(host, port) -> addresses``; may raise OSError (treated as unresolvable)."""
Connector = Callable[[Sequence[str], int], Awaitable[socket.socket]]
"""``connect(addresses, port) -> connected socket``; raises OSError when none answer."""

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
    loop = asyncio.get_running_loop()
    last: OSError = OSError("no address to connect to")
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (address, port))
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise last


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
