"""The relay server: the listener, the registry of streams, revocation and counters.

Threads, not asyncio: every connection runs on its own thread
(:class:`~controller.relay.connection.Connection`), where OpenSSL reads and writes the
socket directly (no memory BIOs) and releases the GIL while it encrypts; on this machine
that carried more bytes per CPU second than an asyncio relay over the same TLS context
(``tests/controller/relay/bench_relay.py``). One thread accepts, one polls the
controller's device list.

Revocation: the directory's change callback closes (``revoked``) every connection whose
device left the list or whose key changed. :meth:`RelayServer.stop` closes every
connection with ``shutdown``. Logs one line per stream open and close (device id,
duration, bytes, drops); never key material.
"""

from __future__ import annotations

import errno
import hmac
import itertools
import json
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from controller.relay.config import RelayProcessConfig
from controller.relay.connection import Connection
from controller.relay.directory import Directory
from wg_backends.relay import frames

__all__ = ["MAX_PENDING", "RelayServer", "RelayStats", "server_context"]

log = logging.getLogger("controller.relay")

#: Connections still in their handshake at once; more are closed at accept (a flood of
#: half-open TLS connections must not become a flood of threads).
MAX_PENDING: Final = 256


@dataclass(frozen=True, slots=True)
class RelayStats:
    """Counters since start (bytes are WireGuard payload, without framing)."""

    streams: int
    probes: int
    streams_opened: int
    refused: int
    bytes_to_gateway: int
    bytes_from_gateway: int
    datagrams_to_gateway: int
    datagrams_from_gateway: int
    datagrams_dropped: int
    queued_bytes: int

    def as_dict(self) -> dict[str, int]:
        """The counters as a JSON-able dict (the ``--stats-file``)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def server_context(cert_file: str, key_file: str, client_ca_file: str) -> ssl.SSLContext:
    """The relay's TLS context: TLS 1.3 only, client certificate required and verified
    against the relay CA, ALPN offered, no session tickets (every stream authenticates
    afresh). Raises ``OSError`` / ``ssl.SSLError`` for unreadable or invalid files."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(cafile=client_ca_file)
    ctx.set_alpn_protocols([frames.ALPN])
    ctx.num_tickets = 0
    return ctx


