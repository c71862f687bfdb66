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

Enforcement (issue #15): ``enforce`` installs the tunnel's firewall rules
(:mod:`wg_backends.firewall`: transparent redirect of the owner's TCP to the decider, and
the kill switch) from the helper's own record — ranges, DNS servers and endpoints of the
spec it brought up, the owner uid read from the socket; ``release``, ``down``, the
owner's disconnect and every clean-up remove them; a re-``up`` by the owner (a
reconnect) keeps them, moved to the new spec's ranges before its routes exist. If an
enforced tunnel goes away without a deliberate ``down`` (helper stop, crash clean-up,
a failed re-``up``) under managed always-on (or
``block_when_down``), a block table keeps rejecting the last ranges for everyone until
the next ``enforce`` or a break-glass ``down``. At start, tables of ours that no record
backs are deleted. ``update`` applies a new spec without taking the tunnel down (rules
first, then the backend; the old rules come back if the backend fails). ``sockets``
hands the owner uid sockets carrying the tunnel's mark and bound to its interface, passed
with ``SCM_RIGHTS`` (Linux only), under a per-uid budget.

Transparent listeners: ``enforce`` with a redirect port opens listening sockets on
127.0.0.1 and [::1] at that port (another free one, the same on both, when it is taken)
*before* the rules point there, and holds them (:mod:`~wg_backends.helper.redirect`)
until the rules are gone (``release``, ``down``, the owner's disconnect without
always-on, clean-ups): no other account can bind the port the owner's TCP is sent to,
even while the decider is not running. ``listeners`` hands the owner uid duplicates of
them. ``enforce`` without a redirect port installs the kill switch only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from wg_backends import __version__
from wg_backends.backends import WireGuardBackend, backend_class
from wg_backends.errors import BackendError, ProtocolError, SpecError, TunnelStateError
from wg_backends.errors import WgError as WgErrorBase
from wg_backends.firewall import Enforcement, Firewall, NftFirewall, PfFirewall, mark_for
from wg_backends.helper import localnet, managed
from wg_backends.helper import protocol as p
from wg_backends.helper.bundles import (
    BundleRefused,
    HelperFloors,
    VerifiedSpec,
    describe,
    verified_spec,
)
from wg_backends.helper.keys import DeviceKeyError, DeviceKeys, RelayCredentials
from wg_backends.helper.redirect import HeldListeners
from wg_backends.helper.state import StateFile, TunnelRecord, read_always_on
from wg_backends.helper.transport import (
    Caller,
    Connection,
    Listener,
    PeerCred,
    UnixListener,
    WindowsCaller,
)
from wg_backends.helper.updates import HelperUpdates, UpdateRefused
from wg_backends.helper.winpipe import PIPE_NAME, NamedPipeListener, authorise
from wg_backends.relay.client import relay_context
from wg_backends.relay.supervisor import Supervisor
from wg_backends.runner import CommandRunner
from wg_backends.signed.anchors import anchor_keys
from wg_backends.spec import TunnelSpec, parse_endpoint
from wg_backends.status import TunnelStatus

__all__ = ["HelperConfig", "HelperServer", "PeerCred", "default_listener"]

_log = logging.getLogger("rustronaut.helper")
_READ = 65536
_SYSTEM_SID = "S-1-5-18"
#: Per-uid budget of ``sockets``: a burst of this many, refilled at this many per second.
#: Every connection the decider relays costs one socket, so the rate must be above any
#: plausible connection rate (a browser opening a page, a build fetching packages); a
#: socket costs the helper a few microseconds and is not kept by it.
SOCKET_BURST = 8192
SOCKET_RATE = 4096.0
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
    decider_group: str | None = None  # macOS: the group the decider runs as (pf rules)


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


