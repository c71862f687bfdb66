"""The signed decision batch: round trip, and every way a hostile batch is refused."""

from __future__ import annotations

import time

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.wire import signing
from core.wire.telemetry import (
    MAX_ITEMS,
    BatchDeviceMismatchError,
    BatchMalformedError,
    BatchSignatureError,
    BatchStaleError,
    BatchTooLargeError,
    DecisionBatch,
    DecisionCount,
    DecisionEvent,
    encode_batch,
    hash_app,
    sign_batch,
    verify_batch,
)

pytestmark = pytest.mark.unit

KEY = Ed25519PrivateKey.generate()
NOW = 1_800_000_000.0


def _event(i: int = 0) -> DecisionEvent:
    return DecisionEvent(
        at=NOW - i, app="/usr/bin/curl", host="wiki.corp.example", port=443, effect="deny"
    )


def _batch(**changes: object) -> DecisionBatch:
    fields: dict[str, object] = {
        "device_id": "dev_a",
        "seq": 1,
        "iat": NOW,
        "level": "full",
        "events": (_event(),),
    }
    fields.update(changes)
    return DecisionBatch(**fields)  # type: ignore[arg-type]


def _verify(token: str, **kw: object) -> DecisionBatch:
    args: dict[str, object] = {"device_id": "dev_a", "now": NOW, "max_age_s": 600}
    args.update(kw)
    return verify_batch(token, KEY.public_key(), **args)  # type: ignore[arg-type]


def test_round_trip() -> None:
    batch = _batch(dropped=3)
    assert _verify(sign_batch(batch, KEY)) == batch


def test_a_forged_signature_is_refused() -> None:
    head, _payload, sig = sign_batch(_batch(), KEY).split(".")
    forged = signing.b64url(encode_batch(_batch(seq=99)))
    with pytest.raises(BatchSignatureError):
        _verify(f"{head}.{forged}.{sig}")


def test_another_devices_key_is_refused() -> None:
    with pytest.raises(BatchSignatureError):
        _verify(sign_batch(_batch(), Ed25519PrivateKey.generate()))


def test_a_batch_for_another_device_is_refused() -> None:
    with pytest.raises(BatchDeviceMismatchError):
        _verify(sign_batch(_batch(device_id="dev_b"), KEY))


@pytest.mark.parametrize("iat", [NOW - 601, NOW + 3600])
def test_stale_or_future_batches_are_refused(iat: float) -> None:
    with pytest.raises(BatchStaleError):
        _verify(sign_batch(_batch(iat=iat), KEY))


def test_an_oversized_token_is_refused_before_parsing() -> None:
    with pytest.raises(BatchTooLargeError):
        _verify("a" * (256 * 1024 + 1))


def test_another_document_type_is_refused() -> None:
    token = signing.sign(encode_batch(_batch()), KEY, typ="rustronaut-posture+jws")
    with pytest.raises(BatchSignatureError):
        _verify(token)


def test_a_non_canonical_payload_is_refused() -> None:
    payload = encode_batch(_batch()).replace(b'"seq":1', b'"seq":1.0')
    with pytest.raises(BatchMalformedError):
        _verify(signing.sign(payload, KEY, typ="rustronaut-decisions+jws"))


@pytest.mark.parametrize(
    "changes",
    [
        {"events": tuple(_event(i) for i in range(MAX_ITEMS + 1))},
        {"level": "counts"},  # events in a counts batch
        {"counts": (DecisionCount(minute=0, effect="allow", count=1),)},  # counts in full
        {"seq": 0},
        {"level": "off", "events": ()},
    ],
)
def test_invariants_are_enforced_on_decoding(changes: dict[str, object]) -> None:
    raw = msgspec.json.decode(encode_batch(_batch()))
    raw.update(msgspec.to_builtins(changes))
    with pytest.raises(BatchMalformedError):
        _verify(signing.sign(msgspec.json.encode(raw), KEY, typ="rustronaut-decisions+jws"))


def test_hashed_app_is_salted_and_never_the_path() -> None:
    path = "/home/alice/projects/secret-thing/bin/tool"
    a = hash_app(path, "https://acme.example")
    assert a == hash_app(path, "https://acme.example")
    assert a != hash_app(path, "https://other.example")
    assert a.startswith("sha256:")
    assert len(a) == 7 + 64
    assert "secret-thing" not in a
    assert "alice" not in a


def test_time_is_not_a_fixture_artifact() -> None:
    # The real clock signs and verifies as well (no hidden dependency on NOW).
    now = time.time()
    token = sign_batch(_batch(iat=now), KEY)
    assert _verify(token, now=now).iat == now
