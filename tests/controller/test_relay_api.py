"""The controller side of WireGuard over mTLS relays (issue 21), over real HTTP.

A real controller (uvicorn on loopback, SQLite) with two gateways and two relays:
enrollment with a relay key → every bundle carries a fresh relay client certificate issued
by the CA in ``keys_dir/relay-ca.pem`` to exactly that key, and each signed tunnel spec
lists the relays serving its gateway; ``PUT /v1/devices/{id}/relay-key`` (owner only,
active only, well-formed only); ``GET /v1/relay/devices`` (relay token only, ETag/304,
revoked and keyless devices absent).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID

from controller.config import GatewayConfig, RelayConfig
from controller.relayca import CA_CERT_FILE, DEVICE_URI_PREFIX, device_of
from controller.testing import RunningController, login, run_controller
from core.controlplane.models import Discovery
from core.wire.policy import BUNDLE_TYP, PolicyBundle, decode_bundle
from core.wire.signing import b64url, public_key_from_jwk, verify
from tests.controller.conftest import DeviceKeys, new_device

pytestmark = pytest.mark.integration

GW1 = "10.241.0.1:51820"
GW2 = "10.242.0.1:51820"
PIN = base64.b64encode(hashlib.sha256(b"relay-b spki").digest()).decode()
#: serves every gateway (empty ``gateways``), named by host name
RELAY_ALL = RelayConfig(name="relay-a", endpoint="relay-a.example:443")
#: serves only the second gateway, an IP with its certificate's name and a pin
RELAY_GW2 = RelayConfig(
    name="relay-b",
    endpoint="192.0.2.10:8443",
    server_name="relay-b.example",
    spki=(PIN,),
    gateways=(GW2,),
)


def _wg_key() -> str:
    raw = (
        X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode()


def relay_key() -> tuple[Ed25519PrivateKey, str]:
    """A helper's relay key pair: the private key and the public half as registered."""
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, b64url(raw)


def write_token(path: Path, token: str | None = None, mode: int = 0o600) -> str:
    token = token or secrets.token_urlsafe(32)
    path.write_text(token + "\n")
    path.chmod(mode)
    return token


@dataclass
class Env:
    rc: RunningController
    relay_token: str
    workdir: Path

    async def user(self, name: str) -> str:
        tokens = await login(self.rc, name, f"{name}-password")
        return str(tokens["access_token"])

    async def call(
        self, method: str, path: str, token: str | None, body: Any = None, **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with httpx.AsyncClient(base_url=self.rc.base_url) as http:
            return await http.request(method, path, json=body, headers=headers, **kw)

    async def enroll(self, token: str, keys: DeviceKeys, relay: str | None) -> str:
        body = msgspec.to_builtins(keys.enroll_request())
        if relay is not None:
            body["relay_key"] = relay
        resp = await self.call("POST", "/v1/devices", token, body)
        assert resp.status_code == 201, resp.text
        return str(resp.json()["device_id"])

    async def bundle(self, token: str, device_id: str) -> tuple[PolicyBundle, str | None]:
        """The verified, decoded bundle (the client's own checks) and its relay_cert."""
        resp = await self.call("GET", f"/v1/devices/{device_id}/bundle", token)
        assert resp.status_code == 200, resp.text
        answer = resp.json()
        disc = msgspec.json.decode(
            (await self.call("GET", "/.well-known/rustronaut", None)).content, type=Discovery
        )
        trusted = {
            k.kid: public_key_from_jwk(msgspec.to_builtins(k)) for k in disc.policy_keys.keys
        }
        doc = verify(answer["bundle"], trusted, typ=BUNDLE_TYP, max_size=1 << 20)
        return decode_bundle(doc.payload), answer.get("relay_cert")

    async def relay_list(self, token: str | None, etag: str | None = None) -> httpx.Response:
        headers = {"If-None-Match": etag} if etag else {}
        return await self.call("GET", "/v1/relay/devices", token, headers=headers)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    token = write_token(tmp_path / "relay-token")
    async with run_controller(
        tmp_path,
        sensitive_rate_per_min=1000,
        gateway=GatewayConfig(public_key=_wg_key(), endpoint=GW1),
        gateways=(GatewayConfig(public_key=_wg_key(), endpoint=GW2, address="10.77.0.1/24"),),
        relays=(RELAY_ALL, RELAY_GW2),
        relay_token_file=str(tmp_path / "relay-token"),
    ) as rc:
        yield Env(rc, token, tmp_path)


def _check_cert(pem: str, env: Env, device_id: str, public: str) -> x509.Certificate:
    """The certificate is the CA's (signature checked), for this device and this key."""
    ca = x509.load_pem_x509_certificate((env.workdir / "keys" / CA_CERT_FILE).read_bytes())
    cert = x509.load_pem_x509_certificate(pem.encode())
    cert.verify_directly_issued_by(ca)  # raises InvalidSignature for any other signer
    assert device_of(cert) == (device_id, base64.urlsafe_b64decode(public + "="))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        DEVICE_URI_PREFIX + device_id
    ]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    life = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=6, hours=23) < life <= dt.timedelta(days=7)
    return cert


