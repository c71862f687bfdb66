"""The transparent listeners the helper opens and holds for an enforced tunnel.

The nft ``redirect`` sends the owner's TCP to 127.0.0.1:<port> / [::1]:<port>. Whoever
listens there receives the owner's company connections, so the port must never be
bindable by another local account while the rules point at it — not before the decider
starts, not while it restarts, not after it crashed under always-on. The helper
therefore makes these listening sockets itself, before the rules point at them, keeps
its own copy open for as long as the enforcement exists (it never accepts on it), and
hands duplicates to the owner's decider (``listeners`` verb, ``SCM_RIGHTS``): the
decider accepts on the very same listening socket. Its copies are closed only after the
rules that point at them are gone.

``SO_REUSEADDR`` is set (so the port is got back while earlier redirected connections
sit in ``TIME_WAIT``) but never ``SO_REUSEPORT``: Linux refuses any second bind of an
address and port that has a socket in the listening state, whatever the second socket's
options, so no other account can share the port.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from typing import Final

__all__ = ["HeldListeners", "open_listeners"]

#: Fallback attempts when the kernel's free IPv4 port is taken on [::1].
_ATTEMPTS: Final = 16
_NO_IPV6: Final = frozenset({errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT})


def _listen(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_both(port: int) -> list[socket.socket]:
    v4 = _listen(socket.AF_INET, "127.0.0.1", port)
    try:
        port = v4.getsockname()[1]
        try:
            v6 = _listen(socket.AF_INET6, "::1", port)
        except OSError as exc:
            if exc.errno in _NO_IPV6:  # no IPv6 loopback: nobody can bind [::1] either
                return [v4]
            raise
    except BaseException:
        v4.close()
        raise
    return [v4, v6]


def open_listeners(want: int) -> list[socket.socket]:
    """Listening TCP sockets on 127.0.0.1 and [::1] at one port: ``want`` when it is
    free on both, else a port the kernel picks that is free on both ([::1] left out on
    a host without IPv6 loopback). Raises ``OSError``."""
    try:
        return _bind_both(want)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
    for _ in range(_ATTEMPTS):
        try:
            return _bind_both(0)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, "no port is free on both loopback addresses")


class HeldListeners:
    """Per interface, the listening sockets the helper holds. Thread-safe (the helper
    calls it from worker threads, one request per interface at a time)."""

    def __init__(self) -> None:
        self._socks: dict[str, list[socket.socket]] = {}
        self._lock = threading.Lock()

    def hold(self, interface: str, want: int) -> int:
        """The port of ``interface``'s listeners, opened at ``want`` (or another free
        port) unless it already has some: then their port, whatever ``want`` is — a
        re-``enforce`` never lets go of a port the rules point at. Raises ``OSError``."""
        with self._lock:
            held = self._socks.get(interface)
            if held:
                return int(held[0].getsockname()[1])
        socks = open_listeners(want)
        with self._lock:
            self._socks[interface] = socks
        return int(socks[0].getsockname()[1])

    def port(self, interface: str) -> int | None:
        """The port ``interface``'s listeners hold, ``None`` if it has none."""
        with self._lock:
            held = self._socks.get(interface)
            return int(held[0].getsockname()[1]) if held else None

    def dups(self, interface: str) -> list[socket.socket]:
        """Duplicates of ``interface``'s listeners (the caller closes them); may be empty."""
        with self._lock:
            return [s.dup() for s in self._socks.get(interface, ())]

    def close(self, interface: str) -> None:
        """Close ``interface``'s listeners (the port is free again). Idempotent."""
        with self._lock:
            socks = self._socks.pop(interface, [])
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()

    def close_all(self) -> None:
        """Close every held listener. Idempotent."""
        with self._lock:
            names = list(self._socks)
        for name in names:
            self.close(name)
