"""The capped on-disk queue of decision telemetry (one JSON file, 0600, atomic writes).

It holds the items not yet delivered (events of level ``full``, per-minute counts of level
``counts``), the batch in flight (its ``seq`` is fixed once taken, so a retry after a lost
answer carries the same number and the controller answers "duplicate" instead of storing
it twice), the next sequence number and how many items were dropped since the last batch.
Beyond ``cap`` items the oldest are dropped and counted; the count travels in the next
batch. ``flush`` writes the file when something changed (``take`` and ``ack`` write at
once: the sequence numbers must survive any restart); a crash loses at most what was
recorded since the last flush. An unreadable file is set aside (``.bad``) and a fresh
queue starts — with a sequence number above any the old file could have used, taken from
the clock, so the controller never mistakes new batches for replays.

Not thread-safe: one owner (the sender, on the engine's loop).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Final

import msgspec

from core.paths import ensure_private_dir
from core.wire.telemetry import (
    MAX_BATCH_SIZE,
    MAX_ITEMS,
    DecisionBatch,
    DecisionCount,
    DecisionEvent,
    encode_batch,
)

__all__ = ["DEFAULT_CAP", "QUEUE_FILE", "TelemetryQueue"]

_log = logging.getLogger(__name__)

QUEUE_FILE: Final = "telemetry-queue.json"
#: Most undelivered items kept (events and counts together).
DEFAULT_CAP: Final = 5000
#: Largest JSON payload taken into one batch: base64 grows it by 4/3 and the JWS header
#: and signature add under 400 characters, so the token stays under ``MAX_BATCH_SIZE``
#: and the request body (``{"batch": ...}``) under the controller's default body cap.
MAX_PAYLOAD: Final = (MAX_BATCH_SIZE - 4096) * 3 // 4


class _Inflight(msgspec.Struct, frozen=True):
    seq: int
    level: str
    dropped: int
    events: tuple[DecisionEvent, ...] = ()
    counts: tuple[DecisionCount, ...] = ()


class _State(msgspec.Struct):
    v: int = 1
    next_seq: int = 1
    dropped: int = 0
    events: list[DecisionEvent] = msgspec.field(default_factory=list)
    counts: list[DecisionCount] = msgspec.field(default_factory=list)
    inflight: _Inflight | None = None


class TelemetryQueue:
    """See the module docstring. ``directory`` is made 0700 when missing."""

    def __init__(self, directory: Path, *, cap: int = DEFAULT_CAP) -> None:
        if cap < 1:
            raise ValueError("the telemetry queue cap must be at least 1")
        self.path = directory / QUEUE_FILE
        self.cap = cap
        state = self._load()
        self._next_seq = state.next_seq
        self.dropped = state.dropped
        self._events: deque[DecisionEvent] = deque(state.events)
        # (minute, resource, effect) -> count, in arrival order
        self._counts: dict[tuple[int, str | None, str], int] = {}
        for c in state.counts:
            key = (c.minute, c.resource, c.effect)
            self._counts[key] = self._counts.get(key, 0) + c.count
        self._inflight = state.inflight
        self._dirty = False
        self._trim()

    # ------------------------------------------------------------------ persistence
    def _load(self) -> _State:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return _State()
        try:
            state = msgspec.json.decode(raw, type=_State)
            if state.v != 1 or state.next_seq < 1:
                raise ValueError("unsupported queue file")
            return state
        except (msgspec.DecodeError, ValueError) as exc:
            _log.warning("telemetry queue %s is unreadable (%s); a new one starts", self.path, exc)
            with contextlib.suppress(OSError):
                os.replace(self.path, self.path.with_suffix(".bad"))
            # Above any seq the lost file could have sent: microseconds since the epoch.
            return _State(next_seq=time.time_ns() // 1000)

    def flush(self) -> None:
        """Write the queue when it changed since the last write. Raises ``OSError``."""
        if self._dirty:
            self._write()

    def _write(self) -> None:
        state = _State(
            next_seq=self._next_seq,
            dropped=self.dropped,
            events=list(self._events),
            counts=self._count_items(),
            inflight=self._inflight,
        )
        ensure_private_dir(self.path.parent)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(msgspec.json.encode(state))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._dirty = False

    # ------------------------------------------------------------------ recording
    def __len__(self) -> int:
        """Undelivered items, the batch in flight included."""
        held = 0 if self._inflight is None else len(self._inflight.events + self._inflight.counts)
        return len(self._events) + len(self._counts) + held

    @property
    def has_work(self) -> bool:
        """True when there is a batch to send."""
        return self._inflight is not None or bool(self._events) or bool(self._counts)

    def add_event(self, event: DecisionEvent) -> None:
        """Queue one decision (level ``full``); the oldest item goes beyond the cap."""
        self._events.append(event)
        self._dirty = True
        self._trim()

    def add_count(self, minute: int, resource: str | None, effect: str) -> None:
        """Count one decision in its minute (level ``counts``)."""
        key = (minute, resource, effect)
        now = self._counts.get(key, 0)
        if now >= 1_000_000:
            self.dropped += 1
        else:
            self._counts[key] = now + 1
        self._dirty = True
        self._trim()

    def discard_events(self) -> int:
        """Forget queued (not in-flight) events, e.g. when the level went down to counts
        or off: they are never sent then. Returns how many."""
        n = len(self._events)
        if n:
            self._events.clear()
            self._dirty = True
        return n

    def clear(self) -> None:
        """Forget everything not yet delivered (the level went to ``off``); the sequence
        number goes on. Writes at once when something was forgotten; ``OSError``."""
        if self._events or self._counts or self._inflight is not None:
            self._events.clear()
            self._counts.clear()
            self._inflight = None
            self.dropped = 0
            self._write()

    def _trim(self) -> None:
        while len(self) > self.cap and (self._events or self._counts):
            # Oldest first: counts are older minutes of a lower level, events in order.
            if self._counts:
                self._counts.pop(next(iter(self._counts)))
            else:
                self._events.popleft()
            self.dropped += 1
            self._dirty = True

    def _count_items(self) -> list[DecisionCount]:
        return [
            DecisionCount(minute=m, resource=r, effect=e, count=n)  # type: ignore[arg-type]
            for (m, r, e), n in self._counts.items()
        ]

    # ------------------------------------------------------------------ batches
    def take(self, device_id: str, *, limit: int = MAX_ITEMS) -> DecisionBatch | None:
        """The batch to send now (``iat`` 0: the sender dates it when signing), or None.

        The batch in flight when there is one (the same ``seq``); else the next up to
        ``limit`` events (a ``full`` batch) or, with no events queued, counts (a
        ``counts`` batch), no more than fit in ``MAX_PAYLOAD``; it gets the next ``seq``
        and is written to disk before it is returned. Raises ``OSError`` from the write.
        """
        if self._inflight is None:
            limit = max(1, min(limit, MAX_ITEMS))
            if self._events:
                n = min(limit, len(self._events))
                events = tuple(self._events)[:n]
                while n > 1 and len(_probe(events[:n])) > MAX_PAYLOAD:
                    n //= 2
                self._inflight = _Inflight(self._next_seq, "full", self.dropped, events[:n])
                for _ in range(n):
                    self._events.popleft()
            elif self._counts:
                counts = tuple(self._count_items()[:limit])
                self._inflight = _Inflight(self._next_seq, "counts", self.dropped, (), counts)
                for c in counts:
                    del self._counts[(c.minute, c.resource, c.effect)]
            else:
                return None
            self._next_seq += 1
            self.dropped = 0
            self._write()
        f = self._inflight
        return DecisionBatch(
            device_id=device_id,
            seq=f.seq,
            iat=0.0,
            level="full" if f.level == "full" else "counts",
            dropped=f.dropped,
            events=f.events,
            counts=f.counts,
        )

    def ack(self, seq: int) -> None:
        """The controller stored (or already had) batch ``seq``: forget it. Raises
        ``OSError`` from the write; a ``seq`` not in flight is ignored."""
        if self._inflight is not None and self._inflight.seq == seq:
            self._inflight = None
            self._write()

    def give_up(self, seq: int) -> None:
        """The controller refused batch ``seq`` for good (it will never accept it): drop
        it, counted as dropped in the next batch."""
        if self._inflight is not None and self._inflight.seq == seq:
            self.dropped += len(self._inflight.events) + len(self._inflight.counts)
            self._inflight = None
            self._write()


def _probe(events: tuple[DecisionEvent, ...]) -> bytes:
    """The payload of a full batch of ``events`` with the longest envelope fields."""
    return encode_batch(
        DecisionBatch(
            device_id="x" * 256, seq=2**62, iat=2e9, level="full", dropped=2**62, events=events
        )
    )
