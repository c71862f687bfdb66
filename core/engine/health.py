"""Choosing among the bundle's gateways: pure functions, tested as tables.

A bundle carries ``tunnel`` (the first gateway) and optional ``gateways`` (failover
choices). The engine uses one at a time and, every health tick, asks ``assess`` what the
current gateway's handshake says and ``plan`` what to do about it:

* ``FRESH``   a handshake younger than the stale limit: stay.
* ``WAITING`` no handshake since the tunnel was applied, still within the first-handshake
  grace: stay (the engine does not show CONNECTED until a handshake proves the gateway).
* ``STALE``   the last handshake is older than the stale limit. An idle tunnel and a dead
  gateway look alike here, so the engine re-applies the same gateway, which makes
  WireGuard handshake at once: alive, it answers within the grace; dead, it does not.
* ``DEAD``    no handshake within the grace after the tunnel came up: switch to the next
  gateway that has not failed in this round (in bundle order, wrapping), or, once every
  one has failed, start a new round from the next one.

So the first gateway whose handshake completes is used, and a dead one is left within
about ``stale limit + grace`` (or ``grace`` right after a switch). No I/O here; the
live session (``core.engine.live``, with ``core.engine.gateways``) performs the actions.
Raises nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wg_backends.spec import TunnelSpec

__all__ = ["Action", "Health", "Step", "assess", "gateway_label", "plan"]

#: WireGuard reports the latest handshake in whole seconds, measured by another process.
_SLACK_S = 2.0


class Health(StrEnum):
    """What the current gateway's handshake says."""

    FRESH = "fresh"
    WAITING = "waiting"
    STALE = "stale"
    DEAD = "dead"


class Action(StrEnum):
    """What the engine should do with the tunnel."""

    STAY = "stay"  # keep the current gateway
    REPROBE = "reprobe"  # re-apply the current gateway to force a handshake
    SWITCH = "switch"  # bring up ``Step.index`` instead


@dataclass(frozen=True, slots=True)
class Step:
    """One decision: the action, the gateway index it applies to, and the failed set
    (indices that failed in this round) the engine keeps for the next decision."""

    action: Action
    index: int
    failed: frozenset[int] = frozenset()


def assess(
    handshake_age_s: float | None,
    since_up_s: float,
    *,
    grace_s: float,
    stale_s: float,
) -> Health:
    """Classify the current gateway's handshake.

    ``handshake_age_s`` is WireGuard's latest-handshake age (None: never);
    ``since_up_s`` the time since this gateway was (re-)applied. Pure.
    """
    if handshake_age_s is None or handshake_age_s > since_up_s + _SLACK_S:
        # Nothing since the (re-)apply: a handshake older than that (an interface the
        # helper kept) proves nothing about this attempt.
        return Health.WAITING if since_up_s < grace_s else Health.DEAD
    if handshake_age_s < stale_s:
        return Health.FRESH
    return Health.STALE


def plan(health: Health, *, current: int, count: int, failed: frozenset[int]) -> Step:
    """The step for ``health`` of gateway ``current`` out of ``count``. Pure.

    A fresh handshake clears the failed set (the round is over); a dead gateway joins it
    and the next gateway not in it is chosen (wrapping; a new round once all failed).
    """
    if count <= 0:
        return Step(Action.STAY, current, failed)
    if health is Health.FRESH:
        return Step(Action.STAY, current, frozenset())
    if health is Health.WAITING:
        return Step(Action.STAY, current, failed)
    if health is Health.STALE:
        return Step(Action.REPROBE, current, failed)
    failed = failed | {current}
    for offset in range(1, count + 1):
        candidate = (current + offset) % count
        if candidate not in failed:
            return Step(Action.SWITCH, candidate, failed)
    # Every gateway failed in this round: keep trying, in order, from the next one.
    return Step(Action.SWITCH, (current + 1) % count, frozenset())


def gateway_label(spec: TunnelSpec, index: int) -> str:
    """A name for the gateway of ``spec`` in notices: its first peer's endpoint."""
    endpoint = spec.peers[0].endpoint if spec.peers else None
    return str(endpoint or f"gateway {index + 1}")
