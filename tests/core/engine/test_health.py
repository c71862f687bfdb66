"""The gateway choice as tables: ``assess`` (what a handshake says) and ``plan`` (what to do)."""

from __future__ import annotations

import pytest

from core.engine.health import (
    Action,
    Health,
    Step,
    assess,
    gateway_label,
    grace_start,
    plan,
    silent_after,
)
from wg_backends.spec import PeerSpec, TunnelSpec

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


@pytest.mark.parametrize(
    ("age", "since_up", "rx_quiet", "expected"),
    [
        (3.0, 60.0, 4.0, Health.FRESH),  # keepalives keep arriving
        (3.0, 60.0, 10.9, Health.FRESH),
        (3.0, 60.0, 11.0, Health.SILENT),  # a fresh handshake, but nothing since for 11 s
        (100.0, 600.0, 50.0, Health.SILENT),  # an idle-looking tunnel that is dead
        (100.0, 600.0, None, Health.FRESH),  # no counter known: only the handshake counts
        (None, 5.0, 30.0, Health.WAITING),  # no handshake yet: the grace rules, not rx
        (None, 20.0, 30.0, Health.DEAD),
    ],
)
def test_assess_tells_a_silent_gateway_from_an_idle_one(
    age: float | None, since_up: float, rx_quiet: float | None, expected: Health
) -> None:
    got = assess(age, since_up, grace_s=GRACE, stale_s=STALE, rx_quiet_s=rx_quiet, silent_s=11.0)
    assert got is expected


def test_assess_without_a_keepalive_promise_ignores_the_receive_counter() -> None:
    assert assess(3.0, 60.0, grace_s=GRACE, stale_s=STALE, rx_quiet_s=90.0) is Health.FRESH


def _spec(*keepalives: int | None) -> TunnelSpec:
    peers = tuple(
        PeerSpec(
            public_key=f"{chr(65 + i) * 42}A=",
            endpoint=f"192.0.2.{i + 1}:51820",
            allowed_ips=(f"10.{i}.0.0/24",),
            persistent_keepalive=ka,
        )
        for i, ka in enumerate(keepalives)
    )
    return TunnelSpec(interface="rtw0", addresses=("10.242.0.2/32",), peers=peers)


@pytest.mark.parametrize(
    ("keepalives", "expected"),
    [
        ((5,), 11.0),  # two missed keepalives and a second of slack
        ((10, 5), 11.0),  # the shortest promise counts
        ((10,), 21.0),
        ((25,), None),  # WireGuard's customary 25 s promises nothing quick
        ((None,), None),
        ((0,), None),  # 0 = keepalive off
    ],
)
def test_silent_after_follows_the_keepalive_promise(
    keepalives: tuple[int | None, ...], expected: float | None
) -> None:
    assert silent_after(_spec(*keepalives)) == expected


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
        (Health.SILENT, 0, 2, F(), Step(W, 1, F({0}))),  # silent: fail over at once
        (Health.SILENT, 0, 1, F(), Step(W, 0, F())),  # the only one: re-apply it
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


# A tunnel with relays (issue 21): the grace restarts while the helper moves the tunnel
# to or among relays, never for ``direct``/``no_path`` or a tunnel without relays.
@pytest.mark.parametrize(
    ("state", "since", "expected"),
    [
        ("", None, 100.0),  # no relays: the engine's own apply
        ("direct", 130.0, 100.0),  # back on UDP: the WireGuard session carried on
        ("trying", 130.0, 130.0),  # moving: the new path needs its own handshake
        ("relay", 130.0, 130.0),  # on a relay since 130 (moved after the apply)
        ("relay", 90.0, 100.0),  # on a relay since before this apply: the apply
        ("relay", None, 100.0),  # no time given: the apply
        ("no_path", 130.0, 100.0),  # nothing works: fail over as without relays
        ("anything-else", 130.0, 100.0),  # an unknown state extends nothing
    ],
)
def test_grace_start(state: str, since: float | None, expected: float) -> None:
    assert grace_start(100.0, state, since) == expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("relay", Health.WAITING),  # 12 s after the move: within the 15 s grace
        ("trying", Health.WAITING),
        ("no_path", Health.DEAD),  # 42 s after the apply: past the grace
        ("direct", Health.DEAD),
    ],
)
def test_a_relay_fallback_is_not_a_dead_gateway_but_no_path_is(
    state: str, expected: Health
) -> None:
    applied, moved, now = 1000.0, 1030.0, 1042.0
    start = grace_start(applied, state, moved)
    # UDP is blocked: no handshake since the apply, the helper moved to a relay at 1030
    assert assess(None, now - start, grace_s=15.0, stale_s=180.0) is expected
