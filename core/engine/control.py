"""The running engine's local control socket, so the CLI and the tray share one session.

Whoever runs the engine (the tray app, or ``rustronaut up`` in the foreground) serves this
socket; ``rustronaut status/up/down/diag`` talk to it. It is a Unix socket in the user's
runtime directory (directory 0700, socket 0600) and only the same uid may use it
(SO_PEERCRED), so it never widens who can act on the session.

Protocol: one JSON object per line. Requests ``{"op": ...}`` with ops ``status``,
``connect``, ``disconnect`` (``reason``), ``diagnostics`` (``path``) and ``events``
(streams every following event as a line until the client closes). Answers are
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. Lines are capped at 64 KiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from core.aio import spawn
from core.engine.engine import Engine
from core.engine.state import Event

__all__ = ["ControlClient", "ControlServer", "EngineNotRunningError", "default_socket_path"]

_log = logging.getLogger(__name__)
_MAX_LINE = 64 * 1024


class EngineNotRunningError(RuntimeError):
    """No engine answers on the control socket."""


def default_socket_path() -> Path:
    """``$XDG_RUNTIME_DIR/rustronaut/engine.sock`` (or a per-uid dir under /tmp)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/rustronaut-{os.getuid()}"  # noqa: S108
    return Path(base) / "rustronaut" / "engine.sock"


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, tuples → plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class ControlServer:
    """Serves ``engine`` on a Unix socket. ``start``/``stop`` are idempotent."""

    def __init__(self, engine: Engine, path: Path | None = None) -> None:
        self._engine = engine
        self.path = path or default_socket_path()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Create the socket (0600 in a 0700 directory), replacing a stale one."""
        if self._server is not None:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=_MAX_LINE
            )
        finally:
            os.umask(old_umask)

    async def stop(self) -> None:
        """Close the socket and remove its file."""
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            uid = _peer_uid(writer)
            if uid is not None and uid != os.getuid():
                await _send(writer, {"ok": False, "error": "not your session"})
                return
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await _send(writer, {"ok": False, "error": "request too large"})
                    return
                if not line:
                    return
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise TypeError("request is not an object")
                except (ValueError, TypeError) as exc:
                    await _send(writer, {"ok": False, "error": f"bad request: {exc}"})
                    continue
                if request.get("op") == "events":
                    await self._stream(reader, writer)
                    return
                await _send(writer, await self._handle(request))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        engine = self._engine
        try:
            if op == "status":
                pass
            elif op == "connect":
                await engine.connect()
            elif op == "disconnect":
                reason = request.get("reason")
                await engine.disconnect(
                    break_glass_reason=reason if isinstance(reason, str) else None
                )
            elif op == "diagnostics":
                path = Path(str(request.get("path") or "."))
                written = await engine.collect_diagnostics(path)
                return {"ok": True, "path": str(written)}
            else:
                return {"ok": False, "error": f"unknown op {op!r}"}
        except Exception as exc:
            return {"ok": False, "error": str(exc) or type(exc).__name__}
        return {"ok": True, "snapshot": to_jsonable(engine.snapshot)}

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=1000)

        def on_event(event: Event) -> None:
            with contextlib.suppress(asyncio.QueueFull):  # a slow reader loses events, not us
                queue.put_nowait(event)

        unsubscribe = self._engine.subscribe(on_event)
        closed = spawn(_until_eof(reader), name="control-stream-eof")
        try:
            while not closed.done():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                await _send(writer, {"ok": True, "event": to_jsonable(getter.result())})
        finally:
            unsubscribe()
            closed.cancel()


async def _until_eof(reader: asyncio.StreamReader) -> None:
    # Anything a streaming client sends after "events" is ignored; EOF means it left.
    while await reader.read(4096):
        pass


async def _send(writer: asyncio.StreamWriter, body: dict[str, Any]) -> None:
    writer.write(json.dumps(body).encode() + b"\n")
    await writer.drain()


class ControlClient:
    """The CLI's side: one request per call. Raises ``EngineNotRunningError``."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_socket_path()

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.open_unix_connection(str(self.path), limit=_MAX_LINE * 4)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise EngineNotRunningError(str(self.path)) from exc

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and return the answer object."""
        reader, writer = await self._open()
        try:
            writer.write(json.dumps({"op": op, **fields}).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
        if not line:
            raise EngineNotRunningError("the engine closed the connection")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise EngineNotRunningError("the engine answered garbage")
        return answer

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every event from now on, as JSON objects."""
        reader, writer = await self._open()
        try:
            writer.write(b'{"op": "events"}\n')
            await writer.drain()
            while line := await reader.readline():
                answer = json.loads(line)
                if isinstance(answer, dict) and "event" in answer:
                    yield answer["event"]
        finally:
            writer.close()
