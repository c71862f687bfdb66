"""Translate a single-priority bundle into Cedar, the oracle of the differential tests.

Covers what Cedar can express: destinations (exact hosts, ``*.`` wildcards via ``like``,
CIDRs via the ``ip`` extension, ports, protocols), apps, and conditions with eq, ne, in,
not_in, gt/gte/lt/lte, glob (``*`` only), cidr, exists and not_empty, combined with
all/any/not, plus ``max_risk``. Facts are context attributes under their own names;
list facts are Cedar sets. Also used by ``tests/bench/bench_policy.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from core.policy.api import AccessRequest
from core.policy.compiled import ip_key
from core.wire.policy import (
    AllOf,
    AnyOf,
    Condition,
    FactCondition,
    NotOf,
    PolicyBundle,
    RefOf,
    Resource,
    Rule,
)

LIST_FACTS = frozenset({"user.groups", "posture.av.products"})


def _s(text: str) -> str:
    return json.dumps(text)


def _lit(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _s(value)
    if isinstance(value, list):
        return "[" + ", ".join(_lit(v) for v in value) + "]"
    raise NotImplementedError(f"no Cedar literal for {value!r}")


def _fact(cond: FactCondition) -> str:
    f = f"context[{_s(cond.fact)}]"
    listy = cond.fact in LIST_FACTS
    op, v = cond.op, cond.value
    if op == "exists":
        return f"(context has {_s(cond.fact)})"
    if op == "eq":
        return f"{f}.contains({_lit(v)})" if listy else f"({f} == {_lit(v)})"
    if op == "ne":
        return f"!{f}.contains({_lit(v)})" if listy else f"({f} != {_lit(v)})"
    if op in ("in", "not_in"):
        expr = f"{f}.containsAny({_lit(v)})" if listy else f"{_lit(v)}.contains({f})"
        return expr if op == "in" else f"!{expr}"
    if op in ("gt", "gte", "lt", "lte"):
        sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return f"({f} {sym} {_lit(v)})"
    if op == "glob":
        assert isinstance(v, str)
        assert set(v) <= set("abcdefghijklmnopqrstuvwxyz0123456789.-*@")
        return f"({f} like {_s(v)})"
    if op == "cidr":
        return f"{f}.isInRange(ip({_s(str(v))}))"
    if op == "not_empty":
        return f"!{f}.isEmpty()" if listy else f'({f} != "")'
    raise NotImplementedError(f"operator {op} has no Cedar equivalent")


def condition(cond: Condition, profiles: Mapping[str, Condition]) -> str:
    """A Cedar boolean expression for ``cond`` (profiles inlined)."""
    if isinstance(cond, FactCondition):
        return _fact(cond)
    if isinstance(cond, RefOf):
        return condition(profiles[cond.profile], profiles)
    if isinstance(cond, NotOf):
        return f"!({condition(cond.of, profiles)})"
    if isinstance(cond, AllOf):
        return "(" + (" && ".join(condition(c, profiles) for c in cond.of) or "true") + ")"
    assert isinstance(cond, AnyOf)
    return "(" + (" || ".join(condition(c, profiles) for c in cond.of) or "false") + ")"


def _resource(res: Resource) -> str:
    where: list[str] = []
    for host in res.hosts:
        if host == "*":
            where.append("true")
        elif host.startswith("*."):
            where.append(f"(context.host like {_s(host)})")
        else:
            where.append(f"(context.host == {_s(host)})")
    where.extend(f"(context has ip && context.ip.isInRange(ip({_s(c)})))" for c in res.cidrs)
    parts = ["(" + " || ".join(where) + ")"]
    if res.ports:
        ranges = [(p, p) if isinstance(p, int) else (p.first, p.last) for p in res.ports]
        parts.append(
            "("
            + " || ".join(f"(context.port >= {lo} && context.port <= {hi})" for lo, hi in ranges)
            + ")"
        )
    parts.append(f"{_lit(list(res.protocols))}.contains(context.protocol)")
    return "(" + " && ".join(parts) + ")"


def _rule(rule: Rule, resources: Mapping[str, Resource], profiles: Mapping[str, Condition]) -> str:
    targets = (
        resources.values() if "*" in rule.resources else [resources[r] for r in rule.resources]
    )
    parts = ["(" + " || ".join(_resource(r) for r in targets) + ")"]
    if rule.apps:
        alts = []
        for m in rule.apps:
            fields = []
            if m.exe is not None:
                fields.append(f"context.app_exe == {_s(m.exe)}")
            if m.name is not None:
                fields.append(f"context.app_name == {_s(m.name)}")
            if m.sha256 is not None:
                check = f"context.app_sha256 == {_s(m.sha256)}"
                if rule.effect == "deny":  # an unknown digest cannot clear a deny
                    check = f'({check} || context.app_sha256 == "")'
                fields.append(check)
            alts.append("(" + (" && ".join(fields) or "true") + ")")
        parts.append("(" + " || ".join(alts) + ")")
    if rule.max_risk is not None and rule.effect == "allow":
        parts.append(f"(context.risk <= {rule.max_risk})")
    if rule.conditions is not None:
        parts.append(condition(rule.conditions, profiles))
    kind = "permit" if rule.effect == "allow" else "forbid"
    return f"{kind}(principal, action, resource) when {{ {' && '.join(parts)} }};"


def policies(bundle: PolicyBundle) -> str:
    """The bundle's rules as a Cedar policy set (priorities ignored: single-priority
    sets, or all denies above all allows, are equivalent)."""
    resources = {r.id: r for r in bundle.resources}
    return "\n".join(_rule(r, resources, bundle.profiles) for r in bundle.rules)


def context(request: AccessRequest, facts: Mapping[str, object], risk: int) -> dict[str, object]:
    """The Cedar request context for ``request`` with ``facts`` (known facts only)."""
    ctx: dict[str, object] = {k: list(v) if isinstance(v, tuple) else v for k, v in facts.items()}
    ctx.update(
        host=request.host,
        port=request.port,
        protocol=request.protocol,
        app_exe=request.app.exe,
        app_name=request.app.name,
        risk=risk,
    )
    ctx["app_sha256"] = request.app.sha256 or ""  # absent would be a Cedar error
    ip = request.host if ip_key(request.host) else (request.addresses[:1] or [None])[0]
    if ip is not None:
        ctx["ip"] = {"__extn": {"fn": "ip", "arg": ip}}
    return ctx


def request_dict(ctx: Mapping[str, object]) -> dict[str, object]:
    """A full cedarpy request around ``ctx``."""
    return {
        "principal": 'User::"u"',
        "action": 'Action::"connect"',
        "resource": 'Resource::"dest"',
        "context": dict(ctx),
    }
