"""The proxy server end to end on loopback: real curl, real sockets, real servers.

Both relay engines (splice, buffered) run every relayed test. The policy is a
``TableDecider`` (see helpers): allow ``allowed.test`` and 127.0.0.0/8 port ``echo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import os
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest

from core.policy.api import Decision, Effect
from core.proxy import EventKind, Limits, ProxyEvent, ProxyServer
from core.proxy.errors import ProxyConfigError, ProxyStartError
from tests.core.proxy.helpers import (
    EchoServer,
    TableDecider,
    refused_at_accept,
    socks_open,
    stand_in_connector,
)
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.integration


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {self.path} host={self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield int(srv.server_address[1])
    srv.shutdown()
    srv.server_close()


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    e = EchoServer()
    await e.start()
    yield e
    await e.stop()


class Harness:
    def __init__(self, server: ProxyServer, decider: TableDecider, events: list[ProxyEvent]):
        self.server, self.decider, self.events = server, decider, events

    @property
    def port(self) -> int:
        return self.server.port


async def _resolver(host: str, port: int) -> Sequence[str]:
    # Names resolve to stand-ins for addresses behind the tunnel (loopback answers are
    # refused: see test_destinations); ``stand_in_connector`` reaches our servers.
    table = {
        "allowed.test": ["192.0.2.1"],
        "denied.test": ["192.0.2.1"],
        "v6.test": ["2001:db8::1"],
    }
    if host not in table:
        raise OSError(f"no such host {host}")
    return table[host]


@pytest.fixture(params=["splice", "buffered"])
async def proxy(request: pytest.FixtureRequest, echo: EchoServer) -> AsyncIterator[Harness]:
    decider = TableDecider(
        [
            ("web", ("allowed.test",), (), ()),
            ("loop", (), ("127.0.0.0/8", "::1/128"), (echo.port,)),
        ]
    )
    events: list[ProxyEvent] = []
    server = ProxyServer(
        decider,
        host_uid=os.getuid(),
        resolver=_resolver,
        connector=stand_in_connector,
        on_event=events.append,
        limits=Limits(relay=request.param, handshake_timeout=1.0, connect_timeout=2.0),
    )
    addrs = await server.start(0)
    assert [a[0] for a in addrs] == ["127.0.0.1", "::1"]
    assert addrs[0][1] == addrs[1][1] == server.port
    yield Harness(server, decider, events)
    await server.stop()


async def curl(*args: str) -> tuple[int, str, str]:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True
        )

    out = await asyncio.to_thread(run)
    return out.returncode, out.stdout, out.stderr


# --------------------------------------------------------------------- real clients


async def test_curl_socks5_hostname_allowed_and_denied(proxy: Harness, web: int) -> None:
    rc, out, _ = await curl(
        "--socks5-hostname", f"127.0.0.1:{proxy.port}", f"http://allowed.test:{web}/x"
    )
    assert rc == 0
    assert out == "hello from /x host=allowed.test:" + str(web)
    rc, out, err = await curl(
        "--socks5-hostname", f"127.0.0.1:{proxy.port}", f"http://denied.test:{web}/"
    )
    assert rc == 97
    assert "(2)" in err
    await async_wait_until(lambda: len(proxy.events) >= 2, what="both decisions")
    decisions = [(e.destination, e.effect, e.rule) for e in proxy.events]
    assert decisions == [
        (f"allowed.test:{web}", Effect.ALLOW, "allow-web"),
        (f"denied.test:{web}", Effect.DENY, None),
    ]
    ev = proxy.events[0]
    assert ev.app.name == "curl"
    assert ev.app.pid
    assert ev.app.uid == os.getuid()
    assert ev.kind is EventKind.DECISION
    assert ev.protocol == "socks5"
    assert ev.time > 0
    # names are decided together with the addresses they resolved to
    assert proxy.decider.seen[0].addresses == ("192.0.2.1",)


async def test_curl_http_proxy_forward_and_connect(proxy: Harness, web: int) -> None:
    url = f"http://allowed.test:{web}/fwd"
    rc, out, _ = await curl("--proxy", f"http://127.0.0.1:{proxy.port}", url)
    assert rc == 0
    assert out.endswith(f"host=allowed.test:{web}")
    rc, out, _ = await curl("-p", "--proxy", f"http://[::1]:{proxy.port}", url)
    assert rc == 0
    assert out.startswith("hello from /fwd")
    rc, out, _ = await curl(
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        "--proxy",
        f"http://127.0.0.1:{proxy.port}",
        f"http://denied.test:{web}/",
    )
    assert out == "403"
    rc, out, err = await curl(
        "-p", "--proxy", f"http://127.0.0.1:{proxy.port}", f"http://denied.test:{web}/"
    )
    assert rc == 56
    assert "403" in err

    def settled() -> bool:  # the relays' bookkeeping runs just after their sockets close
        web = proxy.server.counters().resources.get("web")
        return len(proxy.events) >= 4 and web is not None and web.bytes_down > 0

    await async_wait_until(settled, what="four decisions and the web relays counted")
    assert [e.protocol for e in proxy.events] == ["http", "http-connect", "http", "http-connect"]
    c = proxy.server.counters()
    assert c.resources["web"].connections == 2
    assert c.resources["web"].bytes_down > 0
    assert c.resources["denied.test"].denials == 2


async def test_deny_page_is_short_html_with_reason(proxy: Harness, web: int) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    w.write(f"GET http://denied.test:{web}/ HTTP/1.1\r\nHost: denied.test\r\n\r\n".encode())
    data = await r.read()
    w.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 Forbidden")
    assert b"text/html" in head
    assert b"no rule allows this destination" in body
    assert len(body) < 1024


async def test_python_socket_echo_ipv4_ipv6_and_half_close(
    proxy: Harness, echo: EchoServer
) -> None:
    for proxy_host in ("127.0.0.1", "::1"):
        code, r, w = await socks_open(proxy.port, "127.0.0.1", echo.port, proxy_host=proxy_host)
        assert code == 0
        w.write(b"ping")
        assert await r.readexactly(4) == b"ping"
        w.close()
    # half-close: the server answers after our EOF, through the proxy
    echo.after_eof = b"bye"
    code, r, w = await socks_open(proxy.port, b"allowed.test", echo.port)
    assert code == 0
    w.write(b"data")
    w.write_eof()
    assert await r.read() == b"databye"
    w.close()


async def test_big_transfer_both_directions_with_backpressure(
    proxy: Harness, echo: EchoServer
) -> None:
    code, r, w = await socks_open(proxy.port, "127.0.0.1", echo.port)
    assert code == 0
    blob = os.urandom(1 << 20) * 8  # 8 MiB: far more than socket buffers and pipes

    async def send() -> None:
        w.write(blob)
        await w.drain()
        w.write_eof()

    sender = asyncio.ensure_future(send())
    got = await r.read()
    await sender
    w.close()
    assert got == blob

    def counted() -> bool:  # the relay's bookkeeping runs just after the socket closes
        loop = proxy.server.counters().resources.get("loop")
        return loop is not None and loop.bytes_up == loop.bytes_down == len(blob)

    await async_wait_until(counted, what="the relay's byte counts")
    loop_counts = proxy.server.counters().resources["loop"]
    assert loop_counts.bytes_up == len(blob)
    assert loop_counts.bytes_down == len(blob)


# --------------------------------------------------------------------- refusals


async def test_connect_failures_map_to_protocol_answers(proxy: Harness) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    proxy.decider.rules.append(("dead", (), ("127.0.0.0/8",), (port,)))
    code, _r, w = await socks_open(proxy.port, "127.0.0.1", port)
    w.close()
    assert code == 5  # connection refused
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    w.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
    assert (await r.read()).startswith(b"HTTP/1.1 502")
    w.close()
    # a name that does not resolve but is allowed: host unreachable
    proxy.decider.rules.append(("nx", ("nx.test",), (), ()))
    code, _r, w = await socks_open(proxy.port, b"nx.test", 80)
    w.close()
    assert code == 4


@pytest.mark.parametrize(
    ("payload", "answer"),
    [
        (b"\x05\x01\x02", b"\x05\xff"),  # no acceptable method
        (b"\x05\x01\x00\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", b"\x05\x00\x05\x07"),  # BIND
        (b"\x05\x01\x00\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x50", b"\x05\x00\x05\x07"),  # UDP
        (b"\x05\x01\x00\x05\x01\x00\x09", b"\x05\x00\x05\x08"),  # bad address type
        (b"\x05\x01\x00\x04\x01\x00\x01", b"\x05\x00\x05\x01"),  # wrong version in request
        (b"\x05\x01\x00\x05\x01\x00\x03\x04a..b\x00\x50", b"\x05\x00\x05\x04"),  # bad name
        (b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00", b"\x00\x5b"),  # SOCKS4: rejected
        (b"GARBAGE\r\n\r\n", b"HTTP/1.1 400"),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40) + b"\r\n\r\n",
            b"HTTP/1.1 400",
        ),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 20000, b"HTTP/1.1 431"),
        (b"CONNECT bad..name:443 HTTP/1.1\r\n\r\n", b"HTTP/1.1 400"),
        (b"CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n", b"HTTP/1.1 403"),  # not in policy
    ],
)
async def test_bad_input_refused_promptly(
    proxy: Harness, echo: EchoServer, payload: bytes, answer: bytes
) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    w.write(payload)
    data = await asyncio.wait_for(r.read(), 3)
    w.close()
    assert data.startswith(answer), data
    # other connections are unaffected
    code, r2, w2 = await socks_open(proxy.port, "127.0.0.1", echo.port)
    w2.write(b"ok")
    assert code == 0
    assert await r2.readexactly(2) == b"ok"
    w2.close()


async def test_slowloris_is_cut_at_the_handshake_deadline(proxy: Harness) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    loop = asyncio.get_running_loop()
    start = loop.time()
    w.write(b"GET / HTTP/1.1\r\n")
    reading = asyncio.ensure_future(r.read())
    for _ in range(30):  # one byte every 0.1 s: each read "makes progress"
        if reading.done():
            break
        with contextlib.suppress(ConnectionError):
            w.write(b"X")
            await w.drain()
        await asyncio.sleep(0.1)
    data = await asyncio.wait_for(reading, 3)
    assert data.startswith(b"HTTP/1.1 408")
    assert loop.time() - start < 2.9  # the 1 s deadline, not 3 s of trickle
    w.close()
    # SOCKS slowloris: closed without an answer
    r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
    w.write(b"\x05\x01")
    assert await asyncio.wait_for(r.read(), 3) == b""
    w.close()


async def test_decider_that_raises_means_deny(proxy: Harness, echo: EchoServer) -> None:
    class Broken:
        def decide(self, request: object) -> Decision:
            raise RuntimeError("bug")

    proxy.server.set_decider(Broken())
    code, _r, w = await socks_open(proxy.port, "127.0.0.1", echo.port)
    w.close()
    assert code == 2
    await async_wait_until(lambda: proxy.events, what="the refusal event")
    assert proxy.events[-1].reason == "policy error: RuntimeError"


async def test_other_uid_refused_with_fake_identity(echo: EchoServer) -> None:
    """Unit-level check of the uid rule with a lookup reporting another uid
    (the real second user is in test_other_user.py)."""
    from core.proxy.peer import PeerInfo

    class OtherUser:
        def lookup(self, peer: tuple[str, int], local: tuple[str, int]) -> PeerInfo | None:
            return PeerInfo(uid=os.getuid() + 1, pid=1, exe="/bin/x")

    class Unknown:
        def lookup(self, peer: tuple[str, int], local: tuple[str, int]) -> PeerInfo | None:
            return None

    for lookup, why in ((OtherUser(), "another user"), (Unknown(), "could not be identified")):
        events: list[ProxyEvent] = []
        decider = TableDecider([("loop", (), ("127.0.0.0/8",), ())])
        server = ProxyServer(
            decider, host_uid=os.getuid(), peer_lookup=lookup, on_event=events.append
        )
        await server.start(0)
        # Closed at accept, before any handshake work: no SOCKS reply, no HTTP status.
        assert await refused_at_accept(server.port)
        assert await refused_at_accept(
            server.port, b"GET /proxy.pac HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        # B023: the lambda is awaited here, within this iteration.
        await async_wait_until(lambda: len(events) >= 2, what="both refusals")  # noqa: B023
        await server.stop()
        assert decider.seen == []  # never reached the policy
        assert events
        assert all(e.kind is EventKind.REFUSED and why in e.reason for e in events)
        assert server.counters().refused == 2


# --------------------------------------------------------------------- PAC + rebinding


async def test_pac_served_and_rebinding_refused(proxy: Harness) -> None:
    proxy.server.set_pac_targets(["git.corp", "*.wiki.corp", "10.20.0.0/16"])
    with pytest.raises(ProxyConfigError):
        proxy.server.set_pac_targets(["ok.corp", "bad'name"])
    port = proxy.port

    async def get(head: str) -> bytes:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(head.encode())
        data = await r.read()
        w.close()
        return data

    ok = await get(f"GET /proxy.pac HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")
    assert b"application/x-ns-proxy-autoconfig" in ok
    assert b'var names = ["git.corp"]' in ok  # the bad update left the previous list
    assert f"PROXY 127.0.0.1:{port}".encode() in ok
    rc, out, _ = await curl(f"http://[::1]:{port}/proxy.pac")
    assert rc == 0
    assert "FindProxyForURL" in out
    for head in (
        f"GET /proxy.pac HTTP/1.1\r\nHost: evil.example:{port}\r\n\r\n",
        "GET /proxy.pac HTTP/1.1\r\n\r\n",
        f"GET /proxy.pac HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://evil.example\r\n\r\n",
        f"GET /proxy.pac HTTP/1.1\r\nHost: localhost:{port}\r\nSec-Fetch-Site: cross-site\r\n\r\n",
    ):
        assert (await get(head)).startswith(b"HTTP/1.1 403"), head
    assert (await get(f"GET /other HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")).startswith(
        b"HTTP/1.1 404"
    )
    head = await get(f"HEAD /proxy.pac HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")
    assert head.endswith(b"\r\n\r\n")
    assert b"Content-Length: " in head


# --------------------------------------------------------------------- live control


async def test_reevaluate_closes_what_is_no_longer_allowed(
    proxy: Harness, echo: EchoServer
) -> None:
    code, r1, w1 = await socks_open(proxy.port, "127.0.0.1", echo.port)
    code2, r2, w2 = await socks_open(proxy.port, b"allowed.test", echo.port)
    assert code == code2 == 0
    assert proxy.server.reevaluate() == 0  # nothing changed
    proxy.decider.rules[:] = [("web", ("allowed.test",), (), ())]  # CIDR rule withdrawn
    assert proxy.server.counters().active == 2
    assert proxy.server.reevaluate() == 1
    assert await asyncio.wait_for(r1.read(), 1) == b""  # closed within a second
    w2.write(b"still")
    assert await r2.readexactly(5) == b"still"
    await async_wait_until(
        lambda: (
            proxy.server.counters().active == 1
            and any(e.kind is EventKind.REVOKED for e in proxy.events)
        ),
        what="the revocation event and its relay closed",
    )
    revoked = [e for e in proxy.events if e.kind is EventKind.REVOKED]
    assert len(revoked) == 1
    assert revoked[0].destination == f"127.0.0.1:{echo.port}"
    assert revoked[0].effect is Effect.DENY
    assert proxy.server.counters().active == 1
    w1.close()
    w2.close()


async def test_idle_timeout_and_connection_cap(echo: EchoServer) -> None:
    decider = TableDecider([("loop", (), ("127.0.0.0/8",), ())])
    server = ProxyServer(
        decider, host_uid=os.getuid(), limits=Limits(idle_timeout=0.3, max_connections=2)
    )
    await server.start(0)
    try:
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        code2, r2, w2 = await socks_open(server.port, "127.0.0.1", echo.port)
        assert code == code2 == 0
        r3, w3 = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(r3.read(), 2) == b""  # over the cap: closed at once
        w3.close()
        # Idle: both closed by the sweeper (possibly on successive ticks).
        assert await asyncio.wait_for(r.read(), 3) == b""
        assert await asyncio.wait_for(r2.read(), 3) == b""
        # The relay's bookkeeping runs just after the socket closes.
        await async_wait_until(lambda: server.counters().active == 0, what="no active relay")
        w.close()
        w2.close()
    finally:
        await server.stop()


async def test_subscribers_get_events_and_failures_do_not_break_relay(
    proxy: Harness, echo: EchoServer
) -> None:
    got: list[ProxyEvent] = []

    def broken(event: ProxyEvent) -> None:
        raise RuntimeError("subscriber bug")

    proxy.server.subscribe(broken)
    unsubscribe = proxy.server.subscribe(got.append)
    code, r, w = await socks_open(proxy.port, "127.0.0.1", echo.port)
    w.write(b"x")
    assert code == 0
    assert await r.readexactly(1) == b"x"
    await async_wait_until(lambda: got, what="the event at the subscriber")
    assert len(got) == 1
    unsubscribe()
    unsubscribe()
    witness: list[ProxyEvent] = []  # still subscribed: tells when the next event went out
    proxy.server.subscribe(witness.append)
    code, _r, w2 = await socks_open(proxy.port, "127.0.0.1", echo.port)
    await async_wait_until(lambda: witness, what="the next event at another subscriber")
    assert len(got) == 1
    w.close()
    w2.close()


async def test_port_forward(proxy: Harness, echo: EchoServer) -> None:
    with pytest.raises(ProxyConfigError):
        await proxy.server.add_forward(0, "bad..host", 1)
    with pytest.raises(ProxyConfigError):
        await proxy.server.add_forward(0, "127.0.0.1", 1, bind="0.0.0.0")
    host, port = await proxy.server.add_forward(0, "127.0.0.1", echo.port)
    assert host == "127.0.0.1"
    r, w = await asyncio.open_connection(host, port)
    w.write(b"fwd")
    assert await r.readexactly(3) == b"fwd"
    w.close()
    _h, denied_port = await proxy.server.add_forward(0, "127.0.0.1", 9)  # port not allowed
    r, w = await asyncio.open_connection(host, denied_port)
    assert await asyncio.wait_for(r.read(), 2) == b""
    w.close()
    proxy.server.remove_forward(port)
    proxy.server.remove_forward(port)
    with pytest.raises(OSError):
        await asyncio.open_connection(host, port)


async def test_start_errors_and_stop_is_idempotent_and_leak_free(echo: EchoServer) -> None:
    decider = TableDecider([("loop", (), ("127.0.0.0/8",), ())])
    for bad in (("0.0.0.0",), ("127.0.0.1", "::"), ("localhost",)):
        with pytest.raises(ProxyConfigError):
            ProxyServer(decider, host_uid=os.getuid(), hosts=bad)
    fds_before = len(os.listdir("/proc/self/fd"))
    server = ProxyServer(decider, host_uid=os.getuid())
    await server.start(0)
    with pytest.raises(ProxyStartError):
        await server.start(0)
    other = ProxyServer(decider, host_uid=os.getuid())
    with pytest.raises(ProxyStartError):
        await other.start(server.port)  # port in use
    conns = []
    for _ in range(20):
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        w.write(b"z")
        assert code == 0
        assert await r.readexactly(1) == b"z"
        conns.append((r, w))
    half = await asyncio.open_connection("127.0.0.1", server.port)  # stuck in handshake
    # Accepted (not still in the listen backlog, which the kernel would reset on close).
    await async_wait_until(lambda: server._pending, what="the half-open handshake accepted")
    await server.stop()
    await server.stop()
    for r, w in [*conns, half]:
        assert await asyncio.wait_for(r.read(), 2) == b""
        w.close()
        await w.wait_closed()
    await async_wait_until(lambda: server.counters().active == 0, what="no active relay")
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 2  # the netlink sockets
