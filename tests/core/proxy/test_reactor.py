"""The proxy's epoll reactor on real sockets."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Iterator

import pytest

from core.proxy.reactor import NOT_STARTED, EpollReactor, make_poller

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll is Linux's"),
]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)


async def test_reader_and_writer_callbacks_add_remove_and_level_triggered(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    loop = asyncio.get_running_loop()
    reactor = EpollReactor(loop)
    a, b = pair
    got: list[str] = []
    try:
        reactor.add_reader(a.fileno(), got.append, "r1")
        await _turns()
        assert got == []  # nothing to read
        b.send(b"x")
        await _turns()
        assert got  # level-triggered: again while unread
        assert set(got) == {"r1"}
        reactor.add_reader(a.fileno(), got.append, "r2")  # replaced, one registration
        got.clear()
        await _turns()
        assert got
        assert set(got) == {"r2"}
        assert a.recv(1) == b"x"
        got.clear()
        await _turns()
        assert got == []
        reactor.add_writer(a.fileno(), got.append, "w")  # reader and writer on one fd
        await _turns()
        assert got
        assert set(got) == {"w"}
        assert reactor.remove_writer(a.fileno()) is True
        assert reactor.remove_writer(a.fileno()) is False
        b.send(b"y")
        got.clear()
        await _turns()
        assert got
        assert set(got) == {"r2"}
        assert reactor.remove_reader(a.fileno()) is True
        assert reactor.remove_reader(a.fileno()) is False
        assert len(reactor) == 0
        got.clear()
        await _turns()
        assert got == []
    finally:
        reactor.close()
        reactor.close()  # idempotent


async def test_a_failing_callback_is_reported_and_the_others_still_run(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    loop = asyncio.get_running_loop()
    reported: list[BaseException] = []
    loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx["exception"]))
    reactor = EpollReactor(loop)
    a, _b = pair
    c, d = socket.socketpair()
    ran: list[str] = []

    def boom() -> None:
        raise ValueError("bad callback")

    try:
        reactor.add_writer(a.fileno(), boom)
        reactor.add_writer(c.fileno(), ran.append, "other")
        await _turns()
        assert ran  # the other socket's callback ran in the same wake-ups
        assert reported
        assert isinstance(reported[0], ValueError)
    finally:
        reactor.close()
        loop.set_exception_handler(None)
        c.close()
        d.close()


async def test_an_event_for_a_number_reused_during_dispatch_is_not_delivered() -> None:
    """Within one wake-up a callback closes socket A and a new socket gets A's number:
    A's event from the same batch must not reach the new socket's callback."""
    loop = asyncio.get_running_loop()
    reactor = EpollReactor(loop)
    a, a_peer = socket.socketpair()
    c, c_peer = socket.socketpair()
    new_sockets: list[socket.socket] = []
    fresh_calls: list[int] = []
    try:
        a_fd = a.fileno()

        def closer() -> None:
            reactor.remove_reader(c.fileno())  # once
            c.recv(1)
            reactor.remove_reader(a_fd)
            a.close()
            s, s_peer = socket.socketpair()  # very likely gets a_fd back
            new_sockets.extend((s, s_peer))
            reactor.add_reader(s.fileno(), fresh_calls.append, s.fileno())

        # Both readable in the same batch; whichever runs first, the closer swaps A out.
        a_peer.send(b"1")
        c_peer.send(b"1")
        reactor.add_reader(c.fileno(), closer)
        reactor.add_reader(a_fd, lambda: None)
        await _turns(1)
        assert new_sockets, "the closer ran"
        # The new socket has nothing to read: it must not have been called.
        assert fresh_calls == []
        new_sockets[0].setblocking(False)
        new_sockets[1].send(b"z")
        await _turns()
        assert fresh_calls  # but it is registered and works
    finally:
        reactor.close()
        for s in (a, a_peer, c, c_peer, *new_sockets):
            s.close()


async def test_closed_reactor_and_not_started_poller() -> None:
    loop = asyncio.get_running_loop()
    reactor = make_poller(loop)
    assert isinstance(reactor, EpollReactor)
    reactor.close()
    a, b = socket.socketpair()
    try:
        with pytest.raises(RuntimeError):
            reactor.add_reader(a.fileno(), lambda: None)
        assert reactor.remove_reader(a.fileno()) is False
        with pytest.raises(RuntimeError, match="not running"):
            NOT_STARTED.add_reader(a.fileno(), lambda: None)
        assert NOT_STARTED.remove_writer(a.fileno()) is False
    finally:
        a.close()
        b.close()
