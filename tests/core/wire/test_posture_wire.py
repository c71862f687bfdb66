"""Posture facts and signed reports: invariants, round trip, and every refusal."""

from __future__ import annotations

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.wire import posture as wp
from core.wire import signing
from core.wire.posture import Fact, FactStatus, PostureReport

pytestmark = pytest.mark.unit

NOW = 1_790_000_000.0


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _report(**kw: object) -> PostureReport:
    facts = (
        Fact.of("disk.encrypted", True, NOW),
        Fact.of("os.version", "12", NOW),
        Fact.of("screen_lock.timeout_s", 300, NOW),
        Fact.of("av.products", ["ClamAV"], NOW),
        Fact.unknown("secure_boot.enabled", "mokutil: not installed", NOW),
        Fact.of(wp.process_fact("falcon-sensor"), False, NOW),
        Fact.of(wp.file_fact("/etc/corp/agent.conf"), True, NOW),
    )
    args: dict[str, object] = {
        "device_id": "dev-1",
        "nonce": "n-123",
        "issued_at": NOW,
        "facts": facts,
    }
    args.update(kw)
    return PostureReport(**args)  # type: ignore[arg-type]


def _verify(token: str, key: Ed25519PrivateKey, **kw: object) -> PostureReport:
    args: dict[str, object] = {
        "device_id": "dev-1",
        "expected_nonce": "n-123",
        "now": NOW + 10,
        "max_age_s": 300,
    }
    args.update(kw)
    return wp.verify_report(token, key.public_key(), **args)  # type: ignore[arg-type]


def test_round_trip(key: Ed25519PrivateKey) -> None:
    report = _report()
    token = wp.sign_report(report, key)
    back = _verify(token, key)
    assert back == report
    assert back.fact("av.products") == Fact.of("av.products", ("ClamAV",), NOW)
    assert back.fact("nope") is None


def test_facts_for_policy_skips_unknown() -> None:
    out = wp.facts_for_policy(_report())
    assert out["posture.disk.encrypted"] is True
    assert out["posture.screen_lock.timeout_s"] == 300
    assert out["posture.av.products"] == ["ClamAV"]
    assert out["posture.process.falcon-sensor.running"] is False
    assert out["posture.file./etc/corp/agent.conf.present"] is True
    assert "posture.secure_boot.enabled" not in out
    facts = _report().facts
    assert wp.facts_for_policy(facts) == out
    assert wp.facts_for_policy({f.name: f for f in facts}) == out


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda t, k: _verify(t, k, device_id="dev-2"), wp.ReportDeviceMismatchError),
        (lambda t, k: _verify(t, k, expected_nonce="n-999"), wp.ReportNonceMismatchError),
        (lambda t, k: _verify(t, k, now=NOW + 301), wp.ReportStaleError),
        (lambda t, k: _verify(t, k, now=NOW - 61), wp.ReportStaleError),
        (lambda t, k: _verify(t, k, max_size=100), wp.ReportTooLargeError),
        (lambda t, k: _verify(t, Ed25519PrivateKey.generate()), wp.ReportSignatureError),
        (lambda t, k: _verify(t[:-4] + "AAAA", k), wp.ReportSignatureError),
        (lambda t, k: _verify("x.y", k), wp.ReportSignatureError),
    ],
)
def test_refusals(key: Ed25519PrivateKey, mutate, error) -> None:  # type: ignore[no-untyped-def]
    token = wp.sign_report(_report(), key)
    with pytest.raises(error):
        mutate(token, key)


def test_other_document_type_refused(key: Ed25519PrivateKey) -> None:
    token = signing.sign(wp.encode_report(_report()), key, typ="rustronaut-bundle+jws")
    with pytest.raises(wp.ReportSignatureError, match="document type"):
        _verify(token, key)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"device_id":"dev-1","nonce":"n-123","issued_at":1,"facts":[],"extra":1}',
        b'{"device_id":"dev-1","nonce":"n-123","issued_at":1,"facts":[],"v":2}',
        b'{"device_id":"","nonce":"n-123","issued_at":1,"facts":[]}',
        b'{"device_id":"dev-1","nonce":"n-123","issued_at":1,"facts":'
        b'[{"name":"disk.encrypted","status":"known","collected_at":1,"value":"yes"}]}',
        b'{"device_id":"dev-1","nonce":"n-123","issued_at":1,"facts":'
        b'[{"name":"disk.encrypted","status":"unknown","collected_at":1,"value":false}]}',
        b'{"device_id":"dev-1","nonce":"n-123","issued_at":1,"facts":'
        b'[{"name":"made.up","status":"known","collected_at":1,"value":true}]}',
        b'{"device_id":"dev-1","nonce":"n-123","issued_at":1,"facts":'
        b'[{"name":"os.name","status":"known","collected_at":1,"value":"a"},'
        b'{"name":"os.name","status":"known","collected_at":1,"value":"b"}]}',
        b"[]",
    ],
)
def test_malformed_payloads_refused(key: Ed25519PrivateKey, payload: bytes) -> None:
    token = signing.sign(payload, key, typ=wp.POSTURE_TYP)
    with pytest.raises(wp.ReportMalformedError):
        _verify(token, key)


@pytest.mark.parametrize(
    ("name", "status", "value", "reason"),
    [
        ("disk.encrypted", FactStatus.KNOWN, 1, None),  # int is not bool
        ("screen_lock.timeout_s", FactStatus.KNOWN, True, None),  # bool is not int
        ("disk.encrypted", FactStatus.KNOWN, True, "why"),
        ("disk.encrypted", FactStatus.UNKNOWN, None, ""),
        ("disk.encrypted", FactStatus.UNKNOWN, None, None),
        ("process.\n.running", FactStatus.KNOWN, True, None),
        ("av.products", FactStatus.KNOWN, ("a", 1), None),
    ],
)
def test_fact_invariants(name: str, status: FactStatus, value: object, reason: object) -> None:
    with pytest.raises((ValueError, TypeError, msgspec.ValidationError)):
        Fact(name=name, status=status, collected_at=NOW, value=value, reason=reason)  # type: ignore[arg-type]


def test_unknown_reason_is_capped_and_named_checks_validate() -> None:
    fact = Fact.unknown("os.name", "x" * 2000, NOW)
    assert fact.reason is not None
    assert len(fact.reason) == 500
    assert not fact.known
    with pytest.raises(ValueError, match="process name"):
        wp.process_fact("")
    with pytest.raises(ValueError, match="file path"):
        wp.file_fact("a\x00b")
    assert wp.fact_spec("file.C:\\Program Files\\x.exe.present") is not None
    assert wp.fact_spec("disk.encrypted") == wp.FACTS["disk.encrypted"]
