"""The console's OpenID Connect relying party: admins sign in through the organisation's
provider (authorization code + PKCE S256, a confidential client with a secret).

``start()`` makes the authorization URL and the pending login (``state``, ``nonce``,
PKCE verifier) that the web layer keeps in a short-lived ``__Host-`` cookie; ``finish()``
checks the callback's ``state`` against it, exchanges the code (client secret + verifier)
and validates the ID token: signature through the issuer's JWKS, ``iss``, ``aud`` (this
client), ``exp``/``iat``, ``nonce``. Groups come from the ID token's groups claim, else
from userinfo. Discovery is the issuer's ``/.well-known/openid-configuration``.

With the built-in dev provider the HTTP calls go through an in-process transport to its
routes, so the console works whatever address the controller can reach itself at.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

__all__ = ["AdminClaims", "OidcRelyingParty", "PendingLogin", "SignInError"]

_ALGS = ["RS256", "ES256", "EdDSA", "Ed25519"]
_LEEWAY_S = 30
_MAX_DOC = 256 * 1024
_META_TTL_S = 3600.0
_JWKS_TTL_S = 300.0
_JWKS_FORCE_MIN_S = 30.0
#: how long a started sign-in may take at the provider
PENDING_TTL_S = 600


class SignInError(Exception):
    """The sign-in failed; the message is safe to show (no secrets, no tokens)."""


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A started sign-in: what the callback must match. Kept in the browser's pre-auth
    cookie (HttpOnly, ``__Host-``, 10 min); tampering with it only breaks one's own login."""

    state: str
    nonce: str
    verifier: str
    started_at: int
    next_path: str = "/console/"

    def encode(self) -> str:
        """The cookie value (base64url JSON)."""
        raw = json.dumps(
            [self.state, self.nonce, self.verifier, self.started_at, self.next_path],
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, value: str) -> PendingLogin | None:
        """The pending login from a cookie value, or None when malformed."""
        try:
            pad = "=" * (-len(value) % 4)
            data = json.loads(base64.urlsafe_b64decode(value + pad))
            state, nonce, verifier, started, nxt = data
            if not all(isinstance(x, str) for x in (state, nonce, verifier, nxt)):
                return None
            return cls(state, nonce, verifier, int(started), nxt)
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True, slots=True)
class AdminClaims:
    """Who signed in, from a validated ID token (and userinfo)."""

    subject: str
    user_id: str
    email: str
    name: str
    groups: tuple[str, ...]