class RelayServer:
    """The relay: listener, connection threads and the directory's polling thread.

    ``start`` binds and starts the threads; ``stop`` sends ``shutdown`` to every stream
    and joins them. ``stats`` is safe from any thread. Not restartable.
    """

    def __init__(
        self,
        cfg: RelayProcessConfig,
        token: str,
        *,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.cfg = cfg
        self.context = context or server_context(cfg.cert_file, cfg.key_file, cfg.client_ca_file)
        self.gateways = cfg.gateway_keys()
        self.directory = Directory(
            cfg.controller_url,
            token,
            interval_s=cfg.poll_interval_s,
            on_change=self._directory_changed,
        )
        self._lock = threading.Lock()
        self._conns: set[Connection] = set()  # every live connection
        self._authed: set[Connection] = set()  # those past the certificate check
        self._streams: dict[str, Connection] = {}
        self._probes: set[Connection] = set()
        self._pending = 0
        self._stop = threading.Event()
        self._ids = itertools.count(1)
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._threads: list[threading.Thread] = []
        self._totals = [0, 0, 0, 0, 0]  # up, down, up_n, down_n, drops of closed streams
        self._opened = 0
        self._refused_n = 0
        self.address: tuple[str, int] = ("", 0)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> tuple[str, int]:
        """Bind, start accepting and polling; returns the bound ``(host, port)``.

        Devices are refused (``unknown_device``) until the directory's first list arrives;
        ``wait_ready`` waits for it. Raises ``OSError`` when the address cannot be bound.
        """
        host, port = self.cfg.listen_address()
        if ":" in host:
            listener = socket.create_server(
                (host, port), family=socket.AF_INET6, backlog=1024, dualstack_ipv6=host == "::"
            )
        else:
            listener = socket.create_server((host, port), backlog=1024)
        listener.setblocking(False)
        self._listener = listener
        self.address = listener.getsockname()[:2]
        for target, name in ((self._accept_loop, "relay-accept"), (self._poll_loop, "relay-dir")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self.address

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the directory has its first list (devices can connect)."""
        return self.directory.wait_ready(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Send ERROR ``shutdown`` to every connection, close them and the listener, stop
        polling; returns when the threads ended (or ``timeout`` passed). Idempotent."""
        if self._stop.is_set():
            return
        with self._lock:
            self._stop.set()
            conns = list(self._conns)
        self._wake_w.send(b"x")
        for conn in conns:
            conn.close_with("shutdown")
            if conn.device_id is None:
                conn.interrupt()
        end = time.monotonic() + timeout
        for conn in conns:
            conn.thread.join(max(0.0, end - time.monotonic()))
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        self.directory.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- threads -----------------------------------------------------------------------

    def _poll_loop(self) -> None:
        self.directory.run(self._stop)

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._stop.is_set():
                sel.select()
                while not self._stop.is_set():
                    try:
                        raw, addr = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as exc:
                        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                            log.error("relay: cannot accept: %s", exc)
                            time.sleep(0.1)
                        break
                    self._accepted(raw, addr)
        listener.close()

    def _accepted(self, raw: socket.socket, addr: tuple[str, int]) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        with self._lock:
            if self._pending >= MAX_PENDING:
                raw.close()
                self._refused_n += 1
                return
            self._pending += 1
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if hasattr(socket, "TCP_KEEPIDLE"):
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
            conn = Connection(self, raw, peer, next(self._ids))
        except OSError as exc:
            log.error("relay: cannot take a connection from %s: %s", peer, exc)
            raw.close()
            with self._lock:
                self._pending -= 1
            return
        with self._lock:
            if self._stop.is_set():  # stop() already took its snapshot of connections
                self._pending -= 1
                stopping = True
            else:
                self._conns.add(conn)
                stopping = False
        if stopping:
            conn.abandon()
            return
        conn.thread.start()

    # -- bookkeeping (called from connection threads) ----------------------------------

    def on_authenticated(self, conn: Connection, device_id: str, key: bytes) -> None:
        with self._lock:
            conn.device_id, conn.key = device_id, key
            self._pending -= 1
            self._authed.add(conn)

    def on_refused(self) -> None:
        with self._lock:
            self._refused_n += 1

    def open_probe(self, conn: Connection) -> str | None:
        with self._lock:
            if self._stop.is_set():
                return "shutdown"
            if len(self._probes) >= self.cfg.max_streams:
                return "overloaded"
            self._probes.add(conn)
        return None

    def open_stream(self, conn: Connection) -> str | None:
        assert conn.device_id is not None
        with self._lock:
            if self._stop.is_set():
                return "shutdown"
            old = self._streams.get(conn.device_id)
            if old is None and len(self._streams) >= self.cfg.max_streams:
                return "overloaded"
            self._streams[conn.device_id] = conn
            self._opened += 1
        if old is not None:
            old.close_with("replaced")
        return None

    def on_gone(self, conn: Connection) -> None:
        with self._lock:
            self._conns.discard(conn)
            if conn in self._authed:
                self._authed.discard(conn)
            elif conn.device_id is None:
                self._pending -= 1
            self._probes.discard(conn)
            if conn.device_id is not None and self._streams.get(conn.device_id) is conn:
                del self._streams[conn.device_id]
            t = self._totals
            t[0] += conn.up
            t[1] += conn.down
            t[2] += conn.up_n
            t[3] += conn.down_n
            t[4] += conn.drops

    def _directory_changed(self, devices: Mapping[str, bytes]) -> None:
        with self._lock:
            authed = list(self._authed)
        for conn in authed:
            assert conn.device_id is not None
            assert conn.key is not None
            key = devices.get(conn.device_id)
            if key is None or not hmac.compare_digest(key, conn.key):
                log.info("relay: device %s left the directory: closing", conn.device_id)
                conn.close_with("revoked")

    def ready_message(self) -> dict[str, object]:
        return {"v": 1, "relay": self.cfg.name, "streams": self.stream_count()}

    # -- observation -------------------------------------------------------------------

    def stream_count(self) -> int:
        """Open device streams (the load a PONG and READY report)."""
        return len(self._streams)

    def stats(self) -> RelayStats:
        """Counters since start, including live streams (approximate while they run)."""
        with self._lock:
            conns = list(self._conns)
            up, down, up_n, down_n, drops = self._totals
            streams, probes = len(self._streams), len(self._probes)
            opened, refused = self._opened, self._refused_n
        queued = 0
        for conn in conns:
            up += conn.up
            down += conn.down
            up_n += conn.up_n
            down_n += conn.down_n
            drops += conn.drops
            queued += len(conn.out)
        return RelayStats(
            streams=streams,
            probes=probes,
            streams_opened=opened,
            refused=refused,
            bytes_to_gateway=up,
            bytes_from_gateway=down,
            datagrams_to_gateway=up_n,
            datagrams_from_gateway=down_n,
            datagrams_dropped=drops,
            queued_bytes=queued,
        )

    def write_stats(self, path: str) -> None:
        """Write :meth:`stats` as JSON to ``path`` atomically (the ``--stats-file``)."""
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"relay": self.cfg.name, "time": time.time(), **self.stats().as_dict()}, fh)
        os.replace(tmp, path)
