"""Validation of the users' bearer tokens (OIDC access or ID tokens, JWT).

For each trusted issuer the validator knows its key set: fetched from the issuer's
``jwks_uri`` (from its discovery document unless configured), cached for
``JWKS_TTL_S`` and re-fetched at most every ``REFRESH_MIN_S`` when a token names an
unknown ``kid`` (key rotation). The built-in development provider hands its keys in
directly. Checked: signature (RS256/ES256/EdDSA only), ``iss`` among the trusted, ``aud``
among that issuer's audiences, ``exp`` (required) and ``nbf``/``iat`` with a little skew.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from controller.config import IssuerConfig
from controller.errors import Unauthorized, Unavailable

__all__ = ["Identity", "TokenValidator"]

JWKS_TTL_S = 300.0
REFRESH_MIN_S = 30.0
LEEWAY_S = 30
_ALGS = ["RS256", "ES256", "EdDSA", "Ed25519"]
_MAX_TOKEN = 16 * 1024
_MAX_DOC = 256 * 1024


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a valid token speaks for."""

    issuer: str
    subject: str
    user_id: str
    email: str
    groups: tuple[str, ...]
    jti: str | None


class _IssuerState:
    def __init__(self, cfg: IssuerConfig, keys: KeySet | None) -> None:
        self.cfg = cfg
        self.keys = keys
        self.static = keys is not None
        self.fetched_at = 0.0
        self.forced_at = float("-inf")


class TokenValidator:
    """Validates bearer tokens for the configured issuers. Async; one event loop."""

    def __init__(
        self,
        issuers: list[IssuerConfig],
        *,
        local_keys: dict[str, KeySet] | None = None,
        revoked: Callable[[str, str], bool] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        local_keys = local_keys or {}
        self._issuers = {i.issuer: _IssuerState(i, local_keys.get(i.issuer)) for i in issuers}
        self._revoked = revoked
        self._transport = transport

    async def _fetch_json(self, url: str) -> dict[str, Any]:
        async with httpx.AsyncClient(transport=self._transport, timeout=5.0) as client:
            resp = await client.get(url)
            resp.raise_for_status()
            if len(resp.content) > _MAX_DOC:
                raise ValueError("document too large")
            data = resp.json()
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return data

    async def _keys(self, state: _IssuerState, *, force: bool) -> KeySet:
        now = time.monotonic()
        if state.keys is not None and (
            state.static
            or (not force and now - state.fetched_at < JWKS_TTL_S)
            # An unknown kid re-fetches at most every REFRESH_MIN_S, so a flood of
            # tokens naming made-up keys cannot hammer the issuer.
            or (force and now - state.forced_at < REFRESH_MIN_S)
        ):
            return state.keys
        if force:
            state.forced_at = now
        try:
            uri = state.cfg.jwks_uri
            if uri is None:
                meta = await self._fetch_json(
                    state.cfg.issuer.rstrip("/") + "/.well-known/openid-configuration"
                )
                uri = str(meta["jwks_uri"])
            state.keys = KeySet.import_key_set(await self._fetch_json(uri))  # type: ignore[arg-type]
            state.fetched_at = now
        except (httpx.HTTPError, ValueError, KeyError, JoseError) as exc:
            if state.keys is not None:
                return state.keys
            raise Unavailable(
                f"cannot fetch the signing keys of {state.cfg.issuer}: {exc}"
            ) from exc
        return state.keys

    async def validate(self, token: str) -> Identity:
        """Validate ``token``; raises ``Unauthorized`` (or ``Unavailable``) with the reason."""
        if len(token) > _MAX_TOKEN or token.count(".") != 2:
            raise Unauthorized("bearer token is not a JWT")
        iss = _peek_issuer(token)
        state = self._issuers.get(str(iss))
        if state is None:
            raise Unauthorized(f"token issuer {iss!r} is not trusted")
        keys = await self._keys(state, force=False)
        try:
            tok = jwt.decode(token, keys, algorithms=_ALGS)
        except JoseError as exc:
            if exc.error in {"missing_key", "invalid_key"} or "kid" in str(exc.description):
                keys = await self._keys(state, force=True)
                try:
                    tok = jwt.decode(token, keys, algorithms=_ALGS)
                except JoseError as exc2:
                    raise Unauthorized(f"token signature refused: {exc2.error}") from exc2
            else:
                raise Unauthorized(f"token signature refused: {exc.error}") from exc
        except ValueError as exc:
            raise Unauthorized(f"token refused: {exc}") from exc
        claims = tok.claims
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_S,
            iss={"essential": True, "value": state.cfg.issuer},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise Unauthorized(
                f"token refused: {exc.error} {exc.description or ''}".strip()
            ) from exc
        aud = claims.get("aud")
        auds = {aud} if isinstance(aud, str) else set(aud or [])
        if not auds & set(state.cfg.audiences):
            raise Unauthorized(f"token audience {sorted(auds)} is not accepted")
        jti = claims.get("jti")
        if (
            jti is not None
            and self._revoked is not None
            and self._revoked(state.cfg.issuer, str(jti))
        ):
            raise Unauthorized("token has been revoked")
        subject = str(claims["sub"])
        email = str(claims.get("email") or "")
        raw_groups = claims.get(state.cfg.groups_claim) or []
        groups = tuple(str(g) for g in raw_groups) if isinstance(raw_groups, list) else ()
        return Identity(
            issuer=state.cfg.issuer,
            subject=subject,
            user_id=email or subject,
            email=email,
            groups=groups,
            jti=None if jti is None else str(jti),
        )


def _peek_issuer(token: str) -> str | None:
    """The unverified ``iss`` claim, only to pick which issuer's keys to try."""
    import json

    from core.wire.signing import b64url_decode

    try:
        claims = json.loads(b64url_decode(token.split(".")[1]))
    except (ValueError, IndexError):
        return None
    return str(claims.get("iss")) if isinstance(claims, dict) else None
