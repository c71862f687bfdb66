"""The pending-update record: written before the helper is asked, settled against the
running version, and robust against a broken, hostile or future-dated file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.update.pending import SETTLE, Pending, PendingUpdate, Settled
from tests.core.update.kit import NOW

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def _store(tmp_path: Path) -> tuple[PendingUpdate, Clock]:
    clock = Clock()
    return PendingUpdate(tmp_path / "data" / "update-pending.json", clock=clock), clock


def test_recorded_privately_and_atomically(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    store.record("0.2.0")
    assert json.loads(store.path.read_text()) == {"version": "0.2.0", "since": NOW}
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in store.path.parent.iterdir()] == ["update-pending.json"]
    assert store.read() == Pending("0.2.0", float(NOW))


@pytest.mark.parametrize("running", ["0.2.0", "0.3.1"], ids=["the same", "newer"])
def test_running_the_version_or_newer_is_installed_and_told_once(
    tmp_path: Path, running: str
) -> None:
    store, _ = _store(tmp_path)
    store.record("0.2.0")
    assert store.due_in(running) == 0.0
    assert store.settle(running) == Settled(True, running, Pending("0.2.0", float(NOW)))
    assert not store.path.exists()
    assert store.settle(running) is None
    assert store.due_in(running) is None


def test_an_older_build_waits_for_the_installer_then_is_not_installed(tmp_path: Path) -> None:
    store, clock = _store(tmp_path)
    store.record("0.2.0")
    clock.now += 600
    assert store.settle("0.1.0") is None  # the installer still has time
    assert store.due_in("0.1.0") == SETTLE - 600
    assert store.path.exists()
    clock.now += SETTLE - 600
    assert store.settle("0.1.0") == Settled(False, "0.2.0", Pending("0.2.0", float(NOW)))
    assert not store.path.exists()


def test_a_development_build_counts_only_when_it_is_the_version(tmp_path: Path) -> None:
    store, clock = _store(tmp_path)
    store.record("0.2.0")
    assert store.settle("0.2.0.dev3") is None
    clock.now += SETTLE
    settled = store.settle("0.2.0.dev3")
    assert settled is not None
    assert not settled.installed


def test_a_record_from_the_future_restarts_the_wait_from_now(tmp_path: Path) -> None:
    store, clock = _store(tmp_path)
    store.path.parent.mkdir()
    store.path.write_text(json.dumps({"version": "0.2.0", "since": NOW + 10 * 365 * 86400}))
    assert store.due_in("0.1.0") == SETTLE  # not ten years
    assert store.read() == Pending("0.2.0", float(NOW))
    clock.now += SETTLE
    settled = store.settle("0.1.0")
    assert settled is not None
    assert not settled.installed


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b"{}",
        json.dumps({"version": "../../etc", "since": NOW}).encode(),
        json.dumps({"version": "0.2.0\n0.3.0", "since": NOW}).encode(),
        json.dumps({"version": 2, "since": NOW}).encode(),
        json.dumps({"version": "0.2.0", "since": "yesterday"}).encode(),
        json.dumps({"version": "0.2.0", "since": True}).encode(),
        json.dumps({"version": "0.2.0", "since": -1}).encode(),
        b'{"version": "0.2.0", "since": Infinity}',
        b'{"version": "0.2.0", "since": NaN}',
        b'{"version": "0.2.0", "since": 1e400}',
        json.dumps({"version": "0.2.0", "since": NOW, "pad": "x" * 5000}).encode(),
        b"\xff\xfe",
    ],
    ids=[
        "not json",
        "a list",
        "empty",
        "a path",
        "two lines",
        "a number",
        "since words",
        "since bool",
        "before 1970",
        "infinity",
        "nan",
        "overflow",
        "huge",
        "binary",
    ],
)
def test_a_malformed_record_is_removed_without_a_word(tmp_path: Path, content: bytes) -> None:
    store, _ = _store(tmp_path)
    store.path.parent.mkdir()
    store.path.write_bytes(content)
    assert store.read() is None
    assert not store.path.exists()
    assert store.settle("0.1.0") is None


def test_an_unwritable_place_never_stops_the_update(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    store = PendingUpdate(tmp_path / "file" / "update-pending.json")
    store.record("0.2.0")  # logged, not raised
    store.clear()
    assert store.read() is None
    assert store.settle("0.1.0") is None
