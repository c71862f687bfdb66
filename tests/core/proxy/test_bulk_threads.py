"""Bulk splice relays on their own threads (issue 22): ``relay.BulkThreads``.

A relay that has moved ``bulk_after`` bytes in one direction is carried from then on by a
thread per direction with blocking ``splice``, while the cap (``bulk_threads``) allows.
These tests drive real sockets through the proxy and check that the move keeps every
behaviour of the loop-thread relay: bytes exact and never crossing streams, half-close,
byte counts, the cap (relays past it stay on the loop and move once a place frees), short
connections never moved, and closes from the loop thread (revocation, the idle sweep,
``stop``) that are immediate even while a thread is blocked, with no descriptor or thread
left behind; hostile ends (a reset in the middle of a bulk stream) too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import threading
from collections.abc import AsyncIterator

import pytest

from core.proxy import Limits, ProxyServer
from core.proxy import relay as relay_module
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


def _threads_named(name: str) -> list[int]:
    """The process's OS threads (ids) with that name (bulk threads name themselves)."""
    ids = []
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # ended meanwhile
            with open(f"/proc/self/task/{task}/comm") as f:
                if f.read().strip() == name:
                    ids.append(int(task))
    return ids


def _bulk_threads() -> list[int]:
    """Threads carrying a bulk relay's direction now."""
    return _threads_named("proxy-bulk")


def _parked() -> list[int]:
    """Bulk threads parked for the next bulk relay."""
    return _threads_named("proxy-bulk-idle")


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


