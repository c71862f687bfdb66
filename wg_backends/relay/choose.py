"""Which relay to use, from measured round-trip times and loads. Pure; no I/O.

The lowest round-trip time wins, but load is spread: every healthy relay within
``max(5 ms, 25 %)`` of the best RTT is "as good", and among those the one carrying the
fewest streams is taken (a random tie-break, so clients measuring the same numbers do not
all pile onto one relay). :func:`rank` orders every healthy relay for failover: the choice
first, then the rest by RTT.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Measure", "choose", "rank"]

#: A relay within this many milliseconds, or this fraction, of the best RTT is as good.
SLACK_MS = 5.0
SLACK_FRACTION = 0.25


@dataclass(frozen=True, slots=True)
class Measure:
    """One relay's latest probe: ``healthy`` False when the probe failed (then ``rtt_ms``
    and ``load`` are None)."""

    name: str
    healthy: bool
    rtt_ms: float | None = None
    load: int | None = None


def _usable(measures: Iterable[Measure], exclude: Iterable[str]) -> list[Measure]:
    skip = set(exclude)
    return [m for m in measures if m.healthy and m.rtt_ms is not None and m.name not in skip]


def choose(
    measures: Sequence[Measure], *, exclude: Iterable[str] = (), rng: random.Random | None = None
) -> str | None:
    """The relay to use (its name), None when no healthy relay is left. ``exclude``:
    relays already failed in this round. A relay of unknown load counts as the busiest."""
    usable = _usable(measures, exclude)
    if not usable:
        return None
    best = min(m.rtt_ms for m in usable if m.rtt_ms is not None)
    limit = best + max(SLACK_MS, best * SLACK_FRACTION)
    close = [m for m in usable if m.rtt_ms is not None and m.rtt_ms <= limit]
    least = min(_load(m) for m in close)
    tied = sorted(m.name for m in close if _load(m) == least)
    return (rng or random).choice(tied)


def rank(
    measures: Sequence[Measure], *, exclude: Iterable[str] = (), rng: random.Random | None = None
) -> list[str]:
    """Every healthy relay not excluded, best first: :func:`choose`'s pick, then the
    others by RTT (name as the tie-break)."""
    usable = _usable(measures, exclude)
    first = choose(usable, rng=rng)
    if first is None:
        return []
    rest = sorted((m for m in usable if m.name != first), key=lambda m: (m.rtt_ms or 0.0, m.name))
    return [first, *(m.name for m in rest)]


def _load(m: Measure) -> float:
    return float("inf") if m.load is None else float(m.load)
