"""ID token verification with joserfc: JWKS signature (with key rotation) and claims.

Only asymmetric algorithms are accepted, so ``alg: none`` and the "HS256 signed with the
provider's public key" confusion are refused before any key is touched. The JWKS is
cached; a token whose ``kid`` is unknown triggers one refetch (the provider rotated its
keys), rate-limited so a stream of bogus ``kid``s cannot make us hammer the provider.
Claims: ``iss`` exact, ``aud`` contains the client id (and ``azp`` is the client id when
there are several audiences), ``exp``/``iat`` with a small skew, ``nonce`` when expected.
"""

from __future__ import annotations

import asyncio
import email.utils
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    MissingKeyError,
)
from joserfc.jwk import KeySet

from core.auth.errors import BadProviderResponse, ClockSkewError, IdTokenError
from core.auth.http import json_object, map_transport_error

__all__ = [
    "ALLOWED_ALGORITHMS",
    "DEFAULT_SKEW_S",
    "IdTokenClaims",
    "IdTokenVerifier",
    "JwksCache",
    "server_time",
]

#: Asymmetric signature algorithms only: never ``none``, never HMAC (HS*).
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)
#: Allowed clock difference between this computer and the provider, in seconds.
DEFAULT_SKEW_S = 120
_PUBLIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


@dataclass(frozen=True, slots=True)
class IdTokenClaims:
    """The verified identity from an ID token (what ``whoami`` shows)."""

    sub: str
    iss: str
    aud: tuple[str, ...]
    exp: int
    iat: int
    email: str | None = None
    name: str | None = None
    preferred_username: str | None = None

    @property
    def display_name(self) -> str:
        """The best human label for the user: email, name, username, else ``sub``."""
        return self.email or self.name or self.preferred_username or self.sub


def server_time(response: httpx.Response) -> float | None:
    """The provider's clock from a response's ``Date`` header, if any (for skew hints)."""
    date = response.headers.get("date")
    if not date:
        return None
    try:
        return email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None


