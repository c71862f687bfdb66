"""A scriptable identity provider behind ``httpx.MockTransport``, for the bad-input cases.

Real providers never send a forged ID token or a 300 KiB discovery document; this one
does on request. It still behaves like a provider where it matters: codes are single use,
PKCE S256 is checked, the nonce of the authorization request goes into the ID token.
Its "browser" really calls the client's loopback listener over HTTP.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

ISSUER = "https://idp.example.test"
CLIENT_ID = "rustronaut-desktop"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """``alg: none``: header.payload. (empty signature)."""
    h = b64url(json.dumps(header).encode())
    p = b64url(json.dumps(claims).encode())
    return f"{h}.{p}."


def hs256_with_public_key(key: RSAKey, claims: dict[str, Any]) -> str:
    """The key-confusion attack: HMAC-SHA256 keyed with the provider's public key (PEM)."""
    header = {"alg": "HS256", "kid": key.kid, "typ": "JWT"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    secret = key.as_pem(private=False)
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


@functools.cache
def _keys() -> tuple[RSAKey, RSAKey]:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
    # Same kid, different key: a token "from" the provider signed by someone else.
    impostor = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
    return key, impostor


@dataclass
class Grant:
    nonce: str
    challenge: str
    redirect_uri: str
    used: bool = False


@dataclass
class FakeIdP:
    issuer: str = ISSUER
    client_id: str = CLIENT_ID
    #: extra/overridden discovery fields (None value removes the field)
    discovery: dict[str, Any] = field(default_factory=dict)
    #: path -> fixed response (oversized, HTML, 500 ...)
    responses: dict[str, Callable[[], httpx.Response]] = field(default_factory=dict)
    #: edits to the ID token claims, or a function (claims -> token) replacing signing
    claims: dict[str, Any] = field(default_factory=dict)
    forge: Callable[[FakeIdP, dict[str, Any]], str] | None = None
    omit_id_token: bool = False
    #: seconds added to the provider's clock (its Date header and token times)
    clock_offset: float = 0.0
    #: device flow: errors returned by successive polls before success
    device_script: list[str] = field(default_factory=list)
    device_interval: int | None = 2
    device_verification_uri: str | None = None
    requests: list[httpx.Request] = field(default_factory=list)
    grants: dict[str, Grant] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.key, self.impostor = _keys()

    # -- HTTP ---------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def now(self) -> float:
        return time.time() + self.clock_offset

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path in self.responses:
            return self.responses[path]()
        headers = {"Date": formatdate(self.now(), usegmt=True)}
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self.metadata(), headers=headers)
        if path == "/jwks":
            return httpx.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        if path == "/token":
            form = parse_qs(request.content.decode())
            data = {k: v[0] for k, v in form.items()}
            status, body = self.token(data)
            return httpx.Response(status, json=body, headers=headers)
        if path == "/device":
            return httpx.Response(200, json=self.device_authorization(), headers=headers)
        if path == "/revoke":
            return httpx.Response(200)
        return httpx.Response(404, json={"error": "not_found"})

    def metadata(self) -> dict[str, Any]:
        i = self.issuer
        doc: dict[str, Any] = {
            "issuer": i,
            "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token",
            "jwks_uri": f"{i}/jwks",
            "device_authorization_endpoint": f"{i}/device",
            "revocation_endpoint": f"{i}/revoke",
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "authorization_response_iss_parameter_supported": True,
        }
        for k, v in self.discovery.items():
            if v is None:
                doc.pop(k, None)
            else:
                doc[k] = v
        return doc

    def token(self, data: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if data.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        grant_type = data.get("grant_type")
        nonce: str | None = None
        if grant_type == "authorization_code":
            grant = self.grants.get(data.get("code", ""))
            if grant is None or grant.used:
                return 400, {"error": "invalid_grant", "error_description": "code used or unknown"}
            grant.used = True
            digest = hashlib.sha256(data.get("code_verifier", "").encode()).digest()
            if b64url(digest) != grant.challenge or data.get("redirect_uri") != grant.redirect_uri:
                return 400, {"error": "invalid_grant", "error_description": "PKCE mismatch"}
            nonce = grant.nonce
        elif grant_type == "urn:ietf:params:oauth:grant-type:device_code":
            if self.device_script:
                return 400, {"error": self.device_script.pop(0)}
        elif grant_type != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        body: dict[str, Any] = {
            "access_token": secrets.token_urlsafe(16),
            "token_type": "Bearer",
            "expires_in": 300,
            "refresh_token": secrets.token_urlsafe(16),
        }
        if not self.omit_id_token:
            body["id_token"] = self.id_token(nonce)
        return 200, body

    def id_token(self, nonce: str | None) -> str:
        now = int(self.now())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "alice",
            "aud": self.client_id,
            "exp": now + 300,
            "iat": now,
            "email": "alice@example.test",
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(self.claims)
        if self.forge is not None:
            return self.forge(self, claims)
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)

    def device_authorization(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "device_code": "dev-code",
            "user_code": "ABCD-EFGH",
            "verification_uri": self.device_verification_uri or f"{self.issuer}/activate",
            "expires_in": 600,
        }
        if self.device_interval is not None:
            body["interval"] = self.device_interval
        return body

    # -- the user's browser ----------------------------------------------------------

    async def browser(self, url: str) -> None:
        """Approve the login at once: issue a code and call the loopback redirect."""
        q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(12)
        self.grants[code] = Grant(q["nonce"], q["code_challenge"], q["redirect_uri"])
        callback = httpx.URL(q["redirect_uri"]).copy_merge_params(
            {"code": code, "state": q["state"], "iss": self.issuer}
        )
        async with httpx.AsyncClient(trust_env=False) as c:
            await c.get(callback)
