"""The decider serves listening sockets it did not bind: the helper's transparent
listeners (``ProxyServer.adopt_transparent`` / ``drop_transparent``, and the same on
``ProxyThread``), exactly like the ones it binds itself. Anything but listening TCP
sockets on 127.0.0.1 / ::1 sharing one port is refused with nothing changed."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

from core.proxy import EventKind, ProxyEvent, ProxyServer
from core.proxy.errors import ProxyConfigError, ProxyStartError
from core.proxy.thread import ProxyThread
from tests.core.proxy.helpers import TableDecider
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="transparent mode is Linux only"
)


def listeners(host6: bool = True) -> list[socket.socket]:
    """What the helper holds: 127.0.0.1 and ::1 at one free port."""
    v4 = socket.socket()
    v4.bind(("127.0.0.1", 0))
    v4.listen(8)
    socks = [v4]
    if host6:
        v6 = socket.socket(socket.AF_INET6)
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            v6.bind(("::1", v4.getsockname()[1]))
            v6.listen(8)
            socks.append(v6)
        except OSError:
            v6.close()
    return socks


@pytest.fixture
def held() -> Iterator[list[socket.socket]]:
    """The helper's own copies (kept open by the test, as the helper keeps them)."""
    socks = listeners()
    yield socks
    for s in socks:
        s.close()


def dups(socks: list[socket.socket]) -> list[socket.socket]:
    return [s.dup() for s in socks]


@pytest.fixture
async def server() -> AsyncIterator[tuple[ProxyServer, list[ProxyEvent]]]:
    events: list[ProxyEvent] = []
    srv = ProxyServer(
        TableDecider([("all", (), ("0.0.0.0/0",), ())]),
        host_uid=os.getuid(),
        on_event=events.append,
    )
    await srv.start(0)
    try:
        yield srv, events
    finally:
        await srv.stop()


async def _knock(port: int) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET / HTTP/1.0\r\n\r\n")
    try:
        data = await asyncio.wait_for(r.read(), 5)
    except ConnectionResetError:
        data = b""
    w.close()
    return data


async def test_adopted_listeners_are_served_as_transparent(
    server: tuple[ProxyServer, list[ProxyEvent]], held: list[socket.socket]
) -> None:
    srv, events = server
    port = held[0].getsockname()[1]
    assert srv.transparent_port == 0
    assert srv.adopt_transparent(dups(held)) == port
    assert srv.transparent_port == port
    # A direct connection (not redirected) is refused as the transparent listener does:
    # the adopted socket is served by the transparent path.
    assert await _knock(port) == b""
    await async_wait_until(lambda: events, what="the refusal")
    assert events[0].kind is EventKind.REFUSED
    assert events[0].reason.startswith("not a redirected connection")


async def test_adopt_replaces_and_drop_closes_only_the_proxys_copies(
    server: tuple[ProxyServer, list[ProxyEvent]], held: list[socket.socket]
) -> None:
    srv, _events = server
    first = dups(held)
    srv.adopt_transparent(first)
    other = listeners(host6=False)
    try:
        second = dups(other)
        assert srv.adopt_transparent(second) == other[0].getsockname()[1]
        assert all(s.fileno() == -1 for s in first)  # the replaced ones are closed
        srv.drop_transparent()
        assert srv.transparent_port == 0
        assert all(s.fileno() == -1 for s in second)
        srv.drop_transparent()  # idempotent
        # The helper's copies are untouched: the port is still bound by them.
        probe = socket.socket()
        with pytest.raises(OSError):
            probe.bind(("127.0.0.1", held[0].getsockname()[1]))
        probe.close()
        # The main proxy port still serves.
        assert srv.port
        _r, w = await asyncio.open_connection("127.0.0.1", srv.port)
        w.close()
    finally:
        for s in other:
            s.close()


async def test_stop_closes_adopted_listeners(held: list[socket.socket]) -> None:
    srv = ProxyServer(TableDecider(), host_uid=os.getuid())
    with pytest.raises(ProxyStartError):
        srv.adopt_transparent(dups(held)[:1])
    await srv.start(0)
    mine = dups(held)
    srv.adopt_transparent(mine)
    await srv.stop()
    assert all(s.fileno() == -1 for s in mine)
    assert srv.transparent_port == 0


def _bad_sets() -> list[tuple[str, list[socket.socket]]]:
    unbound = socket.socket()
    not_listening = socket.socket()
    not_listening.bind(("127.0.0.1", 0))
    wildcard = socket.socket()
    wildcard.bind(("0.0.0.0", 0))
    wildcard.listen(1)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    a, b, c = listeners(host6=False), listeners(host6=False), listeners(host6=False)
    unix = socket.socket(socket.AF_UNIX)
    v6 = socket.socket(socket.AF_INET6)  # ::1 at another port than a's
    v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        v6.bind(("::1", 0))
        v6.listen(1)
    except OSError:  # no IPv6 loopback: a second IPv4 port stands in (refused too)
        v6.close()
        v6 = listeners(host6=False)[0]
    return [
        ("empty", []),
        ("unbound", [unbound]),
        ("not listening", [not_listening]),
        ("wildcard", [wildcard]),
        ("udp", [udp]),
        ("two ports", [a[0], v6]),
        ("two of IPv4", [b[0], listeners(host6=False)[0]]),
        ("two of one family", [c[0], c[0].dup()]),
        ("unix", [unix]),
    ]


async def test_anything_else_is_refused_and_nothing_changes(
    server: tuple[ProxyServer, list[ProxyEvent]], held: list[socket.socket]
) -> None:
    srv, _events = server
    good = dups(held)
    srv.adopt_transparent(good)
    for name, bad in _bad_sets():
        try:
            with pytest.raises(ProxyConfigError):
                srv.adopt_transparent(bad)
            assert srv.transparent_port == held[0].getsockname()[1], name
            assert all(s.fileno() != -1 for s in bad), name  # still the caller's
            assert all(s.fileno() != -1 for s in good), name
        finally:
            for s in bad:
                s.close()


async def test_the_thread_marshals_adopt_and_drop(held: list[socket.socket]) -> None:
    proxy = ProxyThread(ProxyServer(TableDecider(), host_uid=os.getuid()))
    with pytest.raises(ProxyStartError):
        proxy.adopt_transparent(dups(held))
    proxy.drop_transparent()  # not running: nothing to drop, no error
    await proxy.start(0)
    try:
        mine = dups(held)
        port = await asyncio.to_thread(proxy.adopt_transparent, mine)
        assert port == held[0].getsockname()[1]
        assert proxy.transparent_port == port
        proxy.drop_transparent()
        assert proxy.transparent_port == 0
        assert all(s.fileno() == -1 for s in mine)
    finally:
        await proxy.stop()