async def _threaded_stream(
    server: _Server, echo: EchoServer
) -> tuple[SpliceRelay, asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream through the proxy that has moved 1 MiB each way, now on its threads."""
    code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
    assert code == 0
    await _pump(r, w, os.urandom(1 << 20))
    (relay,) = _relays(server)
    assert relay.threaded
    return relay, r, w


async def test_bulk_goes_threaded_exact_bytes_half_close_and_counts(
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
        assert len(_bulk_threads()) == 2  # one per direction
        assert relay.bytes_up == relay.bytes_down == len(payload)
        # The idle sweep's trim must leave a threaded relay's pipes alone.
        relay.trim()
        more = os.urandom(1 << 20)
        assert await _pump(r, w, more) == more
        # Half-close on the threads: EOF goes through, the answer after it still arrives.
        w.write_eof()
        assert await r.read() == b"after-eof"
        w.close()
        await _until(lambda: not server._relays)  # reported back on the loop thread
        total = len(payload) + len(more)
        count = server.counters().resources["loop"]
        assert count.bytes_up == total
        assert count.bytes_down == total + len(b"after-eof")
        assert count.active == 0
        assert relay.close_reason == "both directions finished"
        await _until(lambda: not _bulk_threads())  # the threads let go with their relay
        await _until(lambda: len(_parked()) == 2)  # and park for the next one
        assert server._bulk is not None
        assert len(server._bulk) == 0
    finally:
        await server.stop()


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
        await _until(lambda: not _bulk_threads())
    finally:
        await server.stop()


async def test_the_cap_keeps_the_rest_on_the_loop_until_a_place_frees(
    echo: EchoServer,
) -> None:
    # Room for two threaded relays (two threads each); four bulk streams.
    server, _decider, _events = await _proxy(echo, bulk_threads=4)
    try:
        streams = [await socks_open(server.port, "127.0.0.1", echo.port) for _ in range(4)]
        payloads = [os.urandom((1 << 20) + i * 4099) for i in range(4)]
        got = await asyncio.gather(
            *(_pump(r, w, p) for (_c, r, w), p in zip(streams, payloads, strict=True))
        )
        assert got == payloads  # exact, and never mixed between streams
        relays = _relays(server)
        threaded = [relay for relay in relays if relay.threaded]
        assert len(threaded) == 2
        assert server._bulk is not None
        assert len(server._bulk) == 4
        assert len(_bulk_threads()) == 4
        # The threaded streams end: their places free up, and the next bulk bytes of the
        # streams on the loop take them.
        ends = [w for (_c, _r, w), relay in zip(streams, relays, strict=True) if relay.threaded]
        assert len(ends) == 2
        for w in ends:
            w.close()
        await _until(lambda: all(relay.closed for relay in threaded))
        await _until(lambda: not _bulk_threads())
        rest = [
            (r, w) for (_c, r, w), relay in zip(streams, relays, strict=True) if not relay.threaded
        ]
        for r, w in rest:
            data = os.urandom(1 << 20)
            assert await _pump(r, w, data) == data
        assert all(relay.threaded for relay in _relays(server))
        assert len(_bulk_threads()) == 4
        for _r, w in rest:
            w.close()
        await _until(lambda: not server._relays)
        await _until(lambda: not _bulk_threads())
        assert len(server._bulk) == 0
    finally:
        await server.stop()


async def test_close_wakes_threads_blocked_on_a_peer_that_stopped_reading() -> None:
    """An upstream that never reads: the up thread blocks in ``splice`` on a full socket
    buffer. A revocation still closes at once, joins both threads and frees every fd."""
    sink = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    sink.setblocking(False)
    decider = TableDecider([("loop", (), ("127.0.0.0/8",), (sink.getsockname()[1],))])
    server = ProxyServer(
        decider,
        host_uid=os.getuid(),
        limits=Limits(relay="splice", bulk_threads=2, bulk_after=_BULK_AFTER),
    )
    await server.start(0)
    try:
        code, _r, w = await socks_open(server.port, "127.0.0.1", sink.getsockname()[1])
        assert code == 0

        def take() -> bool:
            with contextlib.suppress(BlockingIOError):
                accepted.append(sink.accept()[0])
            return bool(accepted)

        await _until(take)
        blob = os.urandom(1 << 20)

        async def flood() -> None:
            while True:
                w.write(blob)
                await w.drain()

        flooding = asyncio.create_task(flood())
        await _until(lambda: any(relay.threaded for relay in _relays(server)))
        (relay,) = _relays(server)
        moved = -1
        while moved != relay.bytes_up:  # until the up thread is stuck on the full sink
            moved = relay.bytes_up
            await asyncio.sleep(0.2)
        assert len(_bulk_threads()) == 2
        fds = relay._up.src, relay._down.src, relay._up.pr, relay._up.pw
        decider.rules.clear()
        assert server.reevaluate() == 1
        assert relay.closed
        for fd in fds:  # closed before reevaluate returned: the threads had let go of them
            with pytest.raises(OSError):
                os.fstat(fd)
        await _until(lambda: not _bulk_threads())  # and they exit right after
        with pytest.raises((ConnectionError, OSError)):
            await asyncio.wait_for(flooding, 5)
        w.close()
    finally:
        await server.stop()
        for conn in accepted:
            conn.close()
        sink.close()


async def test_revocation_closes_a_threaded_relay_before_reevaluate_returns(
    echo: EchoServer,
) -> None:
    server, decider, events = await _proxy(echo)
    try:
        relay, r, w = await _threaded_stream(server, echo)
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
        await _until(lambda: not _bulk_threads())
        await _until(lambda: [e.kind for e in events].count(EventKind.REVOKED) == 1)
        # The client sees the end, and no byte gets through any more.
        w.write(b"x" * 1000)
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(r.readexactly(1 << 20), 5)
        w.close()
    finally:
        await server.stop()


async def test_a_close_that_cannot_wait_leaves_the_fds_to_the_last_thread(
    echo: EchoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the threads not end in time, the close is still reported at once, and the
    last thread out closes the descriptors: never before it, never twice."""
    monkeypatch.setattr(relay_module, "_CLOSE_WAIT", 0.05)
    held = threading.Event()  # the threads are held just before they let go of the fds
    ended_one = SpliceRelay._ended_one

    def slow_end(self: SpliceRelay) -> None:
        held.wait(10)
        ended_one(self)

    monkeypatch.setattr(SpliceRelay, "_ended_one", slow_end)
    server, decider, _events = await _proxy(echo)
    try:
        relay, r, w = await _threaded_stream(server, echo)
        socks = relay._socks
        decider.rules.clear()
        assert server.reevaluate() == 1
        assert relay.closed  # reported after _CLOSE_WAIT, not after the threads
        assert not server._relays
        assert all(sock.fileno() != -1 for sock in socks)  # not closed under a thread
        held.set()
        await _until(lambda: all(sock.fileno() == -1 for sock in socks))
        await _until(lambda: not _bulk_threads())
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(r.readexactly(1 << 20), 5)
        w.close()
    finally:
        held.set()
        await server.stop()


async def test_the_idle_sweep_closes_a_threaded_relay(echo: EchoServer) -> None:
    server, _decider, _events = await _proxy(echo, idle_timeout=0.6)
    try:
        relay, r, w = await _threaded_stream(server, echo)
        await _until(lambda: relay.closed)
        assert relay.close_reason == "idle timeout"
        await _until(lambda: not _bulk_threads())
        assert await asyncio.wait_for(r.read(), 5) == b""
        w.close()
    finally:
        await server.stop()


async def test_stop_and_resets_during_bulk_leave_nothing(echo: EchoServer) -> None:
    server, _decider, _events = await _proxy(echo, bulk_threads=8)
    await asyncio.sleep(0.05)
    before = _open_fds()
    threads_before = len(os.listdir("/proc/self/task"))
    try:
        # A client that resets in the middle of a bulk stream on threads.
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        assert code == 0
        await _pump(r, w, os.urandom(1 << 20))
        assert _relays(server)[0].threaded
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        w.write(os.urandom(1 << 20))
        (reset,) = _relays(server)
        w.transport.abort()  # RST with data in flight
        await _until(lambda: not server._relays)
        assert reset.close_reason.startswith(("read error:", "write error:")), reset.close_reason
        # Streams busy on threads while the proxy stops.
        streams = [await socks_open(server.port, "127.0.0.1", echo.port) for _ in range(4)]
        for _c, r, w in streams:
            await _pump(r, w, os.urandom(300 << 10))
        for _c, _r, w in streams:
            w.write(os.urandom(1 << 20))
        assert all(relay.threaded for relay in _relays(server))
    finally:
        await server.stop()
    assert not server._relays
    await _until(lambda: not _bulk_threads() and not _parked())
    for _c, r, w in streams:
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(r.readexactly(4 << 20), 5)
        w.close()
    await asyncio.sleep(0.1)
    assert _open_fds() <= before + 6  # the echo server's own sockets at most
    assert len(os.listdir("/proc/self/task")) <= threads_before


async def test_closes_racing_the_threads_own_end_leave_nothing(echo: EchoServer) -> None:
    """The client ends a threaded stream while the loop revokes it, at varying moments:
    each relay closes once, and no thread or descriptor is left."""
    server, decider, _events = await _proxy(echo, bulk_threads=8)
    await asyncio.sleep(0.05)
    before = _open_fds()
    rules = list(decider.rules)
    try:
        for i in range(20):
            decider.rules[:] = rules
            code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
            assert code == 0
            await _pump(r, w, os.urandom(200 << 10))
            (relay,) = _relays(server)
            assert relay.threaded
            w.write(os.urandom(256 << 10))
            if i % 2:
                w.write_eof()
            else:
                w.transport.abort()
            await asyncio.sleep(0.0005 * (i % 5))
            decider.rules.clear()
            server.reevaluate()
            await _until(lambda: not server._relays)
            assert relay.closed
            await _until(lambda: not _bulk_threads())
            w.close()
        count = server.counters().resources["loop"]
        assert count.connections == 20
        assert count.active == 0
    finally:
        await server.stop()
    await asyncio.sleep(0.1)
    assert _open_fds() <= before + 6  # the echo server's own sockets at most


async def test_parked_threads_carry_the_next_bulk_relays_then_end(echo: EchoServer) -> None:
    """A bulk relay's threads park when it ends; the next bulk relay takes them instead of
    starting new ones; parked threads end after ``idle_wait``, and at ``stop``."""
    server, _decider, _events = await _proxy(echo, bulk_threads=8)
    try:
        assert server._bulk is not None
        server._bulk.idle_wait = 1.0
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        assert code == 0
        await _pump(r, w, os.urandom(1 << 20))
        first = sorted(_bulk_threads())
        assert len(first) == 2
        w.close()
        await _until(lambda: sorted(_parked()) == first)
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        assert code == 0
        payload = os.urandom(2 << 20)
        assert await _pump(r, w, payload) == payload
        assert sorted(_bulk_threads()) == first  # the same two OS threads, no new ones
        assert not _parked()
        w.close()
        await _until(lambda: sorted(_parked()) == first)
        await _until(lambda: not _parked(), timeout=5)  # idle_wait ran out: they end
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        assert code == 0
        await _pump(r, w, os.urandom(1 << 20))
        assert len(_bulk_threads()) == 2  # new threads again
        w.close()
        await _until(lambda: len(_parked()) == 2)
    finally:
        await server.stop()
    await _until(lambda: not _parked())  # stop ends the parked threads


async def test_parked_and_busy_threads_stay_within_the_cap(echo: EchoServer) -> None:
    server, _decider, _events = await _proxy(echo, bulk_threads=4)
    try:
        for _ in range(3):
            streams = [await socks_open(server.port, "127.0.0.1", echo.port) for _ in range(3)]
            await asyncio.gather(*(_pump(r, w, os.urandom(1 << 20)) for _c, r, w in streams))
            assert len(_bulk_threads()) + len(_parked()) <= 4
            for _c, _r, w in streams:
                w.close()
            await _until(lambda: not server._relays)
            await _until(lambda: not _bulk_threads())
            assert len(_parked()) <= 4
    finally:
        await server.stop()
    await _until(lambda: not _parked())


async def test_no_threads_when_disabled(echo: EchoServer) -> None:
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


@pytest.mark.parametrize(
    "values", [{"bulk_threads": -1}, {"bulk_threads": 1025}, {"bulk_after": -1}]
)
def test_nonsense_bulk_limits_are_refused(values: dict[str, int]) -> None:
    with pytest.raises(ProxyConfigError):
        Limits(**values)  # type: ignore[arg-type]
