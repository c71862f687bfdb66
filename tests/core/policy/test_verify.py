"""The bundle gate: every kind of bad token is refused with its own clear error."""

from __future__ import annotations

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.policy.errors import (
    BundleExpiredError,
    BundleNotYetValidError,
    BundleRejected,
    BundleSchemaError,
    BundleSignatureError,
    RollbackError,
    WrongDeviceError,
)
from core.policy.verify import verify_bundle
from core.wire.policy import encode_bundle
from core.wire.signing import b64url, sign
from tests.core.policy.helpers import DEVICE, KEY, KEYS, KID, NOW, bundle, rule, token

pytestmark = pytest.mark.unit


def check(tok: str | bytes, *, now: float = NOW, held: int | None = None, **kw: object) -> object:
    return verify_bundle(tok, KEYS, device_id=DEVICE, now=now, held_version=held, **kw)  # type: ignore[arg-type]


def test_valid_bundle_passes() -> None:
    b = bundle(rule("r1"), version=7)
    assert check(token(b)) == b
    assert check(token(b).encode()) == b


def test_unsigned_token_is_refused() -> None:
    header = b64url(msgspec.json.encode({"alg": "none", "typ": "rustronaut-policy+jws"}))
    unsigned = f"{header}.{b64url(encode_bundle(bundle()))}."
    with pytest.raises(BundleSignatureError, match="algorithm 'none'"):
        check(unsigned)


def test_signature_by_another_key_is_refused() -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(BundleSignatureError, match="does not verify"):
        check(token(bundle(), key=other, kid=KID))


def test_unknown_kid_is_refused() -> None:
    with pytest.raises(BundleSignatureError, match="not trusted"):
        check(token(bundle(), kid="other"))


def test_document_of_another_type_is_refused() -> None:
    posture_like = sign(encode_bundle(bundle()), KEY, typ="rustronaut-posture+jws", kid=KID)
    with pytest.raises(BundleSignatureError, match="document type"):
        check(posture_like)


def test_payload_swap_is_refused() -> None:
    good = token(bundle(version=1)).split(".")
    evil = b64url(encode_bundle(bundle(rule("everything", resources=("*",)), version=1)))
    with pytest.raises(BundleSignatureError):
        check(".".join((good[0], evil, good[2])))


def test_signed_garbage_is_a_schema_error() -> None:
    tok = sign(b'{"version": "one"}', KEY, typ="rustronaut-policy+jws", kid=KID)
    with pytest.raises(BundleSchemaError, match="version"):
        check(tok)


def test_other_devices_bundle_is_refused() -> None:
    with pytest.raises(WrongDeviceError, match="dev-2"):
        check(token(bundle(device_id="dev-2")))


def test_expired_bundle_is_refused() -> None:
    b = bundle()
    with pytest.raises(BundleExpiredError, match="expired"):
        check(token(b), now=b.expires_at)


def test_future_bundle_beyond_skew_is_refused_within_skew_accepted() -> None:
    b = bundle(issued_at=int(NOW) + 200, expires_at=int(NOW) + 5000)
    assert check(token(b), skew=300) == b
    with pytest.raises(BundleNotYetValidError, match="future"):
        check(token(b), skew=100)


def test_older_version_is_refused_same_passes() -> None:
    b = bundle(version=4)
    with pytest.raises(RollbackError, match="older than the held version 5"):
        check(token(b), held=5)
    assert check(token(b), held=4) == b


def test_oversized_token_is_refused() -> None:
    with pytest.raises(BundleSignatureError, match="over the"):
        check(token(bundle()), max_size=100)


def test_every_refusal_is_a_bundle_rejected_value_error() -> None:
    assert issubclass(BundleRejected, ValueError)
    for cls in (BundleSignatureError, BundleSchemaError, WrongDeviceError, RollbackError):
        assert issubclass(cls, BundleRejected)
