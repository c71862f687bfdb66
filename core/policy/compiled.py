"""A bundle compiled for fast decisions: destination index, sorted rules, evaluation core.

Compilation happens once per bundle. The index finds the resources covering a
destination without scanning them: exact names and IP literals in a dict, ``*.domain``
wildcards by walking the name's suffixes (one dict probe per label), CIDRs in one dict
per prefix length (one probe per distinct prefix length), then ports/protocols on the
few candidates. Each resource's rules are pre-sorted (priority high → low, deny before
allow at equal priority), so the first rule that applies decides; the merged order for a
set of resources is memoised. ``evaluate`` is the shared core of ``PolicyEngine.decide``
and ``reachable_resources``.
"""

from __future__ import annotations

import gc
import socket
import struct
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Final, NamedTuple

from core.policy.api import AppIdentity
from core.policy.conditions import TRUE, CompiledCondition, Facts, compile_condition
from core.wire.policy import AppMatch, PolicyBundle, Resource, Rule

__all__ = ["CompiledPolicy", "CompiledRule", "Outcome", "compile_bundle", "evaluate", "ip_key"]

_COMBO_CACHE_MAX = 4096
_UNSET: Final = object()
_NOTHING: Final[frozenset[str]] = frozenset()
_RISK: Final[frozenset[str]] = frozenset({"risk"})
_V4: Final = socket.AF_INET
_V6: Final = socket.AF_INET6


def ip_key(text: str) -> tuple[int, int] | None:
    """(family bits 32/128, integer) for an IP literal, else None. ~0.2 µs."""
    try:
        if ":" in text:
            return 128, int.from_bytes(socket.inet_pton(_V6, text), "big")
        if text[-1:].isdigit():
            return 32, int.from_bytes(socket.inet_pton(_V4, text), "big")
    except (OSError, ValueError):
        return None
    return None


class CompiledRule:
    """A rule ready to evaluate. ``order`` sorts it: priority desc, deny first, position.

    Its condition is compiled on first use (``cond``), so loading a 10,000-rule bundle
    does not pay for rules no connection ever reaches. Read-only after that.
    """

    __slots__ = ("_cond", "_facts", "_profiles", "apps", "deny", "max_risk", "order", "rule")

    def __init__(self, rule: Rule, pos: int, profiles: Mapping[str, CompiledCondition]) -> None:
        self.rule = rule
        self.deny = rule.effect == "deny"
        self.order = (-rule.priority, 0 if self.deny else 1, pos)
        self.apps: tuple[AppMatch, ...] = rule.apps
        self.max_risk = rule.max_risk if not self.deny else None
        self._profiles = profiles
        self._cond: CompiledCondition | object | None = (
            _UNSET if rule.conditions is not None else None
        )
        self._facts: frozenset[str] = _RISK if self.max_risk is not None else _NOTHING

    def _compile(self) -> CompiledCondition:
        assert self.rule.conditions is not None
        cond = compile_condition(self.rule.conditions, self._profiles)
        self._facts = self._facts | cond.facts
        self._cond = cond
        return cond

    @property
    def cond(self) -> CompiledCondition | None:
        """The compiled condition (None: always applies). Compiles on first access."""
        cond = self._cond
        if cond is _UNSET:
            return self._compile()
        return cond  # type: ignore[return-value]

    @property
    def facts(self) -> frozenset[str]:
        """The fact names the rule reads (``risk`` included when it has ``max_risk``)."""
        if self._cond is _UNSET:
            self._compile()
        return self._facts

    def app_ok(self, app: AppIdentity | None) -> bool:
        """Whether the rule covers ``app``; ``None`` (any app) matches app-specific allows
        and no app-specific denies (used for reachability, not for connections).

        An app whose digest is unknown (``sha256`` None: not computed, or unreadable)
        cannot be checked against a pinned hash: allow rules then do not cover it, and
        deny rules do (a deny that cannot be evaluated denies: fail closed both ways)."""
        if not self.apps:
            return True
        if app is None:
            return not self.deny
        for m in self.apps:
            if (
                (m.exe is None or m.exe == app.exe)
                and (m.name is None or m.name == app.name)
                and (
                    m.sha256 is None or m.sha256 == app.sha256 or (self.deny and app.sha256 is None)
                )
            ):
                return True
        return False


