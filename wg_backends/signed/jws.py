"""Ed25519 JWS (compact serialisation) for signed documents, and key helpers.

Signed documents (policy bundles, posture reports) travel as JWS compact strings with the
fully-specified algorithm ``Ed25519`` (RFC 9864), a ``kid`` naming the signing key and a
``typ`` naming the document kind, so a token of one kind is never accepted as another.
Signing goes through joserfc (imported on first use); verification is done here directly
with ``cryptography`` over the signing input (RFC 7515 §5.2), after a strict allow-list
of the header and a strict base64url check: one pass over a multi-megabyte bundle instead
of a second parse, and no JOSE library loaded by a client that only verifies.

Errors::

    SignatureError                  anything wrong with a signed document
     ├── MalformedTokenError        not a JWS compact string, oversized, bad header
     ├── UnknownKeyError            ``kid`` not among the trusted keys
     └── BadSignatureError          the signature does not verify
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

if TYPE_CHECKING:
    from joserfc.jws import JWSRegistry

__all__ = [
    "ALG",
    "BadSignatureError",
    "MalformedTokenError",
    "SignatureError",
    "UnknownKeyError",
    "VerifiedDocument",
    "b64url",
    "b64url_decode",
    "jwk_from_public_key",
    "key_id",
    "public_key_from_jwk",
    "sign",
    "verify",
]

ALG = "Ed25519"
_MAX_HEADER = 1024
_SIG_B64_LEN = 86  # a 64-byte Ed25519 signature in unpadded base64url
_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class SignatureError(ValueError):
    """A signed document was refused; the message says why."""


class MalformedTokenError(SignatureError):
    """The input is not a well-formed, size-bounded JWS compact string."""


class UnknownKeyError(SignatureError):
    """The document names a key (``kid``) that is not trusted."""


class BadSignatureError(SignatureError):
    """The signature does not verify with the named key."""


@dataclass(frozen=True, slots=True)
class VerifiedDocument:
    """A document whose signature verified: its header and raw payload bytes."""

    kid: str
    typ: str
    payload: bytes


def b64url(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; raises ``ValueError`` on bad input."""
    pad = "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text + pad)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A stable key id: base64url of the first 12 bytes of SHA-256 of the raw key."""
    return b64url(hashlib.sha256(_raw_public(key)).digest()[:12])


def jwk_from_public_key(key: Ed25519PublicKey, kid: str | None = None) -> dict[str, str]:
    """The public key as an RFC 8037 OKP JWK with ``kid``, ``alg`` and ``use``."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(_raw_public(key)),
        "kid": kid or key_id(key),
        "alg": ALG,
        "use": "sig",
    }


def public_key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    """Parse an OKP/Ed25519 public JWK; raises ``MalformedTokenError`` otherwise."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "d" in jwk:
        raise MalformedTokenError("JWK is not an Ed25519 public key")
    try:
        raw = b64url_decode(str(jwk["x"]))
        return Ed25519PublicKey.from_public_bytes(raw)
    except (KeyError, ValueError) as exc:
        raise MalformedTokenError(f"JWK has a bad 'x': {exc}") from exc


def _registry(max_payload: int) -> JWSRegistry:
    # joserfc caps payloads library-wide (128 kB); a bundle of thousands of rules is
    # larger, so each call gets a registry whose cap is that call's own limit.
    from joserfc.jws import JWSRegistry

    registry = JWSRegistry(algorithms=[ALG])
    registry.max_payload_length = max_payload
    return registry


def sign(payload: bytes, key: Ed25519PrivateKey, *, typ: str, kid: str | None = None) -> str:
    """Sign ``payload`` and return the JWS compact string. Pure; any thread.

    joserfc is imported here, not at module import: only signers (the controller, tests)
    pay for it; a client that only verifies never loads it.
    """
    from joserfc import jws
    from joserfc.jwk import OKPKey

    pub = key.public_key()
    header = {"alg": ALG, "kid": kid or key_id(pub), "typ": typ}
    okp = OKPKey.import_key(key)
    return jws.serialize_compact(
        header, payload, okp, algorithms=[ALG], registry=_registry(len(payload) + 1)
    )


