"""The privileged helper's asyncio server: authorise, decode, dispatch, clean up.

One server owns one backend and one :class:`~wg_backends.helper.transport.Listener`
(a Unix socket on Linux/macOS, a named pipe on Windows: ``winpipe``); request handling
is the same for both. Each accepted connection is authorised first from its caller
identity, taken from the socket only (``SO_PEERCRED``: uid 0, an allowed uid, or a uid
whose gid or group-database groups — ``getpwuid`` + ``getgrouplist`` — include the
configured group; never ``/proc/<pid>``, whose pid may belong to someone else by then;
on Windows the pipe client's token: SYSTEM, an elevated Administrator, an allowed SID or
a member of the configured group — ``winpipe.authorise``); a refused caller gets one
``unauthorized`` error and is disconnected, and so does a uid already holding
``max_connections_per_uid`` connections (``too_many_connections``; root is exempt).
Requests on a connection are served in order; a frame must be complete within one
deadline (``frame_timeout`` from its first byte, however it trickles in); backend calls
run in a worker thread so the loop keeps serving others.

Ownership and concurrency: the connection that brought a tunnel up owns it, and the
record names the caller (uid or SID, pid). Only that caller — the same uid, or root —
may ``down`` it or bring it up again (``not_owner``). Under managed always-on, read by
the helper from its own managed directory at each request, ``down`` is refused
(``always_on``) unless it is a break-glass ``down`` with a reason and the organisation
allows break-glass. Every ``up`` and ``down`` (and every refusal of one) is logged with
the caller's uid/SID and pid. While a request for an interface is in progress, any
other request for it is refused ``busy``; while its owner is connected, another
client's ``up`` is refused ``busy`` too. When the owner's connection ends (clean close
or ``kill -9`` of the app), the tunnel is brought down unless managed settings say
``always_on``. Routes that would capture the host's LAN or the managed controller's
address are refused (``bad_spec``) from facts the helper reads itself (``localnet``).
At start the server removes tunnels a previous run recorded (crash, power loss) from the
record alone; at stop it brings its tunnels down (the Windows service keeps them when
always-on is managed: ``close(keep_always_on=True)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from wg_backends import __version__
from wg_backends.backends import WireGuardBackend, backend_class
from wg_backends.errors import BackendError, ProtocolError, SpecError, TunnelStateError
from wg_backends.helper import localnet, managed
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
_SYSTEM_SID = "S-1-5-18"
_ADMINISTRATORS_SID = "S-1-5-32-544"


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
    max_connections_per_uid: int = 8  # root is exempt


def _groups_of(cred: PeerCred) -> set[int]:
    """The groups that count for ``cred``: the gid the socket reports, the groups the
    socket reports (macOS ``xucred``), and the uid's groups in the group database.

    Never ``/proc/<pid>/status``: by the time it is read the pid may belong to another
    process (pid reuse), and its groups would authorise the wrong caller.
    """
    groups = {cred.gid, *cred.groups}
    try:
        import pwd  # Unix-only module: imported only where it exists

        entry = pwd.getpwuid(cred.uid)
        groups.update(os.getgrouplist(entry.pw_name, entry.pw_gid))
    except (KeyError, OSError, ImportError, AttributeError):
        pass  # a uid without a passwd entry has only the socket's gid
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
    # With --allow-uid the socket must be reachable for uids outside the group: it is
    # then 0666 and the peer check (SO_PEERCRED) alone decides who is served.
    mode = 0o666 if config.allowed_uids else 0o660
    return UnixListener(config.socket_path, _unix_gid(config.group), mode=mode)


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
        self._per_caller: Counter[str] = Counter()
        self._handlers: set[asyncio.Task[Any]] = set()
        # Seams for tests; both read the helper's own view of the machine, never a caller's.
        self.read_managed: Callable[[], managed.HelperManaged] = lambda: managed.read(
            config.managed_dir
        )
        self.local_networks: Callable[[], tuple[str, ...]] = lambda: localnet.connected_networks(
            {t.interface for t in self.state.load()}
        )
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
        """Bring down every recorded tunnel and forget it. Blocking; never raises.

        Uses the backend's ``purge(interface, table)`` when it has one: it removes the
        routes, rules, nft tables and DNS record from the record alone, even when the
        interface or its config file is already gone.
        """
        for rec in self.state.load():
            try:
                backend = self.backend
                if rec.backend != self.backend.name:
                    backend = backend_class(rec.backend)(self._runner)  # type: ignore[call-arg]
                purge = getattr(backend, "purge", None)
                if purge is not None:
                    purge(rec.interface, table=rec.table)
                else:
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

    async def _refuse(self, connection: Connection, code: str, message: str) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            await self._send(connection, p.ErrorReply(id=0, code=code, message=message))
        connection.close()

    async def _handle(self, connection: Connection) -> None:
        conn = next(self._ids)
        cred = connection.identity
        if not self.authorised(cred):
            _log.warning("refused %s: not authorised", _who(cred))
            await self._refuse(connection, p.UNAUTHORIZED, "caller not allowed")
            return
        key = _caller_key(cred)
        limit = self.config.max_connections_per_uid
        if not _is_root(cred) and self._per_caller[key] >= limit:
            _log.warning("refused %s: already %d connections", _who(cred), limit)
            await self._refuse(connection, p.TOO_MANY, f"more than {limit} connections")
            return
        self._per_caller[key] += 1
        self._live.add(conn)
        self._conns[conn] = connection
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        decoder = p.FrameDecoder()
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        try:
            while True:
                # Idle between frames is fine (the owner stays connected); a started frame
                # must finish within one frame_timeout from its first byte, however slowly
                # it trickles in, so a stalled client cannot pin a reader.
                if decoder.pending:
                    if deadline is None:
                        deadline = loop.time() + self.config.frame_timeout
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise TimeoutError
                    data = await asyncio.wait_for(connection.read(_READ), remaining)
                else:
                    deadline = None
                    data = await connection.read(_READ)
                if not data:
                    break
                for body in decoder.feed(data):
                    deadline = None  # a frame completed: the next one gets its own deadline
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
            self._per_caller[key] -= 1
            if self._per_caller[key] <= 0:
                del self._per_caller[key]
            self._live.discard(conn)
            self._conns.pop(conn, None)
            connection.close()
            try:
                await self._lost(conn, cred)
            finally:
                if task is not None:
                    self._handlers.discard(task)

    async def _lost(self, conn: int, cred: Caller) -> None:
        for interface in [i for i, c in self._owners.items() if c == conn]:
            del self._owners[interface]
            if (await asyncio.to_thread(self.read_managed)).always_on:
                _log.info("owner of %s left; kept up (managed always_on)", interface)
                continue
            if interface in self._busy:
                continue
            _log.info("owner of %s left (%s); bringing it down", interface, _who(cred))
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
        except Exception as exc:  # the decoder's contract says this cannot happen: log it
            _log.error("undecodable request from %s: %s", _who(cred), type(exc).__name__)
            return p.ErrorReply(id=0, code=p.BAD_REQUEST, message="malformed request")
        try:
            if isinstance(req, p.Hello):
                return p.Ok(id=req.id, result=self._hello(cred))
            if isinstance(req, p.Up):
                return p.Ok(id=req.id, result=await self._up(conn, cred, req.spec))
            if isinstance(req, p.Down):
                return p.Ok(id=req.id, result=await self._down_req(cred, req))
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

    def _check_owner(self, cred: Caller, rec: TunnelRecord, verb: str) -> None:
        if _is_root(cred) or _owns(cred, rec):
            return
        _log.warning(
            "refused %s of %s by %s: brought up by %s",
            verb, rec.interface, _who(cred), _record_owner(rec),
        )  # fmt: skip
        raise _Refusal(p.NOT_OWNER, f"{rec.interface} was brought up by another account")

    async def _up(self, conn: int, cred: Caller, spec: TunnelSpec) -> dict[str, Any]:
        spec.validate(require_private_key=True)
        name = spec.interface
        owner = self._owners.get(name)
        if owner is not None and owner != conn and owner in self._live:
            raise _Refusal(p.BUSY, f"{name} is owned by another connected client")
        rec = self.state.get(name)
        if rec is not None:  # a re-up takes the old tunnel down first: the owner's call
            self._check_owner(cred, rec, "up")
        self._claim(name)
        try:
            status = await asyncio.to_thread(self._up_blocking, spec, cred)
            self._owners[name] = conn
        finally:
            self._busy.discard(name)
        endpoints = ", ".join(peer.endpoint for peer in spec.peers)
        nets = sum(len(peer.allowed_ips) for peer in spec.peers)
        _log.info(
            "up %s by %s: endpoints %s, %d allowed IPs, DNS %s",
            name, _who(cred), endpoints, nets, ", ".join(spec.dns) or "unchanged",
        )  # fmt: skip
        return {"status": msgspec.to_builtins(status)}

    def _recorded(self, interface: str) -> bool:
        return self.state.get(interface) is not None

    def _check_routes(self, spec: TunnelSpec) -> None:
        """Refuse routes over the LAN or the controller (facts read here, not given)."""
        controller = localnet.controller_addresses(self.read_managed().controller_url)
        spec.validate(
            require_private_key=True, protect=controller, local_networks=self.local_networks()
        )

    def _up_blocking(self, spec: TunnelSpec, cred: Caller) -> Any:
        name = spec.interface
        self._check_routes(spec)
        if self._recorded(name):  # ours: an orphan (always-on) or a re-up by its owner
            self._down(name)
        elif self.backend.status(name).up:
            raise _Refusal(p.BUSY, f"{name} exists and was not made by this helper")
        record = TunnelRecord(interface=name, backend=self.backend.name, **_owner_fields(cred))
        try:
            self.state.add(record)
        except OSError as exc:
            raise BackendError(f"cannot record the tunnel: {exc}") from None
        try:
            self.backend.up(spec)
        except BaseException:
            with contextlib.suppress(OSError):
                self.state.remove(name)
            raise
        table_of = getattr(self.backend, "routing_table", None)
        table = table_of(name) if table_of is not None else None
        if table is not None:  # what a clean-up needs once the interface is gone
            with contextlib.suppress(OSError):
                self.state.add(msgspec.structs.replace(record, table=table))
        return self.backend.status(name)

    def _down(self, interface: str) -> None:
        self.backend.down(interface)
        self.state.remove(interface)
        self._owners.pop(interface, None)

    async def _down_req(self, cred: Caller, req: p.Down) -> dict[str, Any]:
        interface = req.interface
        rec = self.state.get(interface)
        if rec is None:
            raise _Refusal(p.NOT_UP, f"no tunnel {interface!r} made by this helper")
        self._check_owner(cred, rec, "down")
        reason = req.reason if isinstance(req.reason, str) else ""
        settings = await asyncio.to_thread(self.read_managed)
        if settings.always_on:
            if req.break_glass is not True:
                _log.warning("refused down of %s by %s: managed always-on", interface, _who(cred))
                raise _Refusal(
                    p.ALWAYS_ON,
                    "always-on is managed by your organisation: disconnecting needs break-glass "
                    "with a reason",
                )
            if not settings.allow_break_glass:
                _log.warning(
                    "refused break-glass down of %s by %s: not allowed by the organisation",
                    interface, _who(cred),
                )  # fmt: skip
                raise _Refusal(p.ALWAYS_ON, "your organisation does not allow break-glass")
            if not reason.strip():
                raise _Refusal(p.BAD_REQUEST, "a break-glass down needs a reason")
        self._claim(interface)
        try:
            await asyncio.to_thread(self._down, interface)
        finally:
            self._busy.discard(interface)
        if req.break_glass is True:
            # %r escapes control characters: a reason cannot forge log lines.
            _log.warning("break-glass down of %s by %s, reason %r", interface, _who(cred), reason)
        else:
            _log.info("down %s by %s", interface, _who(cred))
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
    except Exception:  # anything the decoder refused has no id worth trusting
        return 0
    rid = raw.get("id") if isinstance(raw, dict) else None
    return rid if isinstance(rid, int) and not isinstance(rid, bool) else 0


def _who(cred: Caller) -> str:
    if isinstance(cred, WindowsCaller):
        return f"sid {cred.user_sid} (pid {cred.pid})"
    return f"uid {cred.uid} (pid {cred.pid})"


def _caller_key(cred: Caller) -> str:
    return f"sid:{cred.user_sid}" if isinstance(cred, WindowsCaller) else f"uid:{cred.uid}"


def _is_root(cred: Caller) -> bool:
    """uid 0; on Windows LocalSystem or an elevated (enabled) Administrators group."""
    if isinstance(cred, WindowsCaller):
        return cred.user_sid == _SYSTEM_SID or _ADMINISTRATORS_SID in cred.groups
    return cred.uid == 0


def _owner_fields(cred: Caller) -> dict[str, Any]:
    if isinstance(cred, WindowsCaller):
        return {"owner_sid": cred.user_sid, "owner_pid": cred.pid}
    return {"owner_uid": cred.uid, "owner_pid": cred.pid}


def _owns(cred: Caller, rec: TunnelRecord) -> bool:
    if isinstance(cred, WindowsCaller):
        return bool(rec.owner_sid) and cred.user_sid == rec.owner_sid
    return rec.owner_uid >= 0 and cred.uid == rec.owner_uid


def _record_owner(rec: TunnelRecord) -> str:
    who = f"sid {rec.owner_sid}" if rec.owner_sid else f"uid {rec.owner_uid}"
    return f"{who} (pid {rec.owner_pid})"
