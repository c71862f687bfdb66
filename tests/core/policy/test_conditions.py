"""Every operator, three-valued logic, list facts, explanations of failing tests."""

from __future__ import annotations

import pytest

from core.policy.conditions import (
    FALSE,
    TRUE,
    UNKNOWN,
    UNKNOWN_VALUE,
    compile_condition,
    describe,
    parse_version,
)
from core.wire.policy import AllOf, AnyOf, NotOf
from tests.core.policy.helpers import fact

pytestmark = pytest.mark.unit

T, F, U = TRUE, FALSE, UNKNOWN


@pytest.mark.parametrize(
    ("op", "value", "fact_value", "expected"),
    [
        ("eq", True, True, T),
        ("eq", True, False, F),
        ("eq", True, 1, F),  # a bool is never a number
        ("eq", 1, 1.0, T),
        ("eq", "eng", ["eng", "ops"], T),  # list fact: contains
        ("eq", "hr", ["eng", "ops"], F),
        ("eq", "1", 1, F),
        ("ne", "linux", "windows", T),
        ("ne", "linux", "linux", F),
        ("ne", "hr", ["eng"], T),
        ("in", ["linux", "macos"], "macos", T),
        ("in", ["linux", "macos"], "windows", F),
        ("in", ["hr", "eng"], ["eng", "ops"], T),  # overlap
        ("in", [1, 2], True, F),
        ("not_in", ["hr"], ["eng"], T),
        ("not_in", ["eng"], ["eng"], F),
        ("not_in", ["x"], "y", T),
        ("gt", 5, 6, T),
        ("gt", 5, 5, F),
        ("gte", 5, 5, T),
        ("lt", 300, 600, F),
        ("lt", 300, 60, T),
        ("lte", 300, 300, T),
        ("lte", 300, 300.5, F),
        ("gt", 5, "6", U),  # wrong type: unknown, like an error in Cedar
        ("gt", 5, True, U),
        ("version_gte", "14.2", "14.2.1", T),
        ("version_gte", "14.2", "14.1.9", F),
        ("version_gte", "14.0", "14", T),
        ("version_gt", "6.1", "6.1.0-18-amd64", F),  # leading numeric part: 6.1.0 == 6.1
        ("version_lt", "10.0.22631", "10.0.19045", T),
        ("version_lte", "12", "12.0.0", T),
        ("version_eq", "12.4", "12.4.0", T),
        ("version_ne", "12.4", "12.5", T),
        ("version_gte", "14", "unknown-build", U),
        ("glob", "*.corp.example", "a.corp.example", T),
        ("glob", "*.corp.example", "corp.example", F),
        ("glob", "Crowd*", ["Defender", "CrowdStrike"], T),
        ("regex", "[a-z]+@corp\\.example", "alice@corp.example", T),
        ("regex", "[a-z]+@corp\\.example", "alice@corp.example.evil", F),  # anchored
        ("regex", "[a-z]+", "x" * 5000, U),  # bounded input
        ("regex", "[a-z]+", 5, U),
        ("cidr", "10.0.0.0/8", "10.1.2.3", T),
        ("cidr", "10.0.0.0/8", "11.1.2.3", F),
        ("cidr", "fd00::/8", "fd12::1", T),
        ("cidr", "10.0.0.0/8", "fd12::1", F),
        ("cidr", "10.0.0.0/8", "not-an-ip", U),
        ("exists", None, "x", T),
        ("exists", True, False, T),
        ("not_empty", None, ["a"], T),
        ("not_empty", None, [], F),
        ("not_empty", None, "", F),
        ("not_empty", None, 0, T),
    ],
)
def test_operator(op: str, value: object, fact_value: object, expected: int) -> None:
    cond = compile_condition(fact("x.y", op, value))
    assert cond.evaluate({"x.y": fact_value}) == expected


