"""The relay client and the bridge against a real TLS 1.3 relay on 127.0.0.1 (a small
in-test relay speaking ``frames.py`` and forwarding DATA to a UDP socket), and the hostile
cases: a relay with another name's certificate, an unpinned key, TLS 1.2 only, no ALPN,
garbage and oversized frames, a local process sending to the bridge from another port."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wg_backends.relay import frames as f
from wg_backends.relay.bridge import HEAD_START_S, Bridge
from wg_backends.relay.client import RelayError, open_stream, probe, relay_context, spki_pin
from wg_backends.spec import RelaySpec


def _cert(
    subject: str,
    key: object,
    issuer_key: object,
    issuer: str,
    *,
    ca: bool = False,
    dns: str | None = None,
    client: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    if client:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
    algo = None if isinstance(issuer_key, Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(issuer_key, algo)  # type: ignore[arg-type]


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class Pki:
    dir: Path
    ca_file: Path
    client_ca_file: Path
    client_cert: Path
    client_key: Path
    server_cert: Path
    server_key: Path
    server_der: bytes

    def server_context(self, *, tls12: bool = False, alpn: bool = True) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(self.server_cert, self.server_key)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(self.client_ca_file)
        if alpn:
            ctx.set_alpn_protocols([f.ALPN])
        return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test relay root", ca_key, ca_key, "test relay root", ca=True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = _cert("r1.test", srv_key, ca_key, "test relay root", dns="r1.test")
    cca_key = Ed25519PrivateKey.generate()
    cca = _cert("relay device CA", cca_key, cca_key, "relay device CA", ca=True)
    dev_key = Ed25519PrivateKey.generate()
    dev = _cert("dev-1", dev_key, cca_key, "relay device CA", client=True)
    files = {
        "ca.pem": _pem(ca),
        "cca.pem": _pem(cca),
        "dev.crt": _pem(dev),
        "dev.key": _key_pem(dev_key),
        "srv.crt": _pem(srv),
        "srv.key": _key_pem(srv_key),
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    return Pki(
        d, d / "ca.pem", d / "cca.pem", d / "dev.crt", d / "dev.key", d / "srv.crt",
        d / "srv.key", srv.public_bytes(serialization.Encoding.DER),
    )  # fmt: skip


@pytest.fixture
def client_ctx(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))  # the "OS trust store" of the test
    return relay_context(pki.client_cert, pki.client_key)


class MiniRelay:
    """A TLS relay on 127.0.0.1: HELLO → READY, PING → PONG, DATA ⇄ a UDP socket to the
    gateway. ``mode`` makes it misbehave: ``garbage`` after READY, ``big_ready``."""

    def __init__(self, ctx: ssl.SSLContext, mode: str = "ok", udp_mark: int | None = None) -> None:
        self.ctx = ctx
        self.mode = mode
        self.udp_mark = udp_mark
        self.port = 0
        self.server: asyncio.Server | None = None
        self.hellos: list[dict[str, object]] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ctx)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        dec = f.FrameDecoder()
        loop = asyncio.get_running_loop()
        udp: asyncio.DatagramTransport | None = None
        try:
            while data := await reader.read(65536):
                for kind, payload in dec.feed(data):
                    if kind == f.HELLO:
                        hello = f.parse_control(payload)
                        self.hellos.append(hello)
                        if self.mode == "big_ready":
                            writer.write(f.HEADER.pack(f.READY, 2000) + b"{" * 2000)
                            continue
                        writer.write(f.control(f.READY, {"v": 1, "relay": "r1", "streams": 7}))
                        if self.mode == "garbage":
                            writer.write(b"\xee\x00\x01x")
                        if "gateway" in hello:
                            host, port = str(hello["gateway"]).rsplit(":", 1)

                            class P(asyncio.DatagramProtocol):
                                def datagram_received(self, d: bytes, a: object) -> None:
                                    writer.write(f.encode(f.DATA, d))

                            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                            if self.udp_mark is not None:
                                sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self.udp_mark)
                            sock.setblocking(False)
                            sock.connect((host, int(port)))
                            udp, _ = await loop.create_datagram_endpoint(P, sock=sock)
                    elif kind == f.PING:
                        writer.write(f.pong(payload, 7))
                    elif kind == f.DATA and udp is not None:
                        udp.sendto(payload)
        except (ConnectionError, ssl.SSLError, f.FrameError):
            pass
        finally:
            if udp is not None:
                udp.close()
            writer.close()

    async def stop(self) -> None:
        for w in self.writers:
            w.close()
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def relay(pki: Pki) -> AsyncIterator[MiniRelay]:
    r = MiniRelay(pki.server_context())
    await r.start()
    yield r
    await r.stop()


def spec_for(port: int, *, name: str = "r1.test", pins: tuple[str, ...] = ()) -> RelaySpec:
    return RelaySpec(name="r1", endpoint=f"127.0.0.1:{port}", server_name=name, spki=pins)


class Echo(asyncio.DatagramProtocol):
    """The "gateway": echoes every datagram, prefixed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.t.sendto(b"echo:" + data, addr)  # type: ignore[attr-defined]


