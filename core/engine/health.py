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
* ``SILENT``  the handshake is recent, but nothing has come back through the tunnel for
  longer than the gateway's keepalive promise allows (``silent_s``): the gateway stopped
  answering. Treated like ``DEAD`` (fail over at once) and shown as "reconnecting": a
  silent gateway is never "connected" for minutes on an old handshake.
* ``DEAD``    no handshake within the grace after the tunnel came up: switch to the next
  gateway that has not failed in this round (in bundle order, wrapping), or, once every
  one has failed, start a new round from the next one.

The receive counter is what tells idle from dead. The controller configures each gateway
to send a keepalive to its devices every ``persistent_keepalive`` seconds (the value the
device's own spec carries), so a live gateway's bytes arrive at least that often; with a
keepalive of *k* seconds, no byte for ``2k + 1`` seconds is silence (``silent_after``).
A spec without a short keepalive gives no such promise: then only the handshake's age
counts (``stale_s``).

A tunnel whose spec lists relays (issue 21) may move between UDP and a relay on its
own (the helper decides): while it is moving to or among relays (transport state
``trying`` or ``relay``) the first-handshake grace counts from the later of the engine's
own apply and the transport's last change (``grace_start``), so a relay fallback is not
mistaken for a dead gateway; with ``no_path`` (neither UDP nor any relay works) it
counts from the apply alone, and the engine fails over as it would without relays.

So the first gateway whose handshake completes is used, and a dead one is left within
about ``stale limit + grace`` (or ``grace`` right after a switch). No I/O here; the
live session (``core.engine.live``, with ``core.engine.gateways``) performs the actions.
Raises nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

# The silence rule is the helper's relay supervisor's too: one definition, below core.
from wg_backends.spec import MAX_PROMISED_KEEPALIVE_S, silent_after

if TYPE_CHECKING:
    from wg_backends.spec import TunnelSpec

__all__ = [
    "MAX_PROMISED_KEEPALIVE_S",
    "MOVING_STATES",
    "Action",
    "Health",
    "Step",
    "assess",
    "gateway_label",
    "grace_start",
    "plan",
    "silent_after",
]

#: WireGuard reports the latest handshake in whole seconds, measured by another process.
_SLACK_S = 2.0


class Health(StrEnum):
    """What the current gateway's handshake says."""

    FRESH = "fresh"
    WAITING = "waiting"
    STALE = "stale"
    SILENT = "silent"
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
    rx_quiet_s: float | None = None,
    silent_s: float | None = None,
) -> Health:
    """Classify the current gateway's handshake and receive counter.

    ``handshake_age_s`` is WireGuard's latest-handshake age (None: never);
    ``since_up_s`` the time since this gateway was (re-)applied; ``rx_quiet_s`` how long
    the tunnel's receive counter has not moved (None: unknown); ``silent_s`` the silence
    the gateway's keepalive promise allows (None: no promise, see ``silent_after``). Pure.
    """
    if handshake_age_s is None or handshake_age_s > since_up_s + _SLACK_S:
        # Nothing since the (re-)apply: a handshake older than that (an interface the
        # helper kept) proves nothing about this attempt.
        return Health.WAITING if since_up_s < grace_s else Health.DEAD
    if silent_s is not None and rx_quiet_s is not None and rx_quiet_s >= silent_s:
        return Health.SILENT
    if handshake_age_s < stale_s:
        return Health.FRESH
    return Health.STALE


#: Transport states in which the helper is moving the tunnel to or among relays: a new
#: path needs its own first handshake, so the grace restarts at the change.
MOVING_STATES = frozenset({"trying", "relay"})


def grace_start(applied_at: float, state: str, since: float | None) -> float:
    """When the first-handshake grace of the tunnel began: the engine's own apply
    (``applied_at``) or, while the helper moves the tunnel to or among relays
    (``state`` in ``MOVING_STATES``), the transport's last change (``since``) when it is
    later. Any other state (``direct``, ``no_path``, "" for a tunnel without relays) or
    no ``since``: the apply. Pure."""
    if state in MOVING_STATES and since is not None and since > applied_at:
        return since
    return applied_at


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
    # DEAD or SILENT: this gateway failed in this round.
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
