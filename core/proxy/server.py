"""The asyncio proxy server: the only part of the package that does I/O.

One listening port on 127.0.0.1 and ::1 serves SOCKS5 and HTTP (first byte 0x05 →
SOCKS5, anything else → HTTP; 0x04 gets a SOCKS4 rejection). For each connection:
identify the peer process (refuse other users and unidentifiable peers), parse the
handshake with the sans-IO cores under a size and time cap, normalise the destination,
resolve names with the injected resolver, ask the ``Decider`` (name *and* addresses),
then connect with the injected connector and relay — or answer a protocol-correct
refusal. Every decision becomes a ``ProxyEvent`` delivered to subscribers outside the
connection's path. ``reevaluate()`` re-asks the decider for every open relay and closes
those no longer allowed.

``ProxyServer`` is assembled from layers, one module each (bottom first):
``bookkeeping`` (counters, events, open relays), ``serving`` (peer check, decide,
connect, relay start), ``handshake`` (callback-driven handshake reading),
``listeners`` (listening sockets, accept, port forwards); this module adds the
constructor and the lifecycle.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Sequence
from typing import cast

from core.aio import cancel_and_wait, spawn
from core.policy.api import Decider
from core.proxy import transparent
from core.proxy.apphash import AppHasher
from core.proxy.bookkeeping import EventCallback
from core.proxy.destinations import RangesSource, ResourceScopes
from core.proxy.dial import Connector, Resolver, system_connector, system_resolver
from core.proxy.errors import ProxyConfigError, ProxyStartError
from core.proxy.listeners import REFUSAL_EVENTS_BURST, Listener, Listeners
from core.proxy.model import Limits
from core.proxy.pac import PacTargets
from core.proxy.peer import Owner, PeerLookup, SplitLookup, current_owner, default_lookup
from core.proxy.peer.owner import uid_owner
from core.proxy.reactor import NOT_STARTED, EpollReactor, make_poller
from core.proxy.relay import BulkThreads, PipePool, splice_available
from core.proxy.serving import ReverseLookup

__all__ = ["EventCallback", "ProxyServer"]

_log = logging.getLogger(__name__)


class ProxyServer(Listeners):
    """Policy-checked SOCKS5 + HTTP proxy on loopback.

    All methods must be called on the event loop's thread. ``decider`` is consulted for
    every connection and by ``reevaluate``. Only processes of one account are served:
    ``host_owner`` (an ``Owner``), or ``host_uid`` (POSIX shorthand for
    ``Owner(uid=host_uid)``), or by default ``current_owner()`` — this process's account
    in the identity the OS provides (uid; SID or "DOMAIN\\user" on Windows). Processes
    whose owner is unknown or not comparable are refused. ``resolver``/``connector``
    default to the OS resolver and plain TCP connects (the engine injects tunnel-bound
    ones); ``peer_lookup`` defaults to the fastest lookup of this OS. ``on_event`` is a
    first subscriber (see ``subscribe``). ``hosts`` are the listening addresses and must
    be loopback (DESIGN §7.4). ``hasher`` computes executables' digests for rules pinned
    to a hash (default: an ``AppHasher`` with its cache).

    Transparent mode: with ``transparent_port`` (0: any free port) ``start`` also
    listens there on each of ``hosts``, for the connections the helper's nftables rules
    redirect to it; each is decided for its original destination IP (with the name
    ``reverse(ip)`` gives, if any, for host rules) and spliced, its events' protocol
    "transparent". A connection to that port that was not redirected is refused.
    Off Linux the transparent listener is not opened (a warning is logged).
    ``transparent_port`` binds the port itself, which any local account could bind
    first: the engine instead serves the listening sockets the helper holds for the
    enforced tunnel, with ``adopt_transparent`` (and ``drop_transparent``).
    The addresses a name resolves to must lie in the matched resource's networks, or
    else in ``ranges()`` (the tunnel's ranges; without ``ranges`` only loopback,
    link-local and other never-resource addresses are refused). To dial only through
    the tunnel, give ``connector=tunnel_connector(source)`` (``dial``): it never uses
    the OS's routes and refuses with "the tunnel is down" when there is no tunnel.

    Raises ProxyConfigError for non-loopback ``hosts``, ``relay="splice"`` off Linux, or
    both ``host_uid`` and ``host_owner``.
    Typical engine use::

        proxy = ProxyServer(policy_engine, resolver=tunnel_dns, connector=tunnel_connect,
                            on_event=engine.on_proxy_event)
        await proxy.start(settings.proxy_port)
        proxy.set_pac_targets(hosts_and_cidrs_of_bundle)
        ...  # on bundle/posture change: proxy.reevaluate()
        await proxy.stop()

    Besides ``start``/``stop``/``port`` here, the public methods come from the layers:
    ``subscribe``/``counters`` (``bookkeeping``), ``set_decider``/``set_pac_targets``/
    ``pac``/``reevaluate`` (``serving``), ``add_forward``/``remove_forward``
    (``listeners``).
    """

    def __init__(
        self,
        decider: Decider,
        *,
        host_uid: int | None = None,
        host_owner: Owner | None = None,
        resolver: Resolver | None = None,
        connector: Connector | None = None,
        on_event: EventCallback | None = None,
        limits: Limits | None = None,
        peer_lookup: PeerLookup | None = None,
        hosts: Sequence[str] = ("127.0.0.1", "::1"),
        hasher: AppHasher | None = None,
        transparent_port: int | None = None,
        reverse: ReverseLookup | None = None,
        ranges: RangesSource | None = None,
    ) -> None:
        for host in hosts:
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise ProxyConfigError(f"the proxy listens on loopback only, not {host!r}")
        if transparent_port is not None and not 0 <= transparent_port <= 65535:
            raise ProxyConfigError(f"transparent_port {transparent_port} is not a port")
        if host_uid is not None and host_owner is not None:
            raise ProxyConfigError("give host_uid or host_owner, not both")
        if host_owner is None:
            host_owner = current_owner() if host_uid is None else Owner(uid=host_uid)
        if host_owner.uid is not None and host_owner.sid is None and host_owner.name is None:
            host_owner = uid_owner(host_owner.uid)  # the cached object: see _peer_refusal
        if not host_owner.known:
            _log.warning("the proxy's own account is unknown: every connection is refused")
        self._decider = decider
        self._host_owner = host_owner
        self._resolver = resolver or system_resolver
        self._connector = connector or system_connector
        self._limits = limits or Limits()
        self._peers = peer_lookup or default_lookup()
        peers: object = self._peers
        split = callable(getattr(peers, "uid_inode", None)) and callable(
            getattr(peers, "finish", None)
        )
        self._split = cast("SplitLookup", peers) if split else None
        self._hosts = tuple(hosts)
        self._subscribers = [on_event] if on_event else []
        self._hasher = hasher or AppHasher()
        self._hash_for = None
        self._hash_wanted = False
        self._reverse = reverse
        self._ranges = ranges
        self._scopes = ResourceScopes()
        self._transparent_want = transparent_port
        self._transparent_port = 0
        self._max_open = self._limits.max_connections
        self._accept_timer = None
        self._accept_pause = 0.0
        self._accept_failures = 0
        self._refusal_tokens = REFUSAL_EVENTS_BURST
        self._refusal_at = 0.0
        self._refusals_quiet = 0
        self._refusal_last = (None, "")
        self._listeners = []
        self._handshakes = set()
        self._dials = {}
        self._parked = -1
        self._pending = {}
        self._hs_timer = None
        self._relays = {}
        self._counts = {}
        self._refused = 0
        self._pac = PacTargets()
        self._pac_text = ""
        self._port = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._loop = None
        self._poll = NOT_STARTED
        use_splice = self._limits.relay == "splice" or (
            self._limits.relay == "auto" and splice_available()
        )
        if self._limits.relay == "splice" and not splice_available():
            raise ProxyConfigError("relay='splice' needs Linux os.splice")
        self._splice = use_splice
        self._pipes = PipePool(self._limits.chunk_size) if use_splice else None
        limits = self._limits
        self._bulk = (
            BulkThreads(limits.bulk_threads, limits.bulk_after)
            if use_splice and limits.bulk_threads
            else None
        )
        self._shared = memoryview(bytearray(0 if use_splice else self._limits.chunk_size))

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, port: int) -> list[tuple[str, int]]:
        """Listen on ``port`` (0: any free port, the same on both families).

        Returns the bound (host, port) addresses (the transparent listener's after the
        main port's, when configured). Raises ProxyStartError when the IPv4
        loopback cannot be bound (IPv6 loopback is skipped when the host has none).
        Not idempotent: call ``stop`` before starting again.
        """
        if self._listeners:
            raise ProxyStartError("proxy already started")
        self._loop = asyncio.get_running_loop()
        self._set_fd_budget()
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
                self._add_listener(Listener(sock, None))
                bound.append((host, self._port))
            if self._transparent_want is not None:
                if transparent.SUPPORTED:
                    bound += self._listen_transparent(self._transparent_want)
                else:
                    _log.warning("transparent mode needs Linux: apps use the proxy port here")
        except BaseException:
            self._close_listeners()
            raise
        self._poll = make_poller(self._loop)  # once listening: a failed start leaves none
        self._sweeper = spawn(self._sweep(), name="proxy-idle-sweeper")
        return bound

    def _listen_transparent(self, port: int) -> list[tuple[str, int]]:
        bound: list[tuple[str, int]] = []
        for host in self._hosts:
            try:
                sock = self._listen(host, port or self._transparent_port)
            except OSError as exc:
                if host == "::1" and bound:
                    _log.info("IPv6 loopback unavailable, transparent on IPv4 only: %s", exc)
                    continue
                raise ProxyStartError(f"cannot listen on {host}:{port}: {exc}") from exc
            self._transparent_port = sock.getsockname()[1]
            self._add_listener(Listener(sock, None, transparent=True))
            bound.append((host, self._transparent_port))
        return bound

    def adopt_transparent(self, socks: Sequence[socket.socket]) -> int:
        """Serve ``socks`` (listening loopback TCP sockets, one port: the helper's
        transparent listeners) as the transparent listeners, in place of any this proxy
        has; returns their port. The proxy owns them from then on (closes them on
        ``drop_transparent``, a later adopt and ``stop``); the helper's own copies keep the
        port. Raises ProxyStartError before ``start`` and ProxyConfigError for anything
        but listening TCP sockets on 127.0.0.1 / ::1 sharing one port, or off Linux —
        nothing is changed then and ``socks`` stay the caller's."""
        if self._loop is None:
            raise ProxyStartError("start the proxy before adopting transparent listeners")
        if not transparent.SUPPORTED:
            raise ProxyConfigError("transparent mode needs Linux (SO_ORIGINAL_DST)")
        port = _check_adoptable(socks)
        for sock in socks:
            sock.setblocking(False)  # shared with the helper's copy, which never accepts
        self._close_listeners([ln for ln in self._listeners if ln.transparent])
        for sock in socks:
            self._add_listener(Listener(sock, None, transparent=True))
        self._transparent_port = port
        _log.info("serving the helper's transparent listeners on port %d", port)
        return port

    def drop_transparent(self) -> None:
        """Stop serving transparent listeners (adopted or bound); open relays stay.
        Idempotent."""
        self._close_listeners([ln for ln in self._listeners if ln.transparent])
        self._transparent_port = 0

    async def stop(self) -> None:
        """Close listeners, forwards, handshakes in progress and every relay. Idempotent."""
        self._close_listeners()
        self._transparent_port = 0
        await cancel_and_wait(self._sweeper)
        self._sweeper = None
        self._hs_stop()
        for dial in list(self._dials):
            dial.cancel()
        self._dials.clear()
        tasks = list(self._handshakes)
        for task in tasks:
            task.cancel()
        for task in tasks:
            await cancel_and_wait(task)
        for relay in list(self._relays):
            relay.close("proxy stopped")
        if self._pipes is not None:
            self._pipes.clear()
        if self._bulk is not None:
            self._bulk.close()  # after the relays: none should be left
        if isinstance(self._poll, EpollReactor):
            self._poll.close()

    @property
    def port(self) -> int:
        """The main listening port (0 before ``start``)."""
        return self._port

    @property
    def transparent_port(self) -> int:
        """The transparent listener's port (0 when not listening)."""
        return self._transparent_port


def _check_adoptable(socks: Sequence[socket.socket]) -> int:
    """The one port of ``socks`` if each is a listening TCP socket on 127.0.0.1 or ::1
    (at most one per family); raises ProxyConfigError otherwise."""
    if not socks:
        raise ProxyConfigError("no transparent listeners to adopt")
    ports: set[int] = set()
    families: set[int] = set()
    for sock in socks:
        try:
            ok = (
                sock.type == socket.SOCK_STREAM
                and sock.family in (socket.AF_INET, socket.AF_INET6)
                and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
            )
            host, port = sock.getsockname()[:2] if ok else ("", 0)
        except OSError:
            ok = False
        if not ok or host not in ("127.0.0.1", "::1") or sock.family in families:
            raise ProxyConfigError("transparent listeners must be listening loopback TCP sockets")
        families.add(sock.family)
        ports.add(port)
    if len(ports) != 1:
        raise ProxyConfigError("transparent listeners must share one port")
    return ports.pop()
