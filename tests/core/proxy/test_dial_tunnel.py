"""Dialling only through the tunnel (issue #15 item 2): ``tunnel_connector``.

The proxy, given ``connector=tunnel_connector(source)``, dials with the sockets the
source hands out and nothing else: with no tunnel socket to be had it refuses with "the
tunnel is down: not sent over the local network" and the destination never sees a
connection (today it relayed allowed traffic in cleartext over the LAN once the helper
had restarted). The source here is a fake that hands out plain sockets and counts; the
real marking and ``SO_BINDTODEVICE`` are exercised on a veth in test_transparent_netns.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest

from core.policy.api import Effect
from core.proxy import TUNNEL_DOWN, EventKind, ProxyEvent, ProxyServer, TunnelDown
from core.proxy.dial import tunnel_connector
from tests.core.proxy.helpers import STAND_INS, EchoServer, TableDecider, socks_open
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.integration


class NoTunnel(Exception):
    """What ``MarkedSockets.take`` raises (a ``WgError``, not an ``OSError``)."""


@dataclass
class FakeSource:
    """Hands out plain unconnected sockets, or raises for the families it lacks."""

    families: set[int] = field(default_factory=lambda: {socket.AF_INET, socket.AF_INET6})
    calls: list[tuple[int, str]] = field(default_factory=list)
    wrong: bool = False

    def __call__(self, family: int, kind: str) -> socket.socket:
        self.calls.append((family, kind))
        if family not in self.families:
            raise NoTunnel(f"no tunnel sockets for family {family}")
        if self.wrong:
            return socket.socket(family, socket.SOCK_DGRAM)
        return socket.socket(family, socket.SOCK_STREAM)


class CountingListener:
    """A loopback listener that counts the connections it accepts (the destination)."""

    def __init__(self) -> None:
        self.accepted = 0
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self.accepted += 1
            w.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


# --------------------------------------------------------------------- the connector alone


async def test_connector_uses_only_source_sockets() -> None:
    echo = EchoServer()
    await echo.start()
    source = FakeSource()
    connect = tunnel_connector(source)
    try:
        sock = await connect(["127.0.0.1"], echo.port)
        assert sock.getpeername()[:2] == ("127.0.0.1", echo.port)
        assert sock.gettimeout() == 0.0  # handed back non-blocking
        sock.close()
        assert source.calls == [(socket.AF_INET, "tcp")]
    finally:
        await echo.stop()


async def test_no_tunnel_socket_raises_tunnel_down_never_the_os_route() -> None:
    target = CountingListener()
    await target.start()
    source = FakeSource(families=set())
    try:
        with pytest.raises(TunnelDown) as info:
            await tunnel_connector(source)(["127.0.0.1", "::1"], target.port)
        assert str(info.value) == TUNNEL_DOWN
        assert "NoTunnel" in info.value.detail
        assert isinstance(info.value, OSError)
        assert source.calls == [(socket.AF_INET, "tcp"), (socket.AF_INET6, "tcp")]
        assert target.accepted == 0
    finally:
        await target.stop()


async def test_a_family_without_tunnel_sockets_is_skipped() -> None:
    # An AAAA answer beside an IPv4-only tunnel: the v6 address gets no socket and is
    # never dialled; the v4 one is.
    echo = EchoServer()
    await echo.start()
    source = FakeSource(families={socket.AF_INET})
    try:
        sock = await tunnel_connector(source)(["::1", "127.0.0.1"], echo.port)
        assert sock.family == socket.AF_INET
        sock.close()
        assert source.calls == [(socket.AF_INET6, "tcp"), (socket.AF_INET, "tcp")]
    finally:
        await echo.stop()


async def test_a_wrong_socket_from_the_source_is_closed_not_used() -> None:
    target = CountingListener()
    await target.start()
    try:
        with pytest.raises(TunnelDown):
            await tunnel_connector(FakeSource(wrong=True))(["127.0.0.1"], target.port)
        assert target.accepted == 0
    finally:
        await target.stop()


async def test_connect_errors_pass_through_and_offload_works() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: a real ECONNREFUSED through a tunnel socket
    with pytest.raises(ConnectionRefusedError):
        await tunnel_connector(FakeSource(), offload=True)(["127.0.0.1"], port)
    with pytest.raises(OSError, match="no address"):
        await tunnel_connector(FakeSource())([], port)


# --------------------------------------------------------------------- in the proxy


@dataclass
class Rig:
    server: ProxyServer
    source: FakeSource
    target: CountingListener
    events: list[ProxyEvent]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    target = CountingListener()
    await target.start()
    source = FakeSource()
    events: list[ProxyEvent] = []
    inner = tunnel_connector(source)

    async def resolve(host: str, port: int) -> Sequence[str]:
        return ["192.0.2.1"]

    async def connect(addresses: Sequence[str], port: int) -> socket.socket:
        return await inner([STAND_INS.get(a, a) for a in addresses], port)

    server = ProxyServer(
        TableDecider([("wiki", ("wiki.corp.example",), ("127.0.0.0/8",), ())]),
        host_uid=os.getuid(),
        resolver=resolve,
        connector=connect,
        on_event=events.append,
    )
    await server.start(0)
    try:
        yield Rig(server, source, target, events)
    finally:
        await server.stop()
        await target.stop()


async def test_proxy_refuses_when_the_tunnel_is_down(rig: Rig) -> None:
    rig.source.families.clear()  # the helper restarted: no tunnel sockets
    code, _r, w = await socks_open(rig.server.port, "127.0.0.1", rig.target.port)
    w.close()
    assert code == 3  # SOCKS5 "network unreachable"
    await async_wait_until(lambda: len(rig.events) >= 2, what="decision and refusal")
    decision, refusal = rig.events[:2]
    assert decision.effect is Effect.ALLOW  # the policy allowed it ...
    assert refusal.kind is EventKind.REFUSED  # ... and the proxy refused to leak it
    assert refusal.reason == TUNNEL_DOWN
    assert refusal.destination == f"127.0.0.1:{rig.target.port}"
    assert refusal.protocol == "socks5"
    assert refusal.app.name  # names the app
    assert rig.target.accepted == 0
    # HTTP CONNECT by name: a 502 page that says why
    r, w = await asyncio.open_connection("127.0.0.1", rig.server.port)
    w.write(f"CONNECT wiki.corp.example:{rig.target.port} HTTP/1.1\r\n\r\n".encode())
    data = await asyncio.wait_for(r.read(), 5)
    w.close()
    assert data.startswith(b"HTTP/1.1 502")
    assert TUNNEL_DOWN.encode() in data
    assert rig.target.accepted == 0


async def test_proxy_dials_with_the_sources_sockets(rig: Rig) -> None:
    code, r, w = await socks_open(rig.server.port, "wiki.corp.example", rig.target.port)
    assert code == 0
    assert await asyncio.wait_for(r.read(), 5) == b""  # the target closes at once
    w.close()
    await async_wait_until(lambda: rig.target.accepted == 1, what="the dial")
    assert rig.source.calls == [(socket.AF_INET, "tcp")]
