"""Which resources a device may reach, for the gateway's allowed IPs and the posture answer.

A thin adapter until ``core.policy`` exposes its own reachability function: it evaluates
the rules against the device's facts (``posture.*``, ``user.*``, ``time.*``, ``risk``)
ignoring the app dimension (the gateway sees a device, not a process), with the
product's semantics: deny by default, higher priority first, deny wins at equal
priority, an unknown fact never satisfies a condition. A deny rule limited to some apps
does not withdraw a resource from the device (other apps may still use it); the client's
proxy enforces it per app. Operators it does not implement count as unmet (fail closed).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from core.wire.policy import AllOf, AnyOf, Condition, FactCondition, NotOf, Resource, Rule

__all__ = ["allowed_ips", "evaluate_condition", "reachable_resources"]

_MISSING = object()


def _version(text: object) -> tuple[int, ...] | None:
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,9}){0,5}", text):
        return None
    return tuple(int(p) for p in text.split("."))


def _fact(cond: FactCondition, facts: Mapping[str, Any]) -> bool:
    value = facts.get(cond.fact, _MISSING)
    if value is _MISSING or value is None:
        return False
    op, want = cond.op, cond.value
    if op == "exists":
        return True
    if op == "not_empty":
        return bool(value)
    if op in ("eq", "ne"):
        hit = want in value if isinstance(value, list) else value == want
        return hit if op == "eq" else not hit
    if op in ("in", "not_in"):
        assert isinstance(want, list)
        hit = any(v in want for v in value) if isinstance(value, list) else value in want
        return hit if op == "in" else not hit
    if op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        assert isinstance(want, int | float)
        return {"gt": value > want, "gte": value >= want, "lt": value < want, "lte": value <= want}[
            op
        ]
    if op.startswith("version_"):
        a, b = _version(value), _version(want)
        if a is None or b is None:
            return False
        width = max(len(a), len(b))
        a, b = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
        return {
            "version_eq": a == b,
            "version_ne": a != b,
            "version_gt": a > b,
            "version_gte": a >= b,
            "version_lt": a < b,
            "version_lte": a <= b,
        }[op]
    if op == "glob":
        return isinstance(value, str) and fnmatch.fnmatchcase(value, str(want))
    if op == "regex":
        return isinstance(value, str) and re.fullmatch(str(want), value[:4096]) is not None
    if op == "cidr":
        try:
            return ipaddress.ip_address(str(value)) in ipaddress.ip_network(str(want))
        except ValueError:
            return False
    return False


def evaluate_condition(cond: Condition | None, facts: Mapping[str, Any]) -> bool:
    """True when ``cond`` holds for ``facts`` (None = always). Pure; never raises."""
    if cond is None:
        return True
    if isinstance(cond, FactCondition):
        return _fact(cond, facts)
    if isinstance(cond, AllOf):
        return all(evaluate_condition(c, facts) for c in cond.of)
    if isinstance(cond, AnyOf):
        return any(evaluate_condition(c, facts) for c in cond.of)
    if isinstance(cond, NotOf):
        inner = cond.of
        # An unknown fact stays unmet under 'not' (unknown is not false).
        if isinstance(inner, FactCondition) and inner.fact not in facts:
            return False
        return not evaluate_condition(inner, facts)
    return False


def reachable_resources(
    resources: Sequence[Resource], rules: Sequence[Rule], facts: Mapping[str, Any]
) -> list[str]:
    """Ids of the resources some applicable allow rule opens and no stronger deny closes."""
    risk = facts.get("risk", 0)
    applicable: list[Rule] = []
    for rule in rules:
        if rule.effect == "allow" and rule.max_risk is not None and risk > rule.max_risk:
            continue
        if rule.effect == "deny" and rule.apps:
            continue
        if evaluate_condition(rule.conditions, facts):
            applicable.append(rule)
    out: list[str] = []
    for res in resources:
        best: tuple[int, int] | None = None  # (priority, deny?) of the deciding rule
        for rule in applicable:
            if "*" not in rule.resources and res.id not in rule.resources:
                continue
            key = (rule.priority, 1 if rule.effect == "deny" else 0)
            if best is None or key > best:
                best = key
        if best is not None and best[1] == 0:
            out.append(res.id)
    return out


def allowed_ips(resources: Sequence[Resource], reachable: Sequence[str]) -> list[str]:
    """The CIDRs (and IP-literal hosts) of the reachable resources, collapsed, sorted."""
    want = set(reachable)
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for res in resources:
        if res.id not in want:
            continue
        nets.extend(ipaddress.ip_network(c) for c in res.cidrs)
        for host in res.hosts:
            try:
                nets.append(ipaddress.ip_network(host))
            except ValueError:
                continue  # names are resolved by the client; the gateway needs addresses
    v4 = ipaddress.collapse_addresses(n for n in nets if n.version == 4)
    v6 = ipaddress.collapse_addresses(n for n in nets if n.version == 6)
    return [str(n) for n in [*v4, *v6]]
