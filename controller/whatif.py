"""What-if: would this user on this device reach this resource (with this app), and why.

Evaluated by the client's own engine (``core.policy.engine.PolicyEngine``) loaded with
the bundle the controller would issue to that device now
(``ControllerService.preview_bundle``) and the device's last posture facts, so the
console can never disagree with what the device decides. The question is asked per
resource, as ``PolicyEngine.reachable`` asks it: with an app, app-specific rules count
for that app; without one, "for some app" (app-specific allows count, app-specific
denies do not).

Pure and UI-free: a bundle and facts in, a :class:`WhatIf` out.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from core.policy.api import AppIdentity
from core.policy.conditions import UNKNOWN_VALUE
from core.policy.engine import PolicyEngine
from core.wire.policy import PolicyBundle

__all__ = ["STALE_POSTURE_S", "Requirement", "WhatIf", "app_identity", "evaluate"]

#: Posture older than this is flagged stale: the client reports every 15 minutes by
#: default (``posture_interval_minutes``), so two missed reports.
STALE_POSTURE_S = 30 * 60


@dataclass(frozen=True, slots=True)
class Requirement:
    """An unmet requirement behind a deny, and how to fix it."""

    fact: str
    #: for IT: the fact, the test and the value (``posture.x must be true (currently false)``)
    requirement: str
    #: what would fix it (the rule's remediation text, else the engine's default)
    remediation: str
    #: for the employee ("needs the firewall on — it is off")
    plain: str
    #: the device's (or user's) current value, as text; "" when it has none
    current: str
    #: True when the fact is not known at all (missing from the last report)
    missing: bool


@dataclass(frozen=True, slots=True)
class WhatIf:
    """The engine's answer for one (user, device, resource, app) question."""

    effect: Literal["allow", "deny"]
    #: the rule that decided (None: default deny, nothing allowed it)
    rule_id: str | None
    #: the engine's reason, as the client would log it
    reason: str
    resource_id: str
    resource_name: str
    unmet: tuple[Requirement, ...]
    risk: int
    #: when the device last reported posture (None: never)
    posture_at: int | None
    #: the report is older than ``STALE_POSTURE_S``
    stale: bool
    #: the posture facts used (``posture.*``), sorted by name
    facts: tuple[tuple[str, str], ...]
    #: the user as the bundle carries them
    subject: str
    groups: tuple[str, ...]


def app_identity(app: str) -> AppIdentity | None:
    """The app an admin typed: an absolute path (``/usr/bin/ssh``: path and name), a
    program name (``ssh``) or nothing (None: "for some app")."""
    text = app.strip()
    if not text:
        return None
    if text.startswith("/"):
        return AppIdentity(pid=None, uid=None, exe=text, name=posixpath.basename(text))
    return AppIdentity(pid=None, uid=None, exe="", name=text)


def _text(value: object) -> str:
    if value is None or value is UNKNOWN_VALUE:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def evaluate(
    bundle: PolicyBundle,
    facts: Mapping[str, object],
    *,
    resource_id: str,
    app: str = "",
    now: float,
    posture_at: int | None,
) -> WhatIf:
    """Ask the engine whether ``resource_id`` of ``bundle`` is reachable with ``facts``
    (the device's ``posture.*`` facts) at ``now``. Raises ``KeyError`` for a resource the
    bundle does not hold. Pure; any thread.
    """
    engine = PolicyEngine(clock=lambda: now, record=False)
    engine.load(bundle)
    engine.set_facts(facts)
    reach = {r.resource.id: r for r in engine.reachable(app_identity(app))}
    r = reach[resource_id]
    merged: dict[str, object] = {
        **facts,
        "user.subject": bundle.user.subject,
        "user.email": bundle.user.email,
        "user.groups": list(bundle.user.groups),
    }
    unmet = tuple(
        Requirement(
            fact=u.fact,
            requirement=u.requirement,
            remediation=u.remediation,
            plain=u.plain,
            current=_text(merged.get(u.fact)),
            missing=merged.get(u.fact, UNKNOWN_VALUE) in (UNKNOWN_VALUE, None) and u.fact != "risk",
        )
        for u in r.unmet
    )
    return WhatIf(
        effect="allow" if r.allowed else "deny",
        rule_id=r.rule_id,
        reason=r.reason,
        resource_id=r.resource.id,
        resource_name=r.resource.name or r.resource.id,
        unmet=unmet,
        risk=int(engine.tracker.score(now) + 0.5),
        posture_at=posture_at,
        stale=posture_at is not None and now - posture_at > STALE_POSTURE_S,
        facts=tuple(sorted((k, _text(v)) for k, v in facts.items())),
        subject=bundle.user.subject,
        groups=bundle.user.groups,
    )
