"""Helpers on fact snapshots: diffing two collections into changes.

A snapshot is ``Mapping[str, Fact]``. Two facts are "the same" when their status and
value match; the collection time and the wording of an unknown's reason do not count,
so a re-collection that finds nothing new yields no change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.wire.posture import Fact

__all__ = ["FactChange", "diff_facts", "same_fact"]


@dataclass(frozen=True, slots=True)
class FactChange:
    """One fact that changed: ``old`` is None when it is new, ``new`` None when gone."""

    name: str
    old: Fact | None
    new: Fact | None


def same_fact(a: Fact | None, b: Fact | None) -> bool:
    """Equal status and value (collection time and reason text ignored)."""
    if a is None or b is None:
        return a is b
    return a.status == b.status and a.value == b.value


def diff_facts(
    old: Mapping[str, Fact], new: Mapping[str, Fact], *, partial: bool = False
) -> tuple[FactChange, ...]:
    """Changes from ``old`` to ``new``, sorted by name. Pure.

    With ``partial`` (a watcher tick that re-read only some facts) facts missing from
    ``new`` are not reported as gone.
    """
    changes: list[FactChange] = []
    names = set(new) if partial else set(old) | set(new)
    for name in sorted(names):
        a, b = old.get(name), new.get(name)
        if not same_fact(a, b):
            changes.append(FactChange(name, a, b))
    return tuple(changes)
