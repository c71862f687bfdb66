"""The transparent listener without namespaces: the sockaddr parsing, the refusal of
connections that were not redirected (a real direct connection), and the path from an
original destination to a decision and a splice (the original destination is injected
where the kernel would give it; the namespace test has the real ``SO_ORIGINAL_DST``)."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest

from core.policy.api import Effect
from core.proxy import EventKind, ProxyEvent, ProxyServer
from core.proxy.errors import ProxyConfigError
from core.proxy.peer import PeerInfo
from core.proxy.serving import LOOPED
from core.proxy.transparent import original_destination, parse_sockaddr, redirect_refusal
from tests.core.proxy.helpers import EchoServer, TableDecider
from tests.fakes.wait import async_wait_until

# --------------------------------------------------------------------------- pure parts


def _sin(address: str, port: int) -> bytes:
    family = struct.pack("=H", socket.AF_INET)
    return family + struct.pack("!H", port) + socket.inet_aton(address) + bytes(8)


def _sin6(address: str, port: int) -> bytes:
    family = struct.pack("=H", socket.AF_INET6)
    addr = socket.inet_pton(socket.AF_INET6, address)
    return family + struct.pack("!H", port) + bytes(4) + addr + bytes(4)


def test_parse_sockaddr_both_families_and_garbage() -> None:
    assert parse_sockaddr(_sin("10.20.0.5", 443)) == ("10.20.0.5", 443)
    assert parse_sockaddr(_sin6("fd00:20::5", 8080)) == ("fd00:20::5", 8080)
    assert parse_sockaddr(b"") is None
    assert parse_sockaddr(_sin6("fd00:20::5", 1)[:20]) is None  # truncated
    assert parse_sockaddr(struct.pack("=H", 1) + bytes(14)) is None  # AF_UNIX
    assert sys.byteorder in ("little", "big")


@pytest.mark.parametrize(
    ("original", "why"),
    [
        (None, "no original destination"),
        (("127.0.0.1", 15001), "the transparent listener itself"),
        (("127.0.0.1", 9080), "this computer"),  # e.g. the proxy's own SOCKS port
        (("::1", 15001), "this computer"),
        (("0.0.0.0", 80), "this computer"),
    ],
)
def test_not_redirected_connections_are_refused(original: tuple[str, int] | None, why: str) -> None:
    reason = redirect_refusal(original, ("127.0.0.1", 15001))
    assert reason is not None
    assert reason.startswith("not a redirected connection")
    assert why in reason


def test_a_redirected_connection_is_accepted() -> None:
    assert redirect_refusal(("10.20.0.5", 443), ("127.0.0.1", 15001)) is None
    assert redirect_refusal(("fd00:20::5", 443), ("::1", 15001)) is None


def test_bad_transparent_port_is_a_config_error() -> None:
    with pytest.raises(ProxyConfigError):
        ProxyServer(TableDecider(), transparent_port=70000)


# --------------------------------------------------------------------------- the listener


async def test_direct_connection_to_the_transparent_port_is_closed() -> None:
    events: list[ProxyEvent] = []
    server = ProxyServer(
        TableDecider([("all", (), ("0.0.0.0/0",), ())]),
        host_uid=os.getuid(),
        transparent_port=0,
        on_event=events.append,
    )
    bound = await server.start(0)
    try:
        port = server.transparent_port
        assert port
        assert port != server.port
        assert ("127.0.0.1", port) in bound
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.0\r\n\r\n")
        try:
            data = await asyncio.wait_for(r.read(), 5)
        except ConnectionResetError:
            data = b""
        w.close()
        assert data == b""
        await async_wait_until(lambda: events, what="the refusal")
        assert events[0].kind is EventKind.REFUSED
        assert events[0].reason.startswith("not a redirected connection")
        assert server.counters().refused == 1
    finally:
        await server.stop()
    assert server.transparent_port == 0


@dataclass
class FakePeers:
    """Answers for the ORIGINAL connection only: (peer, original destination)."""

    info: PeerInfo
    asked: list[tuple[tuple[str, int], tuple[str, int]]] = field(default_factory=list)
    original: tuple[str, int] = ("192.0.2.1", 0)

    def lookup(self, peer: tuple[str, int], local: tuple[str, int]) -> PeerInfo | None:
        self.asked.append((peer, local))
        return self.info if local == self.original else None


@dataclass
class Rig:
    server: ProxyServer
    decider: TableDecider
    peers: FakePeers
    echo: EchoServer
    events: list[ProxyEvent]
    names: dict[str, str]


@pytest.fixture
async def rig(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    echo = EchoServer()
    await echo.start()
    original = ("192.0.2.1", echo.port)  # where the app connected; the echo stands in
    monkeypatch.setattr("core.proxy.listeners.original_destination", lambda conn: original)
    peers = FakePeers(PeerInfo(uid=os.getuid(), pid=4242, exe="/usr/bin/curl"))
    peers.original = original
    decider = TableDecider([("wiki", (), ("192.0.2.0/24",), ())])
    events: list[ProxyEvent] = []
    names: dict[str, str] = {}

    async def connect(addresses: Sequence[str], port: int) -> socket.socket:
        assert list(addresses) == ["192.0.2.1"]
        sock = socket.socket()
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        return sock

    server = ProxyServer(
        decider,
        host_uid=os.getuid(),
        transparent_port=0,
        peer_lookup=peers,
        connector=connect,
        reverse=names.get,
        on_event=events.append,
    )
    await server.start(0)
    try:
        yield Rig(server, decider, peers, echo, events, names)
    finally:
        await server.stop()
        await echo.stop()


async def _open(rig: Rig) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", rig.server.transparent_port)


async def test_decided_for_the_original_destination_and_spliced(rig: Rig) -> None:
    r, w = await _open(rig)
    w.write(b"ping")
    assert await asyncio.wait_for(r.readexactly(4), 5) == b"ping"
    await async_wait_until(lambda: rig.events, what="the decision")
    ev = rig.events[0]
    assert (ev.kind, ev.effect, ev.protocol) == (EventKind.DECISION, Effect.ALLOW, "transparent")
    assert ev.destination == f"192.0.2.1:{rig.echo.port}"
    assert ev.app.name == "curl"
    # the app was looked up by its own connection: peer → original destination
    assert rig.peers.asked[0][1] == ("192.0.2.1", rig.echo.port)
    assert rig.decider.seen[0].host == "192.0.2.1"
    # withdrawal closes the transparent relay at once
    rig.decider.rules.clear()
    assert rig.server.reevaluate() == 1
    assert await asyncio.wait_for(r.read(), 5) == b""
    w.close()
    await async_wait_until(lambda: any(e.kind is EventKind.REVOKED for e in rig.events))
    revoked = next(e for e in rig.events if e.kind is EventKind.REVOKED)
    assert revoked.protocol == "transparent"


async def test_the_reverse_name_is_decided_with_the_address(rig: Rig) -> None:
    rig.names["192.0.2.1"] = "Wiki.Corp.Example."
    rig.decider.rules[:] = [("wiki", ("wiki.corp.example",), (), ())]
    r, w = await _open(rig)
    w.write(b"ping")
    assert await asyncio.wait_for(r.readexactly(4), 5) == b"ping"
    w.close()
    request = rig.decider.seen[0]
    assert (request.host, request.addresses) == ("wiki.corp.example", ("192.0.2.1",))
    await async_wait_until(lambda: rig.events, what="the decision")
    assert rig.events[0].destination == f"wiki.corp.example:{rig.echo.port}"


async def test_a_bad_or_broken_reverse_hook_only_costs_the_name(rig: Rig) -> None:
    def broken(ip: str) -> str | None:
        raise RuntimeError("resolver cache gone")

    for hook in (broken, {"192.0.2.1": "not a name!"}.get, {"192.0.2.1": "10.0.0.1"}.get):
        rig.server._reverse = hook
        rig.decider.seen.clear()
        r, w = await _open(rig)
        w.write(b"ping")
        assert await asyncio.wait_for(r.readexactly(4), 5) == b"ping"
        w.close()
        assert rig.decider.seen[0].host == "192.0.2.1"


async def test_denied_original_destination_is_closed_unanswered(rig: Rig) -> None:
    rig.decider.rules.clear()
    r, w = await _open(rig)
    w.write(b"ping")
    try:
        data = await asyncio.wait_for(r.read(), 5)
    except ConnectionResetError:
        data = b""
    w.close()
    assert data == b""
    await async_wait_until(lambda: rig.events, what="the decision")
    assert rig.events[0].effect is Effect.DENY
    assert rig.events[0].protocol == "transparent"


async def test_another_account_is_closed_at_accept(rig: Rig) -> None:
    rig.peers.info = PeerInfo(uid=os.getuid() + 1000, pid=77, exe="/usr/bin/curl")
    r, w = await _open(rig)
    try:
        data = await asyncio.wait_for(r.read(), 5)
    except ConnectionResetError:
        data = b""
    w.close()
    assert data == b""
    await async_wait_until(lambda: rig.events, what="the refusal")
    assert rig.events[0].kind is EventKind.REFUSED
    assert "another user's process" in rig.events[0].reason
    assert rig.decider.seen == []


async def test_off_linux_the_transparent_listener_is_not_opened(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("core.proxy.transparent.SUPPORTED", False)
    server = ProxyServer(TableDecider(), host_uid=os.getuid(), transparent_port=0)
    bound = await server.start(0)
    try:
        assert bound == [("127.0.0.1", server.port), ("::1", server.port)]
        assert server.transparent_port == 0
        assert "transparent mode needs Linux" in caplog.text
        with socket.socket() as s:
            assert original_destination(s) is None
    finally:
        await server.stop()


async def test_the_proxys_own_dial_redirected_back_is_refused(rig: Rig) -> None:
    # A socket source that does not fence: the proxy's own dial to the resource is
    # redirected to its transparent port again. Relaying it would loop for ever.
    rig.peers.info = PeerInfo(uid=os.getuid(), pid=os.getpid(), exe=sys.executable)
    r, w = await _open(rig)
    try:
        data = await asyncio.wait_for(r.read(), 5)
    except ConnectionResetError:
        data = b""
    w.close()
    assert data == b""
    await async_wait_until(lambda: rig.events, what="the refusal")
    assert rig.events[0].kind is EventKind.REFUSED
    assert rig.events[0].reason == LOOPED
    assert rig.events[0].protocol == "transparent"
    assert rig.decider.seen == []
