"""The unprivileged side's asyncio client of the helper.

One :class:`HelperClient` holds one connection. Keep it open while a tunnel is wanted:
the helper treats the connection that brought a tunnel up as its owner and brings the
tunnel down when that connection ends (unless always-on is managed). Requests on one
client are serialised; each has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path
from typing import Any

import msgspec

from wg_backends.errors import HelperRefused, HelperUnavailable, ProtocolError
from wg_backends.helper import protocol as p
from wg_backends.spec import TunnelSpec
from wg_backends.status import TunnelStatus

__all__ = ["DEFAULT_SOCKET", "HelperClient"]

DEFAULT_SOCKET = Path("/run/rustronaut/helper.sock")


class HelperClient:
    """Async client. Use ``async with HelperClient(path) as c:`` or ``connect()``/``close()``.

    Every method must be awaited on the loop that connected. Raises
    :class:`HelperUnavailable` (cannot connect, connection lost, timeout),
    :class:`HelperRefused` (the helper's error answer), :class:`ProtocolError`.
    """

    def __init__(self, socket_path: Path = DEFAULT_SOCKET, *, timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._decoder = p.FrameDecoder()

    @property
    def connected(self) -> bool:
        """Whether a connection is open (it may still have been closed by the helper)."""
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> None:
        """Open the connection. Idempotent."""
        if self.connected:
            return
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.socket_path)), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise HelperUnavailable(f"helper not reachable at {self.socket_path}: {exc}") from None
        self._decoder = p.FrameDecoder()

    async def close(self) -> None:
        """Close the connection (the helper then drops tunnels this client owns). Idempotent."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    async def __aenter__(self) -> HelperClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _request(self, msg: p.Request) -> dict[str, Any]:
        async with self._lock:
            await self.connect()
            assert self._reader is not None
            assert self._writer is not None
            try:
                self._writer.write(p.encode(msg))
                await self._writer.drain()
                reply = await asyncio.wait_for(self._read_reply(), self.timeout)
            except (OSError, ConnectionError, TimeoutError, asyncio.IncompleteReadError) as exc:
                await self.close()
                raise HelperUnavailable(f"lost the helper: {exc or type(exc).__name__}") from None
            except ProtocolError:
                await self.close()
                raise
        if isinstance(reply, p.ErrorReply):
            raise HelperRefused(reply.code, reply.message)
        if reply.id != msg.id:
            raise ProtocolError(f"reply id {reply.id} does not match request {msg.id}")
        return reply.result

    async def _read_reply(self) -> p.Reply:
        assert self._reader is not None
        while True:
            for body in self._decoder.feed(b""):
                return p.decode_reply(body)
            data = await self._reader.read(65536)
            if not data:
                raise ConnectionError("helper closed the connection")
            for body in self._decoder.feed(data):
                return p.decode_reply(body)

    async def hello(self) -> dict[str, Any]:
        """The helper's identity: ``helper``, ``version``, ``protocol``, ``backend``, ``uid``."""
        return await self._request(p.Hello(id=next(self._ids)))

    async def up(self, spec: TunnelSpec) -> TunnelStatus:
        """Bring ``spec`` up (must carry the private key); this connection owns it."""
        result = await self._request(p.Up(id=next(self._ids), spec=spec))
        return msgspec.convert(result["status"], TunnelStatus)

    async def down(self, interface: str) -> None:
        """Bring ``interface`` down. Raises :class:`HelperRefused` ``not_up`` if unknown."""
        await self._request(p.Down(id=next(self._ids), interface=interface))

    async def status(self, interface: str) -> TunnelStatus:
        """Live status of ``interface`` (``up=False`` if the helper has no such tunnel)."""
        result = await self._request(p.Status(id=next(self._ids), interface=interface))
        return msgspec.convert(result["status"], TunnelStatus)
