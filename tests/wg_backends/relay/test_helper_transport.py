"""The helper's side of issue 21: ``hello`` answers the relay key, ``up``/``update`` take a
``relay_cert`` (only one for the caller's own relay key is used), and a tunnel whose spec
lists relays reports its ``transport``."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from tests.wg_backends.inproc import Running, serve_in_thread
from tests.wg_backends.test_helper_keys import _relay_cert
from wg_backends.errors import ProtocolError
from wg_backends.helper import protocol as p
from wg_backends.helper.client import HelperClient
from wg_backends.helper.keys import KEYS_DIR_NAME, DeviceKeys, generate_private_key
from wg_backends.spec import PeerSpec, RelaySpec, TunnelSpec

PUB = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="


def relay_spec(name: str = "rtr0") -> TunnelSpec:
    return TunnelSpec(
        interface=name,
        addresses=("10.77.0.2/32",),
        private_key=generate_private_key(),
        peers=(
            PeerSpec(
                public_key=PUB,
                endpoint="192.0.2.10:51820",
                allowed_ips=("10.77.0.0/24",),
                persistent_keepalive=5,
            ),
        ),
        relays=(RelaySpec(name="r1", endpoint="192.0.2.20:443", server_name="relay.test"),),
    )


@pytest.fixture
def helper(tmp_path: Path) -> Iterator[Running]:
    r = serve_in_thread(tmp_path)
    yield r
    r.stop()


def _raw(b64url: str) -> bytes:
    return base64.urlsafe_b64decode(b64url + "=")


async def test_hello_answers_the_relay_key_and_keeps_the_private_half(helper: Running) -> None:
    async with HelperClient(helper.socket) as c:
        hello = await c.hello()
    key = hello["relay_key"]
    assert key == DeviceKeys(helper.state_dir).relay_public_key(os.getuid())
    assert len(_raw(key)) == 32
    assert "PRIVATE" not in str(hello)


async def test_up_with_relays_reports_the_transport_and_takes_only_our_certificate(
    helper: Running,
) -> None:
    keys = DeviceKeys(helper.state_dir)
    other = _raw(keys.relay_public_key(4242))  # another account's relay key
    crt = helper.state_dir / KEYS_DIR_NAME / f"uid-{os.getuid()}.relay.crt"
    async with HelperClient(helper.socket) as c:
        mine = _raw((await c.hello())["relay_key"])
        status = await c.up(relay_spec(), relay_cert=_relay_cert(other))
        assert status.transport is not None
        assert (status.transport.kind, status.transport.state) == ("udp", "trying")
        assert [r.name for r in status.transport.relays] == ["r1"]
        assert not crt.exists()  # a certificate for someone else's key is ignored
        # A re-up by the owner (the fake backend cannot update in place).
        status = await c.up(relay_spec(), relay_cert=_relay_cert(mine))
        assert status.transport is not None
        assert crt.exists()
        assert os.stat(crt).st_mode & 0o777 == 0o600
        live = await c.status("rtr0")
        assert live.transport is not None
        await c.down("rtr0")
    assert not helper.server._transports  # the supervisor stopped with the tunnel


async def test_a_tunnel_without_relays_has_no_transport(helper: Running) -> None:
    spec = msgspec.structs.replace(relay_spec("rtr1"), relays=())
    async with HelperClient(helper.socket) as c:
        status = await c.up(spec)
        assert status.transport is None
        await c.down("rtr1")


def test_the_relay_cert_field_is_bounded() -> None:
    spec = relay_spec()
    ok = p.encode(p.Up(id=1, spec=spec, relay_cert="x" * p.MAX_RELAY_CERT))
    assert isinstance(p.decode_request(ok[4:]), p.Up)
    big = msgspec.json.encode(
        {"v": 1, "type": "up", "id": 1, "spec": msgspec.to_builtins(spec), "relay_cert": "x" * 8193}
    )
    with pytest.raises(ProtocolError):
        p.decode_request(big)
