"""The relay (in-process ``RelayServer``) against real TLS clients, a real UDP gateway and
a real HTTP "controller" on 127.0.0.1: forwarding, admission, hostile input, limits."""

from __future__ import annotations

import os
import ssl
import struct
import time

import pytest

from controller.relay import connection as relay_connection
from controller.relay import server as relay_server
from controller.relayca import RelayCA
from tests.controller.relay.conftest import Bed
from tests.controller.relay.kit import Client, new_device
from wg_backends.relay import frames

pytestmark = pytest.mark.integration


def _open(bed: Bed, relay: relay_server.RelayServer, device_id: str = "dev-1") -> Client:
    dev = bed.device(device_id)
    _wait_listed(relay, device_id)
    c = bed.client(relay, dev)
    c.hello(bed.gateway.endpoint)
    return c


def _wait_listed(relay: relay_server.RelayServer, device_id: str, timeout: float = 5) -> None:
    end = time.monotonic() + timeout
    while relay.directory.lookup(device_id) is None:
        assert time.monotonic() < end, f"{device_id} never reached the relay's directory"
        time.sleep(0.02)


def _roundtrip(c: Client, payload: bytes) -> None:
    c.data(payload)
    frame = c.recv()
    assert frame == (frames.DATA, payload)


def _refused_at_tls(make: object) -> None:
    """The TLS connection fails (in the handshake or at the first read): no READY."""
    try:
        c = make()  # type: ignore[operator]
    except (ssl.SSLError, ConnectionError, OSError):
        return
    try:
        c.send(frames.control(frames.HELLO, {"v": 1, "probe": True}))
    except (ssl.SSLError, ConnectionError, OSError):
        return
    assert c.recv() is None
    c.close()


# -- forwarding ----------------------------------------------------------------------


def test_datagrams_round_trip_through_the_gateway(bed: Bed) -> None:
    relay = bed.relay()
    c = _open(bed, relay)
    for payload in (b"\x01", os.urandom(1400), os.urandom(60000)):
        _roundtrip(c, payload)
    stats = relay.stats()
    assert stats.streams == 1
    assert stats.datagrams_to_gateway == stats.datagrams_from_gateway == 3
    assert stats.bytes_to_gateway == 1 + 1400 + 60000
    c.close()


def test_each_device_gets_its_own_gateway_source_port(bed: Bed) -> None:
    relay = bed.relay()
    a, b = _open(bed, relay, "dev-a"), _open(bed, relay, "dev-b")
    _roundtrip(a, b"from a")
    _roundtrip(b, b"from b")
    assert len(set(bed.gateway.senders)) == 2
    assert relay.stream_count() == 2


def test_a_second_stream_replaces_the_first(bed: Bed) -> None:
    relay = bed.relay()
    first = _open(bed, relay)
    dev = new_device(bed.ca, bed.dir, "dev-1")  # the helper got a new key and certificate
    bed.controller.allow(dev)
    end = time.monotonic() + 5
    while relay.directory.lookup("dev-1") != dev.public_raw:
        assert time.monotonic() < end
        time.sleep(0.02)
    # The key changed, so the old stream is gone as "revoked"; a same-key second stream
    # is the "replaced" case below.
    first.expect_error("revoked")
    one = bed.client(relay, dev)
    one.hello(bed.gateway.endpoint)
    two = bed.client(relay, dev)
    two.hello(bed.gateway.endpoint)
    one.expect_error("replaced")
    _roundtrip(two, b"still here")
    assert relay.stream_count() == 1


def test_probe_answers_ping_with_the_load_and_is_not_a_stream(bed: Bed) -> None:
    relay = bed.relay()
    stream = _open(bed, relay)
    dev2 = bed.device("dev-2")
    _wait_listed(relay, "dev-2")
    probe = bed.client(relay, dev2)
    assert probe.probe()["streams"] == 1
    # A probe from the stream's own device (same certificate) must not replace it.
    same = Client(relay.address, bed.server_ca, _device_of(bed, "dev-1"))
    assert same.probe() == {"v": 1, "relay": "relay1", "streams": 1}
    for client in (probe, same):
        client.send(frames.encode(frames.PING, b"12345678"))
        kind, payload = client.expect_frame()
        assert kind == frames.PONG
        assert frames.parse_pong(payload) == (b"12345678", 1)
    assert relay.stats().probes == 2
    assert relay.stream_count() == 1
    _roundtrip(stream, b"the stream is untouched")
    probe.data(b"a probe carries no data")
    probe.expect_error("protocol")


