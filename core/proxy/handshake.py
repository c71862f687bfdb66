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
from collections.abc import Coroutine
from typing import Any

from core.aio import spawn
from core.proxy import http as h
from core.proxy import socks5 as s5
from core.proxy.dial import send_final
from core.proxy.serving import PeerSlot, Serving

__all__ = ["Handshaking"]

_log = logging.getLogger(__name__)


class Handshake:
    """A connection whose handshake is being read (see ``Handshaking._hs_readable``)."""

    __slots__ = ("conn", "fd", "parser", "slot", "timer")

    def __init__(self, conn: socket.socket, slot: PeerSlot) -> None:
        self.conn = conn
        self.fd = conn.fileno()
        self.slot = slot
        self.parser: s5.Socks5Handshake | h.HttpRequestHead | None = None
        self.timer: asyncio.TimerHandle | None = None


class Handshaking(Serving):
    """Reads handshakes from reader callbacks and hands targets to ``Serving``."""

    # Set by ProxyServer.__init__.
    _handshakes: set[asyncio.Task[None]]  # connection tasks (after the handshake)
    _pending: set[Handshake]  # handshakes being read

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

    def _begin(self, conn: socket.socket, slot: PeerSlot) -> None:
        assert self._loop is not None
        hs = Handshake(conn, slot)
        hs.timer = self._loop.call_later(self._limits.handshake_timeout, self._hs_timeout, hs)
        self._pending.add(hs)
        self._loop.add_reader(hs.fd, self._hs_readable, hs)

    def _hs_end(self, hs: Handshake) -> None:
        if hs not in self._pending:
            return
        self._pending.discard(hs)
        if self._loop is not None:
            self._loop.remove_reader(hs.fd)
        if hs.timer is not None:
            hs.timer.cancel()

    def _hs_drop(self, hs: Handshake) -> None:
        self._hs_end(hs)
        hs.conn.close()

    def _hs_final(self, hs: Handshake, answer: bytes) -> None:
        """End the handshake with a final answer (then a lingering close)."""
        self._refused += 1
        self._hs_end(hs)
        self._own(hs.conn, self._answer_and_close(hs.conn, answer))

    async def _answer_and_close(self, conn: socket.socket, answer: bytes) -> bool:
        await send_final(asyncio.get_running_loop(), conn, answer)
        return False

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
