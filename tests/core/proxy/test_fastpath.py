"""The task-free connection path (issue 22): callback connects and pooled splice pipes.

With a ``Dialer`` connector (what the engine gives the proxy) a connection to an IP
destination is decided, dialled (``CallbackDial``) and relayed from loop callbacks, with
no task. These tests drive that path with real sockets and check that it keeps every
behaviour of the task path: protocol answers for refused, timed-out and tunnel-less
connects, data sent ahead of the answer, half-close, the connection cap, ``stop`` in the
middle of a connect, and that a pooled pipe never carries one connection's bytes into
another.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from core.policy.api import Effect
from core.proxy import Limits, ProxyServer
from core.proxy.dial import CallbackDial, Dialer, TunnelDown, plain_socket, system_connector
from core.proxy.model import EventKind, ProxyEvent
from core.proxy.relay import PipePool, splice_available
from tests.core.proxy.helpers import EchoServer, TableDecider, socks_open
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    e = EchoServer()
    await e.start()
    yield e
    await e.stop()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _proxy(
    echo: EchoServer,
    *,
    relay: str = "splice",
    connector: object = system_connector,
    extra: tuple[str, ...] = (),
    **limits: float,
) -> tuple[ProxyServer, TableDecider, list[ProxyEvent]]:
    decider = TableDecider([("loop", (), ("127.0.0.0/8", "::1/128", *extra), (echo.port,))])
    events: list[ProxyEvent] = []
    server = ProxyServer(
        decider,
        host_uid=os.getuid(),
        connector=connector,  # type: ignore[arg-type]
        on_event=events.append,
        limits=Limits(relay=relay, handshake_timeout=2.0, **limits),  # type: ignore[arg-type]
    )
    await server.start(0)
    return server, decider, events


@pytest.mark.parametrize("relay", ["splice", "buffered"])
async def test_callback_path_relays_echo_half_close_and_data_sent_ahead(
    echo: EchoServer, relay: str
) -> None:
    server, decider, _events = await _proxy(echo, relay=relay)
    try:
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        assert code == 0
        w.write(b"hello")
        assert await r.readexactly(5) == b"hello"
        w.write_eof()  # half-close: the answer after EOF still arrives
        assert await r.read() == b""
        w.close()
        # The CONNECT and the first bytes in one write (optimistic data): relayed in order.
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        w.write(b"\x05\x01\x00")
        assert await r.readexactly(2) == b"\x05\x00"
        port = echo.port.to_bytes(2, "big")
        w.write(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + port + b"early")
        reply = await r.readexactly(10)
        assert reply[1] == 0
        assert await r.readexactly(5) == b"early"
        w.close()
        # HTTP CONNECT to an IP takes the same path.
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        w.write(f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\n\r\nping".encode())
        head = await r.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert await r.readexactly(4) == b"ping"
        w.close()
        assert [q.host for q in decider.seen] == ["127.0.0.1"] * 3
    finally:
        await server.stop()


async def test_callback_path_refused_timeout_and_denied_answers(echo: EchoServer) -> None:
    # A listener that never accepts, its queue filled: further SYNs go unanswered.
    black = socket.socket()
    black.bind(("127.0.0.1", 0))
    black.listen(0)
    bport = black.getsockname()[1]
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", bport))
        fillers.append(s)
    await asyncio.sleep(0.2)
    server, decider, events = await _proxy(echo, connect_timeout=1.0)
    try:
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        dport = dead.getsockname()[1]
        dead.close()  # nothing listens there now
        decider.rules.append(("dead", (), ("127.0.0.0/8",), (dport, bport)))
        code, _r, w = await socks_open(server.port, "127.0.0.1", dport)
        w.close()
        assert code == 5  # connection refused
        code, _r, w = await socks_open(server.port, "127.0.0.1", bport)
        w.close()
        assert code == 6  # TTL expired: the connect timed out
        code, _r, w = await socks_open(server.port, "127.0.0.1", 9)  # not in the policy
        w.close()
        assert code == 2
        denied = [e for e in events if e.kind is EventKind.DECISION and e.effect is Effect.DENY]
        assert [e.destination for e in denied] == ["127.0.0.1:9"]
        assert not server._dials
        assert not server._relays
    finally:
        await server.stop()
        black.close()
        for s in fillers:
            s.close()


async def test_no_tunnel_socket_is_a_refusal_never_the_local_network(echo: EchoServer) -> None:
    asked: list[int] = []

    def no_tunnel(family: int) -> socket.socket:
        asked.append(family)
        raise TunnelDown("no tunnel sockets")

    server, _decider, events = await _proxy(echo, connector=Dialer(no_tunnel))
    try:
        code, _r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        w.close()
        assert code == 3  # network unreachable
        assert asked == [socket.AF_INET]
        await asyncio.sleep(0.05)
        refused = [e for e in events if e.kind is EventKind.REFUSED]
        assert refused
        assert "tunnel is down" in refused[-1].reason
    finally:
        await server.stop()


async def test_a_socket_of_the_wrong_kind_is_never_dialled() -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[object, object]] = loop.create_future()

    def udp(family: int) -> socket.socket:  # a broken source: a datagram socket
        from core.proxy.dial import tunnel_opener

        return tunnel_opener(lambda fam, kind: socket.socket(fam, socket.SOCK_DGRAM))(family)

    CallbackDial(loop, Dialer(udp), ["127.0.0.1"], 9, 5.0, lambda s, e: done.set_result((s, e)))
    sock, exc = await done
    assert sock is None
    assert isinstance(exc, TunnelDown)


async def test_stop_during_a_connect_closes_everything(echo: EchoServer) -> None:
    black = socket.socket()
    black.bind(("127.0.0.1", 0))
    black.listen(0)
    bport = black.getsockname()[1]
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", bport))
        fillers.append(s)
    await asyncio.sleep(0.2)
    before = _open_fds()
    server, decider, _events = await _proxy(echo, connect_timeout=30.0)
    decider.rules.append(("black", (), ("127.0.0.0/8",), (bport,)))
    r, w = await asyncio.open_connection("127.0.0.1", server.port)
    w.write(b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01" + bport.to_bytes(2, "big"))
    assert await r.readexactly(2) == b"\x05\x00"
    for _ in range(100):
        if server._dials:
            break
        await asyncio.sleep(0.02)
    assert len(server._dials) == 1
    await server.stop()
    assert await asyncio.wait_for(r.read(), 5) == b""  # closed, no answer
    w.close()
    await asyncio.sleep(0.05)
    assert not server._dials
    black.close()
    for s in fillers:
        s.close()
    assert _open_fds() <= before


async def test_dials_count_against_the_connection_cap(echo: EchoServer) -> None:
    black = socket.socket()
    black.bind(("127.0.0.1", 0))
    black.listen(0)
    bport = black.getsockname()[1]
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", bport))
        fillers.append(s)
    await asyncio.sleep(0.2)
    server, decider, _events = await _proxy(echo, connect_timeout=30.0, max_connections=2)
    decider.rules.append(("black", (), ("127.0.0.0/8",), (bport,)))
    writers = []
    try:
        for _ in range(2):
            r, w = await asyncio.open_connection("127.0.0.1", server.port)
            w.write(b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01" + bport.to_bytes(2, "big"))
            assert await r.readexactly(2) == b"\x05\x00"
            writers.append(w)
        for _ in range(100):
            if len(server._dials) == 2:
                break
            await asyncio.sleep(0.02)
        assert len(server._dials) == 2
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        w.write(b"\x05\x01\x00")
        assert await asyncio.wait_for(r.read(), 5) == b""  # over the cap: closed at accept
        w.close()
    finally:
        for w in writers:
            w.close()
        await server.stop()
        black.close()
        for s in fillers:
            s.close()


@pytest.mark.skipif(not splice_available(), reason="splice is Linux only")
async def test_pooled_pipes_never_carry_bytes_between_connections(echo: EchoServer) -> None:
    server, _decider, _events = await _proxy(echo, chunk_size=1 << 20)
    try:
        for i in range(40):
            code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
            assert code == 0
            payload = bytes([i]) * (1 + i * 997)
            w.write(payload)
            assert await r.readexactly(len(payload)) == payload
            if i % 3 == 0:  # some end while the far side may still be writing
                w.transport.abort()
            else:
                w.close()
                await w.wait_closed()
        # bulk: a grown pipe is not kept (it counts against the account's pipe budget)
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        big = os.urandom(3 << 20)
        w.write(big)
        assert await r.readexactly(len(big)) == big
        w.close()
        await asyncio.sleep(0.1)
        pool = server._pipes
        assert pool is not None
        import fcntl

        for pr, _pw in pool._free:
            assert fcntl.fcntl(pr, 1032) == 1 << 16  # F_GETPIPE_SZ: default size only
    finally:
        await server.stop()
    assert server._pipes is not None
    assert len(server._pipes) == 0


@pytest.mark.skipif(not splice_available(), reason="splice is Linux only")
def test_pipe_pool_refuses_a_pipe_that_still_holds_bytes() -> None:
    pool = PipePool(1 << 20, keep=4)
    pr, pw = pool.take()
    os.write(pw, b"secret of another connection")
    pool.give(pr, pw, grown=False)  # the accounting would be wrong: the kernel says no
    assert len(pool) == 0
    with pytest.raises(OSError):
        os.fstat(pr)  # closed, not kept
    clean = [pool.take() for _ in range(6)]
    for pr, pw in clean:
        pool.give(pr, pw, grown=False)
    assert len(pool) == 4  # bounded
    again = pool.take()
    assert again in clean
    with pytest.raises(BlockingIOError):
        os.read(again[0], 10)  # empty
    pool.give(*again, grown=True)  # grown: closed
    assert len(pool) == 3
    pool.clear()
    assert len(pool) == 0


async def test_garbage_and_closes_during_the_callback_path_leak_nothing(
    echo: EchoServer,
) -> None:
    server, _decider, _events = await _proxy(echo)
    await asyncio.sleep(0.05)
    before = _open_fds()
    try:
        port = echo.port.to_bytes(2, "big")
        attempts: list[Callable[[socket.socket], None]] = [
            lambda s: s.sendall(b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01" + port),
            lambda s: s.sendall(
                b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01" + port + os.urandom(5000)
            ),
            lambda s: s.sendall(b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x09"),
            lambda s: s.sendall(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\n\r\n"),
        ]
        for attempt in attempts * 10:
            s = socket.create_connection(("127.0.0.1", server.port))
            attempt(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()  # RST at once, mid-path
        for _ in range(100):
            if not server._relays and not server._dials and not server._handshakes:
                break
            await asyncio.sleep(0.05)
        assert not server._relays
        assert not server._dials
        # the proxy still serves
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        assert code == 0
        w.write(b"ok")
        assert await r.readexactly(2) == b"ok"
        w.close()
    finally:
        await server.stop()
    with contextlib.suppress(Exception):
        await asyncio.sleep(0.05)
    assert _open_fds() <= before + 2  # the echo server's own accepted sockets at most


def test_plain_socket_is_a_tcp_socket() -> None:
    with plain_socket(socket.AF_INET) as s:
        assert s.type == socket.SOCK_STREAM


_HANDOVER = r"""
import os, socket, struct, sys, time
proxy, dest = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", proxy))
if os.fork():
    os._exit(0)  # the process that connected is gone; its child holds the socket