def _std_table() -> bytes:
    # base64url -> standard base64; every byte outside the base64url alphabet (padding,
    # "+", "/", quotes, backslashes, ...) becomes "!", which the decoder refuses.
    table = bytearray(b"!" * 256)
    for c in _B64URL_ALPHABET:
        table[c] = c
    table[ord("-")], table[ord("_")] = ord("+"), ord("/")
    return bytes(table)


_TO_STD_B64 = _std_table()


def _strict_b64url(std: bytes, start: int, end: int, what: str) -> bytes:
    """Decode ``std[start:end]`` — one unpadded base64url segment already mapped by
    ``_TO_STD_B64`` — refusing any byte outside the alphabet.

    msgspec's C base64 decoder (a JSON string typed ``bytes``) is ~5x faster than
    ``binascii`` on a multi-megabyte bundle, and unlike ``base64.urlsafe_b64decode`` it
    never skips stray bytes.
    """
    size = end - start
    text = b"".join((b'"', memoryview(std)[start:end], b"=" * (-size % 4), b'"'))
    try:
        return msgspec.json.decode(text, type=bytes)
    except msgspec.DecodeError:
        raise MalformedTokenError(f"JWS {what} is not base64url") from None


def verify(
    token: str | bytes,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    typ: str,
    max_size: int,
) -> VerifiedDocument:
    """Verify ``token`` against the trusted ``keys`` (by ``kid``) and return its payload.

    Checked in this order, cheapest first: the size cap, the compact shape, the header
    allow-list (``alg`` exactly ``Ed25519``, the expected ``typ``, a trusted ``kid``, no
    other field), a strict base64url alphabet and the 64-byte signature length, then the
    Ed25519 signature over the signing input (RFC 7515 §5.2) with ``cryptography`` — one
    pass over the token, no second parse. Raises a ``SignatureError`` subclass; never
    returns unverified data. Pure; any thread.
    """
    if len(token) > max_size:
        raise MalformedTokenError(f"token is {len(token)} bytes, over the {max_size} limit")
    if not token.isascii():
        raise MalformedTokenError("token is not ASCII")
    raw = token.encode("ascii") if isinstance(token, str) else bytes(token)
    dot1 = raw.find(b".")
    dot2 = raw.find(b".", dot1 + 1) if dot1 != -1 else -1
    if dot2 == -1 or raw.find(b".", dot2 + 1) != -1 or dot1 > _MAX_HEADER:
        raise MalformedTokenError("not a JWS compact string (header.payload.signature)")
    std = raw.translate(_TO_STD_B64)
    try:
        header = msgspec.json.decode(_strict_b64url(std, 0, dot1, "header"))
    except (ValueError, msgspec.DecodeError) as exc:  # MalformedTokenError, bad UTF-8
        raise MalformedTokenError("JWS header is not base64url JSON") from exc
    if not isinstance(header, dict):
        raise MalformedTokenError("JWS header is not an object")
    alg = header.get("alg")
    if alg != ALG:
        raise MalformedTokenError(f"algorithm {alg!r} is not accepted (only Ed25519)")
    if header.get("typ") != typ:
        raise MalformedTokenError(f"document type {header.get('typ')!r}, expected {typ!r}")
    if set(header) - {"alg", "kid", "typ"}:
        raise MalformedTokenError(
            f"unexpected JWS header fields {sorted(set(header) - {'alg', 'kid', 'typ'})}"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        raise UnknownKeyError(f"signing key {kid!r} is not trusted")
    if len(raw) - dot2 - 1 != _SIG_B64_LEN:
        raise BadSignatureError(f"signature is not 64 bytes (key {kid!r})")
    signature = _strict_b64url(std, dot2 + 1, len(raw), "signature")
    # Decoding the payload also checks its alphabet, so a malformed payload is refused
    # as such; its bytes are returned only once the signature over them verified.
    payload = _strict_b64url(std, dot1 + 1, dot2, "payload")
    try:
        keys[kid].verify(signature, memoryview(raw)[:dot2])
    except InvalidSignature:
        raise BadSignatureError(f"signature does not verify with key {kid!r}") from None
    return VerifiedDocument(kid=kid, typ=typ, payload=payload)
