"""The proxy on its own thread: real sockets, events back on the caller's loop."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from core.proxy import ProxyServer
from core.proxy.errors import ProxyConfigError, ProxyStartError
from core.proxy.model import EventKind, ProxyEvent
from core.proxy.thread import ProxyThread
from tests.core.proxy.helpers import EchoServer, TableDecider, socks_open
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.integration


def _proxy_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "rustronaut-proxy"]


def _python_threads() -> set[threading.Thread]:
    """Threads started from Python (not foreign threads Qt lets call into Python)."""
    return {t for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}


async def _run_relay_on_thread() -> None:
    echo = EchoServer()
    await echo.start()
    decider = TableDecider([("loop", (), ("127.0.0.0/8",), ())])
    proxy = ProxyThread(ProxyServer(decider, host_uid=os.getuid(), hosts=("127.0.0.1",)))
    got: list[tuple[ProxyEvent, threading.Thread]] = []
    proxy.subscribe(lambda event: got.append((event, threading.current_thread())))
    caller = threading.current_thread()
    threads_before = _python_threads()
    try:
        bound = await proxy.start(0)
        assert bound == [("127.0.0.1", proxy.port)]
        assert len(_proxy_threads()) == 1
        # A name: resolved on the proxy loop's executor threads; its loopback answer is
        # never dialled (it is not a company resource: see test_destinations).
        code0, _r0, w0 = await socks_open(proxy.port, "localhost", echo.port)
        assert code0 == 2
        w0.close()
        code, r, w = await socks_open(proxy.port, "127.0.0.1", echo.port)
        assert code == 0
        blob = os.urandom(1 << 20)
        w.write(blob)
        assert await r.readexactly(len(blob)) == blob
        # Denied destination: refused, and the decision also comes back as an event.
        code2, _r2, w2 = await socks_open(proxy.port, "10.9.9.9", 22)
        assert code2 == 2  # SOCKS "connection not allowed by ruleset"
        w2.close()
        await async_wait_until(lambda: len(got) >= 3)
        assert [e.effect.value for e, _ in got[:3]] == ["deny", "allow", "deny"]
        assert "localhost resolved to" in got[0][0].reason
        assert "a loopback address" in got[0][0].reason
        assert got[2][0].destination == "10.9.9.9:22"
        assert all(t is caller for _, t in got)  # delivered on the caller's loop
        counters = proxy.counters()
        assert counters.active == 1
        assert counters.resources["loop"].connections == 1
        # Revocation from the caller's thread closes the open relay at once.
        decider.rules.clear()
        assert proxy.reevaluate() == 1
        assert await asyncio.wait_for(r.read(), 1) == b""
        await async_wait_until(lambda: any(e.kind is EventKind.REVOKED for e, _ in got))
        w.close()
    finally:
        await proxy.stop()
        await echo.stop()
    assert _proxy_threads() == []
    assert _python_threads() <= threads_before  # resolver threads ended too
    assert not proxy.running
    with pytest.raises(OSError):  # nothing listens any more
        await asyncio.open_connection("127.0.0.1", proxy.port)


async def test_relay_events_and_revocation_on_the_proxy_thread() -> None:
    await _run_relay_on_thread()


@pytest.mark.ui
async def test_same_on_the_qt_loop() -> None:
    import qasync

    assert isinstance(asyncio.get_running_loop(), qasync.QEventLoop)
    await _run_relay_on_thread()


async def test_restart_errors_and_pac_validation() -> None:
    proxy = ProxyThread(ProxyServer(TableDecider(), host_uid=os.getuid(), hosts=("127.0.0.1",)))
    assert proxy.reevaluate() == 0  # not running: nothing open
    proxy.set_pac_targets(["git.corp.example", "10.0.0.0/8"])  # before start: direct
    await proxy.start(0)
    try:
        with pytest.raises(ProxyStartError):
            await proxy.start(0)
        with pytest.raises(ProxyConfigError):
            proxy.set_pac_targets(["bad host name!"])  # raised on the caller's thread
        pac = proxy.pac()
        assert "git.corp.example" in pac  # the previous PAC stays in force
        assert "10.0.0.0" in pac
        port = proxy.port
    finally:
        await proxy.stop()
    await proxy.stop()  # idempotent
    # Started again (a port change in settings): a new thread, listening again.
    await proxy.start(port)
    try:
        _r, w = await asyncio.open_connection("127.0.0.1", port)
        w.close()
        assert len(_proxy_threads()) == 1
    finally:
        await proxy.stop()
    assert _proxy_threads() == []


async def test_a_port_in_use_fails_start_and_leaves_no_thread() -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    proxy = ProxyThread(ProxyServer(TableDecider(), host_uid=os.getuid(), hosts=("127.0.0.1",)))
    try:
        with pytest.raises(ProxyStartError, match="cannot listen"):
            await proxy.start(port)
        assert _proxy_threads() == []
        assert not proxy.running
    finally:
        blocker.close()
        await blocker.wait_closed()


async def test_events_of_a_burst_arrive_in_order_in_few_wake_ups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from core.proxy import thread as thread_mod

    flushes = 0
    real_flush = thread_mod._Channel.flush

    def counting_flush(self: thread_mod._Channel, lock: threading.Lock) -> None:
        nonlocal flushes
        flushes += 1
        real_flush(self, lock)

    monkeypatch.setattr(thread_mod._Channel, "flush", counting_flush)
    proxy = ProxyThread(ProxyServer(TableDecider(), host_uid=os.getuid(), hosts=("127.0.0.1",)))
    got: list[ProxyEvent] = []
    proxy.subscribe(got.append)
    await proxy.start(0)
    try:
        for n in range(40):  # denied at once: one decision event each
            code, _r, w = await socks_open(proxy.port, "10.0.0.1", 1000 + n)
            assert code == 2
            w.close()
        await async_wait_until(lambda: len(got) == 40)
    finally:
        await proxy.stop()
    assert [e.destination for e in got] == [f"10.0.0.1:{1000 + n}" for n in range(40)]
    # One wake-up per EVENT_BATCH_S at most, not one per event.
    assert flushes < 20
