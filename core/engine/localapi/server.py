"""The local API server: serves one engine to every front end of the same user.

``LocalApiServer(engine, path=None, hosted_by="agent")`` listens on the user's socket
(named pipe on Windows, see ``transport``), admits callers of the same OS user only, and
answers the typed requests of ``protocol`` by calling the ``EngineAPI``. Each request runs
as its own task, so a sign-in waiting for a browser does not hold up a status read on the
same connection; answers carry the request's id.

Events: the server subscribes to the engine once and pushes every event to each
connection that sent ``Subscribe``, through a bounded queue per connection. A client that
stops reading and lets its queue fill is disconnected; the engine is never blocked.
A settings change is followed, for every subscriber, by the new settings (a
``SettingsReply`` with id 0) and a ``SETTINGS`` event, so every front end sees it within
a second whichever one made it.

Refusals and failures of the engine become ``ErrorReply`` with the words and code of
``core.engine.errors.explain``; malformed input becomes ``ErrorReply(bad_request)`` and the
connection is closed (the stream cannot be trusted after it), with one log line and no
traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from core.aio import spawn
from core.engine.api import EngineAPI, Setting
from core.engine.errors import explain
from core.engine.localapi import protocol as p
from core.engine.localapi.errors import LocalApiError, ProtocolError, UnsupportedVersionError
from core.engine.localapi.transport import (
    PipeApiListener,
    UnixApiListener,
    UnixConnection,
    current_user_sid,
    default_socket_path,
)
from core.engine.state import Event, EventKind
from core.i18n import QT_TRANSLATE_NOOP, translate
from wg_backends.helper.transport import Caller, Connection

__all__ = ["LocalApiServer"]

_log = logging.getLogger(__name__)

#: Frames waiting to be sent to one client before it counts as too slow and is dropped
#: (room for a burst of proxy decisions while a tray is busy drawing; a few MiB at most).
QUEUE_FRAMES = 2048
#: Requests one connection may have in progress at once.
MAX_IN_FLIGHT = 32
_READ = 64 * 1024


class _Client:
    """One connected front end: its outgoing queue, writer task and requests in flight."""

    def __init__(self, conn: Connection, number: int, queue_frames: int) -> None:
        self.conn = conn
        self.name = f"client {number}"
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=queue_frames)
        self.subscribed = False
        self.closed = False
        #: stop reading (after a malformed frame): queued answers go out, then it closes
        self.draining = False
        self.requests: set[asyncio.Task[None]] = set()
        self.writer: asyncio.Task[None] | None = None

    def done(self) -> bool:
        """Whether to stop reading from this client."""
        return self.closed or self.draining

    def send(self, msg: p.Reply) -> None:
        """Queue ``msg``; a client whose queue is full is dropped (never waited for)."""
        try:
            data = p.encode(msg)
        except ProtocolError as exc:  # too large: say so instead of sending nothing
            _log.warning("%s: reply not sent: %s", self.name, exc)
            data = p.encode(
                p.ErrorReply(id=msg.id, code="internal", title="Answer too large", detail=str(exc))
            )
        self.send_frame(data)

    def send_frame(self, data: bytes) -> None:
        """Queue an encoded frame (see ``send``)."""
        if self.closed:
            return
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            _log.warning("%s reads too slowly; disconnected", self.name)
            self.close(abort=True)

    def close(self, *, abort: bool = False) -> None:
        """Close the connection (idempotent); the writer task ends.

        ``abort`` drops it at once with whatever is unsent (a client that stopped reading
        would otherwise hold the socket open until its buffer drained).
        """
        if self.closed:
            return
        self.closed = True
        if abort and isinstance(self.conn, UnixConnection):
            self.conn.abort()
        else:
            self.conn.close()
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        # Requests in progress go on: a front end that sent "disconnect" and left still
        # gets its disconnect, never half of one.


class LocalApiServer:
    """Serves ``engine`` over the local API. ``start``/``stop`` are idempotent.

    ``path``: the Unix socket (default ``transport.default_socket_path()``); on Windows the
    pipe name (default: the user's). ``hosted_by`` is reported in ``HelloReply`` ("agent",
    "tray" or "cli"). ``pipe_api``/``user_sid`` select the named-pipe transport (Windows,
    or tests with a fake pipe API).
    """

    def __init__(
        self,
        engine: EngineAPI,
        path: Path | None = None,
        hosted_by: str = "agent",
        *,
        queue_frames: int = QUEUE_FRAMES,
        frame_timeout: float = p.FRAME_TIMEOUT,
        pipe_api: Any = None,
        user_sid: str | None = None,
    ) -> None:
        self._engine = engine
        self.hosted_by = hosted_by
        self._queue_frames = queue_frames
        self._frame_timeout = frame_timeout
        self._pipe_api = pipe_api
        self._windows = sys.platform == "win32" or pipe_api is not None
        self.path = path if path is not None or self._windows else default_socket_path()
        self._user_sid = user_sid
        self._listener: UnixApiListener | PipeApiListener | None = None
        self._clients: set[_Client] = set()
        self._count = 0
        self._unsubscribe: Callable[[], None] | None = None
        self._settings_events = 0

    @property
    def engine(self) -> EngineAPI:
        """The engine served."""
        return self._engine

    @property
    def address(self) -> str:
        """Where it listens (socket path or pipe name); empty before ``start``."""
        return self._listener.address if self._listener is not None else ""

    @property
    def clients(self) -> int:
        """How many front ends are connected."""
        return len(self._clients)

    async def start(self) -> None:
        """Listen. Raises ``OSError`` or ``UnsafeDirectoryError`` if that is impossible."""
        if self._listener is not None:
            return
        listener: UnixApiListener | PipeApiListener
        if self._windows:
            sid = self._user_sid or current_user_sid(self._pipe_api)
            listener = PipeApiListener(
                sid,
                api=self._pipe_api,
                name=str(self.path) if self.path is not None else None,
                on_refused=self._refused,
            )
        else:
            assert self.path is not None
            listener = UnixApiListener(self.path, on_refused=self._refused)
        await listener.start(self._serve)
        self._listener = listener
        self._unsubscribe = self._engine.subscribe(self._on_event)
        _log.info("local API on %s (hosted by %s)", listener.address, self.hosted_by)

    async def stop(self) -> None:
        """Stop listening, close every connection, remove the socket. Idempotent."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await listener.close()
        clients = list(self._clients)
        for client in clients:
            client.close()
        tasks = [t for c in clients for t in c.requests] + [
            c.writer for c in clients if c.writer is not None
        ]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=2)
            for task in pending:
                task.cancel()

    def replace_engine(self, engine: EngineAPI) -> None:
        """Serve ``engine`` from now on (the agent, once a failed setup succeeds).

        Subscribers get a ``STATE`` event with the new engine's snapshot.
        """
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._engine = engine
        if self._listener is not None:
            self._unsubscribe = engine.subscribe(self._on_event)
        self._on_event(Event(kind=EventKind.STATE, snapshot=engine.snapshot, time=time.time()))

    # ------------------------------------------------------------------ events
    def _refused(self, who: Caller) -> None:
        _log.warning("local API: refused a caller of another user (%s)", who)

    def _on_event(self, event: Event) -> None:
        # Called by the engine on the loop thread: encode once, queue for everyone, never wait.
        if event.kind is EventKind.SETTINGS:
            self._settings_events += 1
            self._push_settings()
        try:
            data = p.encode(p.EventMsg(event=event))
        except (ProtocolError, TypeError, ValueError) as exc:
            _log.warning("event not sent to front ends: %s", exc)
            return
        for client in list(self._clients):
            if client.subscribed:
                client.send_frame(data)

    def _push_settings(self) -> None:
        subscribed = [c for c in self._clients if c.subscribed]
        if not subscribed:
            return
        try:
            data = p.encode(p.SettingsReply(settings=_settings(self._engine)))
        except Exception as exc:  # a settings source that fails must not stop events
            _log.warning("settings not sent to front ends: %s", exc)
            return
        for client in subscribed:
            client.send_frame(data)

    # -------------------------------------------------------------- connections
    async def _serve(self, conn: Connection) -> None:
        self._count += 1
        client = _Client(conn, self._count, self._queue_frames)
        self._clients.add(client)
        client.writer = spawn(self._write(client), name=f"localapi-{client.name}-writer")
        decoder = p.FrameDecoder()
        try:
            while not client.done():
                try:
                    if decoder.pending:
                        data = await asyncio.wait_for(conn.read(_READ), self._frame_timeout)
                    else:
                        data = await conn.read(_READ)
                except TimeoutError:
                    self._bad(client, ProtocolError("frame timed out"), 0)
                    return
                if not data:
                    return
                try:
                    for body in decoder.feed(data):
                        self._dispatch(client, body)
                        if client.done():
                            return
                except ProtocolError as exc:
                    self._bad(client, exc, 0)
                    return
        except (OSError, ConnectionError):
            pass  # the client went away: nothing to answer
        finally:
            self._clients.discard(client)
            client.subscribed = False
            if not client.closed:
                # Let queued answers go out (the writer ends on the None marker).
                with contextlib.suppress(asyncio.QueueFull):
                    client.queue.put_nowait(None)

    def _bad(self, client: _Client, exc: ProtocolError, ident: int) -> None:
        _log.info("%s: %s (%s)", client.name, exc.title, exc)
        client.send(
            p.ErrorReply(
                id=ident, code=exc.code, title=exc.title, detail=str(exc), next_step=exc.next_step
            )
        )
        # Flush what is queued, then close: the writer ends on the None marker.
        client.draining = True
        client.subscribed = False
        with contextlib.suppress(asyncio.QueueFull):
            client.queue.put_nowait(None)
        self._clients.discard(client)

    async def _write(self, client: _Client) -> None:
        try:
            while True:
                data = await client.queue.get()
                if data is None:
                    break
                await client.conn.write(data)
        except (OSError, ConnectionError):
            pass
        finally:
            client.close()

    def _dispatch(self, client: _Client, body: bytes) -> None:
        try:
            request = p.decode_request(body)
        except UnsupportedVersionError as exc:
            # The stream is intact: answer and keep the connection (the client may retry).
            client.send(
                p.ErrorReply(
                    id=p.message_id(body),
                    code=exc.code,
                    title=exc.title,
                    detail=str(exc),
                    next_step=exc.next_step,
                )
            )
            return
        except ProtocolError as exc:
            self._bad(client, exc, p.message_id(body))
            return
        if len(client.requests) >= MAX_IN_FLIGHT:
            client.send(
                p.ErrorReply(
                    id=request.id,
                    code="bad_request",
                    title=translate("core.engine.localapi.server", "Too many requests"),
                    detail=translate(
                        "core.engine.localapi.server",
                        "more than {count} requests in progress on one connection",
                    ).format(count=MAX_IN_FLIGHT),
                    next_step=translate(
                        "core.engine.localapi.server", "Wait for the answers before sending more."
                    ),
                )
            )
            return
        if isinstance(request, p.Subscribe):
            # Subscribed and the snapshot queued in the same step: no event is missed or
            # reported twice between the two.
            client.subscribed = True
            client.send(p.SnapshotReply(id=request.id, snapshot=self._engine.snapshot))
            return
        task = spawn(self._handle(client, request), name=f"localapi-{type(request).__name__}")
        client.requests.add(task)
        task.add_done_callback(client.requests.discard)

    async def _handle(self, client: _Client, request: p.Request) -> None:
        try:
            reply = await self._answer(client, request)
        except asyncio.CancelledError:
            raise
        except LocalApiError as exc:
            reply = p.ErrorReply(
                id=request.id,
                code=exc.code,
                title=exc.title,
                detail=str(exc),
                next_step=exc.next_step,
            )
        except Exception as exc:
            during = translate("core.engine.localapi.server", _DURING.get(type(request), _WORKING))
            info = explain(exc, during=during)
            code = getattr(info, "code", "") or "internal"
            _log.info(
                "%s: %s refused: %s (%s)", client.name, type(request).__name__, code, info.detail
            )
            reply = p.ErrorReply(
                id=request.id,
                code=code,
                title=info.title,
                detail=info.detail,
                next_step=info.next_step,
            )
        client.send(reply)

    async def _answer(self, client: _Client, request: p.Request) -> p.Reply:
        engine = self._engine
        ident = request.id
        if isinstance(request, p.Hello):
            if request.client:
                client.name = f"{client.name} ({request.client[:32]!r})"
            return p.HelloReply(
                id=ident, version=p.PROTOCOL_VERSION, hosted_by=self.hosted_by, pid=os.getpid()
            )
        if isinstance(request, p.GetSnapshot):
            pass
        elif isinstance(request, p.Connect):
            await engine.connect()
        elif isinstance(request, p.Disconnect):
            await engine.disconnect(break_glass_reason=request.reason)
        elif isinstance(request, p.SignIn):

            def open_url(url: str) -> None:
                client.send(p.OpenUrl(id=ident, url=url))

            await engine.sign_in(device_code=request.device_code, open_url=open_url)
        elif isinstance(request, p.SignOut):
            await engine.sign_out(break_glass_reason=request.reason)
        elif isinstance(request, p.RecheckPosture):
            await engine.recheck_posture()
        elif isinstance(request, p.Diagnostics):
            written = await engine.collect_diagnostics(Path(request.path))
            return p.DiagnosticsReply(id=ident, path=str(written))
        elif isinstance(request, p.GetSettings):
            return p.SettingsReply(id=ident, settings=_settings(engine))
        elif isinstance(request, p.SetSetting):
            before = self._settings_events
            await _maybe_await(engine.set_setting(request.key, request.value))
            if self._settings_events == before:
                # The engine did not announce the change (yet): announce it here, so every
                # other front end re-reads the settings now.
                self._on_event(
                    Event(
                        kind=EventKind.SETTINGS,
                        snapshot=engine.snapshot,
                        time=time.time(),
                        message=f"Setting '{request.key}' changed",
                    )
                )
            return p.SettingsReply(id=ident, settings=_settings(self._engine))
        # ``self._engine``, not ``engine``: the agent may have replaced a failed setup
        # with the real engine while this request ran.
        return p.SnapshotReply(id=ident, snapshot=self._engine.snapshot)


