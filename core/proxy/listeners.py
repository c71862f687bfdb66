"""Listening sockets, accept and local port forwards: the ``Listeners`` layer.

The proxy port listens on each loopback address; port forwards add listeners whose
connections skip the handshake and go straight to the decision for a fixed destination.
Accepting is a reader callback that drains up to 64 connections per wake-up and refuses
those past ``Limits.max_connections``. See ``bookkeeping`` for how the layers stack.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable

from core.proxy.errors import DestinationError, ProxyConfigError, ProxyStartError
from core.proxy.handshake import Handshaking
from core.proxy.normalize import normalize_host, normalize_port
from core.proxy.peer import PeerLookup
from core.proxy.serving import PeerSlot

__all__ = ["Listener", "Listeners"]

_log = logging.getLogger(__name__)


class Listener:
    """A listening socket: the proxy port (``forward`` None) or a port forward."""

    __slots__ = ("forward", "sock")

    def __init__(self, sock: socket.socket, forward: tuple[str, int] | None) -> None:
        self.sock = sock
        self.forward = forward


class Listeners(Handshaking):
    """Owns the listening sockets; accepts and routes connections."""

    # Set by ProxyServer.__init__.
    _peers: PeerLookup
    _listeners: list[Listener]

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
        self._loop.add_reader(listener.sock.fileno(), self._on_accept, listener)

    def _close_listeners(self, only: Iterable[Listener] | None = None) -> None:
        targets = list(only) if only is not None else list(self._listeners)
        for listener in targets:
            if self._loop is not None and listener.sock.fileno() >= 0:
                self._loop.remove_reader(listener.sock.fileno())
            listener.sock.close()
            self._listeners.remove(listener)

    def _on_accept(self, listener: Listener) -> None:
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
                slot = PeerSlot(self._peers, conn.getpeername()[:2], conn.getsockname()[:2])
            except OSError:
                conn.close()
                continue
            if listener.forward is not None:
                self._own(conn, self._forward(conn, slot, listener.forward))
            else:
                self._begin(conn, slot)