@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("eq", True),
        ("ne", True),
        ("in", ["a"]),
        ("not_in", ["a"]),
        ("gt", 1),
        ("version_gte", "1"),
        ("glob", "*"),
        ("regex", ".*"),
        ("cidr", "10.0.0.0/8"),
        ("not_empty", None),
    ],
)
@pytest.mark.parametrize("facts", [{}, {"x.y": UNKNOWN_VALUE}, {"x.y": None}])
def test_unknown_fact_is_unknown_not_false(
    op: str, value: object, facts: dict[str, object]
) -> None:
    assert compile_condition(fact("x.y", op, value)).evaluate(facts) == UNKNOWN


@pytest.mark.parametrize("facts", [{}, {"x.y": UNKNOWN_VALUE}])
def test_exists_is_false_for_unknown(facts: dict[str, object]) -> None:
    assert compile_condition(fact("x.y", "exists")).evaluate(facts) == FALSE


A = fact("a", "eq", True)
B = fact("b", "eq", True)


@pytest.mark.parametrize(
    ("cond", "facts", "expected"),
    [
        (AllOf(of=(A, B)), {"a": True, "b": True}, T),
        (AllOf(of=(A, B)), {"a": True, "b": False}, F),
        (AllOf(of=(A, B)), {"a": True}, U),
        (AllOf(of=(A, B)), {"b": False}, F),  # false beats unknown
        (AllOf(of=()), {}, T),
        (AnyOf(of=(A, B)), {"a": False, "b": True}, T),
        (AnyOf(of=(A, B)), {"a": False, "b": False}, F),
        (AnyOf(of=(A, B)), {"a": False}, U),
        (AnyOf(of=(A, B)), {"b": True}, T),  # true beats unknown
        (AnyOf(of=()), {}, F),
        (NotOf(of=A), {"a": False}, T),
        (NotOf(of=A), {"a": True}, F),
        (NotOf(of=A), {}, U),  # negation keeps unknown: never grants on missing facts
        (NotOf(of=NotOf(of=A)), {"a": True}, T),
    ],
)
def test_combinators(cond: object, facts: dict[str, object], expected: int) -> None:
    assert compile_condition(cond).evaluate(facts) == expected  # type: ignore[arg-type]


def test_facts_read_are_collected() -> None:
    cond = compile_condition(AllOf(of=(A, NotOf(of=AnyOf(of=(B, fact("c", "exists")))))))
    assert cond.facts == frozenset({"a", "b", "c"})


def test_blockers_explain_what_to_fix() -> None:
    cond = compile_condition(
        AllOf(
            of=(
                fact("posture.disk.encrypted", "eq", True),
                fact("posture.firewall.enabled", "eq", True),
                NotOf(of=fact("user.groups", "in", ["contractors"])),
            )
        )
    )
    facts = {"posture.disk.encrypted": False, "user.groups": ["contractors"]}
    blockers = cond.blockers(facts)
    texts = [describe(b, facts) for b in blockers]
    assert texts == [
        "posture.disk.encrypted must be true (currently false)",
        "posture.firewall.enabled must be true (currently unknown)",
        'user.groups must not be any of ["contractors"] (currently ["contractors"])',
    ]
    assert [b.status for b in blockers] == [F, U, T]


def test_blockers_of_any_lists_each_alternative_only_when_none_holds() -> None:
    cond = compile_condition(AnyOf(of=(A, B)))
    assert [b.leaf.fact for b in cond.blockers({"a": False, "b": False})] == ["a", "b"]
    assert cond.blockers({"a": True}) == []


def test_blockers_for_a_deny_say_what_would_lift_it() -> None:
    cond = compile_condition(fact("posture.firewall.enabled", "eq", False))
    facts = {"posture.firewall.enabled": False}
    (b,) = cond.blockers(facts, want=False)
    assert describe(b, facts) == "posture.firewall.enabled must not be false (currently false)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("14.4.1", (14, 4, 1)),
        ("v2.0", (2,)),
        ("6.1.0-18-amd64", (6, 1)),
        ("10.0.22631", (10, 0, 22631)),
        ("abc", None),
        (14, None),
    ],
)
def test_parse_version(text: object, expected: tuple[int, ...] | None) -> None:
    assert parse_version(text) == expected
