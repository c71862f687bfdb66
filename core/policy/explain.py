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
The employee's words are in the installed language (``core.i18n``, named placeholders so
a translation may reorder them): the sentences, the words of a fact ("on", "off") and of
a value ("yes", "not known", weekdays); the data in them (group names, versions, hours,
the bundle's own remediation texts) stays as it is. The IT side is never translated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from core.i18n import QT_TRANSLATE_NOOP, translate
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
    "posture.disk.encrypted": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Turn on full-disk encryption (BitLocker, FileVault or LUKS)."
    ),
    "posture.firewall.enabled": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Turn on the firewall in your system's security settings."
    ),
    "posture.screen_lock.enabled": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Set a password screen lock in your system settings."
    ),
    "posture.screen_lock.timeout_s": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Shorten the idle time before the screen locks."
    ),
    "posture.updates.auto": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Turn on automatic security updates."
    ),
    "posture.secure_boot.enabled": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Ask IT to turn on Secure Boot in the firmware."
    ),
    "posture.av.running": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Start (or install) the company antivirus/EDR agent."
    ),
    "posture.av.products": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Install the company antivirus/EDR agent."
    ),
    "posture.mdm.enrolled": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Enrol this device in the company's device management."
    ),
    "posture.domain.joined": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Ask IT to join this device to the company domain."
    ),
    "posture.os.version": QT_TRANSLATE_NOOP("core.policy.explain", "Update your operating system."),
    "posture.os.build": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Install the latest operating-system updates."
    ),
    "posture.os.kernel": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Install the latest kernel updates and restart."
    ),
    "posture.client.version": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Update Rustronaut to the latest version."
    ),
    "user.groups": QT_TRANSLATE_NOOP(
        "core.policy.explain", "Ask IT for access: your account is not in a group this needs."
    ),
    "user.email": QT_TRANSLATE_NOOP("core.policy.explain", "Sign in with your company account."),
    "time.hour": QT_TRANSLATE_NOOP(
        "core.policy.explain", "This resource is available only during set hours."
    ),
    "time.weekday": QT_TRANSLATE_NOOP(
        "core.policy.explain", "This resource is available only on set days."
    ),
}

#: What to do about a risk score over a rule's limit (translated where it is used).
RISK_REMEDIATION: Final = QT_TRANSLATE_NOOP(
    "core.policy.explain",
    "Your device's risk score is too high. Fix the posture issues shown; behavioural risk "
    "falls by itself over time.",
)


def _remedy(blocker: Blocker, rule: CompiledRule) -> str:
    leaf = blocker.leaf
    # The bundle's own texts are the controller's data (shown as IT wrote them); only our
    # defaults are ours to translate.
    text = leaf.remediation or rule.rule.remediation.get(leaf.fact)
    if not text:
        default = DEFAULT_REMEDIATION.get(leaf.fact)
        text = (
            translate("core.policy.explain", default)
            if default
            else translate("core.policy.explain", "Contact IT about '{fact}'.").format(
                fact=leaf.fact
            )
        )
    if blocker.status == 2 and leaf.fact.startswith("posture."):
        text += " " + translate(
            "core.policy.explain",
            "If it is already so, re-run the device check (posture could not be read).",
        )
    return text


