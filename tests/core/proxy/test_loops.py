"""The proxy's own threads run uvloop where it is installed; the switch back to asyncio."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from core.proxy import Limits, ProxyServer
from core.proxy.loops import LOOP_ENV, loop_kind, new_loop
from core.proxy.thread import ProxyThread
from tests.core.proxy.helpers import EchoServer, TableDecider

pytestmark = pytest.mark.integration

needs_uvloop = pytest.mark.skipif(
    sys.platform == "win32", reason="uvloop does not exist for Windows"
)


@needs_uvloop
def test_uvloop_is_installed_and_preferred(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvloop  # a dependency wherever it exists: its absence is a packaging bug

    monkeypatch.delenv(LOOP_ENV, raising=False)
    assert loop_kind() == "uvloop"
    loop = new_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


@pytest.mark.parametrize("value", ["asyncio", " AsyncIO "])
def test_switch_forces_asyncio(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(LOOP_ENV, value)
    assert loop_kind() == "asyncio"
    for selector in (False, True):
        loop = new_loop(selector=selector)
        try:
            assert isinstance(loop, asyncio.BaseEventLoop)
            if selector:
                assert isinstance(loop, asyncio.SelectorEventLoop)
        finally:
            loop.close()


def test_uvloop_missing_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOOP_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    assert loop_kind() == "asyncio"
    loop = new_loop(selector=True)
    try:
        assert isinstance(loop, asyncio.SelectorEventLoop)
    finally:
        loop.close()


async def _relay_through_thread(relay: str) -> asyncio.AbstractEventLoop:
    """Relay 1 MiB plus a half-close through a ProxyThread; the loop its thread ran."""
    echo = EchoServer()
    await echo.start()
    decider = TableDecider([("loop", (), ("127.0.0.0/8",), ())])
    limits = Limits(relay=relay, bulk_threads=1, bulk_after=64 << 10)  # type: ignore[arg-type]
    server = ProxyServer(decider, host_uid=os.getuid(), hosts=("127.0.0.1",), limits=limits)
    proxy = ProxyThread(server)
    try:
        await proxy.start(0)
        loop = proxy._loop
        assert loop is not None
        # Greeting, request and the first bytes in one write: the relay is set up while
        # they wait (uvloop may read them before the relay starts).
        r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
        ahead = os.urandom(3000)
        request = b"\x05\x01\x00" + b"\x05\x01\x00\x01" + bytes([127, 0, 0, 1])
        w.write(request + echo.port.to_bytes(2, "big") + ahead)
        assert (await r.readexactly(12))[:4] == b"\x05\x00\x05\x00"
        assert await r.readexactly(len(ahead)) == ahead
        blob = os.urandom(1 << 20)
        w.write(blob)
        assert await r.readexactly(len(blob)) == blob
        w.write_eof()
        assert await r.read() == b""  # the echo's EOF came back through the relay
        w.close()
        return loop
    finally:
        await proxy.stop()
        await echo.stop()


@needs_uvloop
@pytest.mark.parametrize("relay", ["splice", "buffered"])
async def test_proxy_thread_relays_on_uvloop(monkeypatch: pytest.MonkeyPatch, relay: str) -> None:
    import uvloop

    monkeypatch.delenv(LOOP_ENV, raising=False)
    if relay == "splice" and not sys.platform.startswith("linux"):
        pytest.skip("splice(2) is Linux's")
    loop = await _relay_through_thread(relay)
    assert isinstance(loop, uvloop.Loop)


async def test_proxy_thread_relays_on_asyncio_when_switched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(LOOP_ENV, "asyncio")
    loop = await _relay_through_thread("buffered")
    assert isinstance(loop, asyncio.BaseEventLoop)


@needs_uvloop
async def test_buffered_relay_keeps_bytes_sent_right_after_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client speaks as soon as it has the answer, while the relay is still being set
    up: uvloop reads that at once (asyncio waits), and not a byte may be lost or cut."""
    monkeypatch.delenv(LOOP_ENV, raising=False)
    echo = EchoServer()
    await echo.start()
    decider = TableDecider([("loop", (), ("127.0.0.0/8",), ())])
    limits = Limits(relay="buffered")
    server = ProxyServer(decider, host_uid=os.getuid(), hosts=("127.0.0.1",), limits=limits)
    proxy = ProxyThread(server)
    try:
        await proxy.start(0)
        request = b"\x05\x01\x00" + b"\x05\x01\x00\x01" + bytes([127, 0, 0, 1])
        for _ in range(40):
            r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
            w.write(request + echo.port.to_bytes(2, "big"))
            assert (await r.readexactly(12))[:4] == b"\x05\x00\x05\x00"
            data = os.urandom(500)
            w.write(data)
            assert await asyncio.wait_for(r.readexactly(len(data)), 5) == data
            w.close()
    finally:
        await proxy.stop()
        await echo.stop()
