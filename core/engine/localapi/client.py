"""``RemoteEngine``: the ``EngineAPI`` of an engine in another process, over the local API.

The tray and the CLI hold a ``RemoteEngine`` exactly as they would hold the engine::

    engine = await RemoteEngine.attach(client="tray")   # EngineNotRunningError if none
    engine.subscribe(on_event)          # events arrive on this loop, in order
    engine.on_lost(on_agent_gone)       # the agent went away (connection closed)
    await engine.connect()              # refusals raise LocalApiError (title, next_step, code)
    await engine.stop()                 # detaches; the session goes on in the agent

``snapshot`` and ``settings()`` are caches kept current by the pushed events and settings,
so they never do I/O. One connection carries every request (each with its own id) and
the event stream; a reader task on the caller's loop resolves the answers and delivers
the events, so callbacks run on the loop that attached.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from core.aio import spawn
from core.engine.api import OpenUrl, Setting, Unsubscribe
from core.engine.localapi import protocol as p
from core.engine.localapi.errors import EngineNotRunningError, LocalApiError, ProtocolError
from core.engine.localapi.transport import open_client
from core.engine.state import Event, EventKind, Snapshot
from core.i18n import translate
from wg_backends.helper.transport import Connection

__all__ = ["RemoteEngine"]

_log = logging.getLogger(__name__)
_READ = 64 * 1024


class RemoteEngine:
    """An ``EngineAPI`` whose engine runs in the agent (or in the tray hosting it).

    Build with :meth:`attach`. Every request raises :class:`LocalApiError` (with the
    engine's ``code``, ``title``, ``detail``, ``next_step``) when refused, and
    :class:`EngineNotRunningError` once the connection is lost.
    """

    def __init__(self, conn: Connection, *, client: str = "") -> None:
        self._conn = conn
        self._client = client
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[p.Reply]] = {}
        self._open_urls: dict[int, OpenUrl] = {}
        self._subscribers: list[Callable[[Event], None]] = []
        self._lost_callbacks: list[Callable[[], None]] = []
        self._snapshot = Snapshot()
        self._settings: list[Setting] = []
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        self._detached = False
        self.hosted_by = ""
        self.pid = 0
        self.version = 0

    # ----------------------------------------------------------------- attaching
    @classmethod
    async def attach(
        cls,
        path: Path | None = None,
        *,
        client: str = "",
        answer_within: float = 5.0,
        pipe_api: Any = None,
    ) -> RemoteEngine:
        """Connect to the running engine, subscribe to its events and read its settings.

        ``client`` names the caller in the agent's log ("tray", "cli"). Raises
        :class:`EngineNotRunningError` when nobody serves (or answers within
        ``answer_within`` s) and :class:`LocalApiError` for a refusal (e.g. another version).
        """
        conn = await open_client(path, pipe_api=pipe_api)
        self = cls(conn, client=client)
        self._reader = spawn(self._read(), name="localapi-client-reader")
        try:
            async with asyncio.timeout(answer_within):
                hello = await self._request(p.Hello(client=client))
                assert isinstance(hello, p.HelloReply)
                self.hosted_by, self.pid, self.version = hello.hosted_by, hello.pid, hello.version
                snap = await self._request(p.Subscribe())
                assert isinstance(snap, p.SnapshotReply)
                self._snapshot = snap.snapshot
                settings = await self._request(p.GetSettings())
                assert isinstance(settings, p.SettingsReply)
                self._settings = list(settings.settings)
        except TimeoutError:
            await self.stop()
            raise EngineNotRunningError(
                translate("core.engine.localapi.client", "the engine did not answer")
            ) from None
        except BaseException:
            await self.stop()
            raise
        return self

    @property
    def closed(self) -> bool:
        """True once the connection is gone (lost or detached)."""
        return self._closed

    def on_lost(self, callback: Callable[[], None]) -> Unsubscribe:
        """Call ``callback`` (on this loop) when the engine goes away; not after ``stop``."""
        self._lost_callbacks.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._lost_callbacks.remove(callback)

        return remove

    # ------------------------------------------------------------------ EngineAPI
    @property
    def snapshot(self) -> Snapshot:
        """The latest snapshot the engine sent (no I/O)."""
        return self._snapshot

    def subscribe(self, callback: Callable[[Event], None]) -> Unsubscribe:
        """Call ``callback`` with every event from now on, in order, on this loop."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def settings(self) -> list[Setting]:
        """The effective settings as last sent by the engine (refreshed on every change)."""
        return list(self._settings)

    async def set_setting(self, key: str, value: object) -> None:
        """Change a user setting. Raises :class:`LocalApiError` (setting_locked, …)."""
        reply = await self._request(p.SetSetting(key=key, value=value))
        if isinstance(reply, p.SettingsReply):
            self._settings = list(reply.settings)

    async def start(self) -> None:
        """Nothing to do: the engine was started by its owner."""

    async def sign_in(self, *, device_code: bool = False, open_url: OpenUrl | None = None) -> None:
        """Sign in; the engine sends the sign-in page here and ``open_url`` opens it.

        Without ``open_url`` the page opens in this machine's default browser.
        """
        await self._request(p.SignIn(device_code=device_code), open_url=open_url or _browser)

    async def sign_out(self, *, break_glass_reason: str | None = None) -> None:
        """Sign out (a reason is required under managed always-on)."""
        await self._request(p.SignOut(reason=break_glass_reason))

    async def connect(self) -> None:
        """Connect; returns when the engine has settled (see ``snapshot``)."""
        await self._request(p.Connect())

    async def disconnect(self, *, break_glass_reason: str | None = None) -> None:
        """Disconnect (a reason is required under managed always-on)."""
        await self._request(p.Disconnect(reason=break_glass_reason))

    async def recheck_posture(self) -> None:
        """Collect posture now and re-evaluate."""
        await self._request(p.RecheckPosture())

    async def collect_diagnostics(self, destination: Path) -> Path:
        """Have the engine write its diagnostics zip at ``destination`` (made absolute)."""
        reply = await self._request(p.Diagnostics(path=_absolute(destination)))
        assert isinstance(reply, p.DiagnosticsReply)
        return Path(reply.path)

    async def refresh(self) -> Snapshot:
        """Ask for the current snapshot (normally not needed: events keep it current)."""
        await self._request(p.GetSnapshot())
        return self._snapshot

    async def stop(self) -> None:
        """Detach: close the connection; the session goes on in the engine. Idempotent."""
        self._detached = True
        self._conn.close()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        self._lose(notify=False)

    # ------------------------------------------------------------------ plumbing
    async def _request(self, msg: p.Request, *, open_url: OpenUrl | None = None) -> p.Reply:
        if self._closed:
            raise EngineNotRunningError(
                translate("core.engine.localapi.client", "the connection to the engine is closed")
            )
        ident = next(self._ids)
        msg = msgspec.structs.replace(msg, id=ident)
        future: asyncio.Future[p.Reply] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        if open_url is not None:
            self._open_urls[ident] = open_url
        try:
            await self._conn.write(p.encode(msg))
            reply = await future
        except (OSError, ConnectionError):
            self._lose(notify=True)
            raise EngineNotRunningError(
                translate("core.engine.localapi.client", "the engine went away")
            ) from None
        finally:
            self._pending.pop(ident, None)
            self._open_urls.pop(ident, None)
        if isinstance(reply, p.ErrorReply):
            raise LocalApiError(
                reply.detail, code=reply.code, title=reply.title, next_step=reply.next_step
            )
        if isinstance(reply, p.SnapshotReply):
            self._snapshot = reply.snapshot
        return reply

    async def _read(self) -> None:
        decoder = p.FrameDecoder()
        try:
            while True:
                data = await self._conn.read(_READ)
                if not data:
                    break
                for body in decoder.feed(data):
                    self._receive(p.decode_reply(body))
        except asyncio.CancelledError:
            raise
        except ProtocolError as exc:
            _log.warning("the engine sent a malformed message: %s", exc)
        except (OSError, ConnectionError):
            pass
        finally:
            self._lose(notify=not self._detached)

    def _receive(self, reply: p.Reply) -> None:
        if reply.id == 0:
            if isinstance(reply, p.EventMsg):
                self._deliver(reply.event)
            elif isinstance(reply, p.SettingsReply):
                self._settings = list(reply.settings)
            elif isinstance(reply, p.ErrorReply):
                _log.warning("the engine refused this connection: %s", reply.detail)
            return
        if isinstance(reply, p.OpenUrl):
            opener = self._open_urls.get(reply.id)
            if opener is not None:
                try:
                    result: object = opener(reply.url)
                    if inspect.isawaitable(result):
                        spawn(_await(result), name="localapi-open-url")
                except Exception:
                    _log.exception("could not open the sign-in page")
            return
        future = self._pending.get(reply.id)
        if future is not None and not future.done():
            future.set_result(reply)

    def _deliver(self, event: Event) -> None:
        self._snapshot = event.snapshot
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                _log.exception("event subscriber failed")
        if event.kind is EventKind.SETTINGS:
            _log.debug("settings changed in the engine")

    def _lose(self, *, notify: bool) -> None:
        if self._closed:
            return
        self._closed = True
        self._conn.close()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(
                    EngineNotRunningError(
                        translate("core.engine.localapi.client", "the engine went away")
                    )
                )
        if notify:
            for callback in list(self._lost_callbacks):
                try:
                    callback()
                except Exception:
                    _log.exception("on_lost callback failed")


def _browser(url: str) -> None:
    # webbrowser may block (it starts a process): off the loop thread.
    spawn(asyncio.to_thread(webbrowser.open, url), name="localapi-open-browser")


def _absolute(path: Path) -> str:
    # The engine runs in another process with another working directory.
    return os.path.abspath(path)


async def _await(awaitable: Any) -> None:
    await awaitable