class JwksCache:
    """The provider's signing keys, fetched lazily and refetched on an unknown ``kid``.

    Use from the event loop's thread only. ``key_set(refresh=True)`` is rate-limited to
    one fetch per ``min_refetch_s``; fetch failures raise ``ProviderError`` subclasses
    and keep the previous key set.
    """

    def __init__(
        self,
        jwks_uri: str,
        http: httpx.AsyncClient,
        *,
        min_refetch_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_uri = jwks_uri
        self._http = http
        self._min_refetch_s = min_refetch_s
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key_set(self, *, refresh: bool = False) -> KeySet:
        """The current key set; with ``refresh``, refetch unless fetched very recently."""
        async with self._lock:
            recent = self._clock() - self._fetched_at < self._min_refetch_s
            if self._keys is not None and (not refresh or recent):
                return self._keys
            self._keys = await self._fetch()
            self._fetched_at = self._clock()
            return self._keys

    async def _fetch(self) -> KeySet:
        try:
            response = await self._http.get(self.jwks_uri, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise map_transport_error(exc, "JWKS") from exc
        if response.status_code != 200:
            raise BadProviderResponse(
                f"The identity provider's signing keys (JWKS) answered HTTP {response.status_code}."
            )
        doc = json_object(response, "JWKS")
        keys = doc.get("keys")
        if not isinstance(keys, list):
            raise BadProviderResponse("The identity provider's JWKS has no 'keys' list.")
        # Public signature keys only: a symmetric ("oct") key in a JWKS is never trusted.
        public = [
            k
            for k in keys
            if isinstance(k, dict)
            and k.get("kty") in _PUBLIC_KEY_TYPES
            and k.get("use", "sig") == "sig"
            and "d" not in k
        ]
        try:
            return KeySet.import_key_set({"keys": public})
        except (JoseError, ValueError, TypeError) as exc:
            raise BadProviderResponse(
                f"The identity provider's JWKS has no usable signing key ({exc})."
            ) from exc


class IdTokenVerifier:
    """Verifies ID tokens of one issuer for one client. Loop thread only."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        jwks: JwksCache,
        *,
        skew_s: int = DEFAULT_SKEW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.jwks = jwks
        self.skew_s = skew_s
        self._clock = clock

    async def verify(
        self,
        token: str,
        *,
        nonce: str | None,
        provider_time: float | None = None,
    ) -> IdTokenClaims:
        """Verify ``token`` and return its claims.

        ``nonce``: the value sent in the authorization request (``None`` for a refresh or
        a device login, where no nonce was sent). ``provider_time``: the provider's clock
        (``Date`` header), used only to tell clock skew from a really expired token.
        Raises ``IdTokenError`` (``ClockSkewError`` for a time problem that looks like a
        wrong clock) or a ``ProviderError`` when the JWKS cannot be fetched.
        """
        decoded = await self._decode(token)
        claims = decoded.claims
        self._check_claims(claims, nonce, provider_time)
        aud = claims["aud"]
        return IdTokenClaims(
            sub=str(claims["sub"]),
            iss=str(claims["iss"]),
            aud=tuple(aud) if isinstance(aud, list) else (str(aud),),
            exp=int(claims["exp"]),
            iat=int(claims["iat"]),
            email=_opt_str(claims.get("email")),
            name=_opt_str(claims.get("name")),
            preferred_username=_opt_str(claims.get("preferred_username")),
        )

    async def _decode(self, token: str) -> jwt.Token:
        if not isinstance(token, str) or token.count(".") != 2:
            raise IdTokenError("The ID token is not a signed JWT (JWS compact form).")
        keys = await self.jwks.key_set()
        for attempt in (0, 1):
            try:
                return jwt.decode(token, keys, algorithms=ALLOWED_ALGORITHMS)
            except (InvalidKeyIdError, MissingKeyError) as exc:
                if attempt == 0:
                    # Unknown kid: the provider may have rotated its keys since we cached.
                    keys = await self.jwks.key_set(refresh=True)
                    continue
                raise IdTokenError(
                    "The ID token is signed with a key the identity provider does not publish."
                ) from exc
            except BadSignatureError as exc:
                raise IdTokenError("The ID token's signature is invalid.") from exc
            except JoseError as exc:
                alg = _header_alg(token)
                if alg is not None and alg not in ALLOWED_ALGORITHMS:
                    raise IdTokenError(
                        f"The ID token uses the algorithm {alg!r}, which is refused "
                        "(only asymmetric signatures are accepted)."
                    ) from exc
                raise IdTokenError(f"The ID token cannot be verified ({exc.error}).") from exc
            except (ValueError, TypeError) as exc:
                raise IdTokenError("The ID token is malformed.") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_claims(
        self, claims: dict[str, Any], nonce: str | None, provider_time: float | None
    ) -> None:
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=self.skew_s,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError as exc:
            raise self._time_error("expired", claims, provider_time) from exc
        except ClaimError as exc:
            if exc.claim in {"iat", "nbf"} and (
                "future" in exc.description or "not yet" in exc.description
            ):
                raise self._time_error("not yet valid", claims, provider_time) from exc
            if exc.claim == "iss":
                raise IdTokenError(
                    f"The ID token's issuer {claims.get('iss')!r} is not {self.issuer!r}."
                ) from exc
            if exc.claim == "aud":
                raise IdTokenError(
                    f"The ID token is for audience {claims.get('aud')!r}, not this client "
                    f"({self.client_id!r})."
                ) from exc
            raise IdTokenError(f"The ID token's claims are invalid ({exc.description}).") from exc
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.client_id:
            raise IdTokenError("The ID token has several audiences and 'azp' is not this client.")
        if nonce is not None:
            got = claims.get("nonce")
            if not isinstance(got, str) or not hmac.compare_digest(got, nonce):
                raise IdTokenError(
                    "The ID token's nonce does not match this sign-in (replayed or foreign token)."
                )

    def _time_error(
        self, what: str, claims: dict[str, Any], provider_time: float | None
    ) -> IdTokenError:
        now = self._clock()
        if provider_time is not None and abs(provider_time - now) <= self.skew_s:
            # Our clock agrees with the provider's: the token itself is bad.
            return IdTokenError(f"The ID token is {what} (exp={claims.get('exp')}).")
        offset = "" if provider_time is None else f" (off by {int(now - provider_time)} s)"
        return ClockSkewError(
            f"The ID token is {what} by this computer's clock{offset}; the clock is probably wrong."
        )


def _header_alg(token: str) -> str | None:
    from joserfc.jws import extract_compact

    try:
        alg = extract_compact(token.encode()).headers().get("alg")
    except (JoseError, ValueError, TypeError):
        return None
    return alg if isinstance(alg, str) else None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
