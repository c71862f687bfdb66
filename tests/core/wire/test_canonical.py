"""Canonical JSON for every signed object, and bounded nesting before every decode.

Before issue 16 a signed payload with ``"version"`` twice was accepted (the last value
won) and a deeply nested error answer raised a bare ``RecursionError`` from the client.
Signed objects here are really signed (Ed25519 JWS) and verified by the real
``verify_bundle`` / ``verify_report`` / ``verify_endorsement``; the control-plane client
talks to a real HTTP server on loopback.
"""

from __future__ import annotations

import time

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from core.controlplane import ControlPlaneClient
from core.controlplane.errors import InvalidAnswerError, ServerError
from core.policy.errors import BundleSchemaError
from core.policy.verify import verify_bundle
from core.wire.canonical import (
    MAX_JSON_DEPTH,
    CanonicalJsonError,
    DuplicateKeyError,
    NestingTooDeepError,
    NonCanonicalNumberError,
    NotCanonicalError,
    check_canonical,
    check_depth,
)
from core.wire.endorsement import (
    ENDORSEMENT_TYP,
    EndorsementError,
    decode_endorsement,
    endorse,
    verify_endorsement,
)
from core.wire.policy import BUNDLE_TYP, PolicyBundle, UserInfo, encode_bundle
from core.wire.posture import (
    POSTURE_TYP,
    PostureReport,
    ReportMalformedError,
    encode_report,
    verify_report,
)
from core.wire.signing import key_id, sign
from tests.core.policy.hostile import Answer, serve

pytestmark = [pytest.mark.unit, pytest.mark.hostile_controller]

KEY = Ed25519PrivateKey.generate()
KID = key_id(KEY.public_key())
KEYS = {KID: KEY.public_key()}
NOW = int(time.time())


def _bundle_payload() -> bytes:
    b = PolicyBundle(
        version=3,
        device_id="dev-1",
        issued_at=NOW - 60,
        expires_at=NOW + 3600,
        user=UserInfo(subject="alice"),
    )
    return encode_bundle(b)


def _verify(payload: bytes) -> PolicyBundle:
    token = sign(payload, KEY, typ=BUNDLE_TYP, kid=KID)
    return verify_bundle(token, KEYS, device_id="dev-1", now=NOW)


def test_the_canonical_bundle_verifies() -> None:
    assert _verify(_bundle_payload()).version == 3


def test_a_signed_bundle_with_version_twice_is_refused() -> None:
    """The finding: ``{"version":3,...,"version":99}`` verified and version 99 won."""
    payload = _bundle_payload()
    twice = payload[:-1] + b',"version":99}'
    with pytest.raises(BundleSchemaError, match="'version' appears twice"):
        _verify(twice)
    first = b'{"version":99,' + payload[1:]
    with pytest.raises(BundleSchemaError, match="'version' appears twice"):
        _verify(first)


@pytest.mark.parametrize(
    ("spelling", "why"),
    [
        (b'"version":3.0', "Expected `int`"),
        (b'"version":3e0', "Expected `int`"),
        (b'"version":0.3e1', "Expected `int`"),
        (b'"version":03', "JSON"),
        (b'"version":+3', "JSON"),
    ],
)
def test_non_canonical_integers_are_refused(spelling: bytes, why: str) -> None:
    payload = _bundle_payload().replace(b'"version":3', spelling, 1)
    with pytest.raises(BundleSchemaError, match=why):
        _verify(payload)


def test_minus_zero_is_refused_as_non_canonical() -> None:
    payload = _bundle_payload().replace(f'"issued_at":{NOW - 60}'.encode(), b'"issued_at":-0')
    with pytest.raises(BundleSchemaError, match="'-0' is not in canonical form"):
        _verify(payload)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.replace(b",", b", ", 1),  # spacing
        lambda p: p.replace(b'"user":{"subject":"alice"}', b'"user":{"subject":"\\u0061lice"}'),
        lambda p: b" " + p,
    ],
)
def test_other_spellings_of_the_same_bundle_are_refused(mutate: object) -> None:
    payload = mutate(_bundle_payload())  # type: ignore[operator]
    with pytest.raises(BundleSchemaError, match="canonical"):
        _verify(payload)


def test_key_order_matters() -> None:
    payload = _bundle_payload()
    obj = msgspec.json.decode(payload)
    reordered = msgspec.json.encode(dict(reversed(list(obj.items()))))
    with pytest.raises(BundleSchemaError, match="canonical form"):
        _verify(reordered)


