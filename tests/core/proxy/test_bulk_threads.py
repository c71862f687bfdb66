"""Bulk splice relays on worker threads (issue 22): ``relay.BulkLoops``.

A relay that has moved ``bulk_after`` bytes in one direction moves to one of a few worker
threads. These tests drive real sockets through the proxy and check that the move keeps
every behaviour of the loop-thread relay: bytes exact and never crossing streams,
half-close, byte counts, the thread bound, short connections never moved, and closes
from the loop thread (revocation, the idle sweep, ``stop``) that are immediate, with no
descriptor or thread left behind; hostile ends (a reset in the middle of a bulk stream)
too.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
from collections.abc import AsyncIterator

import pytest

from core.proxy import Limits, ProxyServer
from core.proxy.errors import ProxyConfigError
from core.proxy.model import EventKind, ProxyEvent
from core.proxy.relay import SpliceRelay, splice_available
from core.proxy.server import ProxyServer as _Server
from tests.core.proxy.helpers import EchoServer, TableDecider, socks_open

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not splice_available(), reason="splice relays are Linux only"),
]

_BULK_AFTER = 64 << 10


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    e = EchoServer()
    await e.start()
    yield e
    await e.stop()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _bulk_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("proxy-bulk-")]


async def _proxy(
    echo: EchoServer, **limits: float
) -> tuple[ProxyServer, TableDecider, list[ProxyEvent]]:
    decider = TableDecider([("loop", (), ("127.0.0.0/8",), (echo.port,))])
    events: list[ProxyEvent] = []
    values: dict[str, float] = {"bulk_threads": 2, "bulk_after": _BULK_AFTER, **limits}
    server = ProxyServer(
        decider,
        host_uid=os.getuid(),
        on_event=events.append,
        limits=Limits(relay="splice", handshake_timeout=2.0, **values),  # type: ignore[arg-type]
    )
    await server.start(0)
    return server, decider, events


def _relays(server: _Server) -> list[SpliceRelay]:
    return [r for r in server._relays if isinstance(r, SpliceRelay)]


async def _until(cond: object, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def _pump(r: asyncio.StreamReader, w: asyncio.StreamWriter, payload: bytes) -> bytes:
    """Write ``payload`` while reading its echo; the echoed bytes."""

    async def write() -> None:
        for i in range(0, len(payload), 1 << 16):
            w.write(payload[i : i + (1 << 16)])
            await w.drain()

    writer = asyncio.create_task(write())
    got = await r.readexactly(len(payload))
    await writer
    return got


async def test_bulk_moves_to_a_worker_exact_bytes_half_close_and_counts(
    echo: EchoServer,
) -> None:
    echo.after_eof = b"after-eof"
    server, _decider, _events = await _proxy(echo)
    try:
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        assert code == 0
        payload = os.urandom(3 << 20)
        assert hashlib.sha256(await _pump(r, w, payload)).digest() == (
            hashlib.sha256(payload).digest()
        )
        (relay,) = _relays(server)
        assert relay.threaded  # moved once past bulk_after
        assert relay.bytes_up == relay.bytes_down == len(payload)
        # Half-close on the worker: EOF goes through, the answer after it still arrives.
        w.write_eof()
        assert await r.read() == b"after-eof"
        w.close()
        await _until(lambda: not server._relays)  # reported back on the loop thread
        count = server.counters().resources["loop"]
        assert count.bytes_up == len(payload)
        assert count.bytes_down == len(payload) + len(b"after-eof")
        assert count.active == 0
        assert relay.close_reason == "both directions finished"
    finally:
        await server.stop()
    assert not _bulk_threads()  # stop ends the workers


async def test_short_connections_never_pay_a_thread(echo: EchoServer) -> None:
    server, _decider, _events = await _proxy(echo, bulk_after=256 << 10)
    try:
        for i in range(30):
            code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
            assert code == 0
            data = bytes([i]) * 4000
            w.write(data)
            assert await r.readexactly(len(data)) == data
            w.close()
            await w.wait_closed()
        assert server._bulk is not None
        assert len(server._bulk) == 0
        assert not _bulk_threads()
    finally:
        await server.stop()


async def test_many_streams_share_few_threads_and_never_mix_bytes(echo: EchoServer) -> None:
    server, _decider, _events = await _proxy(echo)
    try:
        streams = [await socks_open(server.port, "127.0.0.1", echo.port) for _ in range(8)]
        payloads = [os.urandom((1 << 20) + i * 4099) for i in range(8)]
        got = await asyncio.gather(
            *(_pump(r, w, p) for (_c, r, w), p in zip(streams, payloads, strict=True))
        )
        assert got == payloads
        assert all(relay.threaded for relay in _relays(server))
        assert server._bulk is not None
        assert len(server._bulk) == 2  # bounded: eight bulk streams, two threads
        assert len(_bulk_threads()) == 2
        for _c, _r, w in streams:
            w.close()
        await _until(lambda: not server._relays)
        # Both threads' slots are free again: the next bulk relay goes to one of them.
        assert all(worker.relays == 0 for worker in server._bulk._workers)
    finally:
        await server.stop()


async def test_revocation_closes_a_worker_relay_before_reevaluate_returns(
    echo: EchoServer,
) -> None:
    server, decider, events = await _proxy(echo)
    try:
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        assert code == 0
        await _pump(r, w, os.urandom(1 << 20))
        (relay,) = _relays(server)
        assert relay.threaded
        fds = relay._up.src, relay._down.src
        decider.rules.clear()  # deny from now on
        assert server.reevaluate() == 1
        # Immediate: closed, reported and its sockets gone before reevaluate returned.
        assert relay.closed
        assert relay.close_reason.startswith("revoked:")
        assert not server._relays
        for fd in fds:
            with pytest.raises(OSError):
                os.fstat(fd)
        await _until(lambda: [e.kind for e in events].count(EventKind.REVOKED) == 1)
        # The client sees the end, and no byte gets through any more.
        w.write(b"x" * 1000)
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(r.readexactly(1 << 20), 5)
        w.close()
    finally:
        await server.stop()


async def test_the_idle_sweep_closes_a_worker_relay(echo: EchoServer) -> None:
    server, _decider, _events = await _proxy(echo, idle_timeout=0.6)
    try:
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        assert code == 0
        await _pump(r, w, os.urandom(1 << 20))
        (relay,) = _relays(server)
        assert relay.threaded
        await _until(lambda: relay.closed)
        assert relay.close_reason == "idle timeout"
        assert await asyncio.wait_for(r.read(), 5) == b""
        w.close()
    finally:
        await server.stop()


async def test_stop_and_resets_during_bulk_leave_nothing(echo: EchoServer) -> None:
    server, _decider, _events = await _proxy(echo)
    await asyncio.sleep(0.05)
    before = _open_fds()
    threads_before = threading.active_count()
    try:
        # A client that resets in the middle of a bulk stream on a worker.
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        assert code == 0
        await _pump(r, w, os.urandom(1 << 20))
        assert _relays(server)[0].threaded
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        w.write(os.urandom(1 << 20))
        w.transport.abort()  # RST with data in flight
        await _until(lambda: not server._relays)
        # Streams busy on workers while the proxy stops.
        streams = [await socks_open(server.port, "127.0.0.1", echo.port) for _ in range(4)]
        for _c, r, w in streams:
            await _pump(r, w, os.urandom(300 << 10))
        for _c, _r, w in streams:
            w.write(os.urandom(1 << 20))
        assert all(relay.threaded for relay in _relays(server))
    finally:
        await server.stop()
    assert not server._relays
    assert not _bulk_threads()
    for _c, r, w in streams:
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(r.readexactly(4 << 20), 5)
        w.close()
    await asyncio.sleep(0.1)
    assert _open_fds() <= before + 6  # the echo server's own sockets at most
    assert threading.active_count() <= threads_before


async def test_no_worker_threads_when_disabled(echo: EchoServer) -> None:
    server, _decider, _events = await _proxy(echo, bulk_threads=0)
    try:
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        assert code == 0
        payload = os.urandom(2 << 20)
        assert await _pump(r, w, payload) == payload
        assert not any(relay.threaded for relay in _relays(server))
        assert not _bulk_threads()
        w.close()
    finally:
        await server.stop()


@pytest.mark.parametrize("values", [{"bulk_threads": -1}, {"bulk_threads": 65}, {"bulk_after": -1}])
def test_nonsense_bulk_limits_are_refused(values: dict[str, int]) -> None:
    with pytest.raises(ProxyConfigError):
        Limits(**values)  # type: ignore[arg-type]
