"""Which resources a device may reach: the controller's use of ``core.policy``.

The evaluation is the client's own engine (``core.policy.engine.reachable_resources``),
asked "for some app" (app-specific allows count, app-specific denies do not), so the
controller and the client can never disagree on semantics: deny by default, higher
priority first, deny wins at equal priority, unknown facts never satisfy a condition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.policy.engine import allowed_networks, reachable_resources
from core.wire.policy import PolicyBundle, Resource, Rule, UserInfo

__all__ = ["allowed_ips", "reachable"]


def reachable(
    *,
    device_id: str,
    user: UserInfo,
    resources: Sequence[Resource],
    rules: Sequence[Rule],
    facts: Mapping[str, object],
    now: int,
) -> list[str]:
    """Ids of the resources the device may reach with ``facts`` (``posture.*``) now.

    Pure; never raises for resources and rules that passed the admin API's validation.
    """
    probe = PolicyBundle(
        version=1,
        device_id=device_id,
        issued_at=now,
        expires_at=now + 60,
        user=user,
        resources=tuple(resources),
        rules=tuple(rules),
    )
    reach = reachable_resources(probe, facts, now=now, risk=0)
    return [r.resource.id for r in reach if r.allowed]


def allowed_ips(resources: Sequence[Resource], reachable_ids: Sequence[str]) -> list[str]:
    """The networks of the reachable resources (CIDRs, IP-literal hosts), collapsed."""
    from core.policy.engine import Reachability

    want = set(reachable_ids)
    reach = [Reachability(r, r.id in want, None, "", ()) for r in resources]
    return [str(n) for n in allowed_networks(reach)]
