"""The privileged helper's asyncio server: authorise, decode, dispatch, clean up.

One server owns one backend and one :class:`~wg_backends.helper.transport.Listener`
(a Unix socket on Linux/macOS, a named pipe on Windows: ``winpipe``); request handling
is the same for both. Each accepted connection is authorised first from its caller
identity (``SO_PEERCRED``: uid 0, an allowed uid, or a member of the configured group;
on Windows the pipe client's token: SYSTEM, an elevated Administrator, an allowed SID or
a member of the configured group — ``winpipe.authorise``); a refused caller gets one
``unauthorized`` error and is disconnected. Requests on a connection are served in
order; backend calls run in a worker thread so the loop keeps serving others.

Ownership and concurrency: the connection that brought a tunnel up owns it. While a
request for an interface is in progress, any other request for it is refused ``busy``;
while its owner is connected, another client's ``up`` is refused ``busy`` too. When the
owner's connection ends (clean close or ``kill -9`` of the app), the tunnel is brought
down unless managed settings say ``always_on``. At start the server removes tunnels a
previous run recorded (crash, power loss); at stop it brings its tunnels down (the
Windows service keeps them when always-on is managed: ``close(keep_always_on=True)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from wg_backends import __version__
from wg_backends.backends import WireGuardBackend, backend_class
from wg_backends.errors import BackendError, ProtocolError, SpecError, TunnelStateError
from wg_backends.helper import protocol as p
from wg_backends.helper.state import StateFile, TunnelRecord, read_always_on
from wg_backends.helper.transport import (
    Caller,
    Connection,
    Listener,
    PeerCred,
    UnixListener,
    WindowsCaller,
)
from wg_backends.helper.winpipe import PIPE_NAME, NamedPipeListener, authorise
from wg_backends.runner import CommandRunner
from wg_backends.spec import TunnelSpec

__all__ = ["HelperConfig", "HelperServer", "PeerCred", "default_listener"]

_log = logging.getLogger("rustronaut.helper")
_READ = 65536


@dataclass(frozen=True)
class HelperConfig:
    """Everything the helper is configured with (only from its own command line).

    ``socket_path`` is used on Linux/macOS, ``pipe_name`` and ``allowed_sids`` on Windows;
    ``group`` is a Unix group name or a Windows local group name.
    """

    socket_path: Path = Path("/run/rustronaut/helper.sock")
    state_dir: Path = Path("/var/lib/rustronaut/helper")
    group: str | None = None
    allowed_uids: frozenset[int] = field(default_factory=frozenset)
    managed_dir: Path | None = None
    frame_timeout: float = 10.0  # seconds to finish a frame once it has started
    pipe_name: str = PIPE_NAME
    allowed_sids: frozenset[str] = field(default_factory=frozenset)


def _groups_of(cred: PeerCred) -> set[int]:
    pid, gid = cred.pid, cred.gid
    groups = {gid, *cred.groups}
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Groups:"):
                groups.update(int(g) for g in line.split()[1:])
    return groups


def _unix_gid(group: str | None) -> int | None:
    if group is None:
        return None
    import grp  # Unix-only module: imported only where it exists

    return grp.getgrnam(group).gr_gid


def default_listener(config: HelperConfig, platform: str = sys.platform) -> Listener:
    """The platform's listener: a named pipe on Windows, else a Unix socket.

    Raises ``KeyError`` for an unknown Unix group. Imports nothing Windows-only until
    the Windows listener starts.
    """
    if platform == "win32":
        return NamedPipeListener(
            config.pipe_name, group=config.group, allowed_sids=config.allowed_sids
        )
    return UnixListener(config.socket_path, _unix_gid(config.group))


class HelperServer:
    """The helper. Create, ``await start()``, then ``await serve_forever()`` or ``close()``.

    ``listener`` defaults to :func:`default_listener`. All methods run on the event loop
    thread.
    """

    def __init__(
        self,
        config: HelperConfig,
        backend: WireGuardBackend,
        runner: CommandRunner,
        listener: Listener | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self._runner = runner
        self.state = StateFile(config.state_dir)
        self._ids = itertools.count(1)
        self._live: set[int] = set()
        self._owners: dict[str, int] = {}
        self._busy: set[str] = set()
        self._conns: dict[int, Connection] = {}
        self._handlers: set[asyncio.Task[Any]] = set()
        self._group_gid: int | None = None
        if listener is None:
            if sys.platform != "win32":
                self._group_gid = _unix_gid(config.group)
            listener = default_listener(config)
        elif isinstance(listener, UnixListener):
            self._group_gid = _unix_gid(config.group)
        self.listener: Listener = listener
        self._listening = False

    # ----- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Clean up stale tunnels, then start the listener. Raises ``OSError``."""
        await asyncio.to_thread(self.cleanup_stale)
        await self.listener.start(self._handle)
        self._listening = True
        _log.info("listening on %s with backend %s", self.listener.address, self.backend.name)

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        assert self._listening, "start() first"
        await self.listener.serve_forever()

    async def close(self, *, keep_always_on: bool = False) -> None:
        """Stop listening and bring down every tunnel this helper made. Idempotent.

        With ``keep_always_on`` (the Windows service stop) and managed ``always_on``, the
        tunnels stay up and recorded; the next start still cleans them up as stale.
        """
        if self._listening:
            self._listening = False
            await self.listener.close()
        # Python 3.11's Server.close() leaves accepted connections open: end them so every
        # handler finishes (and releases what it owns) before the loop goes away.
        for conn in list(self._conns.values()):
            conn.close()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=10)
        if keep_always_on and read_always_on(self.config.managed_dir):
            _log.info("stopping with tunnels kept up (managed always_on)")
            return
        await asyncio.to_thread(self.cleanup_stale)

    def cleanup_stale(self) -> None:
        """Bring down every recorded tunnel and forget it. Blocking; never raises."""
        for rec in self.state.load():
            try:
                backend = self.backend
                if rec.backend != self.backend.name:
                    backend = backend_class(rec.backend)(self._runner)  # type: ignore[call-arg]
                backend.down(rec.interface)
                _log.info("removed stale tunnel %s (%s)", rec.interface, rec.backend)
            except Exception as exc:  # keep going: other records still need cleaning
                _log.error("could not remove stale tunnel %s: %s", rec.interface, exc)
            with contextlib.suppress(OSError):
                self.state.remove(rec.interface)
        self._owners.clear()

    # ----- connections -----------------------------------------------------------------

    def authorised(self, cred: Caller) -> bool:
        """Whether ``cred`` may use the helper (see the module docstring for the rules)."""
        if isinstance(cred, WindowsCaller):
            group_sid = getattr(self.listener, "group_sid", None)
            return authorise(cred, group_sid=group_sid, allowed_sids=self.config.allowed_sids)
        if cred.uid == 0 or cred.uid in self.config.allowed_uids:
            return True
        return self._group_gid is not None and self._group_gid in _groups_of(cred)

    async def _send(self, conn: Connection, msg: p.Reply) -> None:
        await conn.write(p.encode(msg))

    async def _handle(self, connection: Connection) -> None:
        conn = next(self._ids)
        cred = connection.identity
        if not self.authorised(cred):
            _log.warning("refused %s: not authorised", _who(cred))
            with contextlib.suppress(OSError, ConnectionError):
                await self._send(
                    connection,
                    p.ErrorReply(id=0, code=p.UNAUTHORIZED, message="caller not allowed"),
                )
            connection.close()
            return
        self._live.add(conn)
        self._conns[conn] = connection
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        decoder = p.FrameDecoder()
        try:
            while True:
                # Idle between frames is fine (the owner stays connected); a started frame
                # must finish within frame_timeout so a stalled client cannot pin a reader.
                if decoder.pending:
                    data = await asyncio.wait_for(connection.read(_READ), self.config.frame_timeout)
                else:
                    data = await connection.read(_READ)
                if not data:
                    break
                for body in decoder.feed(data):
                    await self._send(connection, await self._dispatch(conn, cred, body))
        except ProtocolError as exc:  # framing broken: the stream cannot be resynchronised
            with contextlib.suppress(OSError, ConnectionError):
                await self._send(
                    connection, p.ErrorReply(id=0, code=p.BAD_REQUEST, message=str(exc))
                )
        except TimeoutError:
            with contextlib.suppress(OSError, ConnectionError):
                await self._send(
                    connection, p.ErrorReply(id=0, code=p.BAD_REQUEST, message="frame timed out")
                )
        except (ConnectionError, OSError):
            pass
        finally:
            self._live.discard(conn)
            self._conns.pop(conn, None)
            connection.close()
            try:
                await self._lost(conn)
            finally:
                if task is not None:
                    self._handlers.discard(task)

    async def _lost(self, conn: int) -> None:
        for interface in [i for i, c in self._owners.items() if c == conn]:
            del self._owners[interface]
            if read_always_on(self.config.managed_dir):
                _log.info("owner of %s left; kept up (managed always_on)", interface)
                continue
            if interface in self._busy:
                continue
            _log.info("owner of %s left; bringing it down", interface)
            self._busy.add(interface)
            try:
                await asyncio.to_thread(self._down, interface)
            except Exception as exc:
                _log.error("could not bring %s down after its owner left: %s", interface, exc)
            finally:
                self._busy.discard(interface)

    # ----- requests --------------------------------------------------------------------

    async def _dispatch(self, conn: int, cred: Caller, body: bytes) -> p.Reply:
        try:
            req = p.decode_request(body)
        except ProtocolError as exc:
            code = p.BAD_SPEC if "$.spec" in str(exc) else p.BAD_REQUEST
            if "unsupported protocol version" in str(exc):
                code = p.UNSUPPORTED_VERSION
            return p.ErrorReply(id=_id_of(body), code=code, message=str(exc))
        try:
            if isinstance(req, p.Hello):
                return p.Ok(id=req.id, result=self._hello(cred))
            if isinstance(req, p.Up):
                return p.Ok(id=req.id, result=await self._up(conn, req.spec))
            if isinstance(req, p.Down):
                return p.Ok(id=req.id, result=await self._down_req(req.interface))
            return p.Ok(id=req.id, result=await self._status(req.interface))
        except _Refusal as exc:
            return p.ErrorReply(id=req.id, code=exc.code, message=exc.message)
        except SpecError as exc:
            return p.ErrorReply(id=req.id, code=p.BAD_SPEC, message=str(exc))
        except TunnelStateError as exc:
            return p.ErrorReply(id=req.id, code=p.BUSY, message=str(exc))
        except BackendError as exc:
            return p.ErrorReply(id=req.id, code=p.BACKEND, message=str(exc))
        except Exception as exc:  # never let one request kill the helper
            _log.exception("internal error serving %s", type(req).__name__)
            return p.ErrorReply(id=req.id, code=p.INTERNAL, message=type(exc).__name__)

    def _hello(self, cred: Caller) -> dict[str, Any]:
        who: dict[str, Any] = (
            {"uid": -1, "sid": cred.user_sid}
            if isinstance(cred, WindowsCaller)
            else {"uid": cred.uid}
        )
        return {
            "helper": "rustronaut-helper",
            "version": __version__,
            "protocol": p.PROTOCOL_VERSION,
            "backend": self.backend.name,
            **who,
        }

    def _claim(self, interface: str) -> None:
        if interface in self._busy:
            raise _Refusal(p.BUSY, f"another request for {interface} is in progress")
        self._busy.add(interface)

    async def _up(self, conn: int, spec: TunnelSpec) -> dict[str, Any]:
        spec.validate(require_private_key=True)
        name = spec.interface
        owner = self._owners.get(name)
        if owner is not None and owner != conn and owner in self._live:
            raise _Refusal(p.BUSY, f"{name} is owned by another connected client")
        self._claim(name)
        try:
            status = await asyncio.to_thread(self._up_blocking, spec)
            self._owners[name] = conn
        finally:
            self._busy.discard(name)
        return {"status": msgspec.to_builtins(status)}

    def _recorded(self, interface: str) -> bool:
        return any(r.interface == interface for r in self.state.load())

    def _up_blocking(self, spec: TunnelSpec) -> Any:
        name = spec.interface
        if self._recorded(name):  # ours: an orphan (always-on) or a re-up by its owner
            self._down(name)
        elif self.backend.status(name).up:
            raise _Refusal(p.BUSY, f"{name} exists and was not made by this helper")
        try:
            self.state.add(TunnelRecord(interface=name, backend=self.backend.name))
        except OSError as exc:
            raise BackendError(f"cannot record the tunnel: {exc}") from None
        try:
            self.backend.up(spec)
        except BaseException:
            with contextlib.suppress(OSError):
                self.state.remove(name)
            raise
        return self.backend.status(name)

    def _down(self, interface: str) -> None:
        self.backend.down(interface)
        self.state.remove(interface)
        self._owners.pop(interface, None)

    async def _down_req(self, interface: str) -> dict[str, Any]:
        if not self._recorded(interface):
            raise _Refusal(p.NOT_UP, f"no tunnel {interface!r} made by this helper")
        self._claim(interface)
        try:
            await asyncio.to_thread(self._down, interface)
        finally:
            self._busy.discard(interface)
        return {}

    async def _status(self, interface: str) -> dict[str, Any]:
        if not self._recorded(interface):
            return {"status": {"interface": interface, "up": False, "backend": self.backend.name}}
        self._claim(interface)
        try:
            status = await asyncio.to_thread(self.backend.status, interface)
        finally:
            self._busy.discard(interface)
        return {"status": msgspec.to_builtins(status)}


class _Refusal(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _id_of(body: bytes) -> int:
    """Best-effort request id of an undecodable body, so the client can match the error."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return 0
    rid = raw.get("id") if isinstance(raw, dict) else None
    return rid if isinstance(rid, int) and not isinstance(rid, bool) else 0


def _who(cred: Caller) -> str:
    if isinstance(cred, WindowsCaller):
        return f"sid {cred.user_sid} (pid {cred.pid})"
    return f"uid {cred.uid} (pid {cred.pid})"