class OidcRelyingParty:
    """The console's client of one OIDC issuer. Async; one event loop."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        groups_claim: str = "groups",
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.redirect_uri = redirect_uri
        self.groups_claim = groups_claim
        self._transport = transport
        self._clock = clock
        self._meta: dict[str, Any] | None = None
        self._meta_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._keys_forced_at = float("-inf")

    # documents --------------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self._transport, timeout=10.0)

    async def _get_json(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        async with self._client() as http:
            resp = await http.get(url, headers=headers)
        if resp.status_code != 200:
            raise SignInError(f"the identity provider answered {resp.status_code} for {url}")
        if len(resp.content) > _MAX_DOC:
            raise SignInError("the identity provider's answer is too large")
        try:
            data = resp.json()
        except ValueError as exc:
            raise SignInError("the identity provider's answer is not JSON") from exc
        if not isinstance(data, dict):
            raise SignInError("the identity provider's answer is not a JSON object")
        return data

    async def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document (cached for an hour); its ``issuer`` must be ours."""
        now = time.monotonic()
        if self._meta is not None and now - self._meta_at < _META_TTL_S:
            return self._meta
        try:
            meta = await self._get_json(self.issuer + "/.well-known/openid-configuration")
        except httpx.HTTPError as exc:
            raise SignInError(f"cannot reach the identity provider: {exc}") from exc
        if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
            raise SignInError("the identity provider's discovery names another issuer")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(meta.get(key), str):
                raise SignInError(f"the identity provider's discovery has no {key}")
        self._meta, self._meta_at = meta, now
        return meta

    async def _keyset(self, *, force: bool) -> KeySet:
        now = time.monotonic()
        fresh = self._keys is not None and now - self._keys_at < _JWKS_TTL_S
        if self._keys is not None and (
            (not force and fresh) or (force and now - self._keys_forced_at < _JWKS_FORCE_MIN_S)
        ):
            return self._keys
        if force:
            self._keys_forced_at = now
        meta = await self.metadata()
        try:
            doc = await self._get_json(str(meta["jwks_uri"]))
            self._keys = KeySet.import_key_set(doc)  # type: ignore[arg-type]
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            if self._keys is None:
                raise SignInError(f"cannot fetch the provider's signing keys: {exc}") from exc
        self._keys_at = now
        assert self._keys is not None
        return self._keys

    # the flow ---------------------------------------------------------------------
    async def start(self, next_path: str = "/console/") -> tuple[str, PendingLogin]:
        """The provider URL to send the browser to, and what the callback must match."""
        meta = await self.metadata()
        pending = PendingLogin(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(64),
            started_at=int(self._clock()),
            next_path=next_path,
        )
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(pending.verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid email profile groups",
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        endpoint = str(meta["authorization_endpoint"])
        sep = "&" if urlsplit(endpoint).query else "?"
        return endpoint + sep + urlencode(query), pending

    async def finish(self, pending: PendingLogin | None, params: dict[str, str]) -> AdminClaims:
        """Check the callback against the pending login, exchange the code and validate
        the ID token. Raises ``SignInError`` saying why (never echoing secrets)."""
        if pending is None:
            raise SignInError("no sign-in was started in this browser (or it expired)")
        if self._clock() - pending.started_at > PENDING_TTL_S:
            raise SignInError("the sign-in took too long; start again")
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise SignInError("the sign-in answer does not match this browser's sign-in")
        if "error" in params:
            raise SignInError("the identity provider refused the sign-in: " + params["error"][:100])
        code = params.get("code", "")
        if not code or len(code) > 2048:
            raise SignInError("the sign-in answer carries no code")
        meta = await self.metadata()
        basic = base64.b64encode(
            f"{quote(self.client_id, safe='')}:{quote(self._secret, safe='')}".encode()
        ).decode()
        try:
            async with self._client() as http:
                resp = await http.post(
                    str(meta["token_endpoint"]),
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": self.redirect_uri,
                        "code_verifier": pending.verifier,
                    },
                    headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
                )
        except httpx.HTTPError as exc:
            raise SignInError(f"cannot reach the identity provider: {exc}") from exc
        if resp.status_code != 200:
            raise SignInError(
                f"the identity provider refused the code ({resp.status_code}): "
                "it was used already, expired, or the verifier differs"
            )
        try:
            tokens = resp.json()
            id_token = str(tokens["id_token"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SignInError("the identity provider's answer has no ID token") from exc
        claims = await self._validate(id_token, pending.nonce)
        groups = _groups(claims.get(self.groups_claim))
        # Providers at default settings (OIDC Core 5.4) answer the scopes' claims (email,
        # name, groups) from userinfo, not in the ID token: ask it for whatever is missing.
        missing = groups is None or not claims.get("email") or not claims.get("name")
        if missing and isinstance(tokens.get("access_token"), str):
            info = await self._userinfo(meta, tokens["access_token"], claims["sub"])
            if groups is None:
                groups = _groups(info.get(self.groups_claim))
            for key in ("email", "name", "preferred_username"):
                if not claims.get(key) and isinstance(info.get(key), str):
                    claims[key] = info[key]
        email = str(claims.get("email") or "")[:254]
        subject = str(claims["sub"])
        return AdminClaims(
            subject=subject,
            user_id=email or subject,
            email=email,
            name=str(claims.get("name") or claims.get("preferred_username") or email or subject)[
                :200
            ],
            groups=groups or (),
        )

    async def _validate(self, id_token: str, nonce: str) -> dict[str, Any]:
        if len(id_token) > 16 * 1024:
            raise SignInError("the ID token is too large")
        keys = await self._keyset(force=False)
        try:
            tok = jwt.decode(id_token, keys, algorithms=_ALGS)
        except JoseError:
            # Maybe a rotated key: re-fetch (rate-limited) and retry once.
            keys = await self._keyset(force=True)
            try:
                tok = jwt.decode(id_token, keys, algorithms=_ALGS)
            except JoseError as exc:
                raise SignInError(f"the ID token's signature is refused ({exc.error})") from exc
        except ValueError as exc:
            raise SignInError("the ID token is malformed") from exc
        claims = dict(tok.claims)
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=_LEEWAY_S,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise SignInError(f"the ID token is refused ({exc.error})") from exc
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.client_id:
            raise SignInError("the ID token was issued to another client (azp)")
        got = str(claims.get("nonce", ""))
        if not hmac.compare_digest(got.encode(), nonce.encode()):
            raise SignInError("the ID token's nonce does not match this sign-in")
        return claims

    async def _userinfo(
        self, meta: dict[str, Any], access_token: str, subject: Any
    ) -> dict[str, Any]:
        """The userinfo claims for ``subject`` ({} when unavailable or for another subject)."""
        url = meta.get("userinfo_endpoint")
        if not isinstance(url, str):
            return {}
        try:
            info = await self._get_json(url, {"Authorization": f"Bearer {access_token}"})
        except (SignInError, httpx.HTTPError):
            return {}
        if str(info.get("sub")) != str(subject):
            return {}  # OIDC Core 5.3.2: another subject's claims must not be used
        return info


def _groups(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list):
        return tuple(str(g) for g in value if isinstance(g, str))
    return None
