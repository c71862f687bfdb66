"""Compile condition trees into fast three-valued evaluators, and explain failures.

A condition evaluates to ``TRUE``, ``FALSE`` or ``UNKNOWN``. A fact that is absent or
set to :data:`UNKNOWN` makes the test on it ``UNKNOWN`` — unknown is not false — and
``UNKNOWN`` propagates: ``not`` keeps it, ``all`` is ``FALSE`` if any member is false
else ``UNKNOWN`` if any is unknown, ``any`` is ``TRUE`` if any member is true else
``UNKNOWN`` if any is unknown. A rule applies only when its condition is ``TRUE``. A
value of the wrong type for an ordering/pattern operator is ``UNKNOWN`` too (like an
error in Cedar, which skips the policy); ``eq``/``ne`` across types are plain
false/true. Regexes and globs are compiled once, at bundle load.

Semantics on list-valued facts (``user.groups``, ``posture.av.products``): ``eq v`` means
"contains v", ``ne v`` "does not contain v", ``in [..]`` "shares a member with",
``not_in [..]`` "shares none with", ``glob``/``regex`` "some member matches".
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from core.wire.policy import AllOf, AnyOf, Condition, FactCondition, NotOf, RefOf, check_regex

__all__ = [
    "FALSE",
    "TRUE",
    "UNKNOWN",
    "UNKNOWN_VALUE",
    "Blocker",
    "CompiledCondition",
    "Facts",
    "compile_condition",
    "describe",
    "parse_version",
]

TRUE: Final = 1
FALSE: Final = 0
UNKNOWN: Final = 2

_MAX_MATCH_INPUT = 1024  # longest fact string a regex/glob is run on (bounded work)


class _UnknownValue:
    """Marker for a fact known to be unknown (same effect as an absent fact)."""

    _instance: _UnknownValue | None = None

    def __new__(cls) -> _UnknownValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN_VALUE"


UNKNOWN_VALUE: Final = _UnknownValue()
"""Put this as a fact's value to mark it unknown (equivalent to leaving it out)."""

Facts = Mapping[str, object]
Evaluator = Callable[[Facts], int]


