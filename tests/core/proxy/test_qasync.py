"""The proxy on the Qt (qasync) loop the tray app runs the engine on.

Marked ``ui`` so tests/conftest.py gives it a qasync loop: reader/writer callbacks then
go through QSocketNotifiers and timers through Qt, a different path from asyncio's
selector loop the other proxy tests use.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from core.proxy import Limits, ProxyServer
from tests.core.proxy.helpers import EchoServer, TableDecider, socks_open

pytestmark = [pytest.mark.integration, pytest.mark.ui]


@pytest.mark.parametrize("relay", ["splice", "buffered"])
async def test_relay_handshake_timeout_and_revoke_on_qasync(relay: str) -> None:
    import qasync

    assert isinstance(asyncio.get_running_loop(), qasync.QEventLoop)
    echo = EchoServer()
    await echo.start()
    decider = TableDecider([("loop", (), ("127.0.0.0/8",), ())])
    server = ProxyServer(
        decider,
        host_uid=os.getuid(),
        limits=Limits(relay=relay, handshake_timeout=0.3),  # type: ignore[arg-type]
    )
    await server.start(0)
    try:
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        blob = os.urandom(1 << 20) * 4
        w.write(blob)
        got = await r.readexactly(len(blob))
        assert code == 0
        assert got == blob
        slow_r, slow_w = await asyncio.open_connection("127.0.0.1", server.port)
        slow_w.write(b"\x05")  # never finishes its greeting
        assert await asyncio.wait_for(slow_r.read(), 3) == b""
        decider.rules.clear()
        assert server.reevaluate() == 1
        assert await asyncio.wait_for(r.read(), 1) == b""
        w.close()
        slow_w.close()
    finally:
        await server.stop()
        await echo.stop()
