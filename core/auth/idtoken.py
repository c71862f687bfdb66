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
    InvalidKeyIdError,
    JoseError,
    MissingKeyError,
)
from joserfc.jwk import KeySet

from core.auth.errors import BadProviderResponse, ClockSkewError, IdTokenError
from core.auth.http import json_object, map_transport_error
from core.text import safe_line

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
        provider_clock_ok: bool = False,
    ) -> IdTokenClaims:
        """Verify ``token`` and return its claims.

        ``nonce``: the value sent in the authorization request (``None`` for a refresh or
        a device login, where no nonce was sent). ``provider_time``: the provider's clock
        (``Date`` header), used to tell clock skew from a really expired token;
        ``provider_clock_ok``: judge the times by the provider's clock when this computer's
        is off (a refresh; see ``_check_times``). Raises ``IdTokenError`` (``ClockSkewError``
        for a time problem caused by this computer's clock) or a ``ProviderError`` when the
        JWKS cannot be fetched.
        """
        decoded = await self._decode(token)
        claims = decoded.claims
        self._check_claims(claims, nonce, provider_time, provider_clock_ok)
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
                        f"The ID token uses the algorithm {safe_line(alg)!r}, which is refused "
                        "(only asymmetric signatures are accepted)."
                    ) from exc
                raise IdTokenError(
                    f"The ID token cannot be verified ({safe_line(exc.error)})."
                ) from exc
            except (ValueError, TypeError) as exc:
                raise IdTokenError("The ID token is malformed.") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_claims(
        self,
        claims: dict[str, Any],
        nonce: str | None,
        provider_time: float | None,
        provider_clock_ok: bool,
    ) -> None:
        # Times are checked by _check_times (claim named exactly, this computer's clock
        # told apart from a bad token); joserfc checks the rest.
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            sub={"essential": True},
        )
        try:
            registry.validate({k: v for k, v in claims.items() if k not in _TIME_CLAIMS})
        except ClaimError as exc:
            if exc.claim == "iss":
                raise IdTokenError(
                    f"The ID token's issuer {safe_line(claims.get('iss'))!r} is not "
                    f"{self.issuer!r}."
                ) from exc
            if exc.claim == "aud":
                raise IdTokenError(
                    f"The ID token is for audience {safe_line(claims.get('aud'))!r}, not this "
                    f"client ({self.client_id!r})."
                ) from exc
            raise IdTokenError(
                f"The ID token's claims are invalid ({safe_line(exc.description)})."
            ) from exc
        self._check_times(claims, provider_time, provider_clock_ok)
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.client_id:
            raise IdTokenError("The ID token has several audiences and 'azp' is not this client.")
        if nonce is not None:
            got = claims.get("nonce")
            if not isinstance(got, str) or not hmac.compare_digest(got, nonce):
                raise IdTokenError(
                    "The ID token's nonce does not match this sign-in (replayed or foreign token)."
                )

    def _check_times(
        self, claims: dict[str, Any], provider_time: float | None, provider_clock_ok: bool
    ) -> None:
        """``exp``, ``iat`` (and ``nbf``) against this computer's clock, with the leeway.

        A failure names the claim. When the provider's clock (``Date`` header) shows that
        this computer's clock is off by more than the leeway, the failure is a
        ``ClockSkewError`` saying by how much — unless ``provider_clock_ok`` (a refresh of a
        session already verified): then the times are judged by the provider's clock, so a
        wrong clock does not throw away tokens the provider already rotated.
        """
        for name in ("exp", "iat"):
            if name not in claims:
                raise IdTokenError(f"The ID token has no {name!r} claim.")
        for name in _TIME_CLAIMS:
            value = claims.get(name)
            if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise IdTokenError(f"The ID token's {name!r} claim is not a time.")
        now = self._clock()
        problem = _time_problem(claims, now, self.skew_s)
        if problem is None:
            return
        skew = None if provider_time is None else now - provider_time
        if skew is not None and abs(skew) > self.skew_s:
            if provider_clock_ok and _time_problem(claims, now - skew, self.skew_s) is None:
                return
            raise ClockSkewError.measured(
                skew, f"the sign-in's ID token {problem} by this computer's clock"
            )
        if skew is None:
            raise IdTokenError(
                f"The ID token {problem} (and the identity provider did not say its time).",
                "Check this computer's date and time; then sign in again.",
            )
        # Our clock agrees with the provider's: the token itself is bad.
        raise IdTokenError(f"The ID token {problem}.")


_TIME_CLAIMS = ("exp", "iat", "nbf")


def _time_problem(claims: dict[str, Any], now: float, leeway: float) -> str | None:
    """What is wrong with the token's times at ``now`` (naming the claim), or None. Pure."""
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
    assert isinstance(exp, int | float)
    assert isinstance(iat, int | float)
    if exp <= now - leeway:
        return f"expired {_minutes(now - exp)} ago ('exp')"
    if iat > now + leeway:
        return f"was issued {_minutes(iat - now)} in the future ('iat')"
    if isinstance(nbf, int | float) and nbf > now + leeway:
        return f"is not valid for another {_minutes(nbf - now)} ('nbf')"
    return None


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)} s"
    return f"{round(seconds / 60)} min"


def _header_alg(token: str) -> str | None:
    from joserfc.jws import extract_compact

    try:
        alg = extract_compact(token.encode()).headers().get("alg")
    except (JoseError, ValueError, TypeError):
        return None
    return alg if isinstance(alg, str) else None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