def _key(value: object) -> tuple[str, object] | None:
    """Type-tagged key so True never equals 1 and "1" never equals 1."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    return None


def parse_version(value: object) -> tuple[int, ...] | None:
    """Leading numeric dotted part of a version ("6.1.0-18-amd64" → (6, 1, 0)), or None."""
    if not isinstance(value, str) or len(value) > 128:
        return None
    m = re.match(r"^v?(\d{1,9}(?:\.\d{1,9}){0,7})", value.strip())
    if not m:
        return None
    parts = [int(p) for p in m.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()  # 14.0 == 14
    return tuple(parts)


def _compile_test(leaf: FactCondition) -> Callable[[object], int]:
    """The test on a known fact value (never sees UNKNOWN)."""
    op, value = leaf.op, leaf.value
    if op in ("eq", "ne"):
        want = _key(value)
        hit, miss = (TRUE, FALSE) if op == "eq" else (FALSE, TRUE)

        def eq(v: object) -> int:
            if isinstance(v, list | tuple):
                return hit if any(_key(x) == want for x in v) else miss
            return hit if _key(v) == want else miss

        return eq
    if op in ("in", "not_in"):
        assert isinstance(value, list)
        keys = frozenset(k for k in map(_key, value) if k is not None)
        hit, miss = (TRUE, FALSE) if op == "in" else (FALSE, TRUE)

        def member(v: object) -> int:
            if isinstance(v, list | tuple):
                return hit if any(_key(x) in keys for x in v) else miss
            return hit if _key(v) in keys else miss

        return member
    if op in ("gt", "gte", "lt", "lte"):
        assert isinstance(value, int | float)
        bound = value
        cmp: Callable[[float, float], bool] = {
            "gt": float.__gt__,
            "gte": float.__ge__,
            "lt": float.__lt__,
            "lte": float.__le__,
        }[op]

        def order(v: object) -> int:
            if isinstance(v, bool) or not isinstance(v, int | float):
                return UNKNOWN
            return TRUE if cmp(float(v), float(bound)) else FALSE

        return order
    if op.startswith("version_"):
        target = parse_version(value)
        assert target is not None
        vcmp: Callable[[tuple[int, ...], tuple[int, ...]], bool] = {
            "version_eq": tuple.__eq__,
            "version_ne": tuple.__ne__,
            "version_gt": tuple.__gt__,
            "version_gte": tuple.__ge__,
            "version_lt": tuple.__lt__,
            "version_lte": tuple.__le__,
        }[op]

        def version(v: object) -> int:
            got = parse_version(v)
            if got is None:
                return UNKNOWN
            return TRUE if vcmp(got, target) else FALSE

        return version
    if op in ("glob", "regex"):
        assert isinstance(value, str)
        pattern = re.compile(fnmatch.translate(value)) if op == "glob" else check_regex(value)
        full = pattern.fullmatch

        def one(x: object) -> int:
            if not isinstance(x, str) or len(x) > _MAX_MATCH_INPUT:
                return UNKNOWN
            return TRUE if full(x) else FALSE

        def match(v: object) -> int:
            if isinstance(v, list | tuple):
                results = [one(x) for x in v]
                return TRUE if TRUE in results else (UNKNOWN if UNKNOWN in results else FALSE)
            return one(v)

        return match
    if op == "cidr":
        assert isinstance(value, str)
        net = ipaddress.ip_network(value)

        def cidr(v: object) -> int:
            if not isinstance(v, str):
                return UNKNOWN
            try:
                addr = ipaddress.ip_address(v)
            except ValueError:
                return UNKNOWN
            return TRUE if addr.version == net.version and addr in net else FALSE

        return cidr
    if op == "not_empty":

        def not_empty(v: object) -> int:
            if isinstance(v, str | list | tuple | dict):
                return TRUE if v else FALSE
            return TRUE

        return not_empty
    raise ValueError(f"unknown operator {op!r}")  # pragma: no cover - schema forbids it


def _fast_leaf(cond: FactCondition) -> Evaluator | None:
    """One-call closures for the hot operators (fetch and test fused), else None."""
    name, op, value = cond.fact, cond.op, cond.value
    uv = UNKNOWN_VALUE
    if op in ("eq", "ne") and value is not None and not isinstance(value, list):
        want, wcls, wkey = value, value.__class__, _key(value)
        hit, miss = (TRUE, FALSE) if op == "eq" else (FALSE, TRUE)

        def eq(fs: Facts) -> int:
            v = fs.get(name, uv)
            c = v.__class__
            if c is wcls:
                return hit if v == want else miss
            if v is uv or v is None:
                return UNKNOWN
            if c is list or c is tuple:
                return hit if any(_key(x) == wkey for x in v) else miss  # type: ignore[attr-defined]
            return hit if _key(v) == wkey else miss

        return eq
    if op in ("in", "not_in") and isinstance(value, list):
        strs = frozenset(x for x in value if isinstance(x, str))
        others = frozenset(k for x in value if not isinstance(x, str) and (k := _key(x)))
        hit, miss = (TRUE, FALSE) if op == "in" else (FALSE, TRUE)

        def one(x: object) -> bool:
            if x.__class__ is str:
                return x in strs
            return bool(others) and _key(x) in others

        def member(fs: Facts) -> int:
            v = fs.get(name, uv)
            c = v.__class__
            if c is str:
                return hit if v in strs else miss
            if v is uv or v is None:
                return UNKNOWN
            if c is list or c is tuple:
                for x in v:  # type: ignore[attr-defined]
                    if one(x):
                        return hit
                return miss
            return hit if one(v) else miss

        return member
    if op in ("gt", "gte", "lt", "lte") and isinstance(value, int | float):
        bound = value
        cmp: Callable[[Any, Any], bool] = {
            "gt": operator.gt,
            "gte": operator.ge,
            "lt": operator.lt,
            "lte": operator.le,
        }[op]

        def order(fs: Facts) -> int:
            v = fs.get(name, uv)
            c = v.__class__
            if c is int or c is float:
                return TRUE if cmp(v, bound) else FALSE
            return UNKNOWN  # absent, unknown, bool, string...

        return order
    return None


def _compile(
    cond: Condition,
    leaves: dict[int, Evaluator],
    facts: set[str],
    profiles: Mapping[str, CompiledCondition],
) -> Evaluator:
    if isinstance(cond, RefOf):
        profile = profiles.get(cond.profile)
        if profile is None:
            raise ValueError(f"unknown condition profile {cond.profile!r}")
        facts.update(profile.facts)
        return profile.evaluate
    if isinstance(cond, FactCondition):
        name = cond.fact
        facts.add(name)
        fast = _fast_leaf(cond)
        if fast is not None:
            leaves[id(cond)] = fast
            return fast
        if cond.op == "exists":

            def exists(fs: Facts) -> int:
                v = fs.get(name, UNKNOWN_VALUE)
                return FALSE if v is UNKNOWN_VALUE or v is None else TRUE

            leaves[id(cond)] = exists
            return exists
        test = _compile_test(cond)

        def leaf(fs: Facts) -> int:
            v = fs.get(name, UNKNOWN_VALUE)
            if v is UNKNOWN_VALUE or v is None:
                return UNKNOWN
            return test(v)

        leaves[id(cond)] = leaf
        return leaf
    if isinstance(cond, NotOf):
        inner = _compile(cond.of, leaves, facts, profiles)

        def negate(fs: Facts) -> int:
            r = inner(fs)
            return UNKNOWN if r == UNKNOWN else (FALSE if r == TRUE else TRUE)

        return negate
    children = tuple(_compile(c, leaves, facts, profiles) for c in cond.of)
    if isinstance(cond, AllOf):

        def all_of(fs: Facts) -> int:
            result = TRUE
            for child in children:
                r = child(fs)
                if r == FALSE:
                    return FALSE
                if r == UNKNOWN:
                    result = UNKNOWN
            return result

        return all_of
    assert isinstance(cond, AnyOf)

    def any_of(fs: Facts) -> int:
        result = FALSE
        for child in children:
            r = child(fs)
            if r == TRUE:
                return TRUE
            if r == UNKNOWN:
                result = UNKNOWN
        return result

    return any_of


@dataclass(frozen=True, slots=True)
class Blocker:
    """A test standing in the way: ``negated`` means it must become false to fix it."""

    leaf: FactCondition
    negated: bool
    status: int


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """A condition ready to run: ``evaluate(facts)`` is TRUE/FALSE/UNKNOWN, never raises
    for any facts mapping. ``facts`` are the fact names it reads. Immutable; any thread.
    """

    tree: Condition
    evaluate: Evaluator
    facts: frozenset[str]
    _leaves: Mapping[int, Evaluator]
    _profiles: Mapping[str, CompiledCondition]

    def blockers(self, facts: Facts, want: bool = True) -> list[Blocker]:
        """The tests that keep the condition from being ``want`` (for explanations)."""
        return self._blockers(self.tree, facts, want)

    def _blockers(self, cond: Condition, facts: Facts, want: bool) -> list[Blocker]:
        if isinstance(cond, RefOf):
            profile = self._profiles[cond.profile]
            return profile._blockers(profile.tree, facts, want)
        if isinstance(cond, FactCondition):
            status = self._leaves[id(cond)](facts)
            if status == (TRUE if want else FALSE):
                return []
            return [Blocker(cond, not want, status)]
        if isinstance(cond, NotOf):
            return self._blockers(cond.of, facts, not want)
        out: list[Blocker] = []
        conjunctive = isinstance(cond, AllOf) == want
        for child in cond.of:
            found = self._blockers(child, facts, want)
            if not conjunctive and not found:
                return []  # one member already gives the wanted value
            out.extend(found)
        return out


def compile_condition(
    cond: Condition, profiles: Mapping[str, CompiledCondition] | None = None
) -> CompiledCondition:
    """Compile ``cond`` once (regexes/globs compiled here); ``ref`` nodes use the already
    compiled ``profiles``. Raises ``ValueError`` only for a condition the wire schema
    would have refused. Pure; any thread.
    """
    leaves: dict[int, Evaluator] = {}
    names: set[str] = set()
    profiles = profiles or {}
    evaluate = _compile(cond, leaves, names, profiles)
    return CompiledCondition(cond, evaluate, frozenset(names), leaves, profiles)


_PHRASES: Final[Mapping[str, tuple[str, str]]] = {
    "eq": ("must be {v}", "must not be {v}"),
    "ne": ("must not be {v}", "must be {v}"),
    "in": ("must be one of {v}", "must not be any of {v}"),
    "not_in": ("must not be any of {v}", "must be one of {v}"),
    "gt": ("must be greater than {v}", "must be at most {v}"),
    "gte": ("must be at least {v}", "must be less than {v}"),
    "lt": ("must be less than {v}", "must be at least {v}"),
    "lte": ("must be at most {v}", "must be greater than {v}"),
    "version_eq": ("must be version {v}", "must not be version {v}"),
    "version_ne": ("must not be version {v}", "must be version {v}"),
    "version_gt": ("must be a version newer than {v}", "must be version {v} or older"),
    "version_gte": ("must be version {v} or newer", "must be a version older than {v}"),
    "version_lt": ("must be a version older than {v}", "must be version {v} or newer"),
    "version_lte": ("must be version {v} or older", "must be a version newer than {v}"),
    "glob": ("must match {v}", "must not match {v}"),
    "regex": ("must match /{r}/", "must not match /{r}/"),
    "cidr": ("must be in {r}", "must not be in {r}"),
    "exists": ("must be known", "must not be reported"),
    "not_empty": ("must not be empty", "must be empty"),
}


def _show(value: object) -> str:
    if value is UNKNOWN_VALUE or value is None:
        return "unknown"
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def describe(blocker: Blocker, facts: Facts) -> str:
    """A one-line requirement with the current value, e.g.
    ``posture.disk.encrypted must be true (currently false)``. Never raises."""
    leaf = blocker.leaf
    phrase = _PHRASES[leaf.op][1 if blocker.negated else 0]
    text = phrase.format(v=_show(leaf.value), r=leaf.value)
    current = facts.get(leaf.fact, UNKNOWN_VALUE)
    return f"{leaf.fact} {text} (currently {_show(current)})"