class Outcome(NamedTuple):
    """What ``evaluate`` found: the deciding rule (None: default deny) and what it looked at.

    ``failed`` are allow rules that matched the destination and app but whose conditions
    or risk limit were not met, in priority order (for explanations). A NamedTuple: built
    once per decision, cheaper than a frozen dataclass.
    """

    rule: CompiledRule | None
    resource: int | None
    failed: tuple[tuple[CompiledRule, int], ...]
    needed: frozenset[str]


class CompiledPolicy:
    """An immutable, indexed form of one bundle. Build with :func:`compile_bundle`.

    Not thread-safe only in its memo of merged rule orders (a dict: benign races); the
    engine uses it from one thread.
    """

    def __init__(self, bundle: PolicyBundle) -> None:
        self.bundle = bundle
        self.resources: tuple[Resource, ...] = bundle.resources
        self.expires_at = bundle.expires_at
        self.exact: dict[str, list[int]] = {}
        self.suffix: dict[str, list[int]] = {}
        self.any_host: list[int] = []
        self.nets: dict[int, dict[int, dict[int, list[int]]]] = {32: {}, 128: {}}
        # (protocols, port ranges) per resource, filled on first match of the resource
        self._ports: list[tuple[tuple[str, ...], tuple[tuple[int, int], ...]] | None] = [
            None
        ] * len(bundle.resources)
        resources = bundle.resources
        self.exact, self.suffix, self.any_host = _host_index(resources)
        self.nets = _net_index(resources)
        self.prefix_lens = {bits: sorted(d, reverse=True) for bits, d in self.nets.items()}
        # Rules are indexed by position only; CompiledRule objects (and their sorted
        # per-resource order) are built the first time a destination needs them.
        self._rules: list[CompiledRule | None] = [None] * len(bundle.rules)
        self._sorted: list[tuple[CompiledRule, ...] | None] = [None] * len(resources)
        self._profiles = {name: compile_condition(c) for name, c in bundle.profiles.items()}
        self._positions = _rule_positions(bundle)
        self._combos: dict[tuple[int, ...], tuple[tuple[CompiledRule, int], ...]] = {}

    def match(
        self, host: str, port: int, protocol: str, addresses: Sequence[str] = ()
    ) -> list[int]:
        """Indices of the resources covering the destination (ports/protocol checked)."""
        found: list[int] = []
        hit = self.exact.get(host)
        if hit:
            found += hit
        last = host[-1:]
        key = ip_key(host) if (last.isdigit() or ":" in host) else None
        if key is None:
            suffix = self.suffix
            if suffix:
                dot = host.find(".")
                while dot != -1:
                    hit = suffix.get(host[dot + 1 :])
                    if hit:
                        found += hit
                    dot = host.find(".", dot + 1)
            keys: Sequence[tuple[int, int]] = (
                [k for k in map(ip_key, addresses) if k is not None] if addresses else ()
            )
        else:
            keys = (key,)
        if self.any_host:
            found += self.any_host
        for bits, value in keys:
            nets = self.nets[bits]
            for plen in self.prefix_lens[bits]:
                hit = nets[plen].get(value >> (bits - plen))
                if hit:
                    found += hit
        if not found:
            return found
        out: list[int] = []
        ports = self._ports
        for i in found:
            spec = ports[i]
            if spec is None:
                res = self.resources[i]
                ranges = tuple(
                    [(p, p) if type(p) is int else (p.first, p.last) for p in res.ports]  # type: ignore[union-attr]
                )
                spec = ports[i] = (res.protocols, ranges)
            protocols, ranges = spec
            if protocol not in protocols or i in out:
                continue
            if ranges:
                for lo, hi in ranges:
                    if lo <= port <= hi:
                        break
                else:
                    continue
            out.append(i)
        return out

    def rule(self, pos: int) -> CompiledRule:
        """The compiled rule at bundle position ``pos`` (built on first use)."""
        cr = self._rules[pos]
        if cr is None:
            cr = self._rules[pos] = CompiledRule(self.bundle.rules[pos], pos, self._profiles)
        return cr

    def by_resource(self, i: int) -> tuple[CompiledRule, ...]:
        """Resource ``i``'s rules in decision order."""
        ordered = self._sorted[i]
        if ordered is None:
            rules = [self.rule(pos) for pos in self._positions[i]]
            rules.sort(key=_order)
            ordered = self._sorted[i] = tuple(rules)
        return ordered

    def rules_for(self, resources: list[int]) -> tuple[tuple[CompiledRule, int], ...]:
        """The rules covering any of ``resources``, each once, in decision order, with
        the (first) resource it covers."""
        key = tuple(resources)
        merged = self._combos.get(key)
        if merged is not None:
            return merged
        if len(resources) == 1:
            i = resources[0]
            merged = tuple((cr, i) for cr in self.by_resource(i))
        else:
            seen: dict[int, tuple[CompiledRule, int]] = {}
            for i in resources:
                for cr in self.by_resource(i):
                    seen.setdefault(cr.order[2], (cr, i))
            merged = tuple(sorted(seen.values(), key=lambda p: p[0].order))
        if len(self._combos) >= _COMBO_CACHE_MAX:
            self._combos.clear()
        self._combos[key] = merged
        return merged


