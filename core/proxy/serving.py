"""From a parsed request to a relay: the ``Serving`` layer of ``ProxyServer``.

It says who may connect (``_peer_refusal``: processes of another account, or whose
owner cannot be determined, are refused by ``Owner.same_account`` against the host's
``Owner``; ``listeners`` asks at accept, and the check is repeated here as a second
line). Once a handshake (or a port forward) has named the target, it answers requests
for the proxy itself (the PAC file), normalises the destination, resolves names with the
injected resolver, adds the executable's digest when a rule is pinned to one
(``apphash``), asks the ``Decider`` (name *and* addresses), connects with the injected
connector and starts the relay — or answers a protocol-correct refusal. The addresses
a name resolved to are checked against the matched resource's networks (else the
tunnel's ranges) before any is dialled (``destinations``). Transparent connections
(``_transparent``) come with their original destination: the IP is decided (with the
name ``reverse`` knows for it, if any) and the connection spliced like a port forward.
``reevaluate`` re-asks the decider for every open relay. See ``bookkeeping`` for how the
layers stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import replace
from typing import Any

from core.aio import spawn
from core.policy.api import AccessRequest, AppIdentity, Decider, Decision, Effect
from core.proxy import http as h
from core.proxy import socks5 as s5
from core.proxy.answers import Answer, HttpAnswer, SocksAnswer, rebinding_reason
from core.proxy.apphash import AppHasher, rules_need_hash
from core.proxy.bookkeeping import Bookkeeping, Count, Opened, fmt_host
from core.proxy.destinations import RangesSource, ResourceScopes, drop_special, within
from core.proxy.dial import CallbackDial, Connector, Dialer, Resolver, TunnelDown, send_final
from core.proxy.errors import DestinationError
from core.proxy.model import EventKind
from core.proxy.normalize import is_ip, normalize_host, normalize_port
from core.proxy.pac import PacTargets, parse_pac_targets, render_pac
from core.proxy.peer import Owner, PeerInfo
from core.proxy.relay import BufferedRelay, BulkThreads, PipePool, Relay, SpliceRelay
from core.text import safe_line

__all__ = ["LOOPED", "PROTOCOL_TRANSPARENT", "PeerSlot", "ReverseLookup", "Serving", "app_of"]

PROTOCOL_TRANSPARENT = "transparent"
"""The ``ProxyEvent.protocol`` of connections that came through the transparent listener."""

ReverseLookup = Callable[[str], str | None]
"""``reverse(ip) -> name``: the name the split-DNS resolver last answered ``ip`` for
(None when it knows none). Called on the loop thread for each transparent connection:
a dictionary look-up, never I/O."""

_log = logging.getLogger(__name__)

_PID = os.getpid()  # a transparent connection from this process is our own dial, looped


def _forked() -> None:
    global _PID
    _PID = os.getpid()


if hasattr(os, "register_at_fork"):  # kept right in a forked child without a syscall
    os.register_at_fork(after_in_child=_forked)  # per connection
LOOPED = (
    "the decider's own connection was redirected back to it: its sockets are not exempt "
    "from the redirect (not sent)"
)
"""Reason of the refusal of a transparent connection that is the proxy's own dial."""

_UNKNOWN_APP = AppIdentity(pid=None, uid=None, exe="", name="")


class PeerSlot:
    """The peer's identity: its owner is settled at accept (before any byte is read);
    with a ``SplitLookup`` the pid and executable are looked up at the first ``get``
    (after the SOCKS greeting, or at the request): the connections accepted meanwhile
    are then found by the same ``/proc`` scan, which costs less per connection."""

    __slots__ = ("_finish", "_info", "_inode", "_uid")

    def __init__(
        self,
        info: PeerInfo | None,
        finish: Callable[[int, int], PeerInfo] | None = None,
        uid: int = 0,
        inode: int = 0,
    ) -> None:
        self._info = info
        self._finish = finish
        self._uid = uid
        self._inode = inode

    def get(self) -> PeerInfo | None:
        """The peer's identity, None when unknown."""
        finish = self._finish
        if finish is not None:
            self._finish = None
            self._info = finish(self._uid, self._inode)
        return self._info


