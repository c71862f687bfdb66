"""What the engine hands the windows and ``status`` (issue 18, Deliver 3 and 4): blocked
resources say why in the employee's words, posture items carry human labels and whether
the policy requires them, risk contributions are labels, not fact keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.engine.adapters import PolicyAdapter, PostureAdapter
from core.policy.trust import PolicyTrust
from core.settings.loader import load
from core.wire.policy import AllOf, UserInfo
from core.wire.posture import Fact, FactStatus
from tests.core.policy.helpers import NOW, bundle, fact, rule

pytestmark = pytest.mark.unit


def _adapters(tmp_path: Path) -> tuple[PolicyAdapter, PostureAdapter]:
    settings = load(managed_sources=(), user_path=tmp_path / "settings.json")
    posture = PostureAdapter(settings)
    policy = PolicyAdapter(
        lambda: None,  # type: ignore[arg-type,return-value]  # never asked: no store
        tmp_path / "bundle.json",
        trust=PolicyTrust([], pin_path=tmp_path / "pin"),
    )
    policy.bind_posture(posture)
    cond = AllOf(
        of=(
            fact("posture.firewall.enabled", "eq", True),
            fact("user.groups", "eq", "Finance"),
        )
    )
    policy._engine._clock = lambda: NOW
    policy._engine.load(
        bundle(
            rule("git", conditions=cond),
            expires_at=int(NOW) + 3600,
            user=UserInfo(subject="ada", email="ada@corp.example", groups=("Engineering",)),
        )
    )
    return policy, posture


FACTS = {
    "firewall.enabled": Fact(
        name="firewall.enabled", status=FactStatus.KNOWN, value=False, collected_at=NOW
    ),
    "device.hostname": Fact(
        name="device.hostname", status=FactStatus.KNOWN, value="ada-laptop", collected_at=NOW
    ),
    "secure_boot.enabled": Fact(
        name="secure_boot.enabled",
        status=FactStatus.UNKNOWN,
        reason="mokutil not found",
        collected_at=NOW,
    ),
}


def test_a_blocked_resource_says_each_requirement_and_the_current_value(tmp_path: Path) -> None:
    policy, _posture = _adapters(tmp_path)
    policy.set_facts({"posture.firewall.enabled": False})
    git = next(r for r in policy.resources() if r.name == "Git")
    assert not git.reachable
    assert git.reason == (
        "Needs the firewall on — it is off; needs group Finance — you are in Engineering"
    )
    assert "does not meet yet" not in git.reason
    assert "Turn on the firewall" in git.fix


def test_posture_items_have_labels_and_only_policy_facts_are_required(tmp_path: Path) -> None:
    policy, posture = _adapters(tmp_path)
    policy.set_facts({"posture.firewall.enabled": False})
    policy.resources()  # tells the posture view what the policy reads
    items = {p.name: p for p in posture.items(FACTS)}
    assert next(iter(posture.items(FACTS))).name == "firewall.enabled"  # required first
    fw = items["firewall.enabled"]
    assert (fw.label, fw.value, fw.status, fw.required) == ("Firewall", "Off", "fail", True)
    assert fw.fix
    host = items["device.hostname"]
    assert (host.label, host.required) == ("Computer name", False)
    sb = items["secure_boot.enabled"]
    assert (sb.label, sb.status, sb.required, sb.fix) == ("Secure Boot", "unknown", False, "")
    assert sb.value == "Could not be checked (mokutil not found)"


def test_without_a_policy_security_checks_count_and_descriptions_do_not(tmp_path: Path) -> None:
    settings = load(managed_sources=(), user_path=tmp_path / "settings.json")
    items = {p.name: p for p in PostureAdapter(settings).items(FACTS)}
    assert items["firewall.enabled"].required
    assert items["secure_boot.enabled"].required
    assert not items["device.hostname"].required


def test_risk_contributions_are_labels(tmp_path: Path) -> None:
    policy, _posture = _adapters(tmp_path)
    policy.set_facts({"posture.av.running": False, "posture.firewall.enabled": False})
    score, signals = policy.risk()
    assert score == 35
    assert signals == ("Antivirus not running", "Firewall off")


def test_clearing_the_policy_forgets_what_it_required(tmp_path: Path) -> None:
    policy, posture = _adapters(tmp_path)
    policy.resources()
    assert posture.required == frozenset({"firewall.enabled"})
    policy.clear()
    assert posture.required is None
    assert {p.name for p in posture.items(FACTS) if p.required} == {
        "firewall.enabled",
        "secure_boot.enabled",
    }
