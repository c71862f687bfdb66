"""The helper's TLS connection to a relay: trust store, pins, client certificate, frames.

:func:`relay_context` builds the one TLS configuration a relay connection may use: the
OS trust store (``truststore``; on Linux it reads OpenSSL's default paths, so
``SSL_CERT_FILE`` is honoured), TLS 1.3 only, the host name checked against
``RelaySpec.tls_name()``, ALPN ``rustronaut-relay/1`` *required* in the answer, and the
caller's relay certificate and key (files the helper keeps, see
:class:`~wg_backends.helper.keys.RelayCredentials`). There is no fallback to anything
weaker: a relay that cannot do all of it is not used.

SPKI pins (``RelaySpec.spki``): Python 3.11's ``ssl`` does not expose the verified chain
(``get_verified_chain`` is 3.13), so the pin is checked on the **leaf** certificate the
relay presented (after the chain and name were verified): pin the relay's own key.

:func:`open_stream` opens the device's stream (``HELLO {"gateway": ...}``) and returns a
:class:`RelayStream`; :func:`probe` opens a probe (``{"probe": true}``), measures one
PING round trip and reads the load from the PONG. Sockets can carry an ``SO_MARK`` (the
tunnel's fwmark on Linux) so a full tunnel's policy routing leaves them outside it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from wg_backends.relay import frames as f
from wg_backends.spec import RelaySpec

__all__ = [
    "ProbeResult",
    "RelayError",
    "RelayStream",
    "open_stream",
    "probe",
    "relay_context",
    "spki_pin",
]

#: Most bytes queued towards a relay before datagrams are dropped (UDP semantics: a slow
#: relay loses packets rather than growing the helper's memory).
QUEUE_BYTES = 256 * 1024
_READ = 65536


class RelayError(Exception):
    """A relay could not be used: connection, TLS, pin, ALPN, protocol or its ERROR
    (``code`` then holds the relay's error code)."""

    def __init__(self, message: str, code: str = "connect") -> None:
        super().__init__(message)
        self.code = code


def relay_context(
    cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]
) -> ssl.SSLContext:
    """The TLS client context for relays (see the module docstring). Raises ``OSError`` /
    ``ssl.SSLError`` when the certificate or key cannot be loaded."""
    try:
        import truststore

        ctx: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    except ImportError:  # pragma: no cover - truststore is a dependency; keep a safe default
        ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols([f.ALPN])
    ctx.load_cert_chain(os.fspath(cert_file), os.fspath(key_file))
    return ctx


def spki_pin(der_cert: bytes) -> str:
    """The base64 SHA-256 of a DER certificate's SubjectPublicKeyInfo (the pin format)."""
    cert = x509.load_der_x509_certificate(der_cert)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def _check_session(relay: RelaySpec, ssl_obj: ssl.SSLObject | ssl.SSLSocket | None) -> None:
    if ssl_obj is None:
        raise RelayError(f"relay {relay.name}: no TLS session", "tls")
    if ssl_obj.version() != "TLSv1.3":
        raise RelayError(f"relay {relay.name}: {ssl_obj.version()} is not TLS 1.3", "tls")
    if ssl_obj.selected_alpn_protocol() != f.ALPN:
        raise RelayError(f"relay {relay.name}: did not agree on ALPN {f.ALPN}", "tls")
    if relay.spki:
        der = ssl_obj.getpeercert(binary_form=True)
        if not der:
            raise RelayError(f"relay {relay.name}: no certificate", "pin")
        pin = spki_pin(der).encode()
        # Every pin compared (constant time each): which one matched does not leak.
        matched = False
        for want in relay.spki:
            matched |= hmac.compare_digest(pin, want.encode())
        if not matched:
            raise RelayError(f"relay {relay.name}: its key is not pinned", "pin")


