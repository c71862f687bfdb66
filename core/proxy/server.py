"""The asyncio proxy server: the only module of the package that does I/O.

One listening port on 127.0.0.1 and ::1 serves SOCKS5 and HTTP (first byte 0x05 →
SOCKS5, anything else → HTTP; 0x04 gets a SOCKS4 rejection). For each connection:
identify the peer process (refuse other users and unidentifiable peers), parse the
handshake with the sans-IO cores under a size and time cap, normalise the destination,
resolve names with the injected resolver, ask the ``Decider`` (name *and* addresses),
then connect with the injected connector and relay — or answer a protocol-correct
refusal. Every decision becomes a ``ProxyEvent`` delivered to subscribers outside the
connection's path. ``reevaluate()`` re-asks the decider for every open relay and closes
those no longer allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from core.aio import cancel_and_wait, spawn
from core.policy.api import AccessRequest, AppIdentity, Decider, Decision, Effect
from core.proxy import http as h
from core.proxy import socks5 as s5
from core.proxy.answers import Answer, HttpAnswer, SocksAnswer, rebinding_reason
from core.proxy.dial import (
    Connector,
    Resolver,
    send_final,
    system_connector,
    system_resolver,
)
from core.proxy.errors import DestinationError, ProxyConfigError, ProxyStartError
from core.proxy.model import (
    EventKind,
    Limits,
    ProxyCounters,
    ProxyEvent,
    ResourceCounters,
)
from core.proxy.normalize import is_ip, normalize_host, normalize_port
from core.proxy.pac import PacTargets, parse_pac_targets, render_pac
from core.proxy.peer import PeerInfo, PeerLookup, default_lookup
from core.proxy.relay import BufferedRelay, Relay, SpliceRelay, splice_available

__all__ = ["EventCallback", "ProxyServer"]

_log = logging.getLogger(__name__)

EventCallback = Callable[[ProxyEvent], None]

_TRIM_AFTER = 2.0  # seconds without traffic before a relay gives its pipes back
_UNKNOWN_APP = AppIdentity(pid=None, uid=None, exe="", name="")


@dataclass(slots=True)
class _Count:
    connections: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    denials: int = 0


@dataclass(frozen=True, slots=True)
class _Open:
    """An open relayed connection: what was decided, to re-decide it later."""

    request: AccessRequest
    resource: str
    protocol: str


class _Listener:
    __slots__ = ("forward", "sock")

    def __init__(self, sock: socket.socket, forward: tuple[str, int] | None) -> None:
        self.sock = sock
        self.forward = forward


class ProxyServer:
    """Policy-checked SOCKS5 + HTTP proxy on loopback.

    All methods must be called on the event loop's thread. ``decider`` is consulted for
    every connection and by ``reevaluate``; ``host_uid`` is the only uid served
    (the signed-in user); ``resolver``/``connector`` default to the OS resolver and plain
    TCP connects (the engine injects tunnel-bound ones); ``peer_lookup`` defaults to the
    fastest lookup of this OS. ``on_event`` is a first subscriber (see ``subscribe``).
    ``hosts`` are the listening addresses and must be loopback (DESIGN §7.4).

    Raises ProxyConfigError for non-loopback ``hosts`` or ``relay="splice"`` off Linux.
    Typical engine use::

        proxy = ProxyServer(policy_engine, host_uid=os.getuid(), resolver=tunnel_dns,
                            connector=tunnel_connect, on_event=engine.on_proxy_event)
        await proxy.start(settings.proxy_port)
        proxy.set_pac_targets(hosts_and_cidrs_of_bundle)
        ...  # on bundle/posture change: proxy.reevaluate()
        await proxy.stop()
    """

    def __init__(
        self,
        decider: Decider,
        *,
        host_uid: int,
        resolver: Resolver | None = None,
        connector: Connector | None = None,
        on_event: EventCallback | None = None,
        limits: Limits | None = None,
        peer_lookup: PeerLookup | None = None,
        hosts: Sequence[str] = ("127.0.0.1", "::1"),
    ) -> None:
        for host in hosts:
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise ProxyConfigError(f"the proxy listens on loopback only, not {host!r}")
        self._decider = decider
        self._host_uid = host_uid
        self._resolver: Resolver = resolver or system_resolver
        self._connector: Connector = connector or system_connector
        self._limits = limits or Limits()
        self._peers = peer_lookup or default_lookup()
        self._hosts = tuple(hosts)
        self._subscribers: list[EventCallback] = [on_event] if on_event else []
        self._listeners: list[_Listener] = []
        self._handshakes: set[asyncio.Task[None]] = set()
        self._pending: set[_Handshake] = set()
        self._relays: dict[Relay, _Open] = {}
        self._counts: dict[str, _Count] = {}
        self._refused = 0
        self._pac = PacTargets()
        self._pac_text = ""
        self._port = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        use_splice = self._limits.relay == "splice" or (
            self._limits.relay == "auto" and splice_available()
        )
        if self._limits.relay == "splice" and not splice_available():
            raise ProxyConfigError("relay='splice' needs Linux os.splice")
        self._splice = use_splice
        self._shared = memoryview(bytearray(0 if use_splice else self._limits.chunk_size))

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, port: int) -> list[tuple[str, int]]:
        """Listen on ``port`` (0: any free port, the same on both families).

        Returns the bound (host, port) addresses. Raises ProxyStartError when the IPv4
        loopback cannot be bound (IPv6 loopback is skipped when the host has none).
        Not idempotent: call ``stop`` before starting again.
        """
        if self._listeners:
            raise ProxyStartError("proxy already started")
        self._loop = asyncio.get_running_loop()
        bound: list[tuple[str, int]] = []
        try:
            for host in self._hosts:
                try:
                    sock = self._listen(host, port or self._port)
                except OSError as exc:
                    if host == "::1" and bound:
                        _log.info("IPv6 loopback unavailable, proxy on IPv4 only: %s", exc)
                        continue
                    raise ProxyStartError(f"cannot listen on {host}:{port}: {exc}") from exc
                self._port = sock.getsockname()[1]
                self._add_listener(_Listener(sock, None))
                bound.append((host, self._port))
        except BaseException:
            self._close_listeners()
            raise
        self._sweeper = spawn(self._sweep(), name="proxy-idle-sweeper")
        return bound

    def _listen(self, host: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
            sock.listen(1024)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    def _add_listener(self, listener: _Listener) -> None:
        assert self._loop is not None
        self._listeners.append(listener)
        self._loop.add_reader(listener.sock.fileno(), self._on_accept, listener)

    def _close_listeners(self, only: Iterable[_Listener] | None = None) -> None:
        targets = list(only) if only is not None else list(self._listeners)
        for listener in targets:
            if self._loop is not None and listener.sock.fileno() >= 0:
                self._loop.remove_reader(listener.sock.fileno())
            listener.sock.close()
            self._listeners.remove(listener)

    async def stop(self) -> None:
        """Close listeners, forwards, handshakes in progress and every relay. Idempotent."""
        self._close_listeners()
        await cancel_and_wait(self._sweeper)
        self._sweeper = None
        for hs in list(self._pending):
            self._hs_drop(hs)
        tasks = list(self._handshakes)
        for task in tasks:
            task.cancel()
        for task in tasks:
            await cancel_and_wait(task)
        for relay in list(self._relays):
            relay.close("proxy stopped")

    @property
    def port(self) -> int:
        """The main listening port (0 before ``start``)."""
        return self._port

    # -- public controls -----------------------------------------------------------

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (on the loop thread, soon after the
        decision, never inside it). Returns an unsubscribe function (idempotent)."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def set_decider(self, decider: Decider) -> None:
        """Use ``decider`` from now on (call ``reevaluate`` to apply it to open ones)."""
        self._decider = decider

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
            if decision.allowed:
                continue
            relay.close(f"revoked: {decision.reason}")
            closed += 1
            self._emit(
                EventKind.REVOKED,
                opened.request.app,
                f"{_fmt_host(opened.request.host)}:{opened.request.port}",
                decision,
                opened.protocol,
            )
        return closed

    def counters(self) -> ProxyCounters:
        """Immutable snapshot of per-resource counters (live relays included)."""
        live: dict[str, _Count] = {k: replace(v) for k, v in self._counts.items()}
        active: dict[str, int] = {}
        for relay, opened in self._relays.items():
            c = live.setdefault(opened.resource, _Count())
            c.bytes_up += relay.bytes_up
            c.bytes_down += relay.bytes_down
            active[opened.resource] = active.get(opened.resource, 0) + 1
        resources = {
            key: ResourceCounters(
                connections=c.connections,
                active=active.get(key, 0),
                bytes_up=c.bytes_up,
                bytes_down=c.bytes_down,
                denials=c.denials,
            )
            for key, c in live.items()
        }
        return ProxyCounters(
            resources=MappingProxyType(resources),
            active=len(self._relays),
            refused=self._refused,
        )

    async def add_forward(
        self, local_port: int, host: str, port: int, *, bind: str = "127.0.0.1"
    ) -> tuple[str, int]:
        """Forward ``bind:local_port`` (0: any) to ``host:port``, decided per connection.

        Raises ProxyConfigError for a bad destination or a non-loopback ``bind``,
        ProxyStartError when the port cannot be bound. Returns the bound address.
        """
        try:
            dest = (normalize_host(host), normalize_port(port))
        except DestinationError as exc:
            raise ProxyConfigError(f"forward destination: {exc}") from exc
        if bind not in ("127.0.0.1", "::1"):
            raise ProxyConfigError("port forwards listen on loopback only")
        if self._loop is None:
            raise ProxyStartError("start the proxy before adding forwards")
        try:
            sock = self._listen(bind, local_port)
        except OSError as exc:
            raise ProxyStartError(f"cannot listen on {bind}:{local_port}: {exc}") from exc
        self._add_listener(_Listener(sock, dest))
        name: tuple[str, int] = sock.getsockname()[:2]
        return name

    def remove_forward(self, local_port: int) -> None:
        """Stop listening on forward port ``local_port`` (open relays stay). Idempotent."""
        self._close_listeners(
            [
                ln
                for ln in self._listeners
                if ln.forward is not None and ln.sock.getsockname()[1] == local_port
            ]
        )

    # -- connection handling -------------------------------------------------------

    def _on_accept(self, listener: _Listener) -> None:
        for _ in range(64):
            try:
                conn, _addr = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE/ENFILE: try again at the next wake-up
                _log.warning("proxy accept failed: %s", exc)
                return
            busy = len(self._relays) + len(self._handshakes) + len(self._pending)
            if busy >= self._limits.max_connections:
                self._refused += 1
                conn.close()
                continue
            try:
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                slot = _PeerSlot(self._peers, conn.getpeername()[:2], conn.getsockname()[:2])
            except OSError:
                conn.close()
                continue
            if listener.forward is not None:
                self._own(conn, self._forward(conn, slot, listener.forward))
            else:
                self._begin(conn, slot)

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

    # The handshake is driven by reader callbacks rather than a task awaiting
    # sock_recv: no task, future or timeout context per read keeps connection setup
    # cheap. Once the target is known, the (rarer, slower) rest runs as a task.

    def _begin(self, conn: socket.socket, slot: _PeerSlot) -> None:
        assert self._loop is not None
        hs = _Handshake(conn, slot)
        hs.timer = self._loop.call_later(self._limits.handshake_timeout, self._hs_timeout, hs)
        self._pending.add(hs)
        self._loop.add_reader(hs.fd, self._hs_readable, hs)

    def _hs_end(self, hs: _Handshake) -> None:
        if hs not in self._pending:
            return
        self._pending.discard(hs)
        if self._loop is not None:
            self._loop.remove_reader(hs.fd)
        if hs.timer is not None:
            hs.timer.cancel()

    def _hs_drop(self, hs: _Handshake) -> None:
        self._hs_end(hs)
        hs.conn.close()

    def _hs_final(self, hs: _Handshake, answer: bytes) -> None:
        """End the handshake with a final answer (then a lingering close)."""
        self._refused += 1
        self._hs_end(hs)
        self._own(hs.conn, self._answer_and_close(hs.conn, answer))

    async def _answer_and_close(self, conn: socket.socket, answer: bytes) -> bool:
        await send_final(asyncio.get_running_loop(), conn, answer)
        return False

    def _hs_timeout(self, hs: _Handshake) -> None:
        if isinstance(hs.parser, s5.Socks5Handshake):
            self._refused += 1
            self._hs_drop(hs)
        else:
            self._hs_final(hs, h.response_bytes(408, b"request head not in time\n"))

    def _hs_readable(self, hs: _Handshake) -> None:
        try:
            data = hs.conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._hs_drop(hs)
            return
        if not data:
            self._hs_drop(hs)
            return
        parser = hs.parser
        if parser is None:
            if data[0] == 0x04:  # SOCKS4: answer "request rejected" in its own dialect
                self._hs_final(hs, b"\x00\x5b" + bytes(6))
                return
            if data[0] == s5.VERSION:
                parser = hs.parser = s5.Socks5Handshake()
            else:
                parser = hs.parser = h.HttpRequestHead(max_head=self._limits.handshake_max_bytes)
        if isinstance(parser, h.HttpRequestHead):
            actions = parser.feed(data)
            if actions:
                self._hs_end(hs)
                self._own(hs.conn, self._http(hs.conn, hs.slot, actions[0]))
            return
        for action in parser.feed(data):
            if isinstance(action, s5.Send):
                try:
                    sent = hs.conn.send(action.data)
                except OSError:
                    sent = -1
                if sent != len(action.data):  # a 2-byte answer always fits a new socket
                    self._hs_drop(hs)
                    return
                hs.slot.get()  # identify the peer while the client writes its request
            elif isinstance(action, s5.Fail):
                _log.debug("SOCKS5 refused: %s", action.reason)
                self._hs_final(hs, action.data)
                return
            else:
                self._hs_end(hs)
                self._own(hs.conn, self._socks(hs.conn, hs.slot, action))
                return

    def _peer_refusal(self, info: PeerInfo | None) -> str | None:
        if info is None:
            return "the connecting process could not be identified"
        if info.uid != self._host_uid:
            return f"connection from another user's process (uid {info.uid})"
        return None

    async def _forward(
        self, conn: socket.socket, slot: _PeerSlot, forward: tuple[str, int]
    ) -> bool:
        info = slot.get()
        app = _app(info)
        refusal = self._peer_refusal(info)
        if refusal:
            self._refuse(app, f"{_fmt_host(forward[0])}:{forward[1]}", refusal, "forward")
            return False
        return await self._serve(conn, app, forward[0], forward[1], b"", Answer(), "forward")

    async def _socks(self, conn: socket.socket, slot: _PeerSlot, target: s5.Connect) -> bool:
        info = slot.get()
        app = _app(info)
        refusal = self._peer_refusal(info)
        if refusal:
            raw = target.host if isinstance(target.host, str) else target.host.decode("latin-1")
            self._refuse(app, f"{raw}:{target.port}", refusal, "socks5")
            await send_final(asyncio.get_running_loop(), conn, s5.reply_bytes(s5.Reply.NOT_ALLOWED))
            return False
        return await self._serve(
            conn, app, target.host, target.port, target.rest, SocksAnswer(), "socks5"
        )

    async def _http(self, conn: socket.socket, slot: _PeerSlot, action: h.Action) -> bool:
        loop = asyncio.get_running_loop()
        info = slot.get()
        app = _app(info)
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
    ) -> bool:
        """Decide, connect and start relaying. Returns True when a relay owns ``conn``."""
        loop = asyncio.get_running_loop()
        limits = self._limits
        try:
            host = normalize_host(raw_host)
            port = normalize_port(raw_port)
        except DestinationError as exc:
            shown = raw_host if isinstance(raw_host, str) else raw_host.decode("latin-1")
            self._refuse(app, f"{shown!r}:{raw_port}", str(exc), protocol)
            await send_final(loop, conn, answer.bad_destination(str(exc)))
            return False
        addresses: tuple[str, ...] = ()
        host_is_ip = is_ip(host)
        if not host_is_ip:
            addresses = await self._resolve(host, port)
        request = AccessRequest(app=app, host=host, port=port, protocol="tcp", addresses=addresses)
        decision = self._decide(request)
        resource = decision.resource or host
        destination = f"{_fmt_host(host)}:{port}"
        self._emit(EventKind.DECISION, app, destination, decision, protocol)
        count = self._counts.setdefault(resource, _Count())
        if not decision.allowed:
            count.denials += 1
            await send_final(loop, conn, answer.deny(decision.reason, decision.rule_id))
            return False
        targets = (host,) if host_is_ip else addresses
        try:
            if not targets:
                raise OSError(f"cannot resolve {host}")
            async with asyncio.timeout(limits.connect_timeout):
                upstream = await self._connector(targets, port)
        except (OSError, TimeoutError) as exc:
            await send_final(loop, conn, answer.failure(exc))
            return False
        try:
            upstream.setblocking(False)
            with contextlib.suppress(OSError):
                upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reply = answer.ok(upstream.getsockname()[:2])
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
        count.connections += 1
        relay: Relay
        if self._splice:
            relay = SpliceRelay(
                loop, conn, upstream, chunk=limits.chunk_size, on_closed=self._relay_closed
            )
        else:
            relay = BufferedRelay(
                loop, conn, upstream, shared=self._shared, on_closed=self._relay_closed
            )
        self._relays[relay] = _Open(request, resource, protocol)
        if isinstance(relay, BufferedRelay):
            try:
                await relay.attach()
            except (OSError, RuntimeError):
                return True  # attach closed both sockets and unregistered the relay
        relay.bytes_up += len(first_up)
        relay.start()
        return True

    async def _resolve(self, host: str, port: int) -> tuple[str, ...]:
        try:
            async with asyncio.timeout(self._limits.resolve_timeout):
                raw = await self._resolver(host, port)
        except (OSError, TimeoutError, UnicodeError) as exc:
            _log.debug("cannot resolve %s: %s", host, exc)
            return ()
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
        return tuple(out)

    def _decide(self, request: AccessRequest) -> Decision:
        try:
            return self._decider.decide(request)
        except Exception as exc:  # the contract says never raises; fail closed if it does
            _log.exception("decider raised")
            return Decision(Effect.DENY, None, f"policy error: {type(exc).__name__}")

    def _relay_closed(self, relay: Relay) -> None:
        opened = self._relays.pop(relay, None)
        if opened is None:
            return
        count = self._counts.setdefault(opened.resource, _Count())
        count.bytes_up += relay.bytes_up
        count.bytes_down += relay.bytes_down

    async def _sweep(self) -> None:
        """Close relays idle past the limit; trim buffers of those idle a few seconds."""
        idle = self._limits.idle_timeout
        while True:
            await asyncio.sleep(min(idle / 2, 1.0))
            now = time.monotonic()
            for relay in list(self._relays):
                if relay.last_active < now - idle:
                    relay.close("idle timeout")
                elif relay.last_active < now - _TRIM_AFTER:
                    relay.trim()

    # -- events --------------------------------------------------------------------

    def _refuse(self, app: AppIdentity, destination: str, reason: str, protocol: str) -> None:
        self._refused += 1
        decision = Decision(Effect.DENY, None, reason)
        self._emit(EventKind.REFUSED, app, destination, decision, protocol)

    def _emit(
        self,
        kind: EventKind,
        app: AppIdentity,
        destination: str,
        decision: Decision,
        protocol: str,
    ) -> None:
        if not self._subscribers:
            return
        event = ProxyEvent(
            time=time.time(),
            kind=kind,
            app=app,
            destination=destination,
            effect=decision.effect,
            rule=decision.rule_id,
            reason=decision.reason,
            resource=decision.resource,
            protocol=protocol,
        )
        loop = self._loop or asyncio.get_running_loop()
        loop.call_soon(self._deliver, event)

    def _deliver(self, event: ProxyEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                _log.exception("proxy event subscriber failed")


class _Handshake:
    """A connection whose handshake is being read (see ProxyServer._hs_readable)."""

    __slots__ = ("conn", "fd", "parser", "slot", "timer")

    def __init__(self, conn: socket.socket, slot: _PeerSlot) -> None:
        self.conn = conn
        self.fd = conn.fileno()
        self.slot = slot
        self.parser: s5.Socks5Handshake | h.HttpRequestHead | None = None
        self.timer: asyncio.TimerHandle | None = None


class _PeerSlot:
    """Looks the peer up once, when first needed (SOCKS: while the client is busy)."""

    __slots__ = ("_done", "_info", "_local", "_lookup", "_peer")

    def __init__(self, lookup: PeerLookup, peer: tuple[str, int], local: tuple[str, int]):
        self._lookup = lookup
        self._peer = peer
        self._local = local
        self._info: PeerInfo | None = None
        self._done = False

    def get(self) -> PeerInfo | None:
        if not self._done:
            self._info = self._lookup.lookup(self._peer, self._local)
            self._done = True
        return self._info


def _app(info: PeerInfo | None) -> AppIdentity:
    if info is None:
        return _UNKNOWN_APP
    return AppIdentity(pid=info.pid, uid=info.uid, exe=info.exe, name=os.path.basename(info.exe))


def _fmt_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