def default_firewall(
    runner: CommandRunner,
    workdir: Path | None = None,
    platform: str = sys.platform,
    *,
    decider_gid: int | None = None,
) -> Firewall | None:
    """nftables on Linux; pf anchors on macOS when the decider's group is configured
    (``--decider-group``: pf tells the decider's connections apart by group); ``None``
    otherwise (Windows' redirector is not built yet): ``enforce`` is then ``unsupported``."""
    if platform.startswith("linux"):
        return NftFirewall(runner, workdir=workdir)
    if platform == "darwin" and decider_gid is not None:
        return PfFirewall(runner, decider_gid=decider_gid, workdir=workdir)
    return None


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
        firewall: Firewall | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self._runner = runner
        self.state = StateFile(config.state_dir)
        # Issue 16: the device keys and rollback floors live in the helper's own state.
        self.keys = DeviceKeys(config.state_dir)
        self.floors = HelperFloors(config.state_dir)
        # Issue 19: signed updates (install_update), from the helper's own managed keys.
        self.updates = HelperUpdates(config.state_dir, managed_dir=config.managed_dir)
        self._ids = itertools.count(1)
        self._live: set[int] = set()
        self._owners: dict[str, int] = {}
        self._busy: set[str] = set()
        self._conns: dict[int, Connection] = {}
        self._per_caller: Counter[str] = Counter()
        self._large: set[str] = set()  # callers with a frame > MAX_FRAME buffering
        self._handlers: set[asyncio.Task[Any]] = set()
        # Enforcement rules (None: this OS cannot enforce). A seam for tests too.
        if firewall is None:
            gid = _unix_gid(config.decider_group) if sys.platform == "darwin" else None
            firewall = default_firewall(runner, config.state_dir, decider_gid=gid)
        self.firewall: Firewall | None = firewall
        self.sockets_supported = sys.platform.startswith("linux")
        self.listeners_supported = sys.platform != "win32"  # SCM_RIGHTS
        self._held = HeldListeners()  # transparent listeners per enforced interface
        self._socket_budget: dict[str, tuple[float, float]] = {}  # key -> (tokens, time)
        # Seams for tests; both read the helper's own view of the machine, never a caller's.
        self.read_managed: Callable[[], managed.HelperManaged] = lambda: managed.read(
            config.managed_dir
        )
        self.local_networks: Callable[[], tuple[str, ...]] = lambda: localnet.connected_networks(
            {t.interface for t in self.state.load()}
        )
        #: The relays of a spec as literal ``address:port`` pairs (DNS, blocking).
        self.resolve_relays: Callable[[TunnelSpec], tuple[str, ...]] = resolve_relays
        self._group_gid: int | None = None
        if listener is None:
            if sys.platform != "win32":
                self._group_gid = _unix_gid(config.group)
            listener = default_listener(config)
        elif isinstance(listener, UnixListener):
            self._group_gid = _unix_gid(config.group)
        self.listener: Listener = listener
        self._listening = False
        # Issue 21: one transport supervisor per tunnel whose spec lists relays.
        self._transports: dict[str, Supervisor] = {}

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
        for name in list(self._transports):
            await self._stop_transport(name, restore=False)
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
        always_on = self._always_on_quiet()
        keep_block = always_on
        for rec in self.state.load():
            keep_block = self._fence_gone(rec, always_on=always_on) or keep_block
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
        reconcile = getattr(self.firewall, "reconcile", None)
        if reconcile is not None:
            live = [t.interface for t in self.state.load()]
            try:
                for table in reconcile(live, keep_block=keep_block):
                    _log.info("removed stale firewall table %s", table)
            except Exception as exc:  # never stop the helper from starting
                _log.error("could not reconcile firewall tables: %s", exc)

    def _always_on_quiet(self) -> bool:
        try:
            return self.read_managed().always_on
        except Exception:  # a clean-up must not fail on a settings read
            return False

    def _fence_gone(self, rec: TunnelRecord, *, always_on: bool | None = None) -> bool:
        """``rec``'s tunnel went away without a deliberate ``down``: its rules go, and its
        ranges stay blocked under always-on or ``block_when_down``. Whether a block was
        asked for. Never raises (logged)."""
        if always_on is None:
            always_on = self._always_on_quiet()
        blocked = rec.is_enforced and (always_on or rec.block_when_down)
        if blocked:
            self._block(rec)
        self._unenforce(rec)
        return blocked

    def _block(self, rec: TunnelRecord) -> None:
        """The always-on block for ``rec``'s ranges. Never raises (logged)."""
        block = getattr(self.firewall, "block", None)
        if block is None or not rec.allowed_ips:
            return
        try:
            # The tunnel must be able to come back: its exact gateway (UDP) and relay
            # (TCP) pairs pass the block, as they pass the guard.
            block(rec.allowed_ips, endpoints=rec.endpoints, relay_endpoints=rec.relay_endpoints)
            _log.warning("%s went away while enforced: its ranges stay blocked", rec.interface)
        except Exception as exc:
            _log.error("could not block the ranges of %s: %s", rec.interface, exc)

    def _unblock(self) -> None:
        unblock = getattr(self.firewall, "unblock", None)
        if unblock is not None:
            try:
                unblock()
            except Exception as exc:
                _log.error("could not remove the always-on block: %s", exc)

    def _unenforce(self, rec: TunnelRecord) -> None:
        """Remove ``rec``'s rules (from the record alone), then close its transparent
        listeners. Never raises (logged)."""
        if self.firewall is not None:
            try:
                self.firewall.remove(rec.interface)
            except Exception as exc:
                # The rules may still send the owner's TCP to the port: keep holding it.
                _log.error("could not remove the rules of %s: %s", rec.interface, exc)
                return
        self._held.close(rec.interface)

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
        decoder = p.FrameDecoder(p.MAX_REQUEST_FRAME)  # an up may carry a signed bundle
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        large = False
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
                    reply = await self._dispatch(conn, cred, body)
                    if isinstance(reply, _FdReply):
                        await self._send_fds(connection, reply)
                    else:
                        await self._send(connection, reply)
                large = self._large_frame(key, cred, large, decoder.pending)
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
            if large:
                self._large.discard(key)
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

    def _large_frame(self, key: str, cred: Caller, held: bool, pending: int) -> bool:
        """Whether this connection now holds its caller's one large-frame slot.

        A request frame may be 16 MiB (a signed bundle): one such frame in flight per
        account (root exempt), so eight connections cannot make the helper buffer 128 MiB
        for one user. Raises ``ProtocolError`` (the connection is closed) otherwise.
        """
        if pending <= p.MAX_FRAME + 4:  # no frame larger than an answer is buffering
            if held:
                self._large.discard(key)
            return False
        if held or _is_root(cred):
            return held
        if key in self._large:
            _log.warning("refused a second large request of %s at once", _who(cred))
            raise ProtocolError("another large request of this account is in progress")
        self._large.add(key)
        return True

    async def _send_fds(self, connection: Connection, reply: _FdReply) -> None:
        try:
            send = getattr(connection, "send_fds", None)
            if send is None:  # cannot happen: sockets is refused where fds cannot travel
                await self._send(
                    connection,
                    p.ErrorReply(id=reply.reply.id, code=p.UNSUPPORTED, message="no fd passing"),
                )
                return
            await send(p.encode(reply.reply), [s.fileno() for s in reply.socks])
        finally:
            for s in reply.socks:  # the caller has its own copies now
                s.close()

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
                await self._stop_transport(interface, restore=False)
                await asyncio.to_thread(self._down, interface)
            except Exception as exc:
                _log.error("could not bring %s down after its owner left: %s", interface, exc)
            finally:
                self._busy.discard(interface)

    # ----- requests --------------------------------------------------------------------

    async def _dispatch(self, conn: int, cred: Caller, body: bytes) -> p.Reply | _FdReply:
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
                spec = await self._requested_spec(cred, req, "up")
                result = await self._up(conn, cred, spec)
                return p.Ok(id=req.id, result=await self._with_transport(cred, req, spec, result))
            if isinstance(req, p.Down):
                return p.Ok(id=req.id, result=await self._down_req(cred, req))
            if isinstance(req, p.Update):
                spec = await self._requested_spec(cred, req, "update")
                result = await self._update(cred, spec)
                return p.Ok(id=req.id, result=await self._with_transport(cred, req, spec, result))
            if isinstance(req, p.Enforce):
                return p.Ok(id=req.id, result=await self._enforce(cred, req))
            if isinstance(req, p.Release):
                return p.Ok(id=req.id, result=await self._release(cred, req.interface))
            if isinstance(req, p.Sockets):
                socks = self._sockets(cred, req)
                return _FdReply(p.Ok(id=req.id, result={"count": len(socks)}), socks)
            if isinstance(req, p.InstallUpdate):
                _log.warning("install_update asked by %s", _who(cred))
                result = await asyncio.to_thread(self.updates.install, req.manifest)
                return p.Ok(id=req.id, result=result)
            if isinstance(req, p.Listeners):
                port, socks = self._listeners(cred, req.interface)
                result = {"count": len(socks), "redirect_port": port}
                return _FdReply(p.Ok(id=req.id, result=result), socks)
            return p.Ok(id=req.id, result=await self._status(req.interface))
        except _Refusal as exc:
            return p.ErrorReply(id=req.id, code=exc.code, message=exc.message)
        except UpdateRefused as exc:
            _log.warning("refused the update asked by %s: %s", _who(cred), exc)
            return p.ErrorReply(id=req.id, code=exc.code, message=exc.message)
        except BundleRefused as exc:
            _log.warning("refused the signed policy of %s: %s", _who(cred), exc)
            return p.ErrorReply(id=req.id, code=p.BAD_BUNDLE, message=str(exc))
        except DeviceKeyError as exc:
            _log.error("device key of %s: %s", _who(cred), exc)
            return p.ErrorReply(id=req.id, code=p.INTERNAL, message=str(exc))
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
        try:
            # The caller's WireGuard public key, made on first use: the engine enrolls the
            # device with it; the private half never leaves the helper.
            device_key: str | None = self.keys.public_key(_owner_id(cred))
        except DeviceKeyError as exc:
            _log.error("device key of %s: %s", _who(cred), exc)
            device_key = None
        try:
            # Issue 21: the caller's relay (Ed25519) key; the controller issues the relay
            # client certificate to it. Its private half never leaves the helper either.
            relay_key: str | None = self.keys.relay_public_key(_owner_id(cred))
        except DeviceKeyError as exc:
            _log.error("relay key of %s: %s", _who(cred), exc)
            relay_key = None
        return {
            "helper": "rustronaut-helper",
            "version": __version__,
            "protocol": p.PROTOCOL_VERSION,
            "backend": self.backend.name,
            "device_key": device_key,
            "relay_key": relay_key,
            # Whether up/update take only signed bundles here (managed trust anchors), so
            # the engine knows which to send; the managed files are world-readable anyway.
            "signed_policy": bool(self.read_managed().policy_trust_anchors),
            **who,
        }

    async def _requested_spec(self, cred: Caller, req: p.Up | p.Update, verb: str) -> TunnelSpec:
        """The spec an ``up``/``update`` asks for, by the organisation's rules.

        With managed policy trust anchors only a signed bundle counts: the helper verifies
        it itself and adds the caller's device key; a caller-built spec is refused
        (``bad_spec``). Without anchors (development) a caller-built spec is taken, and
        logged as such; a bundle cannot be verified then (``bad_bundle``).
        """
        settings = await asyncio.to_thread(self.read_managed)
        anchors = settings.policy_trust_anchors
        if isinstance(req.bundle, str):
            if not anchors:
                raise BundleRefused(
                    "untrusted_key",
                    "no policy trust anchors are managed on this computer: the helper cannot "
                    "verify a signed bundle",
                )
            verified = await asyncio.to_thread(self._verify_bundle, cred, req, anchors)
            spec = await asyncio.to_thread(self.keys.attach, _owner_id(cred), verified.spec)
            _log.info("%s from signed policy by %s: %s", verb, _who(cred), describe(verified))
            return spec
        assert isinstance(req.spec, TunnelSpec)  # decode_request: a spec or a bundle
        if anchors:
            _log.warning(
                "refused %s of %s by %s: a caller-built spec, and policy trust anchors are "
                "managed",
                verb, req.spec.interface, _who(cred),
            )  # fmt: skip
            raise _Refusal(p.BAD_SPEC, "this organisation's helper only accepts signed policy")
        _log.warning(
            "%s of %s by %s from a caller-built spec (no policy_trust_anchors managed: a "
            "development setup)",
            verb, req.spec.interface, _who(cred),
        )  # fmt: skip
        return req.spec

    def _verify_bundle(
        self, cred: Caller, req: p.Up | p.Update, anchors: tuple[str, ...]
    ) -> VerifiedSpec:
        assert isinstance(req.bundle, str)  # decode_request: a bundle comes with a profile
        assert isinstance(req.profile, str)
        try:
            keys = anchor_keys(anchors)
        except ValueError as exc:  # the managed reader checked them; never trust twice-read
            raise BundleRefused("untrusted_key", f"managed trust anchor: {exc}") from None
        return verified_spec(
            req.bundle,
            req.profile,
            anchors=keys,
            endorsements=req.endorsements if isinstance(req.endorsements, tuple) else (),
            floors=self.floors,
            owner=_owner_id(cred),
            now=time.time(),
            device_id=req.device_id if isinstance(req.device_id, str) else None,
        )

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
            await self._stop_transport(name, restore=False)
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

    def _check_routes(self, spec: TunnelSpec) -> tuple[str, ...]:
        """Refuse routes over the LAN or the controller (facts read here, not given).

        Returns the relays' resolved endpoints (``address:port``), resolved once here and
        recorded: the enforcement lets exactly these TCP pairs through (issue 21)."""
        controller = localnet.controller_addresses(self.read_managed().controller_url)
        relays = self.resolve_relays(spec)
        # The relays carry the tunnel: like the controller, they keep their own route.
        spec.validate(
            require_private_key=True,
            protect=(*controller, *(parse_endpoint(ep)[0] for ep in relays)),
            local_networks=self.local_networks(),
        )
        return relays

    def _up_blocking(self, spec: TunnelSpec, cred: Caller) -> Any:
        name = spec.interface
        relays = self._check_routes(spec)
        old = self.state.get(name)
        fenced = old is not None and old.is_enforced and self.firewall is not None
        if old is not None and fenced:
            # A re-up of an enforced tunnel (a reconnect) keeps its rules and listeners:
            # between the old interface going and the new one coming the OS's routes would
            # otherwise send the ranges to the LAN.
            self.backend.down(name)
        elif old is not None:  # ours: an orphan (always-on) or a re-up by its owner
            self._down(name)
        elif self.backend.status(name).up:
            raise _Refusal(p.BUSY, f"{name} exists and was not made by this helper")
        record = TunnelRecord(
            interface=name,
            backend=self.backend.name,
            **_owner_fields(cred),
            **_spec_fields(spec),
            relay_endpoints=relays,
        )
        if fenced:
            assert old is not None
            record = msgspec.structs.replace(
                record,
                redirect_port=old.redirect_port,
                block_when_down=old.block_when_down,
                enforced=True,
            )
        try:
            self.state.add(record)
            if fenced:  # the new ranges are fenced before their routes exist
                assert self.firewall is not None
                self.firewall.apply(self._enforcement(record, record.redirect_port or None))
            self.backend.up(spec)
        except BaseException as exc:
            if fenced:
                self._fence_gone(record)
            with contextlib.suppress(OSError):
                self.state.remove(name)
            if isinstance(exc, OSError):
                raise BackendError(f"cannot record the tunnel: {exc}") from None
            raise
        table_of = getattr(self.backend, "routing_table", None)
        table = table_of(name) if table_of is not None else None
        if table is not None:  # what a clean-up needs once the interface is gone
            with contextlib.suppress(OSError):
                self.state.add(msgspec.structs.replace(record, table=table))
        return self.backend.status(name)

    def _down(self, interface: str) -> None:
        rec = self.state.get(interface)
        if rec is not None and rec.is_enforced:
            self._unenforce(rec)
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
            await self._stop_transport(interface, restore=False)
            await asyncio.to_thread(self._down, interface)
        finally:
            self._busy.discard(interface)
        if req.break_glass is True:
            await asyncio.to_thread(self._unblock)  # break-glass ends the always-on block
            # %r escapes control characters: a reason cannot forge log lines.
            _log.warning("break-glass down of %s by %s, reason %r", interface, _who(cred), reason)
        else:
            _log.info("down %s by %s", interface, _who(cred))
        return {}

    # ----- enforcement verbs -------------------------------------------------------------

    def _owned_record(self, cred: Caller, interface: str, verb: str) -> TunnelRecord:
        rec = self.state.get(interface)
        if rec is None:
            raise _Refusal(p.NOT_UP, f"no tunnel {interface!r} made by this helper")
        self._check_owner(cred, rec, verb)
        return rec

    async def _update(self, cred: Caller, spec: TunnelSpec) -> dict[str, Any]:
        spec.validate(require_private_key=True)
        name = spec.interface
        rec = self._owned_record(cred, name, "update")
        if getattr(self.backend, "update", None) is None:
            raise _Refusal(p.UNSUPPORTED, f"backend {self.backend.name} cannot update in place")
        self._claim(name)
        try:
            status = await asyncio.to_thread(self._update_blocking, rec, spec)
        finally:
            self._busy.discard(name)
        nets = sum(len(peer.allowed_ips) for peer in spec.peers)
        _log.info(
            "update %s by %s: %d allowed IPs, enforced %s",
            name, _who(cred), nets, "yes" if rec.is_enforced else "no",
        )  # fmt: skip
        return {"status": msgspec.to_builtins(status)}

    def _update_blocking(self, rec: TunnelRecord, spec: TunnelSpec) -> Any:
        relays = self._check_routes(spec)
        new = msgspec.structs.replace(rec, **_spec_fields(spec), relay_endpoints=relays)
        port = rec.redirect_port or None
        old_enf = self._enforcement(rec, port) if rec.is_enforced else None
        new_enf = self._enforcement(new, port) if rec.is_enforced else None
        # Rules first: ranges not routed yet are harmless to reject; ranges routed before
        # their rules would be a window without enforcement.
        if new_enf is not None and self.firewall is not None:
            self.firewall.apply(new_enf)
        try:
            self.backend.update(spec)
        except BaseException:
            if old_enf is not None and self.firewall is not None:
                try:
                    self.firewall.apply(old_enf)
                except Exception as exc:
                    _log.error("could not restore the rules of %s: %s", rec.interface, exc)
            raise
        try:
            self.state.add(new)
        except OSError as exc:
            raise BackendError(f"cannot record the tunnel: {exc}") from None
        return self.backend.status(spec.interface)

    def _enforcement(self, rec: TunnelRecord, port: int | None) -> Enforcement:
        return Enforcement.build(
            rec.interface,
            owner_uid=rec.owner_uid,
            redirect_port=port,
            allowed_ips=rec.allowed_ips,
            dns=rec.dns,
            endpoints=rec.endpoints,
            relay_endpoints=rec.relay_endpoints,
        )

    async def _enforce(self, cred: Caller, req: p.Enforce) -> dict[str, Any]:
        rec = self._owned_record(cred, req.interface, "enforce")
        if self.firewall is None or isinstance(cred, WindowsCaller) or rec.owner_uid < 0:
            raise _Refusal(p.UNSUPPORTED, "transparent enforcement is not available here")
        if not rec.allowed_ips:
            raise _Refusal(p.NOT_UP, f"{req.interface} has no recorded ranges (re-connect)")
        self._enforcement(rec, req.redirect_port)  # ranges from our record only: valid?
        block = req.block_when_down is True
        self._claim(req.interface)
        try:
            enf = await asyncio.to_thread(self._enforce_blocking, rec, req.redirect_port, block)
        finally:
            self._busy.discard(req.interface)
        _log.info(
            "enforce %s by %s: owner uid %d, redirect to port %s (asked %s), mark %#x, %d ranges",
            req.interface, _who(cred), enf.owner_uid, enf.redirect_port, req.redirect_port,
            enf.mark, len(enf.ranges),
        )  # fmt: skip
        return {"mark": enf.mark, "ranges": list(enf.ranges), "redirect_port": enf.redirect_port}

    def _enforce_blocking(self, rec: TunnelRecord, want: int | None, block: bool) -> Enforcement:
        """Listeners first (held before any rule points at their port), then the rules,
        then the record. A failure leaves the previous enforcement as it was."""
        assert self.firewall is not None
        name = rec.interface
        had = self._held.port(name)
        port: int | None = None
        try:
            if want is not None:
                try:
                    port = self._held.hold(name, want)
                except OSError as exc:
                    raise BackendError(f"cannot open the transparent listeners: {exc}") from None
            enf = self._enforcement(rec, port)
            self.firewall.apply(enf)
        except BaseException:
            if had is None:  # opened by this request: no rule points at them
                self._held.close(name)
            raise
        if port is None:  # transparent mode off: no rule points at the old port any more
            self._held.close(name)
        try:
            self.state.add(
                msgspec.structs.replace(
                    rec, redirect_port=port or 0, block_when_down=block, enforced=True
                )
            )
        except OSError as exc:
            self._unenforce(rec)  # not recorded: a crash clean-up could not find it
            raise BackendError(f"cannot record the enforcement: {exc}") from None
        return enf

    async def _release(self, cred: Caller, interface: str) -> dict[str, Any]:
        rec = self._owned_record(cred, interface, "release")
        self._claim(interface)
        try:
            await asyncio.to_thread(self._release_blocking, rec)
        finally:
            self._busy.discard(interface)
        _log.info("release %s by %s", interface, _who(cred))
        return {}

    def _release_blocking(self, rec: TunnelRecord) -> None:
        if self.firewall is not None:
            self.firewall.remove(rec.interface)  # raises: the listeners stay held
        self._held.close(rec.interface)
        with contextlib.suppress(OSError):
            self.state.add(
                msgspec.structs.replace(rec, redirect_port=0, block_when_down=False, enforced=False)
            )

    def _listeners(self, cred: Caller, interface: str) -> tuple[int, list[socket.socket]]:
        """Duplicates of ``interface``'s transparent listeners, for its owner uid only."""
        if not self.listeners_supported or isinstance(cred, WindowsCaller):
            raise _Refusal(p.UNSUPPORTED, "listening sockets are only handed out on Unix")
        rec = self.state.get(interface)
        if rec is None:
            raise _Refusal(p.NOT_UP, f"no tunnel {interface!r} made by this helper")
        if not _owns(cred, rec):  # the owner uid only: the listeners get its company TCP
            _log.warning(
                "refused listeners of %s to %s: brought up by %s",
                interface, _who(cred), _record_owner(rec),
            )  # fmt: skip
            raise _Refusal(p.NOT_OWNER, f"{interface} was brought up by another account")
        port = self._held.port(interface)
        if port is None:
            raise _Refusal(p.NOT_UP, f"{interface} is not redirected (enforce with a port)")
        if not self._spend(_caller_key(cred), 2):
            raise _Refusal(p.RATE_LIMITED, "too many sockets asked for; try again shortly")
        socks = self._held.dups(interface)
        _log.info("listeners of %s (port %d) to %s", interface, port, _who(cred))
        return port, socks

    def _sockets(self, cred: Caller, req: p.Sockets) -> list[socket.socket]:
        if not self.sockets_supported or isinstance(cred, WindowsCaller):
            raise _Refusal(p.UNSUPPORTED, "marked sockets are only handed out on Linux")
        rec = self.state.get(req.interface)
        if rec is None:
            raise _Refusal(p.NOT_UP, f"no tunnel {req.interface!r} made by this helper")
        if not _owns(cred, rec):  # the owner uid only: not even root's other processes
            _log.warning(
                "refused sockets of %s to %s: brought up by %s",
                req.interface, _who(cred), _record_owner(rec),
            )  # fmt: skip
            raise _Refusal(p.NOT_OWNER, f"{req.interface} was brought up by another account")
        if not self._spend(_caller_key(cred), req.count):
            _log.warning("refused %d sockets to %s: over budget", req.count, _who(cred))
            raise _Refusal(p.RATE_LIMITED, "too many sockets asked for; try again shortly")
        return _marked_sockets(req, _mark(rec))

    def _spend(self, key: str, count: int) -> bool:
        now = time.monotonic()
        tokens, then = self._socket_budget.get(key, (float(SOCKET_BURST), now))
        tokens = min(float(SOCKET_BURST), tokens + (now - then) * SOCKET_RATE)
        if tokens < count:
            self._socket_budget[key] = (tokens, now)
            return False
        self._socket_budget[key] = (tokens - count, now)
        return True

    async def _status(self, interface: str) -> dict[str, Any]:
        if not self._recorded(interface):
            return {"status": {"interface": interface, "up": False, "backend": self.backend.name}}
        self._claim(interface)
        try:
            status = await asyncio.to_thread(self.backend.status, interface)
            enforcement = await asyncio.to_thread(self._enforcement_status, interface)
        finally:
            self._busy.discard(interface)
        result: dict[str, Any] = {"status": msgspec.to_builtins(self._transported(status))}
        if enforcement is not None:
            result["enforcement"] = enforcement
        return result

    # ----- transport (issue 21) ----------------------------------------------------------

    def _transported(self, status: TunnelStatus) -> TunnelStatus:
        """``status`` with its ``transport`` from the tunnel's supervisor (if any)."""
        sup = self._transports.get(status.interface)
        if sup is None or not status.up:
            return status
        return msgspec.structs.replace(status, transport=sup.status())

    async def _stop_transport(self, interface: str, *, restore: bool) -> None:
        sup = self._transports.pop(interface, None)
        if sup is not None:
            await sup.close(restore=restore)

    def _relay_credentials(self, cred: Caller, pem: str | None) -> RelayCredentials | None:
        """The caller's relay certificate stored for ``ssl``, or None (none given, or not
        for the caller's relay key: logged and ignored, the transport says so)."""
        if pem is None:
            return None
        try:
            return self.keys.store_relay_cert(_owner_id(cred), pem)
        except DeviceKeyError as exc:
            _log.warning("ignored the relay certificate of %s: %s", _who(cred), exc)
            return None

    async def _with_transport(
        self, cred: Caller, req: p.Up | p.Update, spec: TunnelSpec, result: dict[str, Any]
    ) -> dict[str, Any]:
        """Start (or replace) the tunnel's transport supervisor after a successful
        ``up``/``update`` and put its status in the answer."""
        name = spec.interface
        old = self._transports.pop(name, None)
        if not spec.relay_list():
            if old is not None:
                await old.close(restore=False)
            return result
        pem = req.relay_cert if isinstance(req.relay_cert, str) else None
        creds = await asyncio.to_thread(self._relay_credentials, cred, pem)
        context = None
        if creds is not None:
            try:
                context = relay_context(creds.cert_file, creds.key_file)
            except (OSError, ValueError) as exc:
                _log.error("relay certificate of %s cannot be loaded: %s", _who(cred), exc)
        device_of = getattr(self.backend, "_device", None)
        table_of = getattr(self.backend, "routing_table", None)
        # ``wg set`` on the device: wg-quick (Linux) and its macOS sibling only.
        supported = self.backend.name in ("wg-quick", "macos")
        try:
            device = device_of(name) if device_of is not None else name
            mark = table_of(name) if table_of is not None else None
        except WgErrorBase:
            device, mark = name, None
        sup = Supervisor(
            spec,
            self._runner,
            device=device,
            context=context,
            workdir=self.keys.dir,
            mark=mark if sys.platform.startswith("linux") else None,
            supported=supported,
        )
        if old is not None:
            if isinstance(req, p.Update):
                sup.adopt(old)
            await old.close(restore=False)
        sup.start()
        self._transports[name] = sup
        status = msgspec.convert(result["status"], TunnelStatus)
        return {**result, "status": msgspec.to_builtins(self._transported(status))}

    def _enforcement_status(self, interface: str) -> dict[str, Any] | None:
        """Mark, ranges, redirect port and reject counters of an enforced tunnel."""
        rec = self.state.get(interface)
        if rec is None or not rec.is_enforced:
            return None
        enf = self._enforcement(rec, rec.redirect_port or None)
        counters = getattr(self.firewall, "counters", None)
        return {
            "mark": enf.mark,
            "ranges": list(enf.ranges),
            "redirect_port": enf.redirect_port,
            "counters": counters(interface) if counters is not None else {},
        }


