"""Remediation texts and the per-OS collector sets."""

from __future__ import annotations

import pytest

from core.posture.factory import OS_NAMES, collectors_for, current_os
from core.posture.remediation import remediation
from core.wire.posture import FACTS, PostureReport

pytestmark = pytest.mark.unit

BOOL_FACTS = sorted(n for n, s in FACTS.items() if s.kind == "bool")


@pytest.mark.parametrize("os_name", OS_NAMES)
@pytest.mark.parametrize("fact", BOOL_FACTS)
def test_every_boolean_fact_has_a_specific_fix_per_os(fact: str, os_name: str) -> None:
    text = remediation(fact, os_name)
    assert not text.startswith("This device does not meet"), "generic fallback"
    assert text == remediation(f"posture.{fact}", os_name)


def test_examples() -> None:
    assert remediation("firewall.enabled", "linux").startswith(
        "Turn on the firewall: sudo ufw enable"
    )
    assert "manage-bde -on C:" in remediation("disk.encrypted", "windows")
    assert "fdesetup enable" in remediation("disk.encrypted", "macos")
    assert "falcon-sensor" in remediation("process.falcon-sensor.running", "linux")
    assert "/etc/corp/agent.conf" in remediation("file./etc/corp/agent.conf.present", "macos")
    assert remediation("made.up", "plan9").endswith("ask IT")


@pytest.mark.parametrize("os_name", OS_NAMES)
def test_collector_sets_cover_every_fact_once_per_name(os_name: str) -> None:
    collectors = collectors_for(os_name)
    names = [n for c in collectors for n in c.facts]
    assert set(FACTS) <= set(names), set(FACTS) - set(names)
    assert len(names) == len(set(names)), "two collectors answer the same fact"
    cheap = {n for c in collectors if c.cheap for n in c.facts}
    assert {"firewall.enabled", "disk.encrypted", "screen_lock.enabled"} <= cheap


def test_unknown_os_refused() -> None:
    with pytest.raises(ValueError, match="unknown OS"):
        collectors_for("plan9")
    assert current_os() in OS_NAMES


def test_report_can_carry_a_full_collection_shape() -> None:
    # PostureReport refuses duplicates: a merged collection never has any.
    assert PostureReport(device_id="d", nonce="n", issued_at=0, facts=()).facts == ()
