"""Answers kept for their TTL: bounded, clamped, with brief negative caching.

Keys are ``(name, record type)``. A positive answer lives for its TTL clamped to
``[min_ttl, max_ttl]`` (a TTL of 0 would send every connection's look-up into the
tunnel; a week-long TTL would outlive a policy change); a negative answer (NXDOMAIN)
for ``negative_ttl`` at most. Past ``max_entries`` the least recently used entry goes.
The clock is injected (seconds, monotonic). Not thread-safe: the resolver's loop only.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AnswerCache", "Entry"]


@dataclass(frozen=True)
class Entry:
    """A cached answer: ``addresses`` (empty for NODATA), ``nxdomain``, ``expires`` (clock)."""

    addresses: tuple[str, ...]
    nxdomain: bool
    expires: float


class AnswerCache:
    """LRU of :class:`Entry` by key, each valid until its clamped TTL passes."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        max_entries: int = 1024,
        min_ttl: float = 5.0,
        max_ttl: float = 300.0,
        negative_ttl: float = 5.0,
    ) -> None:
        if max_entries < 1 or min_ttl < 0 or max_ttl < min_ttl or negative_ttl < 0:
            raise ValueError("cache limits must be positive and min_ttl <= max_ttl")
        self._clock = clock
        self._max = max_entries
        self._min_ttl = min_ttl
        self._max_ttl = max_ttl
        self._negative_ttl = negative_ttl
        self._entries: collections.OrderedDict[tuple[str, int], Entry] = collections.OrderedDict()

    def get(self, key: tuple[str, int]) -> Entry | None:
        """The live entry for ``key`` (refreshing its LRU place), or None (expired: dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() >= entry.expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(
        self, key: tuple[str, int], addresses: tuple[str, ...], ttl: float, *, nxdomain: bool
    ) -> Entry:
        """Store an answer with ``ttl`` seconds (clamped) and return the entry."""
        if nxdomain:
            # Without an SOA (ttl 0) RFC 2308 says "do not cache"; a brief cache still
            # stops a flood of look-ups for a mistyped name from reaching the tunnel.
            life = self._negative_ttl if ttl <= 0 else min(ttl, self._negative_ttl)
        else:
            life = min(max(ttl, self._min_ttl), self._max_ttl)
        entry = Entry(addresses, nxdomain, self._clock() + life)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return entry

    def clear(self) -> None:
        """Forget everything (the tunnel or its DNS servers changed)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
