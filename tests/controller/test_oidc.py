"""The development OIDC provider: discovery, JWKS, code+PKCE, refresh rotation, device code,
revocation, userinfo, and the refusals a real provider makes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from controller.config import DevOidcConfig
from controller.oidc import DevOidcProvider
from controller.testing import RunningController, login, run_controller

pytestmark = pytest.mark.integration

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _authorize_query(rc: RunningController, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": rc.client_id,
        "redirect_uri": "http://127.0.0.1:5000/cb",
        "scope": "openid email profile offline_access",
        "state": "st1",
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def test_discovery_and_jwks(controller: RunningController) -> None:
    async with httpx.AsyncClient() as http:
        meta = (await http.get(f"{controller.issuer}/.well-known/openid-configuration")).json()
        assert meta["issuer"] == controller.issuer
        assert meta["code_challenge_methods_supported"] == ["S256"]
        assert DEVICE_GRANT in meta["grant_types_supported"]
        jwks = (await http.get(meta["jwks_uri"])).json()
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert key["kid"]
    assert key["alg"] == "RS256"
    assert "d" not in key  # public only


async def test_code_flow_tokens_and_refresh_rotation(controller: RunningController) -> None:
    rc = controller
    tokens = await login(rc, "alice", "alice-password")
    async with httpx.AsyncClient() as http:
        jwks = KeySet.import_key_set((await http.get(f"{rc.issuer}/jwks")).json())
        id_token = jwt.decode(tokens["id_token"], jwks)
        assert id_token.header["kid"] == jwks.keys[0].kid
        assert id_token.claims["iss"] == rc.issuer
        assert id_token.claims["aud"] == [rc.client_id]
        assert id_token.claims["email"] == "alice@example.com"
        assert id_token.claims["groups"] == ["engineering"]
        access = jwt.decode(tokens["access_token"], jwks).claims
        assert access["aud"] == "rustronaut-api"
        assert access["sub"] == "alice"
        info = await http.get(
            f"{rc.issuer}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert info.json()["email"] == "alice@example.com"
        # Refresh rotates: the new refresh token works, the old one no longer does.
        data = {
            "grant_type": "refresh_token",
            "client_id": rc.client_id,
            "refresh_token": tokens["refresh_token"],
        }
        first = await http.post(f"{rc.issuer}/token", data=data)
        assert first.status_code == 200
        assert first.json()["refresh_token"] != tokens["refresh_token"]
        again = await http.post(f"{rc.issuer}/token", data=data)
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"
        # Revocation of the refresh token ends the session's refreshes.
        new_refresh = first.json()["refresh_token"]
        rev = await http.post(
            f"{rc.issuer}/revoke", data={"token": new_refresh, "client_id": rc.client_id}
        )
        assert rev.status_code == 200
        after = await http.post(f"{rc.issuer}/token", data={**data, "refresh_token": new_refresh})
        assert after.status_code == 400


async def test_login_form_refusals(controller: RunningController) -> None:
    rc = controller
    verifier, challenge = _pkce()
    async with httpx.AsyncClient() as http:
        form = await http.get(f"{rc.issuer}/authorize", params=_authorize_query(rc, challenge))
        assert form.status_code == 200
        assert 'name="username"' in form.text
        assert 'name="password"' in form.text
        wrong = await http.post(
            f"{rc.issuer}/authorize",
            params=_authorize_query(rc, challenge),
            data={"username": "alice", "password": "nope"},
        )
        assert wrong.status_code == 401
        assert "Wrong user name or password" in wrong.text
        # Only loopback redirect URIs (RFC 8252) and PKCE S256 are accepted.
        bad_redirect = _authorize_query(rc, challenge, redirect_uri="https://evil.example/cb")
        resp = await http.get(f"{rc.issuer}/authorize", params=bad_redirect)
        assert resp.status_code == 400
        no_pkce = _authorize_query(rc, challenge)
        del no_pkce["code_challenge"]
        resp = await http.get(f"{rc.issuer}/authorize", params=no_pkce)
        assert resp.status_code == 400
        assert "code_challenge" in resp.text
        # A wrong code verifier cannot redeem the code.
        query = _authorize_query(rc, challenge)
        ok = await http.post(
            f"{rc.issuer}/authorize",
            params=query,
            data={"username": "bob", "password": "bob-password"},
        )
        assert ok.status_code == 302
        loc = parse_qs(urlsplit(ok.headers["location"]).query)
        assert loc["state"] == ["st1"]
        tok = await http.post(
            f"{rc.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": loc["code"][0],
                "redirect_uri": query["redirect_uri"],
                "client_id": rc.client_id,
                "code_verifier": verifier + "x",
            },
        )
        assert tok.status_code == 400
        assert tok.json()["error"] == "invalid_grant"


async def test_device_code_grant(controller: RunningController) -> None:
    rc = controller
    async with httpx.AsyncClient() as http:
        start = (
            await http.post(
                f"{rc.issuer}/device_authorization",
                data={"client_id": rc.client_id, "scope": "openid email offline_access"},
            )
        ).json()
        assert start["verification_uri"] == f"{rc.issuer}/device"
        poll = {
            "grant_type": DEVICE_GRANT,
            "device_code": start["device_code"],
            "client_id": rc.client_id,
        }
        pending = await http.post(f"{rc.issuer}/token", data=poll)
        assert pending.json()["error"] == "authorization_pending"
        bad = await http.post(
            f"{rc.issuer}/device",
            data={"user_code": start["user_code"], "username": "bob", "password": "wrong"},
        )
        assert bad.status_code == 400
        page = await http.get(start["verification_uri_complete"])
        assert start["user_code"] in page.text
        ok = await http.post(
            f"{rc.issuer}/device",
            data={"user_code": start["user_code"], "username": "bob", "password": "bob-password"},
        )
        assert ok.status_code == 200
        tokens = {}
        for _ in range(5):
            resp = await http.post(f"{rc.issuer}/token", data=poll)
            if resp.status_code == 200:
                tokens = resp.json()
                break
            assert resp.json()["error"] in {"slow_down", "authorization_pending"}
            # On purpose: RFC 8628 polling must wait out the server's interval (1 s here).
            await asyncio.sleep(1.05)
        assert tokens["access_token"]
        assert "refresh_token" in tokens
        claims = jwt.decode(tokens["id_token"], rc.oidc.verification_keys()).claims  # type: ignore[union-attr]
        assert claims["sub"] == "bob"


def test_eddsa_provider_signs_with_okp_key() -> None:
    provider = DevOidcProvider(
        DevOidcConfig(id_token_alg="EdDSA"), "http://127.0.0.1:1/oidc", api_audience="api"
    )
    jwks = provider.public_keyset()
    assert jwks["keys"][0]["kty"] == "OKP"
    assert jwks["keys"][0]["alg"] == "EdDSA"
    assert provider.discovery()["id_token_signing_alg_values_supported"] == ["EdDSA"]


async def test_controller_trusts_an_external_issuer_over_http() -> None:
    """A second controller's dev provider plays an external IdP: keys fetched via JWKS."""
    from controller.config import IssuerConfig
    from core.controlplane import AuthenticationError, BearerAuth, ControlPlaneClient
    from tests.controller.conftest import new_device

    async with run_controller() as idp:
        issuer = IssuerConfig(issuer=idp.issuer, audiences=("rustronaut-api",))
        async with run_controller(issuers=(issuer,), dev_oidc=None) as rc:
            tokens = await login(idp, "alice", "alice-password")
            async with ControlPlaneClient(
                rc.base_url, auth=BearerAuth(tokens["access_token"])
            ) as c:
                disc = await c.discovery()
                assert disc.issuer == idp.issuer
                enrolled = await c.enroll(new_device().enroll_request())
                assert enrolled.user == "alice@example.com"
            # The controller without a dev provider serves no /oidc.
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{rc.base_url}/oidc/jwks")).status_code == 404
            async with run_controller() as other:
                foreign = await login(other, "alice", "alice-password")
                async with ControlPlaneClient(
                    rc.base_url, auth=BearerAuth(foreign["access_token"])
                ) as c:
                    with pytest.raises(AuthenticationError, match="not trusted"):
                        await c.enroll(new_device().enroll_request())