#: (wanted, negated) phrase per operator, for the employee ("{value}" is the shown value).
_PLAIN: Final[Mapping[str, tuple[str, str]]] = {
    "eq": (
        QT_TRANSLATE_NOOP("core.policy.explain", "{value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "not {value}"),
    ),
    "ne": (
        QT_TRANSLATE_NOOP("core.policy.explain", "not {value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "{value}"),
    ),
    "in": (
        QT_TRANSLATE_NOOP("core.policy.explain", "{value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "none of {value}"),
    ),
    "not_in": (
        QT_TRANSLATE_NOOP("core.policy.explain", "none of {value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "{value}"),
    ),
    "gt": (
        QT_TRANSLATE_NOOP("core.policy.explain", "above {value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "at most {value}"),
    ),
    "gte": (
        QT_TRANSLATE_NOOP("core.policy.explain", "at least {value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "below {value}"),
    ),
    "lt": (
        QT_TRANSLATE_NOOP("core.policy.explain", "below {value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "at least {value}"),
    ),
    "lte": (
        QT_TRANSLATE_NOOP("core.policy.explain", "at most {value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "above {value}"),
    ),
    "version_eq": (
        QT_TRANSLATE_NOOP("core.policy.explain", "version {value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "not version {value}"),
    ),
    "version_ne": (
        QT_TRANSLATE_NOOP("core.policy.explain", "not version {value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "version {value}"),
    ),
    "version_gt": (
        QT_TRANSLATE_NOOP("core.policy.explain", "newer than {value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "{value} or older"),
    ),
    "version_gte": (
        QT_TRANSLATE_NOOP("core.policy.explain", "{value} or newer"),
        QT_TRANSLATE_NOOP("core.policy.explain", "older than {value}"),
    ),
    "version_lt": (
        QT_TRANSLATE_NOOP("core.policy.explain", "older than {value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "{value} or newer"),
    ),
    "version_lte": (
        QT_TRANSLATE_NOOP("core.policy.explain", "{value} or older"),
        QT_TRANSLATE_NOOP("core.policy.explain", "newer than {value}"),
    ),
    "glob": (
        QT_TRANSLATE_NOOP("core.policy.explain", "matching {value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "not matching {value}"),
    ),
    "regex": (
        QT_TRANSLATE_NOOP("core.policy.explain", "matching the pattern {value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "not matching the pattern {value}"),
    ),
    "cidr": (
        QT_TRANSLATE_NOOP("core.policy.explain", "in {value}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "outside {value}"),
    ),
    "exists": (
        QT_TRANSLATE_NOOP("core.policy.explain", "checked"),
        QT_TRANSLATE_NOOP("core.policy.explain", "not reported"),
    ),
    "not_empty": (
        QT_TRANSLATE_NOOP("core.policy.explain", "set"),
        QT_TRANSLATE_NOOP("core.policy.explain", "empty"),
    ),
}
#: The same for hours and days ("is open only from 9:00").
_WHEN: Final[Mapping[str, tuple[str, str]]] = {
    "eq": (
        QT_TRANSLATE_NOOP("core.policy.explain", "at {time}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "outside {time}"),
    ),
    "ne": (
        QT_TRANSLATE_NOOP("core.policy.explain", "outside {time}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "at {time}"),
    ),
    "in": (
        QT_TRANSLATE_NOOP("core.policy.explain", "at {time}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "outside {time}"),
    ),
    "not_in": (
        QT_TRANSLATE_NOOP("core.policy.explain", "outside {time}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "at {time}"),
    ),
    "gt": (
        QT_TRANSLATE_NOOP("core.policy.explain", "after {time}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "until {time}"),
    ),
    "gte": (
        QT_TRANSLATE_NOOP("core.policy.explain", "from {time}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "before {time}"),
    ),
    "lt": (
        QT_TRANSLATE_NOOP("core.policy.explain", "before {time}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "from {time}"),
    ),
    "lte": (
        QT_TRANSLATE_NOOP("core.policy.explain", "until {time}"),
        QT_TRANSLATE_NOOP("core.policy.explain", "after {time}"),
    ),
}
_DAYS: Final = (
    QT_TRANSLATE_NOOP("core.policy.explain", "Monday"),
    QT_TRANSLATE_NOOP("core.policy.explain", "Tuesday"),
    QT_TRANSLATE_NOOP("core.policy.explain", "Wednesday"),
    QT_TRANSLATE_NOOP("core.policy.explain", "Thursday"),
    QT_TRANSLATE_NOOP("core.policy.explain", "Friday"),
    QT_TRANSLATE_NOOP("core.policy.explain", "Saturday"),
    QT_TRANSLATE_NOOP("core.policy.explain", "Sunday"),
)


def _one(value: object, fact: str) -> str:
    if isinstance(value, bool):
        return (
            translate("core.policy.explain", "yes")
            if value
            else translate("core.policy.explain", "no")
        )
    if fact == "time.hour" and isinstance(value, int):
        return f"{value}:00"
    if fact == "time.weekday" and isinstance(value, int) and 0 <= value < len(_DAYS):
        return translate("core.policy.explain", _DAYS[value])
    if isinstance(value, int | float):
        spec = fact_spec(fact.removeprefix("posture."))
        unit = f" {spec.unit}" if spec is not None and spec.unit else ""
        return f"{value}{unit}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _not_known() -> str:
    return translate("core.policy.explain", "not known")


def plain_value(value: object, fact: str = "", *, joiner: str = "or") -> str:
    """``value`` as the employee reads it: no quotes or brackets, lists as "A, B or C"
    (``joiner`` "and": "A, B and C"), hours as "9:00", weekdays by name, amounts with
    their unit; the words translated, the data (names, versions) as they are. Never
    raises."""
    if value is UNKNOWN_VALUE or value is None:
        return _not_known()
    if isinstance(value, list | tuple):
        items = [_one(v, fact) for v in value[:8]]
        if len(value) > 8:
            items.append(translate("core.policy.explain", "others"))
        if not items:
            return translate("core.policy.explain", "none")
        if len(items) == 1:
            return items[0]
        if joiner == "and":
            last = translate("core.policy.explain", "{items} and {last}")
        else:
            last = translate("core.policy.explain", "{items} or {last}")
        return last.format(items=", ".join(items[:-1]), last=items[-1])
    return _one(value, fact)


def _wanted_bool(leaf: FactCondition, negated: bool) -> bool | None:
    """For a yes/no test (eq/ne true/false): the value that meets it, else None."""
    if leaf.op not in ("eq", "ne") or not isinstance(leaf.value, bool):
        return None
    want = leaf.value if leaf.op == "eq" else not leaf.value
    return not want if negated else want


def _phrase(blocker: Blocker, value: str) -> str:
    """The tested value phrased by the operator ("at least 12", "none of A or B")."""
    wanted, negated = _PLAIN.get(blocker.leaf.op, _PLAIN["eq"])
    text = negated if blocker.negated else wanted
    return translate("core.policy.explain", text).format(value=value)


def _when(blocker: Blocker, time: str) -> str:
    """An hour or day phrased by the operator ("from 9:00", "outside Sunday")."""
    pair = _WHEN.get(blocker.leaf.op)
    if pair is None:
        return _phrase(blocker, time)
    text = pair[1] if blocker.negated else pair[0]
    return translate("core.policy.explain", text).format(time=time)


def _need_now(need: str, now: str) -> str:
    """One requirement and the current state, joined as one sentence."""
    return translate("core.policy.explain", "{need} — {now}").format(need=need, now=now)


def plain_requirement(blocker: Blocker, facts: Facts) -> str:
    """What the employee reads for one unmet test: the requirement by its human label
    and their current value, e.g. "needs the firewall on — it is off", "needs group
    Finance — you are in Engineering", "is open only from 9:00 — it is now 22:00".
    In the installed language (values that are data stay as they are). Never raises;
    starts in lower case (it follows a resource's name)."""
    leaf = blocker.leaf
    fact = leaf.fact
    current = facts.get(fact, UNKNOWN_VALUE)
    unknown = current is UNKNOWN_VALUE or current is None
    if fact == "user.groups":
        groups = plain_value(current, fact, joiner="and") if not unknown else ""
        if not groups or groups == translate("core.policy.explain", "none"):
            groups = translate("core.policy.explain", "no group")
        member = (leaf.op in ("eq", "in")) != blocker.negated
        wanted = plain_value(leaf.value, fact)
        if leaf.op not in ("eq", "ne", "in", "not_in"):
            text = translate(
                "core.policy.explain", "needs your groups {wanted} — you are in {value}"
            )
            return text.format(wanted=_phrase(blocker, wanted), value=groups)
        if member:
            text = translate("core.policy.explain", "needs group {group} — you are in {value}")
        else:
            text = translate(
                "core.policy.explain", "is closed to group {group} — you are in {value}"
            )
        return text.format(group=wanted, value=groups)
    if fact in ("user.email", "user.subject"):
        who = _not_known() if unknown else plain_value(current, fact)
        text = translate(
            "core.policy.explain", "needs the account {wanted} — you are signed in as {value}"
        )
        return text.format(wanted=_phrase(blocker, plain_value(leaf.value, fact)), value=who)
    if fact in ("time.hour", "time.weekday"):
        when = _when(blocker, plain_value(leaf.value, fact))
        now = _not_known() if unknown else plain_value(current, fact)
        if fact == "time.hour":
            text = translate("core.policy.explain", "is open only {when} — it is now {value}")
        else:
            text = translate("core.policy.explain", "is open only {when} — today is {value}")
        return text.format(when=when, value=now)
    if fact == "risk":
        return plain_risk(leaf, blocker, current)
    words = fact_words(fact)
    if not unknown:
        is_now = ""
    elif fact.startswith("posture."):
        is_now = translate("core.policy.explain", "it could not be checked")
    else:
        is_now = translate("core.policy.explain", "it is not known")
    if leaf.op == "exists":
        if blocker.negated:
            text = translate("core.policy.explain", "needs {subject} not reported — it is {value}")
            return text.format(subject=words.subject, value=plain_value(current, fact))
        need = translate("core.policy.explain", "needs {subject} to be checked")
        now = is_now or translate("core.policy.explain", "it is not reported")
        return _need_now(need.format(subject=words.subject), now)
    it_is = translate("core.policy.explain", "it is {value}")
    want = _wanted_bool(leaf, blocker.negated)
    if want is not None:
        need = translate("core.policy.explain", "needs {subject} {state}").format(
            subject=words.subject, state=words.yes if want else words.no
        )
        if not is_now:
            if isinstance(current, bool):
                is_now = it_is.format(value=words.yes if current else words.no)
            else:
                is_now = it_is.format(value=plain_value(current, fact))
        return _need_now(need, is_now)
    need = translate("core.policy.explain", "needs {subject} {wanted}").format(
        subject=words.subject, wanted=_phrase(blocker, plain_value(leaf.value, fact))
    )
    return _need_now(need, is_now or it_is.format(value=plain_value(current, fact)))


def plain_risk(limit: FactCondition | int, blocker: Blocker | None, current: object) -> str:
    """The risk requirement for the employee: "needs a risk score of at most 40 — yours
    is 55" (``limit`` a rule's ``max_risk``, or a condition on the ``risk`` fact)."""
    yours = _not_known() if current is UNKNOWN_VALUE or current is None else str(current)
    if isinstance(limit, int):
        text = translate(
            "core.policy.explain", "needs a risk score of at most {limit} — yours is {value}"
        )
        return text.format(limit=limit, value=yours)
    assert blocker is not None
    wanted = _phrase(blocker, plain_value(limit.value))
    text = translate("core.policy.explain", "needs a risk score {wanted} — yours is {value}")
    return text.format(wanted=wanted, value=yours)


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
                translate("core.policy.explain", RISK_REMEDIATION),
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