def _device_of(bed: Bed, device_id: str):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    from tests.controller.relay.kit import Device

    key_file = bed.dir / f"{device_id}.key"
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    return Device(device_id, key, bed.dir / f"{device_id}.pem", key_file)  # type: ignore[arg-type]


# -- admission -------------------------------------------------------------------------


def test_unknown_device_is_refused(bed: Bed) -> None:
    relay = bed.relay()
    stranger = bed.device("stranger", allow=False)
    c = bed.client(relay, stranger)
    c.send(frames.control(frames.HELLO, {"v": 1, "gateway": bed.gateway.endpoint}))
    c.expect_error("unknown_device")
    assert relay.stream_count() == 0


def test_a_listed_device_with_another_key_is_refused(bed: Bed) -> None:
    relay = bed.relay()
    listed = bed.device("dev-1")
    _wait_listed(relay, "dev-1")
    # Same device id, a certificate (from the right CA) for a key the controller does not
    # list: e.g. an old certificate after the helper's key was replaced.
    other = bed.dir / "other"
    other.mkdir()
    impostor = new_device(bed.ca, other, "dev-1")
    assert impostor.public_raw != listed.public_raw
    c = bed.client(relay, impostor)
    c.expect_error("unknown_device")


def test_a_certificate_from_another_ca_fails_the_handshake(bed: Bed) -> None:
    relay = bed.relay()
    foreign = new_device(RelayCA.create(), bed.dir, "dev-1")
    bed.controller.allow(foreign)  # even with its key listed
    _wait_listed(relay, "dev-1")
    _refused_at_tls(lambda: bed.client(relay, foreign))
    assert relay.stream_count() == 0
    end = time.monotonic() + 5
    while relay._pending:  # the refused handshake's slot is given back
        assert time.monotonic() < end
        time.sleep(0.02)
    assert relay.stats().refused >= 1


def test_an_expired_certificate_fails_the_handshake(bed: Bed) -> None:
    relay = bed.relay()
    old = new_device(bed.ca, bed.dir, "dev-1", now=time.time() - 8 * 86400)
    bed.controller.allow(old)  # listed with exactly that key: only the expiry is wrong
    _wait_listed(relay, "dev-1")
    _refused_at_tls(lambda: bed.client(relay, old))


def test_no_client_certificate_fails_the_handshake(bed: Bed) -> None:
    relay = bed.relay()
    _refused_at_tls(lambda: bed.client(relay, None))


def test_tls12_is_refused(bed: Bed) -> None:
    relay = bed.relay()
    dev = bed.device("dev-1")
    with pytest.raises(ssl.SSLError):
        bed.client(relay, dev, tls12=True)


@pytest.mark.parametrize("alpn", [[], ["h2", "http/1.1"]], ids=["none", "foreign"])
def test_alpn_is_required(bed: Bed, alpn: list[str]) -> None:
    relay = bed.relay()
    dev = bed.device("dev-1")
    _wait_listed(relay, "dev-1")
    c = bed.client(relay, dev, alpn=alpn)
    c.expect_error("protocol")


def test_gateway_not_served(bed: Bed) -> None:
    relay = bed.relay()
    dev = bed.device("dev-1")
    _wait_listed(relay, "dev-1")
    for gateway in ("127.0.0.1:9", f"localhost:{bed.gateway.port}", "10.0.0.1:51820"):
        c = bed.client(relay, dev)
        c.send(frames.control(frames.HELLO, {"v": 1, "gateway": gateway}))
        c.expect_error("gateway_not_served")
    assert bed.gateway.received == 0
    assert relay.stream_count() == 0


