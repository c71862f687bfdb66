"""Signed documents: round trip, and every way a token is refused."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.wire import signing
from core.wire.signing import b64url, b64url_decode

pytestmark = pytest.mark.unit


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _keys(key: Ed25519PrivateKey) -> dict[str, signing.Ed25519PublicKey]:
    return {signing.key_id(key.public_key()): key.public_key()}


def test_round_trip(key: Ed25519PrivateKey) -> None:
    token = signing.sign(b'{"a":1}', key, typ="t+jws")
    doc = signing.verify(token, _keys(key), typ="t+jws", max_size=1000)
    assert doc.payload == b'{"a":1}'
    assert doc.kid == signing.key_id(key.public_key())


def test_jwk_round_trip(key: Ed25519PrivateKey) -> None:
    jwk = signing.jwk_from_public_key(key.public_key())
    assert jwk["alg"] == "Ed25519"
    assert "d" not in jwk
    back = signing.public_key_from_jwk(jwk)
    assert signing.key_id(back) == jwk["kid"]


def _tamper_payload(token: str) -> str:
    h, p, s = token.split(".")
    return f"{h}.{b64url(b64url_decode(p).replace(b'1', b'2'))}.{s}"


def _swap_header(token: str, header: bytes) -> str:
    _, p, s = token.split(".")
    return f"{b64url(header)}.{p}.{s}"


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (_tamper_payload, signing.BadSignatureError),
        (lambda t: t + "A", signing.SignatureError),
        (lambda t: t.rsplit(".", 1)[0], signing.MalformedTokenError),
        (lambda t: "x" * 5000, signing.MalformedTokenError),
        (
            lambda t: _swap_header(t, b'{"alg":"none","kid":"k","typ":"t+jws"}'),
            signing.MalformedTokenError,
        ),
        (
            lambda t: _swap_header(t, b'{"alg":"HS256","kid":"k","typ":"t+jws"}'),
            signing.MalformedTokenError,
        ),
        (lambda t: _swap_header(t, b"[1,2]"), signing.MalformedTokenError),
        (lambda t: _swap_header(t, b"not json"), signing.MalformedTokenError),
    ],
)
def test_refusals(key: Ed25519PrivateKey, mutate, error) -> None:  # type: ignore[no-untyped-def]
    token = signing.sign(b'{"a":1}', key, typ="t+jws")
    with pytest.raises(error):
        signing.verify(mutate(token), _keys(key), typ="t+jws", max_size=1000)


def test_wrong_type_and_unknown_key(key: Ed25519PrivateKey) -> None:
    token = signing.sign(b"{}", key, typ="bundle+jws")
    with pytest.raises(signing.MalformedTokenError, match="document type"):
        signing.verify(token, _keys(key), typ="posture+jws", max_size=1000)
    other = Ed25519PrivateKey.generate()
    with pytest.raises(signing.UnknownKeyError):
        signing.verify(token, _keys(other), typ="bundle+jws", max_size=1000)
    # same kid but another key: the signature must fail, not pass by kid alone
    forged = {signing.key_id(key.public_key()): other.public_key()}
    with pytest.raises(signing.BadSignatureError):
        signing.verify(token, forged, typ="bundle+jws", max_size=1000)


def test_large_payloads_within_the_callers_cap(key: Ed25519PrivateKey) -> None:
    """joserfc's library-wide 128 kB cap does not apply; the caller's own cap does."""
    payload = b'{"x":"' + b"a" * 500_000 + b'"}'
    token = signing.sign(payload, key, typ="t+jws")
    assert signing.verify(token, _keys(key), typ="t+jws", max_size=1_000_000).payload == payload
    with pytest.raises(signing.MalformedTokenError, match="over the"):
        signing.verify(token, _keys(key), typ="t+jws", max_size=600_000)
