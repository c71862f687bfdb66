"""The on-disk telemetry queue: survives restarts, keeps its cap, never reuses a seq."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.telemetry import QUEUE_FILE, TelemetryQueue
from core.wire.telemetry import MAX_BATCH_SIZE, DecisionEvent, sign_batch

pytestmark = pytest.mark.unit


def _event(i: int, *, big: bool = False) -> DecisionEvent:
    pad = "x" * 500 if big else ""
    return DecisionEvent(
        at=1_800_000_000.0 + i,
        app=f"/usr/bin/app{i}{pad}"[:512],
        host=f"h{i}.corp.example",
        port=443,
        effect="allow",
        reason=pad,
    )


def test_items_and_seq_survive_a_restart(tmp_path: Path) -> None:
    q = TelemetryQueue(tmp_path)
    for i in range(3):
        q.add_event(_event(i))
    q.flush()
    mode = stat.S_IMODE((tmp_path / QUEUE_FILE).stat().st_mode)
    assert mode == 0o600
    again = TelemetryQueue(tmp_path)
    assert len(again) == 3
    first = again.take("dev")
    assert first is not None
    assert first.seq == 1
    assert [e.host for e in first.events] == [
        "h0.corp.example",
        "h1.corp.example",
        "h2.corp.example",
    ]
    # Not acknowledged: after a restart the same batch goes again, with the same seq.
    retry = TelemetryQueue(tmp_path).take("dev")
    assert retry == first
    q3 = TelemetryQueue(tmp_path)
    q3.ack(1)
    assert q3.take("dev") is None
    q3.add_event(_event(9))
    nxt = q3.take("dev")
    assert nxt is not None
    assert nxt.seq == 2


def test_the_cap_drops_the_oldest_and_reports_how_many(tmp_path: Path) -> None:
    q = TelemetryQueue(tmp_path, cap=5)
    for i in range(8):
        q.add_event(_event(i))
    assert len(q) == 5
    batch = q.take("dev")
    assert batch is not None
    assert [e.at for e in batch.events] == [1_800_000_000.0 + i for i in range(3, 8)]
    assert batch.dropped == 3
    q.ack(batch.seq)
    q.add_event(_event(20))
    nxt = q.take("dev")
    assert nxt is not None
    assert nxt.dropped == 0


def test_counts_add_up_per_minute_resource_and_effect(tmp_path: Path) -> None:
    q = TelemetryQueue(tmp_path)
    for _ in range(3):
        q.add_count(60, "wiki", "deny")
    q.add_count(60, "wiki", "allow")
    q.add_count(120, "wiki", "deny")
    q.flush()
    batch = TelemetryQueue(tmp_path).take("dev")
    assert batch is not None
    assert batch.level == "counts"
    got = {(c.minute, c.resource, c.effect): c.count for c in batch.counts}
    assert got == {(60, "wiki", "deny"): 3, (60, "wiki", "allow"): 1, (120, "wiki", "deny"): 1}


def test_a_batch_of_large_events_stays_under_the_size_cap(tmp_path: Path) -> None:
    q = TelemetryQueue(tmp_path)
    for i in range(500):
        q.add_event(_event(i, big=True))
    key = Ed25519PrivateKey.generate()
    sizes = []
    while (batch := q.take("dev_" + "x" * 60)) is not None:
        token = sign_batch(batch, key)
        assert len(token) < MAX_BATCH_SIZE - 1024
        sizes.append(len(batch.events))
        q.ack(batch.seq)
    assert sum(sizes) == 500
    assert len(sizes) > 1


def test_a_refused_batch_is_counted_as_dropped(tmp_path: Path) -> None:
    q = TelemetryQueue(tmp_path)
    q.add_event(_event(0))
    q.add_event(_event(1))
    batch = q.take("dev", limit=1)
    assert batch is not None
    q.give_up(batch.seq)
    nxt = q.take("dev")
    assert nxt is not None
    assert nxt.dropped == 1
    assert nxt.seq == batch.seq + 1


def test_an_unreadable_file_is_set_aside_and_seq_jumps_ahead(tmp_path: Path) -> None:
    (tmp_path / QUEUE_FILE).write_text('{"next_seq": "nonsense"')
    q = TelemetryQueue(tmp_path)
    assert (tmp_path / "telemetry-queue.bad").exists()
    q.add_event(_event(0))
    batch = q.take("dev")
    assert batch is not None
    assert batch.seq > 1_000_000_000_000


def test_clear_forgets_everything_but_keeps_the_sequence(tmp_path: Path) -> None:
    q = TelemetryQueue(tmp_path)
    q.add_event(_event(0))
    first = q.take("dev")
    q.add_event(_event(1))
    q.add_count(60, None, "deny")
    q.clear()
    assert len(TelemetryQueue(tmp_path)) == 0
    q.add_event(_event(2))
    nxt = q.take("dev")
    assert first is not None
    assert nxt is not None
    assert nxt.seq == first.seq + 1
