"""Turn an evaluation outcome into what the employee reads: unmet requirements and fixes.

Remediation text for an unmet test comes from, in order: the condition's own
``remediation``, the rule's ``remediation[fact]``, :data:`DEFAULT_REMEDIATION` for the
fact, a generic text. Only deny decisions are explained (allows need no fix), so this
never runs on the hot path of an allowed connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from core.policy.api import Unmet
from core.policy.compiled import CompiledRule
from core.policy.conditions import Blocker, Facts, describe

__all__ = ["DEFAULT_REMEDIATION", "RISK_REMEDIATION", "unmet_for"]

#: How to fix the common posture and identity requirements (the bundle can override).
DEFAULT_REMEDIATION: Final[Mapping[str, str]] = {
    "posture.disk.encrypted": "Turn on full-disk encryption (BitLocker, FileVault or LUKS).",
    "posture.firewall.enabled": "Turn on the firewall in your system's security settings.",
    "posture.screen_lock.enabled": "Set a password screen lock in your system settings.",
    "posture.screen_lock.timeout_s": "Shorten the idle time before the screen locks.",
    "posture.updates.auto": "Turn on automatic security updates.",
    "posture.secure_boot.enabled": "Ask IT to turn on Secure Boot in the firmware.",
    "posture.av.running": "Start (or install) the company antivirus/EDR agent.",
    "posture.av.products": "Install the company antivirus/EDR agent.",
    "posture.mdm.enrolled": "Enrol this device in the company's device management.",
    "posture.domain.joined": "Ask IT to join this device to the company domain.",
    "posture.os.version": "Update your operating system.",
    "posture.os.build": "Install the latest operating-system updates.",
    "posture.os.kernel": "Install the latest kernel updates and restart.",
    "posture.client.version": "Update Rustronaut to the latest version.",
    "user.groups": "Ask IT for access: your account is not in a group this needs.",
    "user.email": "Sign in with your company account.",
    "time.hour": "This resource is available only during set hours.",
    "time.weekday": "This resource is available only on set days.",
}

RISK_REMEDIATION: Final = (
    "Your device's risk score is too high. Fix the posture issues shown; behavioural risk "
    "falls by itself over time."
)

_UNKNOWN_HINT = " If it is already so, re-run the device check (posture could not be read)."


def _remedy(blocker: Blocker, rule: CompiledRule) -> str:
    leaf = blocker.leaf
    text = (
        leaf.remediation
        or rule.rule.remediation.get(leaf.fact)
        or DEFAULT_REMEDIATION.get(leaf.fact)
        or f"Contact IT about '{leaf.fact}'."
    )
    return text + (
        _UNKNOWN_HINT if blocker.status == 2 and leaf.fact.startswith("posture.") else ""
    )


def unmet_for(
    failed: tuple[tuple[CompiledRule, int], ...],
    denied_by: CompiledRule | None,
    facts: Facts,
    risk: int,
    *,
    limit: int = 8,
) -> tuple[Unmet, ...]:
    """Unmet requirements: of the allow rules that did not apply, then (for a rule deny)
    what would lift the deny. De-duplicated, at most ``limit``. Never raises."""
    out: list[Unmet] = []
    seen: set[tuple[str, str]] = set()

    def add(fact: str, requirement: str, remediation: str) -> None:
        if (fact, requirement) not in seen and len(out) < limit:
            seen.add((fact, requirement))
            out.append(Unmet(fact=fact, requirement=requirement, remediation=remediation))

    for cr, _res in failed:
        if cr.max_risk is not None and risk > cr.max_risk:
            add("risk", f"risk must be at most {cr.max_risk} (currently {risk})", RISK_REMEDIATION)
        if cr.cond is not None:
            for b in cr.cond.blockers(facts, want=True):
                add(b.leaf.fact, describe(b, facts), _remedy(b, cr))
    if denied_by is not None and denied_by.cond is not None:
        for b in denied_by.cond.blockers(facts, want=False):
            add(b.leaf.fact, describe(b, facts), _remedy(b, denied_by))
    return tuple(out)
