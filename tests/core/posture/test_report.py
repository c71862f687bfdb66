"""One posture-report builder: the engine's device adapter and ``rustronaut posture``
(``core.posture.report``) produce the same signed report for the same facts.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.auth import DEVICE_SIGNING_KEY
from core.engine.adapters import DeviceAdapter
from core.posture import make_report, signed_report
from core.wire.posture import Fact, verify_report

pytestmark = pytest.mark.unit

NOW = 1_700_000_000.0


class _Store:
    """The keyring as a dict (only what DeviceAdapter uses: get and set)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value


def _facts() -> dict[str, Fact]:
    # Deliberately not in name order: the report must not depend on collection order.
    return {
        "os.name": Fact.of("os.name", "linux", NOW - 5),
        "firewall.enabled": Fact.of("firewall.enabled", True, NOW - 4),
        "disk.encrypted": Fact.unknown("disk.encrypted", "no tool", NOW - 3),
    }


@pytest.fixture
def key_and_adapter(tmp_path: Path) -> tuple[Ed25519PrivateKey, DeviceAdapter]:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    store = _Store()
    store.set(DEVICE_SIGNING_KEY, base64.b64encode(raw).decode())
    adapter = DeviceAdapter(store, None, tmp_path / "enrollment.json")  # type: ignore[arg-type]
    return key, adapter


def test_device_adapter_signs_exactly_what_the_report_builder_signs(
    key_and_adapter: tuple[Ed25519PrivateKey, DeviceAdapter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, adapter = key_and_adapter
    monkeypatch.setattr(time, "time", lambda: NOW)
    from_engine = adapter.sign_posture(_facts(), "nonce-1", "dev-1")
    from_builder = signed_report(_facts(), key, device_id="dev-1", nonce="nonce-1", now=NOW)
    assert from_engine == from_builder  # Ed25519 is deterministic: same payload, same JWS


def test_the_signed_report_orders_facts_by_name_and_verifies(
    key_and_adapter: tuple[Ed25519PrivateKey, DeviceAdapter],
) -> None:
    key, adapter = key_and_adapter
    token = adapter.sign_posture(_facts(), "nonce-2", "dev-2")
    report = verify_report(
        token,
        key.public_key(),
        device_id="dev-2",
        expected_nonce="nonce-2",
        now=time.time(),
        max_age_s=60,
    )
    assert [f.name for f in report.facts] == ["disk.encrypted", "firewall.enabled", "os.name"]
    assert report.facts == make_report(_facts(), device_id="d", nonce="n", now=0).facts