async def test_probe_measures_rtt_and_reads_the_load(
    relay: MiniRelay, client_ctx: ssl.SSLContext, pki: Pki
) -> None:
    result = await probe(spec_for(relay.port, pins=(spki_pin(pki.server_der),)), client_ctx)
    assert result.load == 7
    assert result.rtt_ms > 0
    assert relay.hellos == [{"v": 1, "probe": True}]


async def test_the_bridge_carries_wireguard_datagrams_over_the_relay_and_drops_strangers(
    relay: MiniRelay, client_ctx: ssl.SSLContext
) -> None:
    loop = asyncio.get_running_loop()
    gw, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    gw_addr = gw.get_extra_info("sockname")
    wg = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # stands in for WireGuard's port
    wg.bind(("127.0.0.1", 0))
    wg.settimeout(3)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bridge = Bridge(wg.getsockname()[1], gw_addr)
    try:
        port = await bridge.open()
        stream = await open_stream(spec_for(relay.port), client_ctx, f"127.0.0.1:{gw_addr[1]}")
        bridge.attach(stream)
        stream.start()
        assert relay.hellos == [{"v": 1, "gateway": f"127.0.0.1:{gw_addr[1]}"}]
        wg.sendto(b"handshake-initiation", ("127.0.0.1", port))
        data, src = await asyncio.to_thread(wg.recvfrom, 2048)
        assert data == b"echo:handshake-initiation"
        assert src == ("127.0.0.1", port)
        # Another local process cannot inject into the tunnel's path.
        stranger.sendto(b"forged", ("127.0.0.1", port))
        await asyncio.sleep(0.2)
        assert bridge.to_relay == 1
        # PINGs are answered: the stream stays healthy and learns the load.
        await asyncio.sleep(1.2)
        assert stream.rtt_ms is not None
        assert stream.load == 7
        assert not stream.closed
    finally:
        bridge.close()
        gw.close()
        wg.close()
        stranger.close()


async def test_the_probe_socket_detects_udp_back_and_delivers_the_answer(
    relay: MiniRelay, client_ctx: ssl.SSLContext
) -> None:
    loop = asyncio.get_running_loop()
    gw, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    gw_addr = gw.get_extra_info("sockname")
    wg = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    wg.bind(("127.0.0.1", 0))
    wg.settimeout(3)
    back = asyncio.Event()
    bridge = Bridge(wg.getsockname()[1], gw_addr, on_udp_back=back.set)
    try:
        port = await bridge.open()
        bridge.probing = True  # no relay attached: only the direct copy goes out
        wg.sendto(b"keepalive", ("127.0.0.1", port))
        await asyncio.wait_for(back.wait(), 3)
        data, _ = await asyncio.to_thread(wg.recvfrom, 2048)
        assert data == b"echo:keepalive"
        bridge.stop_delivery()
        bridge._from_relay(b"late")  # after the switch, nothing from the relay reaches wg
        assert bridge.dropped_late == 1
    finally:
        bridge.close()
        gw.close()
        wg.close()


