"""Listening sockets, accept and local port forwards: the ``Listeners`` layer.

The proxy port listens on each loopback address; port forwards add listeners whose
connections skip the handshake and go straight to the decision for a fixed destination;
the transparent listener's connections skip it too, their destination being the one
the app originally connected to (``transparent.original_destination``: one getsockopt),
and the app is identified from that original connection.
Accepting is a reader callback that drains up to 64 connections per wake-up. Each
accepted connection is identified at once and a process of another account (or one that
cannot be identified) is closed before a byte of it is read: it holds no slot, no
descriptor and no timer, so another account has a cap of zero and cannot starve the
owner. The owner's own connections are capped by ``Limits.max_connections`` and by the
descriptor budget (``fd_budget``), so the proxy never takes the engine's last
descriptors. When accept fails for want of descriptors or memory (``EMFILE``,
``ENFILE``…) the listeners pause with an exponential backoff — one warning per episode,
no busy loop — and resume by themselves. See ``bookkeeping`` for how the layers stack.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Iterable

from core.policy.api import Decision, Effect
from core.proxy.errors import DestinationError, ProxyConfigError, ProxyStartError
from core.proxy.handshake import Handshaking
from core.proxy.model import EventKind
from core.proxy.normalize import normalize_host, normalize_port
from core.proxy.peer import PeerInfo, PeerLookup, SplitLookup
from core.proxy.serving import PeerSlot, app_of
from core.proxy.transparent import original_destination, redirect_refusal

__all__ = ["FDS_PER_CONNECTION", "FD_RESERVE", "Listener", "Listeners", "fd_budget"]

_log = logging.getLogger(__name__)

# Out of descriptors or kernel memory: retrying at once cannot succeed (and spins).
_EXHAUSTED = frozenset(
    getattr(errno, name)
    for name in ("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM")
    if hasattr(errno, name)
)
ACCEPT_PAUSE_FIRST = 0.05
"""Seconds the accept loop pauses at the first exhausted accept (doubling each time)."""
ACCEPT_PAUSE_MAX = 1.0
"""Longest pause between two accept attempts while descriptors are exhausted."""
FD_RESERVE = 128
"""Descriptors left to the rest of the process (engine, helper socket, controller, logs)."""
FDS_PER_CONNECTION = 4
"""Client and upstream sockets plus a splice pipe (two descriptors) in flight."""
REFUSAL_EVENTS_BURST = 10.0
"""Refusal events told at once before the rate limit applies."""
REFUSAL_EVENTS_PER_S = 1.0
"""Refusal events per second in a sustained flood (the rest are counted in the next)."""


def fd_budget(soft_limit: int | None) -> int | None:
    """How many connections fit in ``soft_limit`` descriptors (RLIMIT_NOFILE) with
    ``FD_RESERVE`` kept for the rest of the process; None when unlimited or unknown."""
    if soft_limit is None or soft_limit < 0:
        return None
    return max(16, (soft_limit - FD_RESERVE) // FDS_PER_CONNECTION)


def _nofile_soft_limit() -> int | None:
    try:
        import resource
    except ImportError:  # Windows: no per-process descriptor limit of this kind
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


class Listener:
    """A listening socket: the proxy port (``forward`` None), a port forward, or the
    transparent listener (``transparent``: redirected connections).

    ``local`` is its address, which is every accepted connection's local address (the
    proxy binds, and adopts, loopback addresses only, never a wildcard). ``nodelay``:
    TCP_NODELAY is set on it, so accepted connections inherit it (Linux, the BSDs).
    """

    __slots__ = ("forward", "local", "nodelay", "sock", "transparent")

    def __init__(
        self, sock: socket.socket, forward: tuple[str, int] | None, *, transparent: bool = False
    ) -> None:
        self.sock = sock
        self.forward = forward
        self.transparent = transparent
        self.local: tuple[str, int] = sock.getsockname()[:2]
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        except OSError:
            self.nodelay = False


class Listeners(Handshaking):
    """Owns the listening sockets; accepts and routes connections."""

    # Set by ProxyServer.__init__.
    _peers: PeerLookup
    _split: SplitLookup | None  # _peers when it can look up in two steps
    _listeners: list[Listener]
    _max_open: int  # max_connections, lowered to the descriptor budget by start
    _accept_timer: asyncio.TimerHandle | None  # set while accepting is paused
    _accept_pause: float  # current pause; 0 outside an exhaustion episode
    _accept_failures: int  # exhausted accepts in this episode
    _refusal_tokens: float
    _refusal_at: float
    _refusals_quiet: int  # refusals not reported by an event (rate limit)
    _refusal_last: tuple[PeerInfo | None, str]  # the latest of those

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
        self._add_listener(Listener(sock, dest))
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

    def _add_listener(self, listener: Listener) -> None:
        assert self._loop is not None
        self._listeners.append(listener)
        if self._accept_timer is None:  # while paused, _accept_resume adds it
            self._loop.add_reader(listener.sock.fileno(), self._on_accept, listener)

    def _close_listeners(self, only: Iterable[Listener] | None = None) -> None:
        targets = list(only) if only is not None else list(self._listeners)
        for listener in targets:
            if self._loop is not None and listener.sock.fileno() >= 0:
                self._loop.remove_reader(listener.sock.fileno())
            listener.sock.close()
            self._listeners.remove(listener)
        if not self._listeners and self._accept_timer is not None:
            self._accept_timer.cancel()
            self._accept_timer = None
            self._accept_pause = 0.0

    def _set_fd_budget(self) -> None:
        """Cap open connections to what the descriptor limit leaves (called by start)."""
        budget = fd_budget(_nofile_soft_limit())
        self._max_open = self._limits.max_connections
        if budget is not None and budget < self._max_open:
            _log.info("the proxy serves at most %d connections at once (descriptor limit)", budget)
            self._max_open = budget

    # -- accept ----------------------------------------------------------------------

    def _accept_exhausted(self, exc: OSError) -> None:
        """Out of descriptors: stop accepting for a while (doubling), warn once."""
        assert self._loop is not None
        self._accept_failures += 1
        if self._accept_pause == 0.0:
            _log.warning(
                "the proxy cannot accept connections (%s): pausing accepts until "
                "descriptors are free again",
                exc.strerror or exc,
            )
        self._accept_pause = min(max(self._accept_pause * 2, ACCEPT_PAUSE_FIRST), ACCEPT_PAUSE_MAX)
        for listener in self._listeners:
            self._loop.remove_reader(listener.sock.fileno())
        if self._accept_timer is None:
            self._accept_timer = self._loop.call_later(self._accept_pause, self._accept_resume)

    def _accept_resume(self) -> None:
        self._accept_timer = None
        if self._loop is None:
            return
        for listener in self._listeners:
            self._loop.add_reader(listener.sock.fileno(), self._on_accept, listener)

    def _accept_recovered(self) -> None:
        _log.warning(
            "the proxy accepts connections again (%d attempts failed while out of descriptors)",
            self._accept_failures,
        )
        self._accept_pause = 0.0
        self._accept_failures = 0

    def _refuse_at_accept(self, info: PeerInfo | None, reason: str) -> None:
        """Count a connection closed at accept; tell subscribers, at a bounded rate (a
        flood from another account must not flood the owner's events and logs). The
        ones not told are summed up in one event once the rate allows it again."""
        self._refused += 1
        now = time.monotonic()
        tokens = min(
            REFUSAL_EVENTS_BURST,
            self._refusal_tokens + (now - self._refusal_at) * REFUSAL_EVENTS_PER_S,
        )
        self._refusal_at = now
        if tokens < 1.0 or self._refusals_quiet:
            self._refusal_tokens = tokens
            self._refusals_quiet += 1
            self._refusal_last = (info, reason)
            if self._refusals_quiet == 1 and self._loop is not None:
                delay = max(0.0, (1.0 - tokens) / REFUSAL_EVENTS_PER_S)
                self._loop.call_later(delay, self._refusal_summary)
            return
        self._refusal_tokens = tokens - 1.0
        self._emit(EventKind.REFUSED, app_of(info), "", Decision(Effect.DENY, None, reason), "")

    def _refusal_summary(self) -> None:
        quiet, (info, reason) = self._refusals_quiet, self._refusal_last
        self._refusals_quiet = 0
        self._refusal_tokens = 0.0
        self._refusal_at = time.monotonic()
        text = f"{reason} (and {quiet - 1} more refused connections)" if quiet > 1 else reason
        self._emit(EventKind.REFUSED, app_of(info), "", Decision(Effect.DENY, None, text), "")

    def _on_accept(self, listener: Listener) -> None:
        for _ in range(64):
            try:
                conn, addr = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _EXHAUSTED:
                    self._accept_exhausted(exc)
                    return
                # ECONNABORTED, EPROTO…: that one connection is gone; the next may be fine.
                _log.debug("proxy accept failed: %s", exc)
                continue
            if self._accept_pause:
                self._accept_recovered()
            try:
                conn.setblocking(False)
            except OSError:
                conn.close()
                continue
            # accept's address is the peer's, and the local one the listener's (bound to
            # a loopback address): two system calls fewer per connection.
            peer, local = addr[:2], listener.local
            original: tuple[str, int] | None = None
            found: tuple[int, int] | None = None
            if listener.transparent:
                # The app's own socket runs from ``peer`` to the original destination:
                # that is the connection the lookup must find (not the one to us).
                original = original_destination(conn)
                why = redirect_refusal(original, local)
                if why is not None:
                    info = self._peers.lookup(peer, local)  # names who knocked directly
                    conn.close()
                    self._refuse_at_accept(info, why)
                    continue
                assert original is not None
                info = self._peers.lookup(peer, original)
            elif self._split is not None:
                # Who is connecting is settled before any handshake work: another account's
                # connection is closed here, having cost one lookup and no byte parsed.
                # The owner is enough for that; pid and executable come later (PeerSlot).
                found = self._split.uid_inode(peer, local)
                info = None if found is None else PeerInfo(uid=found[0], pid=None, exe="")
            else:
                info = self._peers.lookup(peer, local)
            refusal = self._peer_refusal(info)
            if refusal is not None:
                if found is not None and self._split is not None:
                    info = self._split.finish(*found)  # name the refused app in the event
                conn.close()
                self._refuse_at_accept(info, refusal)
                continue
            busy = len(self._relays) + len(self._handshakes) + len(self._pending) + len(self._dials)
            if busy >= self._max_open:
                self._refused += 1
                conn.close()
                continue
            if not listener.nodelay:
                try:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    conn.close()
                    continue
            if found is not None and self._split is not None:
                slot = PeerSlot(info, self._split.finish, *found)
            else:
                slot = PeerSlot(info)
            if original is not None:
                if not self._transparent_now(conn, slot, original):
                    self._own(conn, self._transparent(conn, slot, original))
            elif listener.forward is not None:
                if not self._forward_now(conn, slot, listener.forward):
                    self._own(conn, self._forward(conn, slot, listener.forward))
            else:
                self._begin(conn, slot)