def _settings(engine: EngineAPI) -> tuple[Setting, ...]:
    return tuple(engine.settings())


_WORKING = QT_TRANSLATE_NOOP("core.engine.localapi.server", "working")
#: What a request was doing, for "Problem while …" (English; translated where used).
_DURING: dict[type, str] = {
    p.Connect: QT_TRANSLATE_NOOP("core.engine.localapi.server", "connecting"),
    p.Disconnect: QT_TRANSLATE_NOOP("core.engine.localapi.server", "disconnecting"),
    p.SignIn: QT_TRANSLATE_NOOP("core.engine.localapi.server", "signing in"),
    p.SignOut: QT_TRANSLATE_NOOP("core.engine.localapi.server", "signing out"),
    p.RecheckPosture: QT_TRANSLATE_NOOP("core.engine.localapi.server", "checking posture"),
    p.Diagnostics: QT_TRANSLATE_NOOP("core.engine.localapi.server", "collecting diagnostics"),
    p.SetSetting: QT_TRANSLATE_NOOP("core.engine.localapi.server", "changing a setting"),
}


async def _maybe_await(result: Awaitable[None] | None) -> None:
    # ``set_setting`` is a coroutine in the contract; an engine that still applies it
    # synchronously returns None.
    if inspect.isawaitable(result):
        await result
