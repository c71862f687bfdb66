"""Key endorsements: a policy root key vouching for a signing key (or for its successor).

The organisation's **root** keys (the client's trust anchors, from the installer or MDM)
never sign bundles. They sign short statements instead, each a JWS of ``typ``
:data:`ENDORSEMENT_TYP` over the canonical JSON of :class:`KeyEndorsement`::

    {"kid": "<key_id of the key>", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "..."},
     "role": "signing", "not_before": 1800000000, "not_after": 1831536000}

- ``role: "signing"``: the key may sign policy bundles between ``not_before`` and
  ``not_after``. Rotating the signing key = the root signs a new endorsement.
- ``role: "root"``: the key becomes a root too (it may endorse keys): rotating the root
  = the old root endorses the new one, so clients whose anchor is the old root follow.

The controller publishes its endorsements in its discovery document; anyone may relay
them, none can be forged without a root's private key.

Errors::

    SignatureError (wg_backends.signed.jws)   bad JWS, unknown root, bad signature
    EndorsementError (ValueError)        signed, but not a valid endorsement: schema,
                                         canonical form, kid/key mismatch, outside its
                                         validity window
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final, Literal

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from msgspec import Meta

from wg_backends.signed.canonical import CanonicalJsonError, check_canonical, check_depth
from wg_backends.signed.jws import (
    b64url,
    key_id,
    public_key_from_jwk,
    sign,
    verify,
)

__all__ = [
    "ENDORSEMENT_TYP",
    "MAX_ENDORSEMENT_BYTES",
    "EndorsedKey",
    "EndorsementError",
    "KeyEndorsement",
    "decode_endorsement",
    "endorse",
    "verify_endorsement",
]

ENDORSEMENT_TYP: Final = "rustronaut-key-endorsement+jws"
MAX_ENDORSEMENT_BYTES: Final = 2048

_B64_KEY = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")]
_KID = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_TS = Annotated[int, Meta(ge=0, le=2**41)]


class EndorsementError(ValueError):
    """A signed endorsement is not valid (schema, canonical form, kid, time window)."""


class EndorsedKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The endorsed public key as an RFC 8037 OKP JWK (public part only)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: _B64_KEY


class KeyEndorsement(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A root's statement that ``jwk`` may act as ``role`` within the time window."""

    kid: _KID
    jwk: EndorsedKey
    role: Literal["signing", "root"]
    not_before: _TS
    not_after: _TS

    def public_key(self) -> Ed25519PublicKey:
        """The endorsed key (already checked to match ``kid``)."""
        return public_key_from_jwk(msgspec.to_builtins(self.jwk))


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(KeyEndorsement)


def decode_endorsement(payload: bytes) -> KeyEndorsement:
    """Parse a (signature-checked) payload in its canonical form. Raises
    ``EndorsementError``. Pure; any thread."""
    try:
        check_depth(payload, 8, what="key endorsement")
        statement = _DECODER.decode(payload)
        check_canonical(payload, statement, _ENCODER.encode, what="key endorsement")
    except (msgspec.DecodeError, CanonicalJsonError, UnicodeDecodeError) as exc:
        raise EndorsementError(f"not a valid key endorsement: {exc}") from None
    try:
        key = statement.public_key()
    except ValueError as exc:
        raise EndorsementError(f"key endorsement holds a bad key: {exc}") from None
    if key_id(key) != statement.kid:
        raise EndorsementError(f"key endorsement's kid {statement.kid!r} does not name its key")
    if statement.not_after <= statement.not_before:
        raise EndorsementError("key endorsement's not_after is not after its not_before")
    return statement


def endorse(
    key: Ed25519PublicKey,
    root: Ed25519PrivateKey,
    *,
    role: Literal["signing", "root"] = "signing",
    not_before: int,
    not_after: int,
) -> str:
    """Sign an endorsement of ``key`` with ``root``: a JWS compact string. Pure."""
    raw = b64url(key.public_bytes_raw())
    statement = KeyEndorsement(
        kid=key_id(key),
        jwk=EndorsedKey(kty="OKP", crv="Ed25519", x=raw),
        role=role,
        not_before=not_before,
        not_after=not_after,
    )
    return sign(_ENCODER.encode(statement), root, typ=ENDORSEMENT_TYP)


def verify_endorsement(
    token: str, roots: Mapping[str, Ed25519PublicKey], *, now: float, skew: float = 300
) -> KeyEndorsement:
    """The endorsement in ``token`` if a key of ``roots`` signed it and it is valid at
    ``now`` (± ``skew``). Raises ``SignatureError`` or ``EndorsementError``. Pure."""
    doc = verify(token, roots, typ=ENDORSEMENT_TYP, max_size=MAX_ENDORSEMENT_BYTES)
    statement = decode_endorsement(doc.payload)
    if now + skew < statement.not_before:
        raise EndorsementError(
            f"the endorsement of key {statement.kid!r} is valid only from {statement.not_before}"
        )
    if now - skew >= statement.not_after:
        raise EndorsementError(
            f"the endorsement of key {statement.kid!r} expired at {statement.not_after}"
        )
    return statement
