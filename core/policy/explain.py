"""Turn an evaluation outcome into what the employee reads: unmet requirements and fixes.

Remediation text for an unmet test comes from, in order: the condition's own
``remediation``, the rule's ``remediation[fact]``, :data:`DEFAULT_REMEDIATION` for the
fact, a generic text. Only deny decisions are explained (allows need no fix), so this
never runs on the hot path of an allowed connection.

Each unmet requirement is said twice: for IT (``Unmet.requirement``: the fact's name,
the test and the value, as ``conditions.describe`` writes it) and for the employee
(``Unmet.plain``, from :func:`plain_requirement`): the requirement by its human label
and the person's current value — "needs the firewall on — it is off", "needs group
Finance — you are in Engineering", "needs a risk score of at most 40 — yours is 55".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from core.policy.api import Unmet
from core.policy.compiled import CompiledRule
from core.policy.conditions import UNKNOWN_VALUE, Blocker, Facts, describe
from core.wire.policy import FactCondition
from core.wire.posture import fact_spec, fact_words

__all__ = [
    "DEFAULT_REMEDIATION",
    "RISK_REMEDIATION",
    "plain_reason",
    "plain_requirement",
    "plain_risk",
    "plain_value",
    "unmet_for",
]

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


#: (wanted, negated) phrase per operator, for the employee ("{v}" is the shown value).
_PLAIN: Final[Mapping[str, tuple[str, str]]] = {
    "eq": ("{v}", "not {v}"),
    "ne": ("not {v}", "{v}"),
    "in": ("{v}", "none of {v}"),
    "not_in": ("none of {v}", "{v}"),
    "gt": ("above {v}", "at most {v}"),
    "gte": ("at least {v}", "below {v}"),
    "lt": ("below {v}", "at least {v}"),
    "lte": ("at most {v}", "above {v}"),
    "version_eq": ("version {v}", "not version {v}"),
    "version_ne": ("not version {v}", "version {v}"),
    "version_gt": ("newer than {v}", "{v} or older"),
    "version_gte": ("{v} or newer", "older than {v}"),
    "version_lt": ("older than {v}", "{v} or newer"),
    "version_lte": ("{v} or older", "newer than {v}"),
    "glob": ("matching {v}", "not matching {v}"),
    "regex": ("matching the pattern {v}", "not matching the pattern {v}"),
    "cidr": ("in {v}", "outside {v}"),
    "exists": ("checked", "not reported"),
    "not_empty": ("set", "empty"),
}
#: The same for hours and days ("is open only from 9:00").
_WHEN: Final[Mapping[str, tuple[str, str]]] = {
    "eq": ("at {v}", "outside {v}"),
    "ne": ("outside {v}", "at {v}"),
    "in": ("at {v}", "outside {v}"),
    "not_in": ("outside {v}", "at {v}"),
    "gt": ("after {v}", "until {v}"),
    "gte": ("from {v}", "before {v}"),
    "lt": ("before {v}", "from {v}"),
    "lte": ("until {v}", "after {v}"),
}
_DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _one(value: object, fact: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if fact == "time.hour" and isinstance(value, int):
        return f"{value}:00"
    if fact == "time.weekday" and isinstance(value, int) and 0 <= value < len(_DAYS):
        return _DAYS[value]
    if isinstance(value, int | float):
        spec = fact_spec(fact.removeprefix("posture."))
        unit = f" {spec.unit}" if spec is not None and spec.unit else ""
        return f"{value}{unit}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def plain_value(value: object, fact: str = "", *, joiner: str = "or") -> str:
    """``value`` as the employee reads it: no quotes or brackets, lists as "A, B or C",
    hours as "9:00", weekdays by name, amounts with their unit. Never raises."""
    if value is UNKNOWN_VALUE or value is None:
        return "not known"
    if isinstance(value, list | tuple):
        items = [_one(v, fact) for v in value[:8]] + (["others"] if len(value) > 8 else [])
        if not items:
            return "none"
        return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {joiner} {items[-1]}"
    return _one(value, fact)


def _wanted_bool(leaf: FactCondition, negated: bool) -> bool | None:
    """For a yes/no test (eq/ne true/false): the value that meets it, else None."""
    if leaf.op not in ("eq", "ne") or not isinstance(leaf.value, bool):
        return None
    want = leaf.value if leaf.op == "eq" else not leaf.value
    return not want if negated else want


def _phrase(table: Mapping[str, tuple[str, str]], blocker: Blocker, value: str) -> str:
    wanted, negated = table.get(blocker.leaf.op, _PLAIN.get(blocker.leaf.op, ("{v}", "not {v}")))
    return (negated if blocker.negated else wanted).format(v=value)


def plain_requirement(blocker: Blocker, facts: Facts) -> str:
    """What the employee reads for one unmet test: the requirement by its human label
    and their current value, e.g. "needs the firewall on — it is off", "needs group
    Finance — you are in Engineering", "is open only from 9:00 — it is now 22:00".
    Never raises; starts in lower case (it follows a resource's name)."""
    leaf = blocker.leaf
    fact = leaf.fact
    current = facts.get(fact, UNKNOWN_VALUE)
    unknown = current is UNKNOWN_VALUE or current is None
    if fact == "user.groups":
        groups = plain_value(current, fact, joiner="and") if not unknown else "no group"
        if groups == "none":
            groups = "no group"
        member = (leaf.op in ("eq", "in")) != blocker.negated
        if leaf.op in ("eq", "ne", "in", "not_in"):
            wanted = plain_value(leaf.value, fact)
            need = f"needs group {wanted}" if member else f"is closed to group {wanted}"
        else:
            need = f"needs your groups {_phrase(_PLAIN, blocker, plain_value(leaf.value, fact))}"
        return f"{need} — you are in {groups}"
    if fact in ("user.email", "user.subject"):
        who = "not known" if unknown else plain_value(current, fact)
        wanted = _phrase(_PLAIN, blocker, plain_value(leaf.value, fact))
        return f"needs the account {wanted} — you are signed in as {who}"
    if fact in ("time.hour", "time.weekday"):
        when = _phrase(_WHEN, blocker, plain_value(leaf.value, fact))
        now = "not known" if unknown else plain_value(current, fact)
        prefix = "it is now" if fact == "time.hour" else "today is"
        return f"is open only {when} — {prefix} {now}"
    if fact == "risk":
        return plain_risk(leaf, blocker, current)
    words = fact_words(fact)
    if fact.startswith("posture."):
        is_now = "it could not be checked" if unknown else ""
    else:
        is_now = "it is not known" if unknown else ""
    if leaf.op == "exists":
        if blocker.negated:
            return f"needs {words.subject} not reported — it is {plain_value(current, fact)}"
        return f"needs {words.subject} to be checked — {is_now or 'it is not reported'}"
    want = _wanted_bool(leaf, blocker.negated)
    if want is not None:
        need = f"needs {words.subject} {words.yes if want else words.no}"
        if not is_now:
            if isinstance(current, bool):
                is_now = f"it is {words.yes if current else words.no}"
            else:
                is_now = f"it is {plain_value(current, fact)}"
        return f"{need} — {is_now}"
    need = f"needs {words.subject} {_phrase(_PLAIN, blocker, plain_value(leaf.value, fact))}"
    return f"{need} — {is_now or 'it is ' + plain_value(current, fact)}"


def plain_risk(limit: FactCondition | int, blocker: Blocker | None, current: object) -> str:
    """The risk requirement for the employee: "needs a risk score of at most 40 — yours
    is 55" (``limit`` a rule's ``max_risk``, or a condition on the ``risk`` fact)."""
    yours = "not known" if current is UNKNOWN_VALUE or current is None else str(current)
    if isinstance(limit, int):
        return f"needs a risk score of at most {limit} — yours is {yours}"
    assert blocker is not None
    wanted = _phrase(_PLAIN, blocker, plain_value(limit.value))
    return f"needs a risk score {wanted} — yours is {yours}"


def plain_reason(unmet: tuple[Unmet, ...] | list[Unmet]) -> str:
    """Every unmet requirement for the employee, in order, "; "-separated ("needs the
    firewall on — it is off; needs group Finance — you are in Sales"); "" for none."""
    return "; ".join(u.plain or u.requirement for u in unmet)


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

    def add(fact: str, requirement: str, remediation: str, plain: str) -> None:
        if (fact, requirement) not in seen and len(out) < limit:
            seen.add((fact, requirement))
            out.append(Unmet(fact, requirement, remediation, plain))

    for cr, _res in failed:
        if cr.max_risk is not None and risk > cr.max_risk:
            add(
                "risk",
                f"risk must be at most {cr.max_risk} (currently {risk})",
                RISK_REMEDIATION,
                plain_risk(cr.max_risk, None, risk),
            )
        if cr.cond is not None:
            for b in cr.cond.blockers(facts, want=True):
                add(b.leaf.fact, describe(b, facts), _remedy(b, cr), plain_requirement(b, facts))
    if denied_by is not None and denied_by.cond is not None:
        for b in denied_by.cond.blockers(facts, want=False):
            add(
                b.leaf.fact,
                describe(b, facts),
                _remedy(b, denied_by),
                plain_requirement(b, facts),
            )
    return tuple(out)