def _host_index(
    resources: Sequence[Resource],
) -> tuple[dict[str, list[int]], dict[str, list[int]], list[int]]:
    """(exact names, ``*.`` suffixes, ``*`` holders) -> resource indices.

    Built with comprehensions (C-speed loops) assuming names are unique, which they
    nearly always are; a repeat is detected by the counts and then merged.
    """
    exact = {h: [i] for i, res in enumerate(resources) for h in res.hosts if h[:1] != "*"}
    suffix = {h[2:]: [i] for i, res in enumerate(resources) for h in res.hosts if h[:2] == "*."}
    any_host = [i for i, res in enumerate(resources) if "*" in res.hosts]
    if len(exact) + len(suffix) + len(any_host) == sum(len(res.hosts) for res in resources):
        return exact, suffix, any_host
    # a name repeats (in one resource or across several): collect every index, in order
    exact, suffix, any_host = {}, {}, []
    for i, res in enumerate(resources):
        for host in res.hosts:
            if host == "*":
                any_host.append(i)
            elif host.startswith("*."):
                suffix.setdefault(host[2:], []).append(i)
            else:
                exact.setdefault(host, []).append(i)
    return exact, suffix, any_host


def _net_index(resources: Sequence[Resource]) -> dict[int, dict[int, dict[int, list[int]]]]:
    """family bits (32/128) -> prefix length -> network number -> resource indices."""
    nets: dict[int, dict[int, dict[int, list[int]]]] = {32: {}, 128: {}}
    cidrs = [c for res in resources for c in res.cidrs]
    if not cidrs:
        return nets
    owners = [i for i, res in enumerate(resources) for _ in res.cidrs]
    parts = "/".join(cidrs).split("/")
    addrs, plens = parts[0::2], parts[1::2]
    if len(parts) == 2 * len(cidrs) and ":" not in "".join(addrs):
        # All IPv4 "a.b.c.d/n": converted in C (inet_pton, as ip_key, + one struct
        # unpack) instead of one ip_key call each. Not inet_aton: it reads "010" as octal.
        packed = b"".join(map(partial(socket.inet_pton, _V4), addrs))
        values = struct.unpack(f">{len(addrs)}I", packed)
        lens = list(map(int, plens))
        distinct = set(lens)
        if len(distinct) <= 4:  # a few prefix lengths (the norm): one comprehension each
            for plen in distinct:
                shift = 32 - plen
                group = {
                    v >> shift: [i]
                    for v, n, i in zip(values, lens, owners, strict=True)
                    if n == plen
                }
                if len(group) == lens.count(plen):  # else a network repeats: merged below
                    nets[32][plen] = group
                    continue
                for v, n, i in zip(values, lens, owners, strict=True):
                    if n == plen:
                        _add_net(nets, 32, plen, v, i)
            return nets
        keys = [(32, v, n) for v, n in zip(values, lens, strict=True)]
    else:
        keys = []
        for cidr in cidrs:
            net, _, plen_s = cidr.partition("/")
            key = ip_key(net)
            assert key is not None  # the wire schema parsed it
            bits, value = key
            keys.append((bits, value, int(plen_s) if plen_s else bits))
    for (bits, value, plen), i in zip(keys, owners, strict=True):
        _add_net(nets, bits, plen, value, i)
    return nets