def test_a_deeply_nested_bundle_is_refused_with_the_packages_error() -> None:
    deep = _bundle_payload()[:-1] + b',"x":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    with pytest.raises(BundleSchemaError, match="nests deeper than 64"):
        _verify(deep)


def test_posture_report_duplicates_are_refused() -> None:
    report = PostureReport(device_id="dev-1", nonce="n" * 22, issued_at=float(NOW), facts=())
    payload = encode_report(report)
    token = sign(payload[:-1] + b',"nonce":"' + b"m" * 22 + b'"}', KEY, typ=POSTURE_TYP)
    with pytest.raises(ReportMalformedError, match="appears twice"):
        verify_report(
            token,
            KEY.public_key(),
            device_id="dev-1",
            expected_nonce="m" * 22,
            now=NOW,
            max_age_s=60,
        )


def test_endorsement_must_be_canonical_and_name_its_key() -> None:
    good = endorse(KEY.public_key(), KEY, not_before=NOW - 10, not_after=NOW + 10)
    assert verify_endorsement(good, KEYS, now=NOW).kid == KID
    other = Ed25519PrivateKey.generate().public_key()
    body = msgspec.json.decode(decode_endorsement_payload(good))
    body["kid"] = key_id(other)
    with pytest.raises(EndorsementError, match="does not name its key"):
        decode_endorsement(msgspec.json.encode(body))
    twice = decode_endorsement_payload(good)[:-1] + b',"role":"root"}'
    with pytest.raises(EndorsementError, match="'role' appears twice"):
        verify_endorsement(sign(twice, KEY, typ=ENDORSEMENT_TYP), KEYS, now=NOW)


def decode_endorsement_payload(token: str) -> bytes:
    from core.wire.signing import b64url_decode

    return b64url_decode(token.split(".")[1])


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (b'{"a":1,"a":1}', DuplicateKeyError),
        (b'{"a":1e2}', NonCanonicalNumberError),
        (b'{"a":1.50}', NonCanonicalNumberError),
        (b'{"a":-0}', NonCanonicalNumberError),
        (b'{"a":NaN}', NonCanonicalNumberError),
        (b'{"a": 1}', NotCanonicalError),
    ],
)
def test_diagnosis_names_the_problem(text: bytes, error: type[Exception]) -> None:
    value = msgspec.json.decode(text.replace(b"NaN", b"0"))
    with pytest.raises(error):
        check_canonical(text, value, msgspec.json.encode, what="test")


def test_depth_limit_is_exact_and_ignores_brackets_in_strings() -> None:
    check_depth(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    with pytest.raises(NestingTooDeepError):
        check_depth(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    check_depth(b'["' + b"[" * 10_000 + b'\\"' + b"{" * 10_000 + b'"]')
    with pytest.raises(CanonicalJsonError, match="unbalanced"):
        check_depth(b"[" * 10_000 + b'"' + b"]" * 10_000)  # a decoder would recurse first


async def test_a_deeply_nested_error_answer_is_the_clients_own_error() -> None:
    """The finding: a deeply nested problem document raised a bare RecursionError (8,000
    deep keeps it under the 16 KiB cap on error answers)."""
    deep = b'{"title":"x","status":500,"extra":' + b"[" * 8_000 + b"]" * 8_000 + b"}"
    with serve(Answer(status=500, body=deep, ctype="application/problem+json")) as url:
        client = ControlPlaneClient(url)
        with pytest.raises(ServerError):
            await client.discovery()


async def test_a_deeply_nested_answer_is_an_invalid_answer() -> None:
    deep = b'{"api_version":"v1","x":' + b"{" * 30_000 + b"}" * 30_000 + b"}"
    with serve(Answer(body=deep)) as url:
        client = ControlPlaneClient(url)
        with pytest.raises(InvalidAnswerError, match="nests deeper"):
            await client.discovery()


_tricky_text = st.text(alphabet='[]{}"\\ab', max_size=6)
_nested = st.recursive(
    st.none() | st.integers() | _tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_tricky_text, inner, max_size=3),
    max_leaves=30,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@settings(max_examples=500, deadline=None)
@given(_nested, st.integers(0, 6))
def test_depth_check_agrees_with_the_real_nesting(value: object, limit: int) -> None:
    """Strings full of brackets, quotes and backslashes never count as nesting."""
    raw = msgspec.json.encode(value)
    if _depth(value) > limit:
        with pytest.raises(NestingTooDeepError):
            check_depth(raw, limit)
    else:
        check_depth(raw, limit)
