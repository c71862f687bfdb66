"""Run the proxy on its own thread and asyncio loop, away from the caller's loop.

The tray runs the engine on the Qt event loop (qasync), which costs the proxy about half
its connection rate and lets a burst of connections stall the UI. ``ProxyThread`` keeps
the same small API as ``ProxyServer`` for a caller on another loop: every call is
marshalled onto the proxy's loop, and events come back to the caller's loop in batches
(one wake-up for many decisions). The decider is called on the proxy's thread, so it
must be thread-safe (``core.policy.engine.PolicyEngine`` is).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from core.policy.api import Decider
from core.proxy.errors import ProxyStartError
from core.proxy.model import ProxyCounters, ProxyEvent
from core.proxy.server import ProxyServer

__all__ = ["EVENT_BATCH_S", "ProxyThread"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_CALL_TIMEOUT = 5.0  # a healthy proxy loop answers in microseconds
EVENT_BATCH_S = 0.02
"""Longest an event waits on the proxy's thread before the caller's loop is woken."""


class ProxyThread:
    """A ``ProxyServer`` on a dedicated thread; methods are called from the caller's loop.

    ``server`` is built by the caller and must not have been started. ``start`` spins up
    the thread and listens; ``stop`` closes everything and ends the thread (a later
    ``start`` makes a new one). Subscribers are called on the loop that subscribed them,
    in order. Synchronous methods block the caller for one round trip to the proxy's
    loop (microseconds); they raise ``ProxyStartError`` when the proxy is not running
    where noted.
    """

    def __init__(self, server: ProxyServer, *, name: str = "rustronaut-proxy") -> None:
        self._server = server
        self._name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ended: asyncio.Future[None] | None = None
        self._wake_pending = False  # only touched on the proxy's thread
        self._lock = threading.Lock()
        self._channels: dict[asyncio.AbstractEventLoop, _Channel] = {}
        # Replaced (never mutated) under the lock: the proxy thread reads it per event
        # without taking the lock.
        self._channel_list: tuple[_Channel, ...] = ()
        server.subscribe(self._on_event)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, port: int) -> list[tuple[str, int]]:
        """Start the thread and listen on ``port``; see ``ProxyServer.start``."""
        if self._thread is not None:
            raise ProxyStartError("proxy already started")
        loop = asyncio.new_event_loop()
        caller = asyncio.get_running_loop()
        ready = threading.Event()
        self._ended = caller.create_future()
        ended = self._ended

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                # Name lookups ran in the default executor: end its threads too.
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()
                with contextlib.suppress(RuntimeError):  # the caller's loop has closed
                    caller.call_soon_threadsafe(_resolve, ended)

        thread = threading.Thread(target=run, name=self._name, daemon=True)
        thread.start()
        ready.wait()
        self._thread, self._loop = thread, loop
        try:
            return await self._run(self._server.start(port))
        except BaseException:
            await self._end_thread()
            raise

    async def stop(self) -> None:
        """Close listeners, handshakes and relays, then end the thread. Idempotent."""
        if self._loop is None:
            return
        try:
            await self._run(self._stop_server())
        finally:
            await self._end_thread()

    async def _stop_server(self) -> None:
        await self._server.stop()
        self._wake()  # what the last connections decided still reaches the subscribers

    async def _end_thread(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # already closed
            loop.call_soon_threadsafe(loop.stop)
        if self._ended is not None:
            # Waits without blocking the caller's loop or borrowing one of its threads.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._ended), _CALL_TIMEOUT)
            self._ended = None
        thread.join(0.1)  # it has returned from run(): only the OS thread's exit is left

    @property
    def running(self) -> bool:
        """True between a successful ``start`` and ``stop``."""
        return self._loop is not None

    @property
    def port(self) -> int:
        """The main listening port (0 before the first ``start``)."""
        return self._server.port

    @property
    def transparent_port(self) -> int:
        """The transparent listener's port (0 when not listening)."""
        return self._server.transparent_port

    # -- controls ------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[ProxyEvent], None]) -> Callable[[], None]:
        """Deliver every event to ``callback`` on the current thread's running loop.

        Must be called with a running loop. Returns an unsubscribe function.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            channel = self._channels.get(loop)
            if channel is None:
                channel = self._channels[loop] = _Channel(loop)
                self._channel_list = tuple(self._channels.values())
            channel.callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                channel.callbacks.remove(callback)
                if not channel.callbacks:
                    self._channels.pop(loop, None)
                    self._channel_list = tuple(self._channels.values())

        return unsubscribe

    def set_decider(self, decider: Decider) -> None:
        """Use ``decider`` for new connections (``reevaluate`` applies it to open ones)."""
        self._call_or_direct(self._server.set_decider, decider)

    def set_pac_targets(self, targets: Iterable[str]) -> None:
        """See ``ProxyServer.set_pac_targets`` (raises ProxyConfigError on a bad entry)."""
        self._call_or_direct(self._server.set_pac_targets, tuple(targets))

    def pac(self) -> str:
        """The current PAC file text."""
        return self._call_or_direct(self._server.pac)

    def adopt_transparent(self, socks: Sequence[socket.socket]) -> int:
        """Serve the helper's transparent listeners ``socks``; see
        ``ProxyServer.adopt_transparent`` (raises ProxyStartError when not running)."""
        return self._call(self._server.adopt_transparent, tuple(socks))

    def drop_transparent(self) -> None:
        """Stop serving transparent listeners; see ``ProxyServer.drop_transparent``."""
        self._call_or_direct(self._server.drop_transparent)

    def reevaluate(self) -> int:
        """Re-decide open relays now; returns how many were closed (0 when stopped)."""
        if self._loop is None:
            return 0
        return self._call(self._server.reevaluate)

    def counters(self) -> ProxyCounters:
        """Connections, bytes and denials per resource."""
        return self._call_or_direct(self._server.counters)

    # -- marshalling ---------------------------------------------------------------------

    async def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return await asyncio.wrap_future(future)

    def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = self._loop
        if loop is None:
            raise ProxyStartError("the proxy is not running")
        if threading.current_thread() is self._thread:
            return fn(*args)
        done: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller's thread
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(_CALL_TIMEOUT)

    def _call_or_direct(self, fn: Callable[..., _T], *args: Any) -> _T:
        # Before start and after stop nothing else touches the server: call it here.
        if self._loop is None:
            return fn(*args)
        return self._call(fn, *args)

    def _on_event(self, event: ProxyEvent) -> None:
        """On the proxy's thread: queue the event for each subscribing loop; wake those
        loops at most once per ``EVENT_BATCH_S``.

        Waking the caller's loop takes the GIL from the proxy's thread; doing it for each
        of a thousand connections a second costs the proxy a third of its rate, while
        the Activity view gains nothing from seeing a decision sooner than 20 ms.
        """
        channels = self._channel_list
        for channel in channels:
            channel.queue.append(event)
        if channels and not self._wake_pending:
            self._wake_pending = True
            asyncio.get_running_loop().call_later(EVENT_BATCH_S, self._wake)

    def _wake(self) -> None:
        """On the proxy's thread: have each loop with queued events flush them."""
        self._wake_pending = False
        with self._lock:
            due = [c for c in self._channel_list if c.queue and not c.scheduled]
            for channel in due:
                channel.scheduled = True
        for channel in due:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                channel.loop.call_soon_threadsafe(channel.flush, self._lock)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Channel:
    """Events on their way to the subscribers of one loop."""

    __slots__ = ("callbacks", "loop", "queue", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.callbacks: list[Callable[[ProxyEvent], None]] = []
        self.queue: deque[ProxyEvent] = deque()
        self.scheduled = False

    def flush(self, lock: threading.Lock) -> None:
        """On the subscribers' loop: deliver what is queued, in order."""
        with lock:
            # Cleared before draining: an event queued meanwhile schedules another flush.
            self.scheduled = False
            callbacks = list(self.callbacks)
        while self.queue:
            event = self.queue.popleft()
            for callback in callbacks:
                try:
                    callback(event)
                except Exception:
                    _log.exception("proxy event subscriber failed")