def _add_net(
    nets: dict[int, dict[int, dict[int, list[int]]]], bits: int, plen: int, value: int, i: int
) -> None:
    nets[bits].setdefault(plen, {}).setdefault(value >> (bits - plen), []).append(i)


def _rule_positions(bundle: PolicyBundle) -> list[list[int]]:
    """Per resource, the bundle positions of the rules naming it (or ``*``)."""
    per_resource: list[list[int]] = [[] for _ in bundle.resources]
    ids = {r.id: i for i, r in enumerate(bundle.resources)}
    everywhere = range(len(per_resource))
    for pos, rule in enumerate(bundle.rules):
        names = rule.resources
        if len(names) == 1 and names[0] != "*":
            per_resource[ids[names[0]]].append(pos)
        elif "*" in names:
            for t in everywhere:
                per_resource[t].append(pos)
        else:
            for r in names:
                per_resource[ids[r]].append(pos)
    return per_resource


def _order(rule: CompiledRule) -> tuple[int, int, int]:
    return rule.order


def compile_bundle(bundle: PolicyBundle) -> CompiledPolicy:
    """Compile ``bundle`` (one that passed ``decode_bundle``). Pure; any thread.

    The cyclic GC is paused meanwhile: compiling allocates a few closures per rule and
    collections rescanning the growing heap would otherwise cost more than the work.
    """
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        return CompiledPolicy(bundle)
    finally:
        if gc_was_on:
            gc.enable()


def evaluate(
    rules: tuple[tuple[CompiledRule, int], ...],
    app: AppIdentity | None,
    facts: Facts,
    risk: int,
    app_ok: Callable[[CompiledRule, AppIdentity | None], bool] = CompiledRule.app_ok,
) -> Outcome:
    """Walk ``rules`` in order; the first that applies decides (deny wins ties because
    denies sort first at equal priority). Never raises for any facts mapping."""
    failed: list[tuple[CompiledRule, int]] = []
    needed: frozenset[str] = _NOTHING
    for cr, res in rules:
        if cr.apps and not app_ok(cr, app):
            continue
        cond = cr._cond
        if cond is _UNSET:
            cond = cr._compile()
        facts_read = cr._facts
        if facts_read:
            needed = facts_read if not needed else needed | facts_read
        if cr.max_risk is not None and risk > cr.max_risk:
            failed.append((cr, res))
            continue
        if cond is None or cond.evaluate(facts) == TRUE:  # type: ignore[attr-defined]
            return Outcome(cr, res, tuple(failed), needed)
        if not cr.deny:
            failed.append((cr, res))
    resource = failed[0][1] if failed else (rules[0][1] if rules else None)
    return Outcome(None, resource, tuple(failed), needed)
