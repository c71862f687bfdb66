"""A controller that accepts the event stream and then goes silent is noticed: the stream
ends with "unreachable" (it used to wait forever, and the session stayed "connected")."""

from __future__ import annotations

import asyncio

import pytest

from core.controlplane import ControllerUnreachableError, ControlPlaneClient

pytestmark = [pytest.mark.integration, pytest.mark.hostile_controller]


async def test_a_silent_event_stream_ends_as_unreachable() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
            b"d\r\n: connected\n\n\r\n"
        )
        await writer.drain()
        await asyncio.sleep(30)  # then nothing, not even a keepalive

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = ControlPlaneClient(f"http://127.0.0.1:{port}", proxy=None, event_silence_s=0.5)
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(ControllerUnreachableError):
            await asyncio.wait_for(_drain(client), 5)
        assert asyncio.get_running_loop().time() - started < 3
    finally:
        await client.aclose()
        server.close()


async def _drain(client: ControlPlaneClient) -> None:
    async for _ in client.events("dev-1"):
        pass
