"""Explanations the employee can act on: each unmet requirement by its human label and
the person's current value (issue 18, Deliver 3), never "needs requirements this device
or user does not meet yet" and never a raw fact name."""

from __future__ import annotations

import pytest

from core.policy.conditions import UNKNOWN_VALUE
from core.policy.engine import PolicyEngine, reachable_resources
from core.policy.explain import plain_value
from core.policy.risk import RiskTracker, risk_label
from core.wire.policy import AllOf, NotOf, PolicyBundle, UserInfo
from core.wire.posture import fact_words
from tests.core.policy.helpers import NOW, bundle, fact, req, rule

pytestmark = pytest.mark.unit


def _reason(b: PolicyBundle, **facts: object) -> str:
    e = PolicyEngine(clock=lambda: NOW, record=False)
    e.load(b)
    e.set_facts({k.replace("__", "."): v for k, v in facts.items()})
    d = e.decide(req())
    assert not d.allowed
    return d.reason


@pytest.mark.parametrize(
    ("condition", "facts", "says"),
    [
        (
            fact("posture.firewall.enabled", "eq", True),
            {"posture__firewall__enabled": False},
            "needs the firewall on — it is off",
        ),
        (
            fact("posture.firewall.enabled", "eq", True),
            {},
            "needs the firewall on — it could not be checked",
        ),
        (
            fact("posture.disk.encrypted", "ne", False),
            {"posture__disk__encrypted": False},
            "needs disk encryption on — it is off",
        ),
        (
            fact("posture.av.running", "eq", True),
            {"posture__av__running": False},
            "needs the antivirus running — it is not running",
        ),
        (
            fact("posture.mdm.enrolled", "eq", True),
            {"posture__mdm__enrolled": False},
            "needs this device enrolled in device management — it is not enrolled",
        ),
        (
            fact("posture.os.version", "version_gte", "14.4"),
            {"posture__os__version": "13.1"},
            "needs the operating system version 14.4 or newer — it is 13.1",
        ),
        (
            fact("posture.screen_lock.timeout_s", "lte", 300),
            {"posture__screen_lock__timeout_s": 900},
            "needs the screen lock delay at most 300 s — it is 900 s",
        ),
        (
            fact("posture.process.falcon-sensor.running", "eq", True),
            {"posture__process__falcon-sensor__running": False},
            "needs the program “falcon-sensor” running — it is not running",
        ),
        (
            fact("user.groups", "eq", "Finance"),
            {},
            "needs group Finance — you are in Engineering and Support",
        ),
        (
            fact("user.groups", "in", ["Finance", "Payroll"]),
            {},
            "needs group Finance or Payroll — you are in Engineering and Support",
        ),
        (
            NotOf(of=fact("user.groups", "eq", "Support")),
            {},
            "is closed to group Support — you are in Engineering and Support",
        ),
        (
            fact("user.email", "glob", "*@finance.example"),
            {},
            "needs the account matching *@finance.example — you are signed in as ada@corp.example",
        ),
    ],
)
def test_each_unmet_requirement_reads_as_label_and_current_value(
    condition: object, facts: dict[str, object], says: str
) -> None:
    b = bundle(
        rule("git", conditions=condition),  # type: ignore[arg-type]
        user=UserInfo(subject="ada", email="ada@corp.example", groups=("Engineering", "Support")),
    )
    assert _reason(b, **facts) == f"Git {says}"


def test_every_requirement_is_named_not_a_vague_summary() -> None:
    cond = AllOf(
        of=(
            fact("posture.firewall.enabled", "eq", True),
            fact("user.groups", "eq", "Finance"),
        )
    )
    b = bundle(
        rule("git", conditions=cond),
        user=UserInfo(subject="ada", email="ada@corp.example", groups=("Engineering",)),
    )
    reason = _reason(b, posture__firewall__enabled=False)
    assert "does not meet yet" not in reason
    assert "posture." not in reason
    assert "user.groups" not in reason
    assert reason == (
        "Git needs the firewall on — it is off; needs group Finance — you are in Engineering"
    )


def test_the_risk_limit_says_the_score() -> None:
    tracker = RiskTracker(clock=lambda: NOW)
    e = PolicyEngine(clock=lambda: NOW, record=False, tracker=tracker)
    e.load(bundle(rule("git", max_risk=10)))
    e.set_facts({"posture.disk.encrypted": False})  # +25 risk
    d = e.decide(req())
    assert d.reason == "Git needs a risk score of at most 10 — yours is 25"


def test_hours_and_days_read_as_times_and_day_names() -> None:
    # NOW is a Friday 02:40 UTC; the local hour depends on TZ, so only the shape is fixed.
    b = bundle(rule("git", conditions=fact("time.hour", "gte", 24)))  # never met
    assert _reason(b).startswith("Git is open only from 24:00 — it is now ")
    b = bundle(rule("git", conditions=fact("time.weekday", "in", [0, 1])))
    reason = _reason(b)
    assert reason.startswith("Git is open only at Monday or Tuesday — today is ")
    assert reason.rsplit(" ", 1)[1] in (
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    )


def test_reachability_carries_the_plain_reason_and_it_keeps_the_it_text() -> None:
    b = bundle(rule("git", conditions=fact("posture.firewall.enabled", "eq", True)))
    (git, *_rest) = reachable_resources(b, {"posture.firewall.enabled": False}, now=NOW)
    assert git.reason == "Git needs the firewall on — it is off"
    (u,) = git.unmet
    assert u.plain == "needs the firewall on — it is off"
    assert u.requirement == "posture.firewall.enabled must be true (currently false)"


@pytest.mark.parametrize(
    ("value", "fact_name", "shown"),
    [
        (["a", "b", "c"], "", "a, b or c"),
        ([], "", "none"),
        (UNKNOWN_VALUE, "", "not known"),
        (9, "time.hour", "9:00"),
        (5, "time.weekday", "Saturday"),
        (300, "posture.screen_lock.timeout_s", "300 s"),
        (True, "", "yes"),
    ],
)
def test_plain_value(value: object, fact_name: str, shown: str) -> None:
    assert plain_value(value, fact_name) == shown


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("posture.av.running", "Antivirus not running"),
        ("posture.disk.encrypted", "Disk encryption off"),
        ("deny_streak", "Many connections refused in a row"),
        ("new_pair", "An app reached a resource for the first time"),
        ("burst", "A burst of connections"),
        ("unusual_hour", "Activity at an unusual hour"),
        ("something.else", "something.else"),
    ],
)
def test_risk_contributions_have_human_labels(name: str, label: str) -> None:
    assert risk_label(name) == label


def test_risk_snapshot_lists_contributions_by_label() -> None:
    tracker = RiskTracker(clock=lambda: NOW)
    tracker.set_posture({"posture.av.running": False, "posture.firewall.enabled": True})
    snap = tracker.snapshot()
    assert snap.active == ("posture.av.running",)
    assert snap.active_labels == ("Antivirus not running",)


def test_facts_have_human_labels_and_informational_ones_are_marked() -> None:
    assert fact_words("posture.firewall.enabled").label == "Firewall"
    assert fact_words("disk.encrypted").label == "Disk encryption"
    assert fact_words("device.hostname").informational
    assert not fact_words("firewall.enabled").informational
    assert fact_words("file./etc/corp.conf.present").label == "File /etc/corp.conf"