async def _connect(
    relay: RelaySpec, ctx: ssl.SSLContext, limit_s: float, mark: int | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = relay.address()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(limit_s):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            last: Exception | None = None
            for family, kind, proto, _name, addr in infos:
                sock = socket.socket(family, kind, proto)
                try:
                    sock.setblocking(False)
                    if mark is not None and hasattr(socket, "SO_MARK"):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
                    await loop.sock_connect(sock, addr)
                except OSError as exc:
                    sock.close()
                    last = exc
                    continue
                try:
                    reader, writer = await asyncio.open_connection(
                        sock=sock,
                        ssl=ctx,
                        server_hostname=relay.tls_name(),
                        ssl_handshake_timeout=limit_s,
                        limit=2 * _READ,
                    )
                except BaseException:
                    sock.close()
                    raise
                try:
                    _check_session(relay, writer.get_extra_info("ssl_object"))
                except RelayError:
                    writer.close()
                    raise
                return reader, writer
            raise RelayError(f"relay {relay.name}: cannot connect: {last}")
    except TimeoutError:
        raise RelayError(f"relay {relay.name}: timed out", "timeout") from None
    except ssl.SSLError as exc:
        raise RelayError(f"relay {relay.name}: TLS: {exc.reason or exc}", "tls") from None
    except (OSError, EOFError) as exc:
        raise RelayError(f"relay {relay.name}: {exc}") from None


async def _read_frame(reader: asyncio.StreamReader, decoder: f.FrameDecoder) -> tuple[int, bytes]:
    while True:
        for frame in decoder.feed(b""):
            return frame
        data = await reader.read(_READ)
        if not data:
            raise RelayError("the relay closed the connection", "eof")
        for frame in decoder.feed(data):
            return frame  # pragma: no cover - the loop's feed(b"") returns held frames


async def _handshake(
    relay: RelaySpec,
    ctx: ssl.SSLContext,
    hello: dict[str, object],
    limit_s: float,
    mark: int | None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, f.FrameDecoder, dict[str, object]]:
    reader, writer = await _connect(relay, ctx, limit_s, mark)
    decoder = f.FrameDecoder()
    try:
        writer.write(f.control(f.HELLO, hello))
        async with asyncio.timeout(limit_s):
            kind, payload = await _read_frame(reader, decoder)
        if kind == f.ERROR:
            msg = f.parse_control(payload)
            code = str(msg.get("code", "protocol"))[:40]
            raise RelayError(f"relay {relay.name} refused: {code}", code)
        if kind != f.READY:
            raise RelayError(f"relay {relay.name}: expected READY, got {kind:#x}", "protocol")
        ready = f.parse_control(payload)
        return reader, writer, decoder, ready
    except TimeoutError:
        writer.close()
        raise RelayError(f"relay {relay.name}: no READY in time", "timeout") from None
    except f.FrameError as exc:
        writer.close()
        raise RelayError(f"relay {relay.name}: {exc}", "protocol") from None
    except (OSError, ssl.SSLError) as exc:
        writer.close()
        raise RelayError(f"relay {relay.name}: {exc}") from None
    except BaseException:
        writer.close()
        raise


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe: PING round trip (ms) and the relay's open streams (its load)."""

    rtt_ms: float
    load: int


async def probe(
    relay: RelaySpec, ctx: ssl.SSLContext, *, limit_s: float = 2.0, mark: int | None = None
) -> ProbeResult:
    """Open a probe to ``relay``, time one PING, close. Raises :class:`RelayError`."""
    try:
        async with asyncio.timeout(limit_s):
            reader, writer, decoder, _ = await _handshake(
                relay, ctx, {"v": 1, "probe": True}, limit_s, mark
            )
            try:
                token = os.urandom(8)
                start = time.perf_counter()
                writer.write(f.encode(f.PING, token))
                while True:
                    kind, payload = await _read_frame(reader, decoder)
                    if kind == f.PONG:
                        echoed, load = f.parse_pong(payload)
                        if echoed == token:
                            return ProbeResult((time.perf_counter() - start) * 1000.0, load)
                    elif kind == f.ERROR:
                        raise RelayError(f"relay {relay.name} closed the probe", "closed")
                    else:
                        raise RelayError(f"relay {relay.name}: unexpected frame", "protocol")
            finally:
                writer.close()
    except TimeoutError:
        raise RelayError(f"relay {relay.name}: probe timed out", "timeout") from None
    except f.FrameError as exc:
        raise RelayError(f"relay {relay.name}: {exc}", "protocol") from None
    except (OSError, ssl.SSLError) as exc:
        raise RelayError(f"relay {relay.name}: {exc}") from None


class RelayStream:
    """The device's open stream to one relay. Created by :func:`open_stream`.

    ``on_data(datagram)`` is called for each DATA frame, ``on_close(reason)`` once when
    the stream ends (EOF, ERROR, protocol error, no PONG in time, :meth:`close`). PINGs
    go every ``ping_every`` s; :attr:`last_pong` (monotonic) and :attr:`rtt_ms` /
    :attr:`load` follow the PONGs. Runs on the loop that opened it.
    """

    def __init__(
        self,
        relay: RelaySpec,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        decoder: f.FrameDecoder,
        *,
        load: int,
        queue_bytes: int = QUEUE_BYTES,
        ping_every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.relay = relay
        self._reader = reader
        self._writer = writer
        self._decoder = decoder
        self._queue_bytes = queue_bytes
        self._ping_every = ping_every
        self._clock = clock
        self.on_data: Callable[[bytes], None] = lambda _d: None
        self.on_close: Callable[[str], None] = lambda _r: None
        self.load: int = load
        self.rtt_ms: float | None = None
        self.last_pong = clock()
        self.dropped = 0
        self.closed = False
        self._pings: dict[bytes, float] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start reading and pinging (after ``on_data``/``on_close`` are set)."""
        self._tasks = [
            asyncio.create_task(self._read_loop(), name=f"relay-read-{self.relay.name}"),
            asyncio.create_task(self._ping_loop(), name=f"relay-ping-{self.relay.name}"),
        ]

    def send(self, datagram: bytes) -> None:
        """Queue one WireGuard datagram; dropped (counted) when the relay is not keeping up."""
        if self.closed or not datagram or len(datagram) > f.MAX_PAYLOAD:
            return
        transport = self._writer.transport
        if transport.get_write_buffer_size() > self._queue_bytes:
            self.dropped += 1
            return
        self._writer.write(f.HEADER.pack(f.DATA, len(datagram)) + datagram)

    async def _read_loop(self) -> None:
        reason = "eof"
        data = b""  # first: whatever arrived together with READY
        try:
            while True:
                for kind, payload in self._decoder.feed(data):
                    if kind == f.DATA:
                        self.on_data(payload)
                    elif kind == f.PONG:
                        token, load = f.parse_pong(payload)
                        sent = self._pings.pop(token, None)
                        if sent is not None:
                            now = self._clock()
                            self.last_pong = now
                            self.rtt_ms = (now - sent) * 1000.0
                            self.load = load
                    elif kind == f.ERROR:
                        msg = f.parse_control(payload)
                        reason = "error:" + str(msg.get("code", "protocol"))[:40]
                        return
                    else:  # HELLO/READY/PING from a relay mid-stream: a protocol error
                        reason = "protocol"
                        return
                data = await self._reader.read(_READ)
                if not data:
                    break
        except f.FrameError:
            reason = "protocol"
        except (OSError, ssl.SSLError):
            reason = "eof"
        except asyncio.CancelledError:
            reason = "closed"
            raise
        finally:
            self._finish(reason)

    async def _ping_loop(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            while not self.closed:
                token = os.urandom(8)
                self._pings = {t: s for t, s in self._pings.items() if self._clock() - s < 10}
                self._pings[token] = self._clock()
                self._writer.write(f.encode(f.PING, token))
                await asyncio.sleep(self._ping_every)

    def _finish(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        with contextlib.suppress(Exception):
            self._writer.close()
        self.on_close(reason)

    def close(self) -> None:
        """Close the stream (``on_close("closed")``). Idempotent."""
        self._finish("closed")


async def open_stream(
    relay: RelaySpec,
    ctx: ssl.SSLContext,
    gateway: str,
    *,
    limit_s: float = 3.0,
    mark: int | None = None,
    queue_bytes: int = QUEUE_BYTES,
    ping_every: float = 1.0,
) -> RelayStream:
    """Open the device's stream to ``gateway`` (``host:port``) through ``relay``; the
    stream is not started (set its callbacks, then :meth:`RelayStream.start`). Raises
    :class:`RelayError`."""
    reader, writer, decoder, ready = await _handshake(
        relay, ctx, {"v": 1, "gateway": gateway}, limit_s, mark
    )
    streams = ready.get("streams")
    load = streams if isinstance(streams, int) and not isinstance(streams, bool) else 0
    return RelayStream(
        relay, reader, writer, decoder, load=load, queue_bytes=queue_bytes, ping_every=ping_every
    )
