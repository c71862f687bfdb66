"""Callback-driven handshake reading: the ``Handshaking`` layer of ``ProxyServer``.

An accepted connection's first bytes choose the dialect (0x05 → SOCKS5, 0x04 → a SOCKS4
rejection, anything else → HTTP); the sans-IO parsers are fed from a reader callback
under a size and time cap. The handshake is driven by reader callbacks rather than a
task awaiting ``sock_recv``: no task, future or timeout context per read keeps
connection setup cheap. Once the target is known, the (rarer, slower) rest runs as one
tracked task (``Serving``). See ``bookkeeping`` for how the layers stack.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from core.proxy import http as h
from core.proxy import socks5 as s5
from core.proxy.serving import PeerSlot, Serving

__all__ = ["Handshaking"]

_log = logging.getLogger(__name__)


class Handshake:
    """A connection whose handshake is being read (see ``Handshaking._hs_readable``)."""

    __slots__ = ("conn", "deadline", "fd", "parser", "slot")

    def __init__(self, conn: socket.socket, slot: PeerSlot, deadline: float) -> None:
        self.conn = conn
        self.fd = conn.fileno()
        self.slot = slot
        self.deadline = deadline  # loop time
        self.parser: s5.Socks5Handshake | h.HttpRequestHead | None = None


class Handshaking(Serving):
    """Reads handshakes from reader callbacks and hands targets to ``Serving``."""

    # Set by ProxyServer.__init__.
    # Handshakes being read, oldest first: one timeout for all, so this is also deadline
    # order, and one timer (``_hs_timer``, at the oldest's deadline) serves them all.
    _pending: dict[Handshake, None]
    _hs_timer: asyncio.TimerHandle | None

    def _begin(self, conn: socket.socket, slot: PeerSlot) -> None:
        assert self._loop is not None
        loop = self._loop
        hs = Handshake(conn, slot, loop.time() + self._limits.handshake_timeout)
        self._pending[hs] = None
        self._poll.add_reader(hs.fd, self._hs_readable, hs)
        if self._hs_timer is None:
            self._hs_timer = loop.call_at(hs.deadline, self._hs_sweep)

    def _hs_sweep(self) -> None:
        """Time out the handshakes past their deadline; re-arm for the next one."""
        self._hs_timer = None
        if self._loop is None:
            return
        now = self._loop.time()
        expired: list[Handshake] = []
        for hs in self._pending:
            if hs.deadline > now:
                break
            expired.append(hs)
        for hs in expired:
            self._hs_timeout(hs)
        self._hs_rearm()

    def _hs_rearm(self) -> None:
        if self._hs_timer is None and self._pending and self._loop is not None:
            oldest = next(iter(self._pending))
            self._hs_timer = self._loop.call_at(oldest.deadline, self._hs_sweep)

    def _hs_stop(self) -> None:
        """Drop every handshake in progress (the proxy is stopping)."""
        for hs in list(self._pending):
            self._hs_drop(hs)
        if self._hs_timer is not None:
            self._hs_timer.cancel()
            self._hs_timer = None

    def _hs_end(self, hs: Handshake) -> None:
        if hs not in self._pending:
            return
        del self._pending[hs]
        self._poll.remove_reader(hs.fd)

    def _hs_hand_over(self, hs: Handshake, target: s5.Connect | h.Action) -> None:
        """The target is known: serve it (without a task when possible, see
        ``Serving._serve_now``). The client's reader stays registered meanwhile
        (``_parked``), so a relay started at once takes it over without two epoll
        calls; whatever did not take it, it is removed before this returns."""
        if hs not in self._pending:
            return
        del self._pending[hs]
        self._parked = hs.fd
        try:
            if isinstance(target, s5.Connect):
                if not self._socks_now(hs.conn, hs.slot, target):
                    self._own(hs.conn, self._socks(hs.conn, hs.slot, target))
            elif not self._http_now(hs.conn, hs.slot, target):
                self._own(hs.conn, self._http(hs.conn, hs.slot, target))
        finally:
            self._unpark()

    def _hs_drop(self, hs: Handshake) -> None:
        self._hs_end(hs)
        hs.conn.close()

    def _hs_final(self, hs: Handshake, answer: bytes) -> None:
        """End the handshake with a final answer (then a lingering close)."""
        self._refused += 1
        self._hs_end(hs)
        self._own(hs.conn, self._answer_and_close(hs.conn, answer))

    def _hs_timeout(self, hs: Handshake) -> None:
        if isinstance(hs.parser, s5.Socks5Handshake):
            self._refused += 1
            self._hs_drop(hs)
        else:
            self._hs_final(hs, h.response_bytes(408, b"request head not in time\n"))

    def _hs_readable(self, hs: Handshake) -> None:
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
                self._hs_hand_over(hs, actions[0])
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
                self._hs_hand_over(hs, action)
                return