def test_refused_before_the_first_device_list(bed: Bed) -> None:
    dev = bed.device("dev-1")
    bed.controller.stop()
    relay = bed.relay(ready=False)
    c = bed.client(relay, dev)
    c.expect_error("unknown_device")
    assert not relay.directory.ready


def test_a_wrong_relay_token_admits_nobody(bed: Bed) -> None:
    dev = bed.device("dev-1")
    bed.controller.token = "another-token"
    relay = bed.relay(ready=False)
    time.sleep(0.5)
    c = bed.client(relay, dev)
    c.expect_error("unknown_device")
    assert bed.controller.auth_failures >= 1


def test_overloaded(bed: Bed) -> None:
    relay = bed.relay(max_streams=1)
    first = _open(bed, relay, "dev-1")
    dev2 = bed.device("dev-2")
    _wait_listed(relay, "dev-2")
    c = bed.client(relay, dev2)
    c.send(frames.control(frames.HELLO, {"v": 1, "gateway": bed.gateway.endpoint}))
    c.expect_error("overloaded")
    _roundtrip(first, b"the first stream is untouched")


# -- revocation and the controller -------------------------------------------------------


def test_revocation_closes_the_stream_within_2_seconds(bed: Bed) -> None:
    relay = bed.relay(poll_interval_s=0.5)  # the shipped default
    c = _open(bed, relay)
    _roundtrip(c, b"before")
    start = time.monotonic()
    bed.controller.revoke("dev-1")
    c.expect_error("revoked", timeout=5)
    elapsed = time.monotonic() - start
    print(f"revocation closed the stream in {elapsed:.2f} s")
    assert elapsed < 2.0, f"revocation took {elapsed:.2f} s"
    again = bed.client(relay, _device_of(bed, "dev-1"))
    again.expect_error("unknown_device")


def test_controller_down_keeps_existing_streams(bed: Bed) -> None:
    relay = bed.relay()
    c = _open(bed, relay)
    bed.controller.stop()
    failures = relay.directory.failures
    end = time.monotonic() + 5
    while relay.directory.failures < failures + 3:
        assert time.monotonic() < end
        time.sleep(0.05)
    _roundtrip(c, b"still flowing")
    # The last good list stays in force: the same device may reconnect...
    again = bed.client(relay, _device_of(bed, "dev-1"))
    again.hello(bed.gateway.endpoint)
    c.expect_error("replaced")
    # ...and nobody else gets in.
    stranger = bed.client(relay, bed.device("dev-new", allow=True))
    stranger.expect_error("unknown_device")


# -- hostile input ---------------------------------------------------------------------


def _hello(gw: str) -> bytes:
    return frames.control(frames.HELLO, {"v": 1, "gateway": gw})


GARBAGE_FIRST = {
    "http request": b"GET / HTTP/1.1\r\nHost: relay\r\n\r\n",
    "unknown type": b"\x7f\x00\x01x",
    "data before hello": frames.encode(frames.DATA, b"wg"),
    "ping before hello": frames.encode(frames.PING, b"12345678"),
    "hello not json": frames.encode(frames.HELLO, b"{not json"),
    "hello a list": frames.encode(frames.HELLO, b"[1,2]"),
    "hello v2": frames.encode(frames.HELLO, b'{"v":2,"gateway":"x:1"}'),
    "hello both": frames.encode(frames.HELLO, b'{"v":1,"probe":true,"gateway":"x:1"}'),
    "hello gateway garbage": frames.encode(frames.HELLO, b'{"v":1,"gateway":"not an endpoint"}'),
    "hello oversized": frames.encode(frames.HELLO, b'{"v":1,"gateway":"' + b"a" * 2000 + b'"}'),
    "ready from client": frames.control(frames.READY, {"v": 1}),
}


@pytest.mark.parametrize("garbage", list(GARBAGE_FIRST.values()), ids=list(GARBAGE_FIRST))
def test_garbage_before_hello(bed: Bed, garbage: bytes) -> None:
    relay = bed.relay()
    dev = bed.device("dev-1")
    _wait_listed(relay, "dev-1")
    c = bed.client(relay, dev)
    c.send(garbage)
    c.expect_error("protocol")
    assert relay.stream_count() == 0


