"""Enroll → posture → bundle → events → revoke over real HTTP, plus the bad inputs."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from controller.testing import RunningController, login
from core.controlplane import (
    AuthenticationError,
    BearerAuth,
    ConflictError,
    ControlPlaneClient,
    ForbiddenError,
    RejectedError,
)
from core.controlplane.models import Event
from core.wire.policy import BUNDLE_TYP, decode_bundle
from core.wire.signing import public_key_from_jwk, verify
from tests.controller.conftest import new_device
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.integration

WIKI = {"id": "wiki", "name": "Wiki", "cidrs": ["10.20.0.0/24"], "ports": [443]}
RULE = {
    "id": "eng-wiki",
    "effect": "allow",
    "resources": ["wiki"],
    "priority": 10,
    "conditions": {
        "kind": "all",
        "of": [
            {"kind": "fact", "fact": "user.groups", "op": "eq", "value": "engineering"},
            {"kind": "fact", "fact": "posture.disk.encrypted", "op": "eq", "value": True},
        ],
    },
}


async def _admin(
    rc: RunningController, method: str, path: str, json: object = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=rc.base_url) as http:
        return await http.request(
            method, path, json=json, headers={"Authorization": f"Bearer {rc.admin_token}"}
        )


async def _setup_policy(rc: RunningController) -> None:
    assert (await _admin(rc, "PUT", "/v1/admin/resources/wiki", WIKI)).status_code == 200
    assert (await _admin(rc, "PUT", "/v1/admin/rules/eng-wiki", RULE)).status_code == 200


async def test_enroll_posture_bundle_revoke(controller: RunningController) -> None:
    rc = controller
    await _setup_policy(rc)
    tokens = await login(rc, "alice", "alice-password")
    keys = new_device()
    async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as client:
        disc = await client.discovery()
        assert disc.issuer == rc.issuer
        assert disc.client_id == rc.client_id
        enrolled = await client.enroll(keys.enroll_request())
        assert enrolled.user == "alice@example.com"
        assert enrolled.address == "10.77.0.2/32"  # .1 is reserved for the gateway
        dev = enrolled.device_id

        # Posture with an unencrypted disk: nothing reachable.
        nonce = await client.posture_nonce(dev)
        result = await client.submit_posture(dev, keys.report(dev, nonce.nonce, encrypted=False))
        assert result.accepted
        assert result.reachable == []
        # Replaying the same nonce is refused.
        with pytest.raises(RejectedError, match="nonce"):
            await client.submit_posture(dev, keys.report(dev, nonce.nonce))
        nonce = await client.posture_nonce(dev)
        result = await client.submit_posture(dev, keys.report(dev, nonce.nonce))
        assert result.reachable == ["wiki"]

        # The signed bundle verifies with the discovery keys and carries the tunnel.
        b1 = await client.fetch_bundle(dev)
        b2 = await client.fetch_bundle(dev)
        assert b2.version == b1.version + 1
        trusted = {
            k.kid: public_key_from_jwk(__import__("msgspec").to_builtins(k))
            for k in disc.policy_keys.keys
        }
        doc = verify(b2.bundle, trusted, typ=BUNDLE_TYP, max_size=1 << 20)
        bundle = decode_bundle(doc.payload)
        assert bundle.device_id == dev
        assert bundle.version == b2.version
        assert [r.id for r in bundle.resources] == ["wiki"]
        assert [r.id for r in bundle.rules] == ["eng-wiki"]
        assert "engineering" in bundle.user.groups

        # The event stream delivers an admin's recheck and then the revocation.
        received: list[Event] = []

        async def consume() -> None:
            async for event in client.events(dev):
                received.append(event)

        task = asyncio.get_running_loop().create_task(consume())
        await async_wait_until(lambda: rc.service.events.subscribers(dev), what="subscribed")
        resp = await _admin(rc, "POST", "/v1/admin/posture-recheck", {"device_id": dev})
        assert resp.status_code == 204
        resp = await _admin(rc, "POST", f"/v1/admin/devices/{dev}/revoke")
        assert resp.status_code == 200
        assert resp.json()["status"] == "revoked"
        assert resp.json()["address"] is None  # released
        await asyncio.wait_for(task, 5)  # the server ends the stream after device_revoked
        assert [e.type for e in received] == ["posture_recheck", "device_revoked"]

        # A revoked device is refused everywhere.
        with pytest.raises(ForbiddenError, match="revoked"):
            await client.fetch_bundle(dev)
        with pytest.raises(ForbiddenError):
            await client.posture_nonce(dev)
        # Its keys cannot be enrolled again (nor by another device).
        with pytest.raises(ConflictError):
            await client.enroll(keys.enroll_request("again"))
        # The released address goes to the next device.
        again = await client.enroll(new_device().enroll_request("second"))
        assert again.address == "10.77.0.2/32"


async def test_bob_cannot_reach_engineering_and_cannot_use_alices_device(
    controller: RunningController,
) -> None:
    rc = controller
    await _setup_policy(rc)
    alice = await login(rc, "alice", "alice-password")
    bob = await login(rc, "bob", "bob-password")
    ka, kb = new_device(), new_device()
    async with (
        ControlPlaneClient(rc.base_url, auth=BearerAuth(alice["access_token"])) as ca,
        ControlPlaneClient(rc.base_url, auth=BearerAuth(bob["access_token"])) as cb,
    ):
        dev_a = (await ca.enroll(ka.enroll_request())).device_id
        dev_b = (await cb.enroll(kb.enroll_request())).device_id
        n = await cb.posture_nonce(dev_b)
        assert (await cb.submit_posture(dev_b, kb.report(dev_b, n.nonce))).reachable == []
        from core.controlplane import NotFoundError

        with pytest.raises(NotFoundError):
            await cb.fetch_bundle(dev_a)
        # Alice's key enrolled by bob: refused.
        with pytest.raises(ConflictError):
            await cb.enroll(ka.enroll_request("stolen"))
        # A report signed by another device's key is a forgery.
        n = await ca.posture_nonce(dev_a)
        with pytest.raises(RejectedError, match="signature"):
            await ca.submit_posture(dev_a, kb.report(dev_a, n.nonce))
        # A stale report is refused.
        n = await ca.posture_nonce(dev_a)
        with pytest.raises(RejectedError, match="old"):
            await ca.submit_posture(dev_a, ka.report(dev_a, n.nonce, issued_at=time.time() - 3600))


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "malformed"),
        (b'{"name": 5}', 400, "Expected `str`"),
        (b'{"name":"x","platform":"linux","wg_public_key":"a","signing_key":"b"}', 400, "match"),
        (b'{"extra": 1}', 400, "unknown field"),
        (b"[" * 300_000, 413, "over"),
    ],
)
async def test_bad_bodies_are_problems(
    controller: RunningController, body: bytes, status: int, needle: str
) -> None:
    tokens = await login(controller, "alice", "alice-password")
    async with httpx.AsyncClient(base_url=controller.base_url) as http:
        resp = await http.post(
            "/v1/devices",
            content=body,
            headers={
                "Authorization": f"Bearer {tokens['access_token']}",
                "Content-Type": "application/json",
            },
        )
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/problem+json"
    assert needle in resp.json()["detail"]
    assert resp.json()["status"] == status
    assert controller.service.storage.list_devices() == []


def _foreign_token(issuer: str, aud: str, exp_delta: int) -> str:
    key = RSAKey.generate_key(2048)
    now = int(time.time())
    claims = {"iss": issuer, "aud": aud, "sub": "mallory", "exp": now + exp_delta, "iat": now}
    return jwt.encode({"alg": "RS256", "kid": "evil"}, claims, key)


async def test_tokens_from_elsewhere_or_expired_are_refused(controller: RunningController) -> None:
    rc = controller
    cases = [
        ("not-a-jwt", "not a JWT"),
        (_foreign_token("https://evil.example", "rustronaut-api", 600), "not trusted"),
        (_foreign_token(rc.issuer, "rustronaut-api", 600), "signature"),
    ]
    # A token signed by the real provider but for another audience, and an expired one.
    assert rc.oidc is not None
    key = rc.oidc.verification_keys().keys[0]
    now = int(time.time())
    good = {"iss": rc.issuer, "sub": "alice", "iat": now}
    cases.append(
        (
            jwt.encode(
                {"alg": "RS256", "kid": rc.oidc.kid},
                {**good, "aud": "other", "exp": now + 600},
                key,
            ),
            "audience",
        )
    )
    cases.append(
        (
            jwt.encode(
                {"alg": "RS256", "kid": rc.oidc.kid},
                {**good, "aud": "rustronaut-api", "exp": now - 600},
                key,
            ),
            "expired",
        )
    )
    for token, needle in cases:
        async with ControlPlaneClient(rc.base_url, auth=BearerAuth(token)) as client:
            with pytest.raises(AuthenticationError) as info:
                await client.enroll(new_device().enroll_request())
            assert needle in info.value.problem.detail, (needle, info.value.problem.detail)
    assert rc.service.storage.list_devices() == []


async def test_revoked_access_token_is_refused(controller: RunningController) -> None:
    rc = controller
    tokens = await login(rc, "alice", "alice-password")
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{rc.issuer}/revoke",
            data={"token": tokens["refresh_token"], "client_id": rc.client_id},
        )
        assert resp.status_code == 200
    async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as client:
        with pytest.raises(AuthenticationError, match="revoked"):
            await client.enroll(new_device().enroll_request())


async def test_admin_api_requires_the_admin_token(controller: RunningController) -> None:
    rc = controller
    tokens = await login(rc, "alice", "alice-password")
    async with httpx.AsyncClient(base_url=rc.base_url) as http:
        for auth in ("", "Bearer wrong", f"Bearer {tokens['access_token']}"):
            resp = await http.get("/v1/admin/devices", headers={"Authorization": auth})
            assert resp.status_code == 401
        # A rule naming an unknown resource is refused, nothing stored.
        resp = await _admin(
            rc, "PUT", "/v1/admin/rules/r1", {"id": "r1", "effect": "allow", "resources": ["nope"]}
        )
        assert resp.status_code == 422
        assert (await _admin(rc, "GET", "/v1/admin/rules")).json() == []


async def test_enrollment_is_rate_limited() -> None:
    from controller.testing import run_controller

    async with run_controller(sensitive_rate_per_min=3) as rc:
        statuses = []
        async with httpx.AsyncClient(base_url=rc.base_url) as http:
            for _ in range(5):
                statuses.append((await http.post("/v1/devices", json={})).status_code)
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3:] == [429, 429]
        # Login-related endpoints of the dev provider have their own budget.
        async with httpx.AsyncClient() as http:
            logins = [
                (await http.post(f"{rc.issuer}/token", data={"grant_type": "x"})).status_code
                for _ in range(4)
            ]
        assert logins[:3] == [400, 400, 400]
        assert logins[3] == 429


async def test_key_rotation_keeps_previous_key_in_discovery(controller: RunningController) -> None:
    rc = controller
    async with ControlPlaneClient(rc.base_url) as client:
        before = (await client.discovery()).policy_keys.keys
        resp = await _admin(rc, "POST", "/v1/admin/keys/rotate")
        assert resp.status_code == 200
        after = (await client.discovery()).policy_keys.keys
    assert len(after) == 2
    assert after[1].kid == before[0].kid
    assert after[0].kid != before[0].kid
