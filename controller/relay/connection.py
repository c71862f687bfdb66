"""One relay connection: its thread, its state machine and its bounded buffers.

Each connection has one thread running a small ``selectors`` loop over its non-blocking
TLS socket, its UDP socket to the gateway and a wake-up pipe. Other threads never touch
its sockets (an OpenSSL connection is not safe to share): they set a close reason and
write to the pipe (:meth:`Connection.close_with`).

A connection goes ``handshake → hello → probe | stream → closing``:

* handshake (blocking, within :data:`HELLO_TIMEOUT_S` of the accept): TLS 1.3 only, ALPN
  ``rustronaut-relay/1`` required, a client certificate from the relay CA required; then
  the certificate's device must be in the :class:`~controller.relay.directory.Directory`
  with exactly that key, else ERROR ``unknown_device``.
* hello: the first frame must be a HELLO, within the same 5 s. A probe answers READY and
  then only PING → PONG; a stream names a gateway the config serves (else
  ``gateway_not_served``: the relay is never an open UDP proxy), replaces the device's
  older stream (ERROR ``replaced`` to it) and counts against ``max_streams``
  (``overloaded``).
* stream: DATA → ``send`` on a UDP socket connected to the gateway (one source port per
  device, so WireGuard roaming works); datagrams from the gateway → DATA frames. Bytes
  waiting for the client's TLS side are capped at ``queue_bytes``: beyond, datagrams are
  dropped and counted (UDP semantics), never buffered. Reading is bounded by
  ``FrameDecoder``. A malformed or unexpected frame → ERROR ``protocol``.
* closing: the ERROR frame is flushed (at most :data:`LINGER_S`), the write side shut
  and the rest of the client's input discarded, so the client reads the ERROR instead of
  a reset.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from typing import TYPE_CHECKING, Final, cast

from cryptography import x509

from controller.relay.config import endpoint_key
from controller.relayca import device_of
from wg_backends.relay import frames
from wg_backends.relay.frames import FrameDecoder, FrameError

if TYPE_CHECKING:
    from controller.relay.server import RelayServer

__all__ = ["HELLO_TIMEOUT_S", "LINGER_S", "PROBE_IDLE_S", "Connection"]

log = logging.getLogger("controller.relay")

#: Handshake and HELLO must both complete within this many seconds of the accept.
HELLO_TIMEOUT_S: Final = 5.0
#: A probe with no PING for this long is closed (probes are cheap but not free).
PROBE_IDLE_S: Final = 60.0
#: How long a closing connection may spend flushing its ERROR and draining input.
LINGER_S: Final = 1.0
_RECV: Final = 65536 + frames.HEADER.size
_CHUNK: Final = 256 * 1024
_BUDGET: Final = 64  # reads per wake-up per socket, so neither direction starves
_DATA_HDR: Final = frames.HEADER
_DATA: Final = frames.DATA


class Connection:
    """One client connection and its thread (see the module docstring for the states)."""

    def __init__(self, server: RelayServer, raw: socket.socket, peer: str, cid: int) -> None:
        self.server = server
        self.raw = raw
        self.peer = peer
        self.cid = cid
        self.tls: ssl.SSLSocket | None = None
        self.udp: socket.socket | None = None
        self.device_id: str | None = None
        self.key: bytes | None = None
        self.kind = "hello"  # hello | probe | stream
        self.gateway = ""
        self.accepted = time.monotonic()
        self.opened = 0.0
        self.close_reason: str | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.out = bytearray()
        self._inflight = 0
        self.up = self.down = self.up_n = self.down_n = self.drops = 0
        self._sock_lock = threading.Lock()
        self._closed = False
        self.thread = threading.Thread(target=self.run, name=f"relay-conn-{cid}", daemon=True)

    # -- called from other threads ---------------------------------------------------

    def close_with(self, reason: str) -> None:
        """Ask the connection's thread to send ERROR ``reason`` and close (thread-safe;
        the first reason wins)."""
        with self._sock_lock:
            if self.close_reason is None:
                self.close_reason = reason
            # Under the lock and only while open: a closed pipe's descriptor number may
            # already belong to another connection's socket.
            if not self._closed:
                with contextlib.suppress(BlockingIOError):  # full: already woken
                    os.write(self._wake_w, b"x")

    def interrupt(self) -> None:
        """Wake a thread blocked in its handshake: a TCP shutdown (safe across threads,
        unlike any TLS call; the base class's, as ``SSLSocket.shutdown`` drops its TLS
        object under the other thread's feet)."""
        with self._sock_lock:
            if self._closed:
                return
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self.tls or self.raw, socket.SHUT_RDWR)

    def abandon(self) -> None:
        """Close a connection whose thread was never started (the relay is stopping)."""
        with self._sock_lock:
            self._closed = True
            self.raw.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _closing(self) -> bool:
        # A method, not an inline test: other threads set close_reason at any time.
        return self.close_reason is not None

    # -- the connection's thread ----------------------------------------------------

    def run(self) -> None:
        server = self.server
        try:
            self._serve()
        except Exception:
            log.exception("relay connection %d from %s failed", self.cid, self.peer)
        finally:
            server.on_gone(self)
            with self._sock_lock:
                self._closed = True
                for sock in (self.udp, self.tls or self.raw):
                    if sock is not None:
                        with contextlib.suppress(OSError):
                            sock.close()
                os.close(self._wake_r)
                os.close(self._wake_w)
            if self.kind == "stream":
                log.info(
                    "relay stream closed: device=%s gateway=%s reason=%s duration=%.1fs "
                    "up=%d down=%d drops=%d",
                    self.device_id,
                    self.gateway,
                    self.close_reason or "eof",
                    time.monotonic() - self.opened,
                    self.up,
                    self.down,
                    self.drops,
                )

    def _serve(self) -> None:
        server = self.server
        deadline = self.accepted + HELLO_TIMEOUT_S
        self.raw.settimeout(HELLO_TIMEOUT_S)
        try:
            tls = server.context.wrap_socket(
                self.raw, server_side=True, do_handshake_on_connect=False
            )
        except OSError as exc:
            log.info("relay: connection from %s failed before TLS: %s", self.peer, exc)
            server.on_refused()
            return
        self.tls = tls
        try:
            tls.settimeout(max(0.01, deadline - time.monotonic()))
            tls.do_handshake()
        except (OSError, ValueError) as exc:
            log.info("relay: TLS handshake from %s refused: %s", self.peer, _short(exc))
            server.on_refused()
            return
        tls.setblocking(False)
        if self.close_reason is not None:
            self._finish()
            return
        if tls.selected_alpn_protocol() != frames.ALPN:
            self._refuse("protocol", f"ALPN {frames.ALPN} is required")
            return
        der = tls.getpeercert(binary_form=True)
        try:
            if der is None:
                raise ValueError("no client certificate")
            device_id, key = device_of(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            self._refuse("unknown_device", f"the certificate names no device: {exc}")
            return
        # Registered before the directory lookup: a revocation landing in between either
        # shows in the lookup or finds this connection in the server's set.
        server.on_authenticated(self, device_id, key)
        registered = server.directory.lookup(device_id)
        if registered is None or not hmac.compare_digest(registered, key):
            self._refuse("unknown_device", "this device is not enrolled with this key")
            return
        self._loop(deadline)

    def _refuse(self, code: str, message: str) -> None:
        log.info("relay: %s from %s refused: %s", self.device_id or "client", self.peer, code)
        self.server.on_refused()
        if self.close_reason is None:
            self.close_reason = code
        self._finish(message)

    # -- the event loop ----------------------------------------------------------------

    def _loop(self, hello_deadline: float) -> None:
        tls = self.tls
        assert tls is not None
        sel = selectors.DefaultSelector()
        try:
            sel.register(tls, selectors.EVENT_READ, 0)
            sel.register(self._wake_r, selectors.EVENT_READ, 2)
            mask = selectors.EVENT_READ
            decoder = FrameDecoder()
            rbuf = bytearray(_RECV)
            rview = memoryview(rbuf)
            ubuf = bytearray(65536)
            uview = memoryview(ubuf)
            tls_again = True  # the HELLO may already be waiting
            udp_again = False
            udp_watched = False
            idle_deadline = 0.0
            cap = self.server.cfg.queue_bytes
            while not self._closing():
                if tls_again or udp_again:
                    timeout: float | None = 0
                elif self.kind == "hello":
                    timeout = max(0.0, hello_deadline - time.monotonic())
                elif self.kind == "probe":
                    timeout = max(0.0, idle_deadline - time.monotonic())
                else:
                    timeout = None
                for key, _ in sel.select(timeout):
                    if key.data == 0:
                        tls_again = True
                    elif key.data == 1:
                        udp_again = True
                    else:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 64)
                if self._closing():
                    break
                if tls_again:
                    tls_again = False
                    for _ in range(_BUDGET):
                        try:
                            n = tls.recv_into(rbuf)
                        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                            break
                        except (OSError, ssl.SSLError):
                            n = 0
                        if n == 0:  # the client closed (or the connection broke)
                            self.close_reason = "eof"
                            self._finish(quiet=True)
                            return
                        try:
                            for kind, payload in decoder.feed(cast(bytes, rview[:n])):
                                if kind == _DATA and self.kind == "stream":
                                    self._to_gateway(payload)
                                    continue
                                self._control(kind, payload)
                                if self._closing():
                                    break
                                if self.kind == "probe":
                                    idle_deadline = time.monotonic() + PROBE_IDLE_S
                        except FrameError as exc:
                            self.close_reason = "protocol"
                            self._finish(str(exc)[:200])
                            return
                        if self._closing():
                            break
                    else:
                        tls_again = True  # more may be waiting: come back after the UDP side
                    if self._closing():
                        break
                    if self.udp is not None and not udp_watched:
                        sel.register(self.udp, selectors.EVENT_READ, 1)
                        udp_watched = True
                now = time.monotonic()
                if self.kind == "hello" and now >= hello_deadline:
                    self.close_reason = "protocol"
                    self._finish(f"no HELLO within {HELLO_TIMEOUT_S:g} s")
                    return
                if self.kind == "probe" and now >= idle_deadline:
                    self.close_reason = "idle"
                    self._finish()
                    return
                if udp_again and self.udp is not None:
                    udp_again = False
                    udp = self.udp
                    out = self.out
                    for _ in range(_BUDGET):
                        try:
                            n = udp.recv_into(ubuf)
                        except BlockingIOError:
                            break
                        except OSError:
                            continue  # ICMP unreachable reported on the connected socket
                        if len(out) + n + 3 > cap:
                            self.drops += 1  # the client reads too slowly: UDP semantics
                            continue
                        out += _DATA_HDR.pack(_DATA, n)
                        out += uview[:n]
                        self.down += n
                        self.down_n += 1
                    else:
                        udp_again = True
                if self.out and not self._flush():
                    return
                want = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0)
                if want != mask:
                    sel.modify(tls, want, 0)
                    mask = want
            self._finish()
        finally:
            sel.close()

    def _to_gateway(self, payload: bytes) -> None:
        udp = self.udp
        assert udp is not None
        try:
            udp.send(payload)
        except OSError:
            # A full send buffer or an ICMP error: a datagram lost, as UDP may.
            self.drops += 1
            return
        self.up += len(payload)
        self.up_n += 1

    def _control(self, kind: int, payload: bytes) -> None:
        server = self.server
        if self.kind == "hello":
            if kind != frames.HELLO:
                raise FrameError("the first frame must be HELLO")
            hello = frames.parse_control(payload)
            if hello.get("v") != 1:
                raise FrameError("HELLO: unsupported version")
            probe, gateway = hello.get("probe"), hello.get("gateway")
            if probe is True and gateway is None:
                reason = server.open_probe(self)
                if reason is not None:
                    self.close_reason = reason
                    return
                self.kind = "probe"
                self._send(frames.control(frames.READY, server.ready_message()))
                return
            if probe not in (None, False) or not isinstance(gateway, str):
                raise FrameError("HELLO: needs a gateway or probe: true")
            try:
                target = endpoint_key(gateway)
            except ValueError:
                raise FrameError("HELLO: the gateway is not host:port") from None
            if target not in server.gateways:
                log.info(
                    "relay: %s asked for gateway %r, not served", self.device_id, gateway[:100]
                )
                self.close_reason = "gateway_not_served"
                return
            try:
                self.udp = _udp_to(target)
            except OSError as exc:
                log.warning("relay: no UDP socket to gateway %s: %s", gateway, exc)
                self.close_reason = "gateway_not_served"
                return
            reason = server.open_stream(self)
            if reason is not None:
                self.close_reason = reason
                return
            self.kind = "stream"
            self.gateway = gateway
            self.opened = time.monotonic()
            log.info(
                "relay stream open: device=%s gateway=%s from=%s",
                self.device_id,
                gateway,
                self.peer,
            )
            self._send(frames.control(frames.READY, server.ready_message()))
            return
        if kind == frames.PING:
            pong = frames.pong(payload, server.stream_count())
            if len(self.out) <= server.cfg.queue_bytes:  # bounded even under a PING flood
                self._send(pong)
            return
        raise FrameError(f"unexpected frame {kind:#x} on a {self.kind}")

    def _send(self, frame: bytes) -> None:
        self.out += frame

    def _flush(self) -> bool:
        """Write queued bytes until the socket would block; False if the stream died."""
        tls = self.tls
        assert tls is not None
        out = self.out
        while out:
            n = self._inflight or min(len(out), _CHUNK)
            try:
                # An SSL_write that would block must be retried with the same bytes.
                tls.send(out[:n])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                self._inflight = n
                return True
            except (OSError, ssl.SSLError):
                self.close_reason = self.close_reason or "eof"
                self._finish(quiet=True)
                return False
            self._inflight = 0
            del out[:n]
        return True

    def _finish(self, message: str = "", *, quiet: bool = False) -> None:
        """Send ERROR (unless ``quiet`` or the reason is not an error code), flush it within
        :data:`LINGER_S`, shut the write side and drain the client's input, so the client
        reads the ERROR rather than a reset."""
        tls = self.tls
        if tls is None:
            return
        reason = self.close_reason
        deadline = time.monotonic() + LINGER_S
        # Queued datagrams are dropped; a half-written chunk must still go out whole.
        del self.out[self._inflight :]
        if not quiet and reason in frames.ERROR_CODES:
            msg = message or _MESSAGES.get(reason or "", "")
            self.out += frames.control(frames.ERROR, {"code": reason, "message": msg[:500]})
        try:
            while self.out and time.monotonic() < deadline:
                n = self._inflight or len(self.out)
                try:
                    tls.send(self.out[:n])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    self._inflight = n
                    _wait(tls, write=True, until=deadline)
                    continue
                self._inflight = 0
                del self.out[:n]
            if quiet:
                return
            # TCP's shutdown, not SSLSocket's (which drops the TLS object): the FIN follows
            # the ERROR, and what the client still sends is read (and discarded) so the
            # close does not turn into a reset that would swallow the ERROR.
            socket.socket.shutdown(tls, socket.SHUT_WR)
            while time.monotonic() < deadline:
                try:
                    if not tls.recv(_RECV):
                        break
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    _wait(tls, write=False, until=deadline)
        except (OSError, ssl.SSLError, ValueError):
            pass


_MESSAGES: Final = {
    "unknown_device": "this device is not enrolled with this relay key",
    "revoked": "the device was revoked",
    "gateway_not_served": "this relay does not forward to that gateway",
    "replaced": "the device opened a newer stream",
    "overloaded": "the relay is at its stream limit",
    "protocol": "a malformed or unexpected frame",
    "shutdown": "the relay is stopping",
}


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:200]


def _wait(sock: socket.socket, *, write: bool, until: float) -> None:
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_WRITE if write else selectors.EVENT_READ)
        sel.select(max(0.0, until - time.monotonic()))


def _udp_to(target: tuple[str, int]) -> socket.socket:
    infos = socket.getaddrinfo(target[0], target[1], type=socket.SOCK_DGRAM)
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect(addr)
    except OSError:
        sock.close()
        raise
    return sock