async def test_enrollment_with_relay_key_gets_certificates_and_relays(env: Env) -> None:
    alice = await env.user("alice")
    _priv, public = relay_key()
    dev = await env.enroll(alice, new_device(), public)
    assert env.rc.service.storage.get_device(dev).relay_key == public

    bundle, pem = await env.bundle(alice, dev)
    assert pem is not None
    first = _check_cert(pem, env, dev, public)
    # Each gateway's signed tunnel spec lists the relays that serve it, in config order.
    assert bundle.tunnel is not None
    assert bundle.tunnel.peers[0].endpoint == GW1
    assert [r.name for r in bundle.tunnel.relay_list()] == ["relay-a"]
    assert [g.peers[0].endpoint for g in bundle.gateways] == [GW2]
    relays = bundle.gateways[0].relay_list()
    assert [r.name for r in relays] == ["relay-a", "relay-b"]
    assert relays[1].server_name == "relay-b.example"
    assert relays[1].spki == (PIN,)
    assert relays[1].tls_name() == "relay-b.example"
    assert relays[0].tls_name() == "relay-a.example"

    # A fresh certificate with every fetch.
    _bundle, pem2 = await env.bundle(alice, dev)
    assert pem2 is not None
    assert _check_cert(pem2, env, dev, public).serial_number != first.serial_number


async def test_device_without_relay_key_gets_no_certificate(env: Env) -> None:
    alice = await env.user("alice")
    dev = await env.enroll(alice, new_device(), None)
    bundle, pem = await env.bundle(alice, dev)
    assert pem is None
    assert bundle.tunnel is not None
    assert bundle.tunnel.relay_list()