class _FdReply:
    """An ``ok`` answer that carries sockets (closed here once sent)."""

    def __init__(self, reply: p.Ok, socks: list[socket.socket]) -> None:
        self.reply = reply
        self.socks = socks


def _mark(rec: TunnelRecord) -> int:
    return mark_for(rec.interface)


def _marked_sockets(req: p.Sockets, mark: int) -> list[socket.socket]:
    """``req.count`` sockets with ``SO_MARK`` and ``SO_BINDTODEVICE``; all or none."""
    family = socket.AF_INET if req.family == 4 else socket.AF_INET6
    kind = socket.SOCK_STREAM if req.kind == "tcp" else socket.SOCK_DGRAM
    made: list[socket.socket] = []
    try:
        for _ in range(req.count):
            s = socket.socket(family, kind)
            made.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, req.interface.encode())
    except OSError as exc:
        for s in made:
            s.close()
        raise BackendError(f"cannot make sockets on {req.interface}: {exc}") from None
    return made


#: Addresses kept per relay name: a name that resolves to more is cut, not widened.
MAX_RELAY_ADDRESSES = 8


def resolve_relays(spec: TunnelSpec) -> tuple[str, ...]:
    """``spec``'s relays as literal ``address:port`` / ``[v6]:port`` (TCP), in the spec's
    order, de-duplicated. A literal address stays as it is; a name is resolved (blocking
    DNS); one that does not resolve is skipped and logged (its relay then cannot pass a
    ``/0`` tunnel's kill switch). Never raises."""
    out: dict[str, None] = {}
    for relay in spec.relay_list():
        try:
            host, port = relay.address()
        except SpecError as exc:  # validated before; a stored spec of another version
            _log.warning("relay %s: %s", relay.name, exc)
            continue
        try:
            addrs: list[str] = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as exc:
                _log.warning("cannot resolve relay %s (%s): %s", relay.name, host, exc)
                continue
            addrs = []
            for info in infos:
                with contextlib.suppress(ValueError):  # a scoped v6 (fe80::1%eth0) or junk
                    addrs.append(str(ipaddress.ip_address(str(info[4][0]))))
            addrs = list(dict.fromkeys(addrs))
            if len(addrs) > MAX_RELAY_ADDRESSES:
                _log.warning(
                    "relay %s (%s) resolves to %d addresses; the first %d pass the kill switch",
                    relay.name, host, len(addrs), MAX_RELAY_ADDRESSES,
                )  # fmt: skip
                addrs = addrs[:MAX_RELAY_ADDRESSES]
        for addr in addrs:
            out[f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"] = None
    return tuple(out)


def _spec_fields(spec: TunnelSpec) -> dict[str, Any]:
    """What the record keeps of a spec for enforcement (never the private key)."""
    return {
        "allowed_ips": tuple(a for peer in spec.peers for a in peer.allowed_ips),
        "dns": tuple(spec.dns),
        "endpoints": tuple(peer.endpoint for peer in spec.peers),
    }


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


def _owner_id(cred: Caller) -> int | str:
    """Whose device key and rollback floors: the uid, or the SID on Windows."""
    return cred.user_sid if isinstance(cred, WindowsCaller) else cred.uid


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
