"""Decision storage against SQLite and a real PostgreSQL: each batch stored once, even
by two controller instances sharing the database; filters and order of the listing."""

from __future__ import annotations

import threading

import pytest

from controller.storage import DecisionEntry, open_storage
from tests.controller.test_storage import url  # noqa: F401  (the sqlite/postgresql fixture)

pytestmark = pytest.mark.integration


def _rows(device: str, seq: int, n: int, **kw: object) -> list[DecisionEntry]:
    fields: dict[str, object] = {"user_id": "alice", "kind": "event", "effect": "deny"}
    fields.update(kw)
    return [
        DecisionEntry(device_id=device, seq=seq, at=1000.0 + i, **fields)  # type: ignore[arg-type]
        for i in range(n)
    ]


def test_a_batch_is_stored_once_and_listed_newest_first(url: str) -> None:  # noqa: F811
    s = open_storage(url)
    try:
        assert s.store_decisions("d1", 1, _rows("d1", 1, 3, resource="wiki"))
        assert not s.store_decisions("d1", 1, _rows("d1", 1, 3))  # replay
        assert not s.store_decisions("d1", 0, _rows("d1", 0, 3))  # older
        assert s.store_decisions("d2", 1, _rows("d2", 1, 1, user_id="bob", effect="allow"))
        assert s.store_decisions("d1", 7, _rows("d1", 7, 1, reason="x' OR 1=1 --"))
        listed = s.list_decisions()
        assert [r.record_id for r in listed] == sorted((r.record_id for r in listed), reverse=True)
        assert len(listed) == 5
        assert len(s.list_decisions(device_id="d1")) == 4
        assert len(s.list_decisions(user_id="bob", effect="allow")) == 1
        assert len(s.list_decisions(resource="wiki")) == 3
        assert len(s.list_decisions(resource="x' OR 1=1 --")) == 0
        assert len(s.list_decisions(limit=2)) == 2
        assert s.list_decisions(device_id="d1")[0].reason == "x' OR 1=1 --"
    finally:
        s.close()


def test_two_instances_racing_on_one_batch_store_it_once(url: str) -> None:  # noqa: F811
    stores = [open_storage(url), open_storage(url)]
    results: list[bool] = []
    try:
        for seq in range(1, 21):
            barrier = threading.Barrier(2)

            def push(store=None, seq=seq, barrier=barrier) -> None:  # type: ignore[no-untyped-def]
                barrier.wait()
                results.append(store.store_decisions("d1", seq, _rows("d1", seq, 2)))

            threads = [threading.Thread(target=push, args=(st,)) for st in stores]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert results.count(True) == 20
        assert len(stores[0].list_decisions(limit=1000)) == 40
    finally:
        for st in stores:
            st.close()


def test_pruning_keeps_the_newest_rows(url: str) -> None:  # noqa: F811
    s = open_storage(url)
    try:
        for seq in range(1, 6):
            s.store_decisions("d1", seq, _rows("d1", seq, 10))
        assert s.prune_decisions(1000) == 0
        assert s.prune_decisions(15) == 35
        kept = s.list_decisions(limit=1000)
        assert len(kept) == 15
        assert {r.seq for r in kept} == {4, 5}
    finally:
        s.close()
