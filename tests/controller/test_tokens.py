"""Bearer validation against an issuer's JWKS over HTTP: caching and key rotation."""

from __future__ import annotations

import time

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from controller.config import IssuerConfig
from controller.errors import Unauthorized, Unavailable
from controller.tokens import TokenValidator

pytestmark = pytest.mark.unit

ISS = "https://idp.example"


def _token(key: RSAKey, **claims: object) -> str:
    now = int(time.time())
    base = {
        "iss": ISS,
        "aud": "api",
        "sub": "alice",
        "exp": now + 300,
        "iat": now,
        "email": "alice@example.com",
        "groups": ["eng"],
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, {**base, **claims}, key)


class _Idp:
    def __init__(self) -> None:
        self.keys = [RSAKey.generate_key(2048, auto_kid=True)]
        self.hits: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.hits.append(request.url.path)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": ISS, "jwks_uri": f"{ISS}/jwks"})
        if request.url.path == "/jwks":
            return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.keys]})
        return httpx.Response(404)


async def test_keys_are_cached_and_refetched_on_rotation() -> None:
    idp = _Idp()
    v = TokenValidator(
        [IssuerConfig(issuer=ISS, audiences=("api",))], transport=httpx.MockTransport(idp.handle)
    )
    ident = await v.validate(_token(idp.keys[0]))
    assert ident.user_id == "alice@example.com"
    assert ident.groups == ("eng",)
    await v.validate(_token(idp.keys[0]))
    assert idp.hits == ["/.well-known/openid-configuration", "/jwks"]  # cached
    idp.keys.insert(0, RSAKey.generate_key(2048, auto_kid=True))  # the IdP rotates
    ident = await v.validate(_token(idp.keys[0]))
    assert idp.hits[-1] == "/jwks"  # unknown kid → re-fetched once
    # A token signed by a key the IdP never published is refused (after one re-fetch
    # at most every REFRESH_MIN_S, so a flood of bad kids cannot hammer the IdP).
    before = len(idp.hits)
    with pytest.raises(Unauthorized, match="signature"):
        await v.validate(_token(RSAKey.generate_key(2048, auto_kid=True)))
    assert len(idp.hits) == before


@pytest.mark.parametrize(
    ("claims", "needle"),
    [
        ({"aud": "other"}, "audience"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"iss": "https://other.example"}, "not trusted"),
        ({"nbf": int(time.time()) + 3600}, "invalid"),
    ],
)
async def test_claims_are_checked(claims: dict[str, object], needle: str) -> None:
    idp = _Idp()
    v = TokenValidator(
        [IssuerConfig(issuer=ISS, audiences=("api",))], transport=httpx.MockTransport(idp.handle)
    )
    with pytest.raises(Unauthorized, match=needle):
        await v.validate(_token(idp.keys[0], **claims))


async def test_unreachable_issuer_is_unavailable_not_unauthorized() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down")

    v = TokenValidator(
        [IssuerConfig(issuer=ISS, audiences=("api",))], transport=httpx.MockTransport(down)
    )
    with pytest.raises(Unavailable, match="signing keys"):
        await v.validate(_token(RSAKey.generate_key(2048, auto_kid=True)))