class Serving(Bookkeeping):
    """Peer check, decision, connect and relay start (see the module docstring)."""

    # Set by ProxyServer.__init__ (_port by start).
    _decider: Decider
    _host_owner: Owner  # the only account served
    _resolver: Resolver
    _connector: Connector
    _splice: bool
    _shared: memoryview
    _pac: PacTargets
    _pac_text: str
    _port: int
    _hasher: AppHasher
    _hash_for: object  # the bundle _hash_wanted was computed for
    _hash_wanted: bool
    _reverse: ReverseLookup | None
    _ranges: RangesSource | None
    _scopes: ResourceScopes
    _pipes: PipePool | None  # empty splice pipes for the next relays
    _bulk: BulkThreads | None  # the cap on threaded bulk splice relays
    _handshakes: set[asyncio.Task[None]]  # connection tasks (after the handshake)
    _dials: dict[_Dialling, None]  # callback connects in progress (insertion order)
    # The fd of a client whose handshake reader is still registered while its target is
    # served synchronously (``Handshaking._hs_hand_over``); -1 otherwise. A relay started
    # in that call claims it (``_claim``); anything that closes the client first calls
    # ``_unpark``. Never set outside that synchronous call.
    _parked: int

    # -- public controls -----------------------------------------------------------

    def set_decider(self, decider: Decider) -> None:
        """Use ``decider`` from now on (call ``reevaluate`` to apply it to open ones)."""
        self._decider = decider
        self._hash_for = None

    def set_pac_targets(self, targets: Iterable[str]) -> None:
        """Set the hosts, ``*.suffix`` wildcards, IPs and CIDRs the PAC file proxies.

        Raises ProxyConfigError on a bad entry; the previous PAC stays in force.
        """
        self._pac = parse_pac_targets(list(targets))
        self._pac_text = ""

    def pac(self) -> str:
        """The current PAC file text (routing to this proxy's IPv4 address)."""
        if not self._pac_text:
            self._pac_text = render_pac(self._pac, f"127.0.0.1:{self._port}")
        return self._pac_text

    def reevaluate(self) -> int:
        """Re-decide every open relayed connection; close the ones now denied.

        Closing is immediate (before this returns), each with a REVOKED event. Returns the
        number closed. Idempotent for an unchanged decider.
        """
        closed = 0
        for relay, opened in list(self._relays.items()):
            if relay.closed:
                continue
            decision = self._decide(opened.request)
            if decision.allowed and opened.request.addresses and not is_ip(opened.request.host):
                decision = self._checked(opened.request, decision)[1]
            if decision.allowed:
                continue
            relay.close(f"revoked: {decision.reason}")
            closed += 1
            self._emit(
                EventKind.REVOKED,
                opened.request.app,
                f"{fmt_host(opened.request.host)}:{opened.request.port}",
                decision,
                opened.protocol,
            )
        return closed

    # -- after the handshake -------------------------------------------------------

    def _unpark(self) -> None:
        """Remove the handshake reader still registered for the client (if any)."""
        fd = self._parked
        if fd >= 0:
            self._parked = -1
            self._poll.remove_reader(fd)

    def _own(self, conn: socket.socket, coro: Coroutine[Any, Any, bool]) -> None:
        """Run ``coro`` (True = a relay took ``conn``) as a tracked task; close otherwise."""
        task = spawn(self._owning(conn, coro), name="proxy-connection")
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _owning(self, conn: socket.socket, coro: Coroutine[Any, Any, bool]) -> None:
        handed_over = False
        try:
            handed_over = await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("proxy connection failed unexpectedly")
        finally:
            if not handed_over:
                conn.close()

    async def _answer_and_close(self, conn: socket.socket, answer: bytes) -> bool:
        await send_final(self._loop or asyncio.get_running_loop(), conn, answer)
        return False

    def _peer_refusal(self, info: PeerInfo | None) -> str | None:
        """Why ``info``'s process may not use the proxy (None: it may). Fails closed."""
        if info is None:
            return "the connecting process could not be identified"
        owner = info.owner
        if owner is self._host_owner:  # the usual case: uid_owner() hands out one object
            return None
        if owner is None or not owner.known:
            return "the owner of the connecting process could not be determined"
        same = self._host_owner.same_account(owner)
        if same is None:
            return (
                f"the owner of the connecting process ({owner}) cannot be compared "
                f"with this user ({self._host_owner})"
            )
        if not same:
            return f"connection from another user's process ({owner})"
        return None

    async def _forward(self, conn: socket.socket, slot: PeerSlot, forward: tuple[str, int]) -> bool:
        info = slot.get()
        app = app_of(info)
        refusal = self._peer_refusal(info)
        if refusal:
            self._refuse(app, f"{fmt_host(forward[0])}:{forward[1]}", refusal, "forward")
            return False
        return await self._serve(conn, app, forward[0], forward[1], b"", Answer(), "forward")

    async def _transparent(
        self, conn: socket.socket, slot: PeerSlot, original: tuple[str, int]
    ) -> bool:
        """A redirected connection: decide its original destination and splice."""
        info = slot.get()
        app = app_of(info)
        ip, port = original
        refusal = self._peer_refusal(info)
        if refusal is None and info is not None and info.pid == _PID:
            # Our own dial came back: the redirect does not exempt the decider's sockets
            # (no mark: a socket source that does not fence). Relaying it would loop.
            refusal = LOOPED
        if refusal:
            self._refuse(app, f"{fmt_host(ip)}:{port}", refusal, PROTOCOL_TRANSPARENT)
            return False
        name = self._reverse_name(ip)
        if name is None:
            return await self._serve(conn, app, ip, port, b"", Answer(), PROTOCOL_TRANSPARENT)
        return await self._serve(
            conn, app, name, port, b"", Answer(), PROTOCOL_TRANSPARENT, known=(ip,)
        )

    # The *_now twins below take the common case without a task (see ``_serve_now``);
    # they return False, having done nothing, for anything else (refusals included).

    def _forward_now(self, conn: socket.socket, slot: PeerSlot, forward: tuple[str, int]) -> bool:
        info = slot.get()
        if self._peer_refusal(info) is not None:
            return False
        return self._serve_now(conn, app_of(info), forward[0], forward[1], b"", Answer(), "forward")

    def _transparent_now(
        self, conn: socket.socket, slot: PeerSlot, original: tuple[str, int]
    ) -> bool:
        info = slot.get()
        if self._peer_refusal(info) is not None or info is None or info.pid == _PID:
            return False
        ip, port = original
        name = self._reverse_name(ip)
        app = app_of(info)
        if name is None:
            return self._serve_now(conn, app, ip, port, b"", Answer(), PROTOCOL_TRANSPARENT)
        return self._serve_now(
            conn, app, name, port, b"", Answer(), PROTOCOL_TRANSPARENT, known=(ip,)
        )

    def _socks_now(self, conn: socket.socket, slot: PeerSlot, target: s5.Connect) -> bool:
        info = slot.get()
        if self._peer_refusal(info) is not None:
            return False
        return self._serve_now(
            conn, app_of(info), target.host, target.port, target.rest, SocksAnswer(), "socks5"
        )

    def _http_now(self, conn: socket.socket, slot: PeerSlot, action: h.Action) -> bool:
        if not isinstance(action, h.Tunnel | h.Forward):
            return False
        info = slot.get()
        if self._peer_refusal(info) is not None:
            return False
        if isinstance(action, h.Tunnel):
            return self._serve_now(
                conn,
                app_of(info),
                action.host,
                action.port,
                action.rest,
                HttpAnswer(True),
                "http-connect",
            )
        return self._serve_now(
            conn,
            app_of(info),
            action.host,
            action.port,
            action.head + action.rest,
            HttpAnswer(False),
            "http",
        )

    def _reverse_name(self, ip: str) -> str | None:
        """The name ``reverse`` knows for ``ip``, normalised; None when none (or bad)."""
        if self._reverse is None:
            return None
        try:
            raw = self._reverse(ip)
            if not raw:
                return None
            name = normalize_host(raw)
        except Exception as exc:  # a broken hook only costs the name: the IP is decided
            _log.debug("reverse lookup of %s failed: %s", ip, exc)
            return None
        return None if is_ip(name) else name

    async def _socks(self, conn: socket.socket, slot: PeerSlot, target: s5.Connect) -> bool:
        info = slot.get()
        app = app_of(info)
        refusal = self._peer_refusal(info)
        if refusal:
            raw = target.host if isinstance(target.host, str) else target.host.decode("latin-1")
            self._refuse(app, f"{raw}:{target.port}", refusal, "socks5")
            await send_final(asyncio.get_running_loop(), conn, s5.reply_bytes(s5.Reply.NOT_ALLOWED))
            return False
        return await self._serve(
            conn, app, target.host, target.port, target.rest, SocksAnswer(), "socks5"
        )

    async def _http(self, conn: socket.socket, slot: PeerSlot, action: h.Action) -> bool:
        loop = asyncio.get_running_loop()
        info = slot.get()
        app = app_of(info)
        if isinstance(action, h.Reject):
            self._refused += 1
            await send_final(
                loop, conn, h.response_bytes(action.status, f"{action.reason}\n".encode())
            )
            return False
        refusal = self._peer_refusal(info)
        if refusal:
            where = "local" if isinstance(action, h.Local) else f"{action.host}:{action.port}"
            self._refuse(app, where, refusal, "http")
            await send_final(loop, conn, HttpAnswer(False).deny(refusal, None))
            return False
        if isinstance(action, h.Local):
            await send_final(loop, conn, self._local(action))
            return False
        if isinstance(action, h.Tunnel):
            return await self._serve(
                conn, app, action.host, action.port, action.rest, HttpAnswer(True), "http-connect"
            )
        return await self._serve(
            conn,
            app,
            action.host,
            action.port,
            action.head + action.rest,
            HttpAnswer(False),
            "http",
        )

    def _local(self, request: h.Local) -> bytes:
        """Answer a request for the proxy itself (the PAC file), after the rebinding check."""
        betrayal = rebinding_reason(request, self._port)
        if betrayal:
            self._refused += 1
            return h.response_bytes(403, f"{betrayal}\n".encode())
        path = request.path.split("?", 1)[0]
        if path != "/proxy.pac":
            return h.response_bytes(404, b"not found\n")
        if request.method not in ("GET", "HEAD"):
            return h.response_bytes(405, b"only GET\n")
        body = self.pac().encode()
        resp = h.response_bytes(200, body, "application/x-ns-proxy-autoconfig")
        return resp[: -len(body)] if request.method == "HEAD" else resp

    async def _serve(
        self,
        conn: socket.socket,
        app: AppIdentity,
        raw_host: str | bytes,
        raw_port: int,
        first_up: bytes,
        answer: Answer,
        protocol: str,
        *,
        known: tuple[str, ...] | None = None,
    ) -> bool:
        """Decide, connect and start relaying. Returns True when a relay owns ``conn``.

        ``known``: the addresses of a name are already known (a transparent connection's
        original destination): no resolver call; they are checked like an answer.
        """
        loop = self._loop or asyncio.get_running_loop()
        try:
            host = normalize_host(raw_host)
            port = normalize_port(raw_port)
        except DestinationError as exc:
            shown = raw_host if isinstance(raw_host, str) else raw_host.decode("latin-1")
            self._refuse(app, f"{shown!r}:{raw_port}", str(exc), protocol)
            await send_final(loop, conn, answer.bad_destination(str(exc)))
            return False
        addresses: tuple[str, ...] = ()
        unresolved = ""
        if not is_ip(host):
            if known is not None:
                addresses = known
            else:
                addresses, unresolved = await self._resolve(host, port)
        if app.sha256 is None and (app.pid or app.exe) and self._needs_hash():
            digest = await self._hasher.sha256(app.pid, app.exe)
            if digest is not None:
                app = replace(app, sha256=digest)
        verdict = self._verdict(app, host, port, addresses, unresolved, answer, protocol)
        if isinstance(verdict, bytes):
            await send_final(loop, conn, verdict)
            return False
        try:
            async with asyncio.timeout(self._limits.connect_timeout):
                upstream = await self._connector(verdict.targets, port)
        except (OSError, TimeoutError) as exc:
            await send_final(loop, conn, self._dial_failed(verdict, exc))
            return False
        return await self._attach(conn, upstream, verdict, first_up)

    def _serve_now(
        self,
        conn: socket.socket,
        app: AppIdentity,
        raw_host: str | bytes,
        raw_port: int,
        first_up: bytes,
        answer: Answer,
        protocol: str,
        *,
        known: tuple[str, ...] | None = None,
    ) -> bool:
        """``_serve`` without a task, when nothing in it has to wait: the destination is
        an IP (or its addresses are ``known``), no rule wants the executable's digest
        and the connector is a ``Dialer`` (the connect is driven by callbacks). Returns
        False, having done nothing, when that is not so (the caller runs ``_serve`` in
        a task); True when it took ``conn`` over (relayed, refused or closed)."""
        connector = self._connector
        if not isinstance(connector, Dialer):
            return False
        try:
            host = normalize_host(raw_host)
            port = normalize_port(raw_port)
        except DestinationError:
            return False  # the slow path says why
        if known is None and not is_ip(host):
            return False  # a name to resolve
        if app.sha256 is None and (app.pid or app.exe) and self._needs_hash():
            return False  # a digest to compute (off the loop)
        verdict = self._verdict(app, host, port, known or (), "", answer, protocol)
        if isinstance(verdict, bytes):
            if verdict:
                self._own(conn, self._answer_and_close(conn, verdict))
            else:
                self._unpark()
                conn.close()
            return True
        assert self._loop is not None
        dial = _Dialling(self, conn, verdict, first_up)
        self._dials[dial] = None
        dial.dial = CallbackDial(
            self._loop,
            connector,
            verdict.targets,
            port,
            self._limits.connect_timeout,
            dial.done,
            poller=self._poll,
        )
        return True

    def _verdict(
        self,
        app: AppIdentity,
        host: str,
        port: int,
        addresses: tuple[str, ...],
        unresolved: str,
        answer: Answer,
        protocol: str,
    ) -> _Verdict | bytes:
        """Decide (and tell) a normalised destination. Returns what to dial, or the
        final answer of a refusal (b"" for a silent close). ``addresses``: of a name,
        as resolved (never-resources are dropped here, before the policy sees them: a
        broad CIDR must not match them either)."""
        dropped: str | None = None
        host_is_ip = is_ip(host)
        if not host_is_ip:
            addresses, dropped = drop_special(host, addresses)
        request = AccessRequest(app=app, host=host, port=port, protocol="tcp", addresses=addresses)
        decision = self._decide(request)
        if decision.allowed and not host_is_ip and (addresses or dropped):
            request, decision = self._checked(request, decision, dropped)
            addresses = request.addresses
        elif dropped and decision.rule_id is None:  # a default deny: say what was dropped
            decision = replace(decision, reason=f"{decision.reason}; {dropped}")
        resource = decision.resource or host
        destination = f"{fmt_host(host)}:{port}"
        self._emit(EventKind.DECISION, app, destination, decision, protocol)
        count = self._counts.get(resource)
        if count is None:
            count = self._counts[resource] = Count()
        if not decision.allowed:
            count.denials += 1
            return answer.deny(decision.reason, decision.rule_id)
        targets = (host,) if host_is_ip else addresses
        if not targets:
            # Allowed by name, but no address may be dialled: say why in Activity (the
            # split-DNS resolver's words: not found, tunnel DNS unreachable, refused).
            why = unresolved or "no usable address"
            self._refuse(app, destination, f"{host} could not be resolved: {why}", protocol)
            return answer.failure(OSError(f"cannot resolve {host}"))
        return _Verdict(request, resource, protocol, count, targets, answer, destination)

    def _dial_failed(self, verdict: _Verdict, exc: BaseException) -> bytes:
        """The answer to a connect that failed (a refusal event when the tunnel is down:
        allowed, but never over the local network)."""
        if isinstance(exc, TunnelDown):
            self._refuse(verdict.request.app, verdict.destination, str(exc), verdict.protocol)
        return verdict.answer.failure(exc)

    def _relay(self, conn: socket.socket, upstream: socket.socket, verdict: _Verdict) -> Relay:
        """Count and register the relay of an allowed connection (not started yet)."""
        loop = self._loop
        assert loop is not None
        verdict.count.connections += 1
        relay: Relay
        if self._splice:
            relay = SpliceRelay(
                loop,
                conn,
                upstream,
                chunk=self._limits.chunk_size,
                on_closed=self._relay_closed,
                pipes=self._pipes,
                bulk=self._bulk,
                poller=self._poll,
            )
        else:
            relay = BufferedRelay(
                loop, conn, upstream, shared=self._shared, on_closed=self._relay_closed
            )
        self._relays[relay] = Opened(verdict.request, verdict.resource, verdict.protocol)
        return relay

    async def _attach(
        self, conn: socket.socket, upstream: socket.socket, verdict: _Verdict, first_up: bytes
    ) -> bool:
        """Answer the client, send what it sent ahead and start the relay. True when a
        relay owns both sockets; ``upstream`` is closed otherwise."""
        loop = self._loop or asyncio.get_running_loop()
        try:
            upstream.setblocking(False)
            with contextlib.suppress(OSError):
                upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reply = verdict.answer.ok(upstream.getsockname()[:2])
            if reply:
                await loop.sock_sendall(conn, reply)
            if first_up:
                await loop.sock_sendall(upstream, first_up)
        except OSError:
            upstream.close()
            return False
        except BaseException:
            upstream.close()
            raise
        relay = self._relay(conn, upstream, verdict)
        if isinstance(relay, BufferedRelay):
            try:
                await relay.attach()
            except (OSError, RuntimeError):
                return True  # attach closed both sockets and unregistered the relay
        relay.bytes_up += len(first_up)
        relay.start()
        return True

    def _attach_now(
        self, conn: socket.socket, upstream: socket.socket, verdict: _Verdict, first_up: bytes
    ) -> None:
        """``_attach`` without a task when the answer and ``first_up`` fit the fresh
        sockets' buffers at once (they do, but for a large HTTP head); else in a task.
        Closes both sockets on failure."""
        if first_up or not self._splice:
            self._own(conn, self._attach(conn, upstream, verdict, first_up))
            return
        with contextlib.suppress(OSError):
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            reply = verdict.answer.ok(upstream.getsockname()[:2])
            sent = conn.send(reply) if reply else 0
        except OSError:
            sent = -1
        if sent != len(reply):  # a few bytes into an empty send buffer: never in practice
            self._unpark()
            upstream.close()
            conn.close()
            return
        relay = self._relay(conn, upstream, verdict)
        self._parked = -1  # the relay's reader replaces the handshake's: no epoll call
        relay.start()

    def _checked(
        self, request: AccessRequest, decision: Decision, dropped: str | None = None
    ) -> tuple[AccessRequest, Decision]:
        """Keep the request's addresses that lie in the allowed resource's networks (or
        else the tunnel's ranges); deny, naming the name, the address and why, when none
        remain. ``dropped``: why an address was already removed as never a resource."""
        bundle = getattr(self._decider, "bundle", None)
        scope = self._scopes.get(bundle, decision.resource)
        addresses = request.addresses
        why: str | None = None
        if scope is not None and scope.networks:
            addresses, why = within(request.host, addresses, scope.networks, scope.label)
        else:
            if self._ranges is not None:
                try:
                    ranges = self._ranges()
                except Exception:  # unknown ranges: nothing can be shown to lie inside
                    _log.exception("the tunnel's ranges are unavailable")
                    ranges = ()
                # No ranges: no tunnel (or none known yet); say so rather than "outside".
                label = "the tunnel's networks" if ranges else "the tunnel's networks (no tunnel)"
                addresses, why = within(request.host, addresses, ranges, label)
            addresses, laundered = self._not_laundered(request, addresses, bundle)
            why = why or laundered
        if addresses:
            if addresses != request.addresses:
                request = replace(request, addresses=addresses)
            return request, decision
        reason = dropped or why or f"{request.host} resolved to no usable address"
        return request, Decision(Effect.DENY, None, reason, decision.resource)

    def _not_laundered(
        self, request: AccessRequest, addresses: tuple[str, ...], bundle: object
    ) -> tuple[tuple[str, ...], str | None]:
        """The ``addresses`` the policy does not deny on their own. A resource known by
        names only vouches for no address: an answer that lies in another resource's
        networks (Payroll's) is decided as that address, so a name (a record pointing at
        Payroll, a stale split-DNS entry) cannot launder access the policy denies."""
        kept: list[str] = []
        first: str | None = None
        for address in addresses:
            alone = self._decide(replace(request, host=address, addresses=()))
            if alone.allowed or alone.resource is None:
                kept.append(address)
            elif first is None:
                scope = self._scopes.get(bundle, alone.resource)
                owner = scope.name if scope is not None else alone.resource
                first = (
                    f"{request.host} resolved to {address}, which belongs to {owner}: "
                    f"{alone.reason}"
                )
        if first is None:
            return addresses, None
        return tuple(kept), first

    async def _resolve(self, host: str, port: int) -> tuple[tuple[str, ...], str]:
        """The addresses of ``host`` (canonical, bounded) and, when there are none, why."""
        try:
            async with asyncio.timeout(self._limits.resolve_timeout):
                raw = await self._resolver(host, port)
        except TimeoutError:
            return (), "the look-up timed out"
        except (OSError, UnicodeError) as exc:
            _log.debug("cannot resolve %s: %s", host, exc)
            return (), safe_line(str(exc)) or type(exc).__name__
        out: list[str] = []
        for address in raw:
            try:
                canonical = normalize_host(address)
            except DestinationError:
                continue
            if is_ip(canonical) and canonical not in out:
                out.append(canonical)
            if len(out) >= self._limits.max_resolved:
                break
        return tuple(out), ("" if out else "no address in the answer")

    def _needs_hash(self) -> bool:
        """Whether a rule of the current policy is pinned to an executable's hash
        (recomputed when the decider's bundle changes: one attribute read otherwise)."""
        decider = self._decider
        bundle = getattr(decider, "bundle", None)
        if bundle is None:  # no policy loaded, or a decider that may say so itself
            return rules_need_hash(decider)
        if bundle is not self._hash_for:
            self._hash_for = bundle
            self._hash_wanted = rules_need_hash(decider)
        return self._hash_wanted

    def _decide(self, request: AccessRequest) -> Decision:
        try:
            return self._decider.decide(request)
        except Exception as exc:  # the contract says never raises; fail closed if it does
            _log.exception("decider raised")
            return Decision(Effect.DENY, None, f"policy error: {type(exc).__name__}")