GARBAGE_AFTER = {
    "empty data": struct.pack("!BH", frames.DATA, 0),
    "second hello": _hello("127.0.0.1:1"),
    "pong from client": frames.encode(frames.PONG, b"x" * 12),
    "error from client": frames.control(frames.ERROR, {"code": "protocol"}),
    "short ping": frames.encode(frames.PING, b"1234567"),
    "unknown type": b"\xee\x00\x00",
}


@pytest.mark.parametrize("garbage", list(GARBAGE_AFTER.values()), ids=list(GARBAGE_AFTER))
def test_garbage_on_a_stream(bed: Bed, garbage: bytes) -> None:
    relay = bed.relay()
    c = _open(bed, relay)
    c.send(garbage)
    c.expect_error("protocol")
    end = time.monotonic() + 2
    while relay.stream_count():
        assert time.monotonic() < end
        time.sleep(0.01)


def test_a_byte_at_a_time_is_fine(bed: Bed) -> None:
    relay = bed.relay()
    dev = bed.device("dev-1")
    _wait_listed(relay, "dev-1")
    c = bed.client(relay, dev)
    for b in _hello(bed.gateway.endpoint) + frames.encode(frames.DATA, b"trickle"):
        c.send(bytes([b]))
    c.expect(frames.READY)
    assert c.recv() == (frames.DATA, b"trickle")


def test_silent_client_is_closed_after_the_hello_timeout(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_connection, "HELLO_TIMEOUT_S", 0.5)
    relay = bed.relay()
    dev = bed.device("dev-1")
    _wait_listed(relay, "dev-1")
    c = bed.client(relay, dev)
    c.expect_error("protocol", timeout=3)


def test_a_slow_reader_costs_bounded_memory_and_drops_are_counted(bed: Bed) -> None:
    cap = 64 * 1024
    relay = bed.relay(queue_bytes=cap)
    c = _open(bed, relay)
    _roundtrip(c, b"learn the source port")
    relay_addr = bed.gateway.senders[0]
    payload = os.urandom(1400)
    peak = 0
    for i in range(30_000):  # 42 MB at a client that reads nothing
        bed.gateway.sock.sendto(payload, relay_addr)
        if i % 500 == 0:
            peak = max(peak, relay.stats().queued_bytes)
    end = time.monotonic() + 5
    while relay.stats().datagrams_dropped == 0:
        assert time.monotonic() < end
        time.sleep(0.05)
    stats = relay.stats()
    assert max(peak, stats.queued_bytes) <= cap
    assert stats.datagrams_dropped > 0
    assert stats.bytes_from_gateway < 30_000 * 1400
    # The client catches up: the stream still works.
    deadline = time.monotonic() + 10
    while True:
        frame = c.recv()
        assert frame is not None
        if frame == (frames.DATA, b"marker"):
            break
        if frame[1] == payload:
            c.data(b"marker")  # echoed back once the backlog drains
        assert time.monotonic() < deadline


def test_stop_sends_shutdown(bed: Bed) -> None:
    relay = bed.relay()
    c = _open(bed, relay)
    probe = bed.client(relay, _device_of(bed, "dev-1"))
    probe.probe()
    relay.stop()
    c.expect_error("shutdown")
    probe.expect_error("shutdown")


def test_many_devices_at_once(bed: Bed) -> None:
    relay = bed.relay()
    devices = [bed.device(f"dev-{i}") for i in range(20)]
    _wait_listed(relay, "dev-19")
    clients = [bed.client(relay, d) for d in devices]
    for c in clients:
        c.send(_hello(bed.gateway.endpoint))
    for c in clients:
        c.expect(frames.READY)
    for i, c in enumerate(clients):
        c.data(f"datagram {i}".encode())
    for i, c in enumerate(clients):
        assert c.recv() == (frames.DATA, f"datagram {i}".encode())
    assert relay.stream_count() == 20
    assert len(set(bed.gateway.senders)) == 20
    for c in clients[:10]:
        c.close()
    end = time.monotonic() + 5
    while relay.stream_count() != 10:
        assert time.monotonic() < end
        time.sleep(0.02)
