"""``TokenSet``: the tokens of one sign-in and the verified identity, as kept in the keyring.

Built once from a verified token response (``from_response``), immutable afterwards; a
refresh produces a new ``TokenSet``. Serialised as JSON (msgspec) for the secret store.
"""

from __future__ import annotations

import math
import time
from typing import Any

import msgspec

from core.auth.errors import BadProviderResponse
from core.auth.idtoken import IdTokenClaims

__all__ = ["TokenSet"]

_DEFAULT_EXPIRES_IN = 300  # a provider that omits expires_in: assume short-lived


class TokenSet(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Tokens of one signed-in session plus the identity from its (verified) ID token."""

    issuer: str
    client_id: str
    access_token: str
    token_type: str
    expires_at: float  # epoch seconds when the access token expires
    identity: IdTokenClaims
    refresh_token: str | None = None
    refresh_expires_at: float | None = None  # when the provider says (refresh_expires_in)
    id_token: str | None = None
    scope: str = ""
    issued_at: float | None = None  # when this computer received the set (epoch s)

    @property
    def renewable(self) -> bool:
        """True when the set holds a refresh token: the session renews itself."""
        return self.refresh_token is not None

    @property
    def session_expires_at(self) -> float | None:
        """When the session ends without a new sign-in, or ``None`` if unknown.

        Without a refresh token the session ends with the access token; with one, it ends
        when the refresh token does, if the provider said when (else unknown).
        """
        if self.refresh_token is None:
            return self.expires_at
        return self.refresh_expires_at

    def to_json(self) -> bytes:
        """The JSON form stored in the keyring."""
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> TokenSet:
        """Parse the stored form; raises ``msgspec.ValidationError``/``DecodeError``."""
        return msgspec.json.decode(data, type=cls)

    @classmethod
    def from_response(
        cls,
        body: dict[str, Any],
        *,
        issuer: str,
        client_id: str,
        identity: IdTokenClaims,
        now: float | None = None,
        previous: TokenSet | None = None,
    ) -> TokenSet:
        """Build from a token endpoint answer whose ID token (if any) is already verified.

        ``previous``: the set being refreshed; its refresh token is kept when the provider
        does not rotate it, and its ID token when none is returned. Raises
        ``BadProviderResponse`` when required fields are missing or of the wrong type.
        """
        now = time.time() if now is None else now
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise BadProviderResponse("The token answer has no access_token.")
        token_type = body.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise BadProviderResponse(
                f"The token answer's token_type {token_type!r} is not Bearer."
            )
        expires_in = _seconds(body.get("expires_in"), "expires_in") or _DEFAULT_EXPIRES_IN
        refresh = body.get("refresh_token")
        if refresh is not None and (not isinstance(refresh, str) or not refresh):
            raise BadProviderResponse("The token answer's refresh_token is not a string.")
        refresh_in = _seconds(body.get("refresh_expires_in"), "refresh_expires_in")
        id_token = body.get("id_token")
        if id_token is not None and not isinstance(id_token, str):
            raise BadProviderResponse("The token answer's id_token is not a string.")
        scope = body.get("scope", previous.scope if previous else "")
        if not isinstance(scope, str):
            raise BadProviderResponse("The token answer's scope is not a string.")
        keep_refresh = previous.refresh_token if previous else None
        return cls(
            issuer=issuer,
            client_id=client_id,
            access_token=access,
            token_type="Bearer",  # noqa: S106 (a type, not a secret)
            expires_at=now + expires_in,
            identity=identity,
            refresh_token=refresh or keep_refresh,
            refresh_expires_at=(
                now + refresh_in
                if refresh_in
                else (previous.refresh_expires_at if previous and not refresh else None)
            ),
            id_token=id_token or (previous.id_token if previous else None),
            scope=scope,
            issued_at=now,
        )


def _seconds(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():  # some providers send a string
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadProviderResponse(f"The token answer's {name} is not a number.")
    if value < 0:
        raise BadProviderResponse(f"The token answer's {name} is negative.")
    return float(value)