class _Verdict:
    """An allowed connection, decided: what to dial and what to register."""

    __slots__ = ("answer", "count", "destination", "protocol", "request", "resource", "targets")

    def __init__(
        self,
        request: AccessRequest,
        resource: str,
        protocol: str,
        count: Count,
        targets: tuple[str, ...],
        answer: Answer,
        destination: str,
    ) -> None:
        self.request = request
        self.resource = resource
        self.protocol = protocol
        self.count = count
        self.targets = targets
        self.answer = answer
        self.destination = destination


class _Dialling:
    """A connection of ``Serving._serve_now`` whose upstream connect is in progress."""

    __slots__ = ("conn", "dial", "first_up", "server", "verdict")

    def __init__(
        self, server: Serving, conn: socket.socket, verdict: _Verdict, first_up: bytes
    ) -> None:
        self.server = server
        self.conn = conn
        self.verdict = verdict
        self.first_up = first_up
        self.dial: CallbackDial | None = None

    def done(self, upstream: socket.socket | None, exc: BaseException | None) -> None:
        server = self.server
        server._dials.pop(self, None)
        conn = self.conn
        try:
            if upstream is None:
                answer = server._dial_failed(self.verdict, exc or OSError("connect failed"))
                server._own(conn, server._answer_and_close(conn, answer))
                return
            server._attach_now(conn, upstream, self.verdict, self.first_up)
        except Exception:  # never leak the client's socket from a callback
            _log.exception("proxy connection failed unexpectedly")
            server._unpark()
            conn.close()
            if upstream is not None:
                upstream.close()

    def cancel(self) -> None:
        """Stop the connect and close the client (the proxy is stopping)."""
        if self.dial is not None:
            self.dial.cancel()
        self.conn.close()


def app_of(info: PeerInfo | None) -> AppIdentity:
    """The policy's view of a peer (``sha256`` is filled in later, when a rule needs it)."""
    if info is None:
        return _UNKNOWN_APP
    return AppIdentity(pid=info.pid, uid=info.uid, exe=info.exe, name=os.path.basename(info.exe))
