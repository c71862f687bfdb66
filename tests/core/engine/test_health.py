"""The gateway choice as tables: ``assess`` (what a handshake says) and ``plan`` (what to do)."""

from __future__ import annotations

import pytest

from core.engine.health import Action, Health, Step, assess, gateway_label, plan

pytestmark = pytest.mark.unit

GRACE, STALE = 15.0, 180.0


@pytest.mark.parametrize(
    ("age", "since_up", "expected"),
    [
        (None, 0.0, Health.WAITING),  # just up, no handshake yet
        (None, 14.9, Health.WAITING),
        (None, 15.0, Health.DEAD),  # no handshake within the grace
        (0.5, 1.0, Health.FRESH),
        (2.5, 1.0, Health.FRESH),  # wg reports whole seconds from another process
        (179.0, 600.0, Health.FRESH),
        (180.0, 600.0, Health.STALE),  # older than the stale limit
        (400.0, 400.0, Health.STALE),
        (400.0, 3.0, Health.WAITING),  # a handshake from before this attempt proves nothing
        (400.0, 20.0, Health.DEAD),
    ],
)
def test_assess(age: float | None, since_up: float, expected: Health) -> None:
    assert assess(age, since_up, grace_s=GRACE, stale_s=STALE) is expected


F = frozenset
S, R, W = Action.STAY, Action.REPROBE, Action.SWITCH


@pytest.mark.parametrize(
    ("health", "current", "count", "failed", "expected"),
    [
        (Health.FRESH, 0, 2, F(), Step(S, 0, F())),
        (Health.FRESH, 1, 2, F({0}), Step(S, 1, F())),  # a working gateway ends the round
        (Health.WAITING, 1, 3, F({0}), Step(S, 1, F({0}))),
        (Health.STALE, 0, 2, F(), Step(R, 0, F())),  # idle or dead? force a handshake
        (Health.DEAD, 0, 2, F(), Step(W, 1, F({0}))),  # fail over to the next
        (Health.DEAD, 1, 3, F({0}), Step(W, 2, F({0, 1}))),
        (Health.DEAD, 2, 3, F({1}), Step(W, 0, F({1, 2}))),  # wraps to an untried one
        (Health.DEAD, 1, 2, F({0}), Step(W, 0, F())),  # all failed: a new round
        (Health.DEAD, 0, 1, F(), Step(W, 0, F())),  # one gateway: re-apply it
        (Health.DEAD, 0, 0, F(), Step(S, 0, F())),  # no gateway at all: nothing to do
    ],
)
def test_plan(
    health: Health, current: int, count: int, failed: frozenset[int], expected: Step
) -> None:
    assert plan(health, current=current, count=count, failed=failed) == expected


def test_gateway_label_names_the_endpoint() -> None:
    class Peer:
        endpoint = "gw2.corp.example:51820"

    class Spec:
        peers = (Peer(),)

    class NoPeers:
        peers = ()

    assert gateway_label(Spec(), 1) == "gw2.corp.example:51820"  # type: ignore[arg-type]
    assert gateway_label(NoPeers(), 1) == "gateway 2"  # type: ignore[arg-type]