class Recorder(asyncio.DatagramProtocol):
    """A gateway that records (time, payload, source) of every datagram."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, bytes, tuple[str, int]]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.seen.append((time.monotonic(), data, addr))


async def test_while_probing_a_handshake_goes_direct_first(
    relay: MiniRelay, client_ctx: ssl.SSLContext
) -> None:
    # The gateway answers a handshake where the first copy of the initiation came from:
    # the direct copy gets a head start so a relay as near as the gateway cannot win the
    # race; data packets are not held back.
    loop = asyncio.get_running_loop()
    gw, rec = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
    gw_addr = gw.get_extra_info("sockname")
    wg = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    wg.bind(("127.0.0.1", 0))
    bridge = Bridge(wg.getsockname()[1], gw_addr)
    try:
        port = await bridge.open()
        stream = await open_stream(spec_for(relay.port), client_ctx, f"127.0.0.1:{gw_addr[1]}")
        bridge.attach(stream)
        stream.start()
        bridge.probing = True
        probe_port = bridge._probe.get_extra_info("sockname")[1] if bridge._probe else 0
        wg.sendto(b"\x01initiation", ("127.0.0.1", port))
        wg.sendto(b"\x04data", ("127.0.0.1", port))
        deadline = time.monotonic() + 3
        while len(rec.seen) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        initiations = [(t, src[1]) for t, d, src in rec.seen if d == b"\x01initiation"]
        data = [(t, src[1]) for t, d, src in rec.seen if d == b"\x04data"]
        assert len(initiations) == 2, rec.seen
        assert len(data) == 2, rec.seen
        assert initiations[0][1] == probe_port  # the direct copy came first
        assert initiations[1][0] - initiations[0][0] >= HEAD_START_S * 0.8
        assert abs(data[1][0] - data[0][0]) < HEAD_START_S  # data is not held back
    finally:
        bridge.close()
        gw.close()
        wg.close()


@pytest.mark.parametrize(
    ("server", "name", "pin", "code"),
    [
        ({}, "other.test", False, "tls"),  # a certificate for another name
        ({}, "r1.test", True, "pin"),  # a key that is not pinned
        # TLS 1.2 only: no downgrade (the server resets on our TLS 1.3-only hello)
        ({"tls12": True}, "r1.test", False, "tls|connect"),
        ({"alpn": False}, "r1.test", False, "tls"),  # no ALPN agreed
    ],
)
async def test_hostile_relays_are_refused(
    pki: Pki, client_ctx: ssl.SSLContext, server: dict[str, bool], name: str, pin: bool, code: str
) -> None:
    r = MiniRelay(pki.server_context(**server))
    await r.start()
    try:
        pins = ("A" * 43 + "=",) if pin else ()
        with pytest.raises(RelayError) as err:
            await open_stream(spec_for(r.port, name=name, pins=pins), client_ctx, "127.0.0.1:9")
        assert err.value.code in code.split("|")
        assert r.hellos == []  # nothing of ours was said to it
    finally:
        await r.stop()


async def test_garbage_after_ready_closes_the_stream(pki: Pki, client_ctx: ssl.SSLContext) -> None:
    r = MiniRelay(pki.server_context(), mode="garbage")
    await r.start()
    try:
        stream = await open_stream(spec_for(r.port), client_ctx, "127.0.0.1:9")
        closed = asyncio.get_running_loop().create_future()
        stream.on_close = lambda why: None if closed.done() else closed.set_result(why)
        stream.start()
        assert await asyncio.wait_for(closed, 3) == "protocol"
    finally:
        await r.stop()


async def test_an_oversized_control_frame_is_refused(pki: Pki, client_ctx: ssl.SSLContext) -> None:
    r = MiniRelay(pki.server_context(), mode="big_ready")
    await r.start()
    try:
        with pytest.raises(RelayError) as err:
            await open_stream(spec_for(r.port), client_ctx, "127.0.0.1:9")
        assert err.value.code == "protocol"
    finally:
        await r.stop()