async def test_enroll_with_malformed_relay_key_is_refused(env: Env) -> None:
    alice = await env.user("alice")
    for bad in ("abc", "A" * 42 + "B", "A" * 42 + "!", 5, "A" * 4000):
        body = msgspec.to_builtins(new_device().enroll_request())
        body["relay_key"] = bad
        resp = await env.call("POST", "/v1/devices", alice, body)
        assert resp.status_code == 400, (bad, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    assert env.rc.service.storage.list_devices() == []


async def test_put_relay_key_owner_replaces_others_refused(env: Env) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    _p, first = relay_key()
    dev = await env.enroll(alice, new_device(), first)
    _p, second = relay_key()

    # The owner replaces it; the next certificate is for the new key only.
    resp = await env.call("PUT", f"/v1/devices/{dev}/relay-key", alice, {"relay_key": second})
    assert resp.status_code == 204, resp.text
    assert resp.content == b""
    _b, pem = await env.bundle(alice, dev)
    assert pem is not None
    _check_cert(pem, env, dev, second)

    # A device enrolled before relays existed registers its key later.
    old = await env.enroll(alice, new_device(), None)
    assert (
        await env.call("PUT", f"/v1/devices/{old}/relay-key", alice, {"relay_key": first})
    ).status_code == 204
    assert env.rc.service.relay_devices() == {dev: second, old: first}

    # Another user: the same answer as a device that does not exist; nothing changes.
    _p, evil = relay_key()
    resp = await env.call("PUT", f"/v1/devices/{dev}/relay-key", bob, {"relay_key": evil})
    assert resp.status_code == 404, resp.text
    missing = await env.call("PUT", "/v1/devices/dev_nope/relay-key", bob, {"relay_key": evil})
    assert missing.status_code == 404
    assert resp.json()["detail"].replace(dev, "X") == missing.json()["detail"].replace(
        "dev_nope", "X"
    )
    # No token, a forged token, the admin token: not a user.
    for token in (None, "not.a.jwt", env.rc.admin_token, env.relay_token):
        resp = await env.call("PUT", f"/v1/devices/{dev}/relay-key", token, {"relay_key": evil})
        assert resp.status_code == 401, (token, resp.text)
    assert env.rc.service.storage.get_device(dev).relay_key == second


async def test_put_relay_key_malformed_stores_nothing(env: Env) -> None:
    alice = await env.user("alice")
    _p, public = relay_key()
    dev = await env.enroll(alice, new_device(), public)
    path = f"/v1/devices/{dev}/relay-key"
    bodies: list[Any] = [
        {"relay_key": "short"},
        {"relay_key": public[:-1] + "B"},  # 32 bytes need the last char in [AEIM...]
        {"relay_key": public, "extra": 1},  # unknown fields are refused
        {"relay_key": None},
        {},
        [public],
    ]
    for body in bodies:
        resp = await env.call("PUT", path, alice, body)
        assert resp.status_code == 400, (body, resp.text)
    resp = await env.call(
        "PUT", path, alice, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    big = {"relay_key": public, "pad": "x" * (300 * 1024)}
    assert (await env.call("PUT", path, alice, big)).status_code == 413
    # A path that is not a device id never reaches the service.
    assert (
        await env.call("PUT", "/v1/devices/..%2F..%2Fadmin/relay-key", alice, {"relay_key": public})
    ).status_code == 404
    assert env.rc.service.storage.get_device(dev).relay_key == public


async def test_revoked_device_refused_and_off_the_relay_list(env: Env) -> None:
    alice = await env.user("alice")
    _p, k1 = relay_key()
    _p, k2 = relay_key()
    dev1 = await env.enroll(alice, new_device(), k1)
    dev2 = await env.enroll(alice, new_device(), k2)
    keyless = await env.enroll(alice, new_device(), None)

    first = await env.relay_list(env.relay_token)
    assert first.status_code == 200, first.text
    assert first.json() == {"devices": {dev1: k1, dev2: k2}}  # keyless is absent
    assert keyless not in first.json()["devices"]
    etag = first.headers["etag"]
    assert etag == '"' + hashlib.sha256(first.content).hexdigest() + '"'
    assert first.headers["cache-control"] == "no-store"
    # Unchanged: 304 with the same tag (strong, weak, or in a list).
    for tag in (etag, "W/" + etag, f'"other", {etag}'):
        again = await env.relay_list(env.relay_token, tag)
        assert again.status_code == 304, tag
        assert again.content == b""
        assert again.headers["etag"] == etag
    assert (await env.relay_list(env.relay_token, '"stale"')).status_code == 200

    revoked = await env.call("POST", f"/v1/admin/devices/{dev1}/revoke", env.rc.admin_token)
    assert revoked.status_code == 200
    after = await env.relay_list(env.relay_token, etag)
    assert after.status_code == 200  # the list changed: the old tag no longer matches
    assert after.json() == {"devices": {dev2: k2}}
    assert after.headers["etag"] != etag

    # The revoked device can neither register a key nor get a certificate.
    _p, k3 = relay_key()
    resp = await env.call("PUT", f"/v1/devices/{dev1}/relay-key", alice, {"relay_key": k3})
    assert resp.status_code == 403, resp.text
    assert env.rc.service.storage.get_device(dev1).relay_key == k1
    assert (await env.call("GET", f"/v1/devices/{dev1}/bundle", alice)).status_code == 403
    # Even asked directly, the service issues nothing for it.
    assert env.rc.service.relay_cert(env.rc.service.storage.get_device(dev1)) is None


async def test_relay_list_needs_the_relay_token(env: Env) -> None:
    alice = await env.user("alice")
    await env.enroll(alice, new_device(), relay_key()[1])
    wrong = env.relay_token[:-1] + ("A" if env.relay_token[-1] != "A" else "B")
    for token in (None, "-", wrong, env.relay_token + "x", alice, env.rc.admin_token):
        resp = await env.relay_list(token)
        assert resp.status_code == 401, (token, resp.text)
        assert resp.headers["www-authenticate"] == "Bearer"
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert "devices" not in resp.json()
    basic = await env.call(
        "GET", "/v1/relay/devices", None, headers={"Authorization": f"Basic {env.relay_token}"}
    )
    assert basic.status_code == 401
    # The relay token opens nothing else.
    assert (await env.call("GET", "/v1/admin/devices", env.relay_token)).status_code == 401
    assert (
        await env.call("POST", "/v1/devices/x/posture/nonce", env.relay_token)
    ).status_code == 401
    assert (await env.relay_list(env.relay_token)).status_code == 200


async def test_relay_inside_the_tunnel_routes_is_left_out(env: Env) -> None:
    """A resource whose network covers a relay's address: the relay cannot carry that
    tunnel (it would be routed through it), so it is left out; the bundle stays valid."""
    rc = env.rc
    resource = {"id": "lab", "name": "Lab", "cidrs": ["192.0.2.0/24"], "ports": [443]}
    rule = {
        "id": "eng-lab",
        "effect": "allow",
        "resources": ["lab"],
        "priority": 10,
        "conditions": {"kind": "fact", "fact": "user.groups", "op": "eq", "value": "engineering"},
    }
    assert (await env.call("PUT", "/v1/admin/resources/lab", rc.admin_token, resource)).is_success
    assert (await env.call("PUT", "/v1/admin/rules/eng-lab", rc.admin_token, rule)).is_success
    alice = await env.user("alice")
    keys = new_device()
    dev = await env.enroll(alice, keys, relay_key()[1])
    nonce = await env.call("POST", f"/v1/devices/{dev}/posture/nonce", alice)
    report = keys.report(dev, nonce.json()["nonce"])
    posted = await env.call("POST", f"/v1/devices/{dev}/posture", alice, {"report": report})
    assert posted.json()["reachable"] == ["lab"]
    bundle, pem = await env.bundle(alice, dev)
    assert pem is not None
    assert "192.0.2.0/24" in bundle.gateways[0].peers[0].allowed_ips
    assert [r.name for r in bundle.gateways[0].relay_list()] == ["relay-a"]
    assert [r.name for r in bundle.tunnel.relay_list()] == ["relay-a"]  # type: ignore[union-attr]


async def test_without_relays_bundles_are_as_before(tmp_path: Path) -> None:
    """No relays configured: no ``relays`` key in the signed spec (older clients read
    it), no certificate even for a device with a relay key, and no relay list."""
    async with run_controller(
        tmp_path,
        sensitive_rate_per_min=1000,
        gateway=GatewayConfig(public_key=_wg_key(), endpoint=GW1),
    ) as rc:
        env = Env(rc, "", tmp_path)
        alice = await env.user("alice")
        dev = await env.enroll(alice, new_device(), relay_key()[1])
        resp = await env.call("GET", f"/v1/devices/{dev}/bundle", alice)
        answer = resp.json()
        assert "relay_cert" not in answer or answer["relay_cert"] is None
        payload = answer["bundle"].split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert decoded["tunnel"] is not None
        assert "relays" not in decoded["tunnel"]
        bundle, _pem = await env.bundle(alice, dev)
        assert bundle.tunnel is not None
        assert bundle.tunnel.relay_list() == ()
        assert not (tmp_path / "keys" / CA_CERT_FILE).exists()  # no CA made for nothing
        # Nothing opens the relay list when no relay token is configured.
        for token in (None, rc.admin_token, alice, "x" * 43):
            assert (await env.relay_list(token)).status_code == 401


def test_relay_token_matches() -> None:
    """``relay_token_matches``: exact token only, never without a configured token."""
    from controller.config import relay_token_matches

    token = secrets.token_urlsafe(32)
    assert relay_token_matches(token, token)
    assert not relay_token_matches(token, token[:-1])
    assert not relay_token_matches(None, token)
    assert not relay_token_matches(token, "")
    assert not relay_token_matches(token, "\x00" * 10_000)
