"""Two controller replicas on one PostgreSQL database share the live feed through
LISTEN/NOTIFY: a batch POSTed to replica A reaches sockets on A and on B once each with
A's replica id, and a listener whose connection the database kills reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.controller.console.live_helpers import (
    FeedServer,
    enroll,
    event,
    feed_server,
    items_until,
    nothing_within,
    post_batch,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def replicas(
    postgres_url: str, tmp_path: Path
) -> AsyncIterator[tuple[FeedServer, FeedServer]]:
    import psycopg

    db = "live_replicas"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db}")
    url = postgres_url.replace("/postgres?", f"/{db}?")
    async with feed_server(url) as a, feed_server(url) as b:
        async with asyncio.timeout(10):
            await a.feed.wait_listening()
            await b.feed.wait_listening()
        yield a, b


async def test_a_batch_on_one_replica_reaches_sockets_on_both_once(
    replicas: tuple[FeedServer, FeedServer],
) -> None:
    a, b = replicas
    assert a.feed.replica != b.feed.replica
    alice = await enroll(a.rc, "alice")
    on_a = await a.socket()
    on_b = await b.socket()
    on_b_filtered = await b.socket(effect="allow")
    await post_batch(a.rc, alice, event(), event(resource="wiki", reason="<b>bold</b>"))
    got_a = await items_until(on_a, 2, timeout=1.0)
    got_b = await items_until(on_b, 2, timeout=1.0)
    assert [it["id"] for it in got_a] == [it["id"] for it in got_b]
    stored = a.rc.service.storage.list_decisions(device_id=alice.device_id)
    assert sorted(it["id"] for it in got_a) == sorted(e.record_id for e in stored)
    assert {it["replica"] for it in got_b} == {a.feed.replica}
    assert got_b[1]["reason"] == "<b>bold</b>"
    assert got_a == got_b  # the same items, as A published them
    # Once each: A does not show its own notification again, B nothing more.
    await nothing_within(on_a, 0.3)
    await nothing_within(on_b, 0.1)
    await nothing_within(on_b_filtered, 0.1)
    # And the other way round: a batch to B reaches A.
    bob = await enroll(b.rc, "bob")
    await post_batch(b.rc, bob, event(effect="allow"))
    [it] = await items_until(on_a, 1)
    assert it["replica"] == b.feed.replica
    [it_f] = await items_until(on_b_filtered, 1)
    assert it_f["id"] == it["id"]
    for ws in (on_a, on_b, on_b_filtered):
        await ws.close()


async def test_a_killed_listen_connection_reconnects(
    replicas: tuple[FeedServer, FeedServer], postgres_url: str
) -> None:
    import psycopg

    a, b = replicas
    alice = await enroll(a.rc, "alice")
    on_b = await b.socket()
    old_pid = b.feed.listen_pid
    assert old_pid is not None
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_terminate_backend(%s)", (old_pid,)).fetchone()
    assert row is not None
    assert row[0] is True
    async with asyncio.timeout(10):
        while b.feed.listen_pid in (None, old_pid):
            await asyncio.sleep(0.05)
        await b.feed.wait_listening()
    await post_batch(a.rc, alice, event(reason="after the reconnect"))
    [it] = await items_until(on_b, 1, timeout=2.0)
    assert it["reason"] == "after the reconnect"
    assert it["replica"] == a.feed.replica
    await on_b.close()


async def test_a_killed_notify_connection_reconnects(
    replicas: tuple[FeedServer, FeedServer], postgres_url: str
) -> None:
    import psycopg

    a, b = replicas
    alice = await enroll(a.rc, "alice")
    on_b = await b.socket()
    await post_batch(a.rc, alice, event(reason="first"))
    await items_until(on_b, 1, timeout=2.0)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'rtc-live-notify'"
        )
    # The payload queued while A's sender reconnects is still delivered.
    await post_batch(a.rc, alice, event(reason="second"))
    items = await items_until(on_b, 1, timeout=5.0)
    assert [it["reason"] for it in items] == ["second"]
    await on_b.close()
