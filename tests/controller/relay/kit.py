"""Real parts for the relay's tests: certificates, a controller stand-in, a UDP gateway
and a minimal relay client speaking ``wg_backends.relay.frames`` over TLS 1.3.

The "controller" is a real HTTP server on loopback serving ``/v1/relay/devices`` with a
bearer token and ETags; the gateway is a real UDP socket echoing datagrams; the client is
a blocking ``ssl`` socket. Nothing is mocked.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from controller.relayca import RelayCA
from wg_backends.relay import frames

SERVER_NAME = "relay.test"
TOKEN = "relay-token-for-tests-0123456789"


def _pem_key(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def server_certificate(dir_: Path) -> tuple[Path, Path, Path]:
    """A test CA and the relay's server certificate for ``relay.test`` / 127.0.0.1:
    ``(cert_file, key_file, ca_file)``."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (dir_ / "relay.pem", dir_ / "relay.key", dir_ / "server-ca.pem")
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(_pem_key(key))
    paths[2].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return paths


@dataclass
class Device:
    """A device as its helper would hold it: relay key and the CA-issued certificate."""

    device_id: str
    key: Ed25519PrivateKey
    cert_file: Path
    key_file: Path

    @property
    def public_raw(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_b64(self) -> str:
        return base64.urlsafe_b64encode(self.public_raw).rstrip(b"=").decode()


def new_device(ca: RelayCA, dir_: Path, device_id: str, *, now: float | None = None) -> Device:
    """A relay key and its certificate from ``ca`` (files in ``dir_``), issued at ``now``."""
    key = Ed25519PrivateKey.generate()
    pem = ca.issue(
        device_id,
        key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        now=time.time() if now is None else now,
    )
    cert_file, key_file = dir_ / f"{device_id}.pem", dir_ / f"{device_id}.key"
    cert_file.write_text(pem)
    key_file.write_bytes(_pem_key(key))
    return Device(device_id, key, cert_file, key_file)


@dataclass
class Controller:
    """``GET /v1/relay/devices`` on loopback: bearer token, ETag, If-None-Match → 304."""

    token: str = TOKEN
    devices: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    auth_failures: int = 0
    server: http.server.ThreadingHTTPServer | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def etag(self) -> str:
        body = json.dumps(self.devices, sort_keys=True).encode()
        return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

    def start(self, port: int = 0) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests += 1
                if self.path != "/v1/relay/devices":
                    self.send_error(404)
                    return
                if self.headers.get("Authorization") != f"Bearer {owner.token}":
                    owner.auth_failures += 1
                    self.send_error(401)
                    return
                etag = owner.etag()
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                body = json.dumps({"devices": owner.devices}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Take the controller down (connections refused from now on)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def allow(self, device: Device) -> None:
        self.devices = {**self.devices, device.device_id: device.public_b64}

    def revoke(self, device_id: str) -> None:
        self.devices = {k: v for k, v in self.devices.items() if k != device_id}


class Gateway:
    """A UDP "WireGuard gateway" on 127.0.0.1 that echoes every datagram to its sender
    (or only records it, with ``echo=False``)."""

    def __init__(self, *, echo: bool = True) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.echo = echo
        self.senders: list[tuple[str, int]] = []
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.received += 1
            if addr not in self.senders:
                self.senders.append(addr)
            if self.echo:
                self.sock.sendto(data, addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class Client:
    """A minimal relay client: TLS 1.3 with a device certificate, frames in and out."""

    def __init__(
        self,
        address: tuple[str, int],
        server_ca: Path,
        device: Device | None,
        *,
        alpn: list[str] | None = None,
        tls12: bool = False,
        timeout: float = 5.0,
    ) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=str(server_ca))
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        if alpn is None:
            alpn = [frames.ALPN]
        if alpn:
            ctx.set_alpn_protocols(alpn)
        if device is not None:
            ctx.load_cert_chain(str(device.cert_file), str(device.key_file))
        raw = socket.create_connection(address, timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=SERVER_NAME)
        self.decoder = frames.FrameDecoder()
        self.pending: list[tuple[int, bytes]] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def hello(self, gateway: str) -> dict[str, Any]:
        """Open a stream; returns READY's message (raises on ERROR or EOF)."""
        self.send(frames.control(frames.HELLO, {"v": 1, "gateway": gateway}))
        return self.expect(frames.READY)

    def probe(self) -> dict[str, Any]:
        self.send(frames.control(frames.HELLO, {"v": 1, "probe": True}))
        return self.expect(frames.READY)

    def data(self, payload: bytes) -> None:
        self.send(frames.encode(frames.DATA, payload))

    def recv(self, timeout: float = 5.0) -> tuple[int, bytes] | None:
        """The next frame, or None at EOF / a TLS alert / connection reset."""
        end = time.monotonic() + timeout
        while not self.pending:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise
            except (ssl.SSLError, ConnectionError, OSError):
                return None
            if not chunk:
                return None
            self.pending.extend(self.decoder.feed(chunk))
        return self.pending.pop(0)

    def expect(self, kind: int, timeout: float = 5.0) -> dict[str, Any]:
        frame = self.recv(timeout)
        assert frame is not None, "the relay closed the stream"
        if frame[0] == frames.ERROR and kind != frames.ERROR:
            raise AssertionError(f"relay error: {frames.parse_control(frame[1])}")
        assert frame[0] == kind, frame
        return frames.parse_control(frame[1])

    def expect_frame(self, timeout: float = 5.0) -> tuple[int, bytes]:
        frame = self.recv(timeout)
        assert frame is not None, "the relay closed the stream"
        return frame

    def expect_error(self, code: str, timeout: float = 5.0) -> None:
        """The next frame is ERROR ``code``, then the relay closes."""
        frame = self.recv(timeout)
        while frame is not None and frame[0] in (frames.DATA, frames.PONG):
            frame = self.recv(timeout)
        assert frame is not None, f"closed without ERROR {code}"
        assert frame[0] == frames.ERROR, frame
        assert frames.parse_control(frame[1])["code"] == code
        assert self.recv(timeout) is None

    def close(self) -> None:
        self.sock.close()