time.sleep(0.3)
s.sendall(b"\x05\x01\x00")
assert s.recv(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", dest) + b"x")
reply = s.recv(10)
assert reply[1] == 0, reply
assert s.recv(1) == b"x"
print(os.getpid(), flush=True)
"""


@pytest.mark.integration
async def test_the_app_is_the_process_holding_the_socket_when_decided(
    echo: EchoServer, tmp_path: Path
) -> None:
    """Attacker: a process connects, hands the socket to a child and exits (its pid is
    free for reuse). The owner was settled at accept; the app is looked up once the
    client speaks (after the SOCKS greeting) and names the child that holds the socket
    then, proved by its fd link, never the gone process (nor whatever takes its pid)."""
    import sys

    exe = os.path.realpath(sys.executable)  # noqa: ASYNC240 - once, before the proxy runs
    server, decider, _events = await _proxy(echo)
    try:
        script = tmp_path / "handover.py"
        script.write_text(_HANDOVER)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            str(server.port),
            str(echo.port),
            stdout=asyncio.subprocess.PIPE,
        )
        parent = proc.pid
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0
        for _ in range(100):
            if decider.seen:
                break
            await asyncio.sleep(0.02)
        child = int(out.split()[-1])
        assert child != parent
        (request,) = decider.seen
        assert request.app.pid == child
        assert request.app.uid == os.getuid()
        assert request.app.exe == exe
    finally:
        await server.stop()


@pytest.mark.skipif(not splice_available(), reason="splice is Linux only")
async def test_small_messages_are_copied_without_a_pipe(echo: EchoServer) -> None:
    """A connection that only moves small messages never takes a pipe (copies cost the
    kernel less than two splices); one read that fills 16 KiB switches to splicing."""
    server, _decider, _events = await _proxy(echo)
    try:
        pool = server._pipes
        assert pool is not None
        for _ in range(5):
            code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
            assert code == 0
            for size in (1, 100, 4000):
                w.write(b"s" * size)
                assert await r.readexactly(size) == b"s" * size
            w.close()
            await w.wait_closed()
        await asyncio.sleep(0.05)
        assert len(pool) == 0  # no pipe was ever taken, so none came back
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        big = os.urandom(1 << 20)
        w.write(big)
        assert await r.readexactly(len(big)) == big
        w.close()
        await w.wait_closed()
        await async_wait_until(lambda: server.counters().active == 0, what="relay closed")
        counted = server.counters().resources["loop"]
        assert counted.bytes_up == counted.bytes_down == 5 * 4101 + len(big)
    finally:
        await server.stop()


@pytest.mark.skipif(not splice_available(), reason="splice is Linux only")
async def test_a_copy_the_destination_takes_in_part_keeps_the_rest_in_order() -> None:
    """The destination stops reading: a copied message is written only in part, the rest
    waits in a pipe and the client's further messages wait behind it; every byte then
    arrives once, in order, and the counters match."""
    received = bytearray()
    may_read = asyncio.Event()
    done = asyncio.Event()

    async def slow_sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await may_read.wait()
        while chunk := await reader.read(65536):
            received.extend(chunk)
        writer.close()
        done.set()

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # accepted ones inherit
    listener.bind(("127.0.0.1", 0))
    sink = await asyncio.start_server(slow_sink, sock=listener)
    port = listener.getsockname()[1]

    def small_buffers(family: int) -> socket.socket:
        sock = plain_socket(family)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return sock

    decider = TableDecider([("sink", (), ("127.0.0.0/8",), (port,))])
    server = ProxyServer(
        decider,
        host_uid=os.getuid(),
        connector=Dialer(small_buffers),
        limits=Limits(relay="splice", handshake_timeout=2.0),
    )
    await server.start(0)
    try:
        code, _r, w = await socks_open(server.port, "127.0.0.1", port)
        assert code == 0
        # Each message alone on the wire (< 16 KiB a read: copied), until the sink's
        # small buffers are full and a copy goes in only in part.
        messages = [bytes([i % 251]) * (9000 + i) for i in range(60)]
        for m in messages:
            w.write(m)
            await w.drain()
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.1)
        relay = next(iter(server._relays))
        assert any(flow.pending for flow in (relay._up, relay._down))  # type: ignore[attr-defined]
        may_read.set()
        await w.drain()
        w.write_eof()
        await asyncio.wait_for(done.wait(), 20)
        assert bytes(received) == b"".join(messages)
        await async_wait_until(lambda: server.counters().active == 0, what="relay closed")
        assert server.counters().resources["sink"].bytes_up == len(received)
        w.close()
    finally:
        await server.stop()
        sink.close()
        await sink.wait_closed()
