"""The live decision feed: filters, the per-socket queue and rate limit, the NOTIFY
payloads (unit level), then a real controller whose real devices POST signed batches
that reach admin sockets within a second — filtered on the server, hostile strings kept
as data, junk from the browser closing the socket rather than crashing it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from controller.console import live
from controller.console.live import (
    MAX_PAYLOAD,
    FeedFilter,
    FilterError,
    LiveFeed,
    Subscriber,
    pack_payloads,
)
from controller.storage import DecisionEntry, DeviceRecord
from tests.controller.console.conftest import ConsoleServer
from tests.controller.console.live_helpers import (
    FeedServer,
    enroll,
    event,
    feed_server,
    items_until,
    nothing_within,
    post_batch,
    recv,
)


def _item(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 1,
        "at": 1.0,
        "received": 2.0,
        "user": "alice@example.com",
        "device": "dev_AbC",
        "device_name": "Alice's Laptop",
        "app": "/usr/bin/ssh",
        "host": "git.corp.example",
        "ip": "10.0.0.1",
        "port": 22,
        "resource": "git",
        "rule": "r1",
        "effect": "deny",
        "code": "decision",
        "reason": "",
        "risk": 0,
        "count": 1,
        "replica": "r",
    }
    base.update(fields)
    return base


# ------------------------------------------------------------------------ filters
@pytest.mark.unit
@pytest.mark.parametrize(
    ("filt", "it", "expected"),
    [
        ({}, _item(), True),
        ({"user": "ALICE"}, _item(), True),
        ({"user": "bob"}, _item(), False),
        ({"device": "abc"}, _item(), True),  # the id, case-insensitive
        ({"device": "laptop"}, _item(), True),  # or the name
        ({"device": "phone"}, _item(), False),
        ({"resource": "gi"}, _item(), True),
        ({"resource": "git"}, _item(resource=None), False),
        ({"effect": "deny"}, _item(), True),
        ({"effect": "allow"}, _item(), False),
        ({"user": "alice", "effect": "deny", "device": "lap"}, _item(), True),
    ],
)
def test_filter_matches(filt: dict[str, str], it: dict[str, Any], expected: bool) -> None:
    assert FeedFilter.parse(filt).matches(it) is expected


@pytest.mark.unit
@pytest.mark.parametrize(
    "junk",
    [
        {"user": 5},
        {"device": ["a"]},
        {"resource": "x" * 201},
        {"effect": "maybe"},
        {"effect": "ALLOW"},
        {"user": "a\x00b"},
        {"user": "line\nbreak"},
    ],
)
def test_junk_filters_are_refused(junk: dict[str, Any]) -> None:
    with pytest.raises(FilterError):
        FeedFilter.parse(junk)


# ------------------------------------------------------------------------ queue and rate
@pytest.mark.unit
def test_the_queue_is_bounded_and_drops_the_oldest() -> None:
    sub = Subscriber("a", cap=5, rate=100)
    for i in range(8):
        sub.offer(_item(id=i))
    assert sub.pending() == 5
    assert [it["id"] for it in sub.take()] == [3, 4, 5, 6, 7]
    assert sub.take_skipped() == 3
    assert sub.take_skipped() == 0


@pytest.mark.unit
def test_the_rate_limit_counts_what_it_skips() -> None:
    now = [100.0]
    sub = Subscriber("a", cap=1000, rate=10, clock=lambda: now[0])
    for i in range(25):
        sub.offer(_item(id=i))
    assert len(sub.take()) == 10
    assert sub.skipped == 15
    for i in range(5):
        sub.offer(_item(id=100 + i))
    assert sub.take() == []  # the second's budget is spent
    assert sub.take_skipped() == 20
    now[0] += 1.0
    sub.offer(_item(id=200))
    assert [it["id"] for it in sub.take()] == [200]


@pytest.mark.unit
def test_a_filtered_out_item_is_not_queued() -> None:
    sub = Subscriber("a", FeedFilter.parse({"effect": "allow"}))
    assert not sub.offer(_item(effect="deny"))
    assert sub.pending() == 0
    assert sub.skipped == 0


# ------------------------------------------------------------------------ payloads
@pytest.mark.unit
def test_payloads_are_split_under_the_limit_keeping_every_item_once() -> None:
    items = [_item(id=i, reason="why " * 100) for i in range(120)]
    payloads = pack_payloads(items, "host:1:abc")
    assert len(payloads) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD for p in payloads)
    decoded = [json.loads(p) for p in payloads]
    assert {d["r"] for d in decoded} == {"host:1:abc"}
    assert [it["id"] for d in decoded for it in d["i"]] == list(range(120))


@pytest.mark.unit
def test_a_hostile_oversized_item_is_cut_to_fit() -> None:
    # Control characters escape to six bytes each: 512 of them per field overflow 8 kB.
    evil = "\x01" * 512
    it = _item(app=evil, host="é" * 256, reason=evil, device_name=evil, rule="<" * 256)
    [payload] = pack_payloads([it], "r")
    assert len(payload.encode()) <= MAX_PAYLOAD
    out = json.loads(payload)["i"][0]
    assert out["id"] == 1
    assert out["effect"] == "deny"


@pytest.mark.unit
async def test_publish_from_a_worker_thread_hops_to_the_loop() -> None:
    feed = LiveFeed("sqlite:///unused.db", replica="r1")
    await feed.start()
    sub = feed.subscribe("a")
    dev = DeviceRecord(
        "dev_1", "alice", "lap", "linux", "wg", "sk", None, "active", 0, None, 0, None, None, ()
    )
    entry = DecisionEntry(
        device_id="dev_1", user_id="alice", seq=1, kind="event", at=1.0, effect="deny", record_id=7
    )
    await asyncio.to_thread(feed.publish, [entry], dev)
    for _ in range(100):
        if sub.pending():
            break
        await asyncio.sleep(0.01)
    [it] = sub.take()
    assert it["id"] == 7
    assert it["replica"] == "r1"
    assert it["device_name"] == "lap"


# ------------------------------------------------------------------------ real controller


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with feed_server() as running:
        yield running


@pytest.mark.integration
async def test_a_device_batch_reaches_the_admin_socket_within_a_second(server: FeedServer) -> None:
    rc = server.rc
    alice = await enroll(rc, "alice", name="Alice laptop (1)")
    everything = await server.socket()
    only_bob = await server.socket(user="bob")
    only_allow = await server.socket(effect="allow")
    hostile = "<img src=x onerror=alert(1)>\u202e"
    sent = time.monotonic()
    ack = await post_batch(
        rc,
        alice,
        event(reason=hostile, app='C:\\evil\\"quoted".exe', host="<script>alert(1)</script>"),
        event(resource="wiki", host="wiki.corp.example", port=443),
    )
    assert ack["stored"] == 2
    items = await items_until(everything, 2, timeout=1.0)
    assert time.monotonic() - sent < 1.5  # POST round trip included
    stored = server.rc.service.storage.list_decisions(device_id=alice.device_id)
    assert sorted(it["id"] for it in items) == sorted(e.record_id for e in stored)
    first = next(it for it in items if it["resource"] == "git")
    assert first["reason"] == hostile  # data, unchanged: escaping is the browser's textContent
    assert first["app"] == 'C:\\evil\\"quoted".exe'
    assert first["device"] == alice.device_id
    assert first["host"] == "<script>alert(1)</script>"
    assert first["device_name"] == "Alice laptop (1)"
    assert first["user"] == alice.user or first["user"].startswith("alice")
    assert first["effect"] == "deny"
    assert first["port"] == 22
    assert first["count"] == 1
    assert first["replica"] == server.feed.replica
    assert set(first) == {
        "id", "at", "received", "user", "device", "device_name", "app", "host", "ip",
        "port", "resource", "rule", "effect", "code", "reason", "risk", "count", "replica",
    }  # fmt: skip
    # The filtered sockets received nothing: the filter runs on the server.
    await nothing_within(only_bob, 0.3)
    await nothing_within(only_allow, 0.1)
    for ws in (everything, only_bob, only_allow):
        await ws.close()


@pytest.mark.integration
async def test_a_filter_message_changes_what_the_socket_receives(server: FeedServer) -> None:
    rc = server.rc
    alice = await enroll(rc, "alice")
    bob = await enroll(rc, "bob", name="bob-phone")
    ws = await server.socket(user="alice")
    await post_batch(rc, bob, event())
    await post_batch(rc, alice, event())
    [it] = await items_until(ws, 1)
    assert it["device"] == alice.device_id
    await ws.send(
        json.dumps({"type": "filter", "user": "", "device": "PHONE", "resource": "", "effect": ""})
    )
    await asyncio.sleep(0.1)
    await post_batch(rc, alice, event())
    await post_batch(rc, bob, event(effect="allow"))
    [it] = await items_until(ws, 1)
    assert it["device"] == bob.device_id
    assert it["effect"] == "allow"
    await nothing_within(ws, 0.2)
    await ws.close()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", 1003),
        (json.dumps(["filter"]), 1003),
        (json.dumps({"type": "subscribe"}), 1003),
        (json.dumps({"type": "filter", "effect": "maybe"}), 1008),
        (json.dumps({"type": "filter", "user": "x" * 300}), 1008),
        (json.dumps({"type": "filter", "user": "x" * 5000}), 1008),  # over 4 KiB
        (b"\x00binary", 1003),
    ],
)
async def test_junk_from_the_browser_closes_the_socket(
    server: FeedServer, message: str | bytes, code: int
) -> None:
    ws = await server.socket()
    await ws.send(message)
    with pytest.raises(ConnectionClosed):
        await recv(ws, 2.0)
    assert ws.close_code == code
    assert ws.close_reason
    # The feed is still serving others.
    again = await server.socket()
    await again.close()


@pytest.mark.integration
async def test_a_junk_query_filter_and_a_message_flood_are_refused(server: FeedServer) -> None:
    ws = await server.socket(effect="sometimes")
    with pytest.raises(ConnectionClosed):
        await recv(ws, 2.0)
    assert ws.close_code == 1008
    ws = await server.socket()
    filt = json.dumps({"type": "filter", "user": "a"})
    for _ in range(live.IN_MESSAGES_PER_S + 2):
        await ws.send(filt)
    with pytest.raises(ConnectionClosed):
        await recv(ws, 2.0)
    assert ws.close_code == 1008
    assert "too many" in (ws.close_reason or "")
    assert server.feed.sockets_of("it-admin") == 0


@pytest.mark.integration
async def test_an_unauthenticated_socket_gets_nothing(server: FeedServer) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    # Refused before the handshake completes (HTTP 403): never subscribed.
    with pytest.raises(InvalidStatus) as err:
        await connect(server.ws_url)
    assert err.value.response.status_code == 403
    assert server.feed.sockets_of("it-admin") == 0


@pytest.mark.integration
async def test_the_rate_limit_reports_what_was_skipped(server: FeedServer) -> None:
    rc = server.rc
    alice = await enroll(rc, "alice")
    dev = rc.service.storage.get_device(alice.device_id)
    ws = await server.socket()
    await asyncio.sleep(0.1)
    n = live.RATE_PER_S + 150
    entries = [
        DecisionEntry(
            device_id=dev.device_id, user_id=dev.user_id, seq=1, kind="event",
            at=time.time(), effect="deny", record_id=i + 1,
        )
        for i in range(n)
    ]  # fmt: skip
    server.feed.publish(entries, dev)
    got: list[dict[str, Any]] = []
    skipped = 0
    async with asyncio.timeout(3):
        while len(got) + skipped < n:
            msg = await recv(ws, 2.0)
            if msg["type"] == "decisions":
                assert len(msg["items"]) <= live.RATE_PER_S
                got.extend(msg["items"])
            else:
                assert msg["type"] == "skipped"
                skipped += msg["count"]
    assert len(got) == live.RATE_PER_S
    assert skipped == n - live.RATE_PER_S
    assert [it["id"] for it in got] == list(range(1, live.RATE_PER_S + 1))
    await ws.close()


@pytest.mark.integration
async def test_a_closed_socket_is_forgotten(server: FeedServer) -> None:
    ws = await server.socket()
    await asyncio.sleep(0.05)
    assert server.feed.sockets_of("it-admin") == 1
    await ws.close()
    for _ in range(100):
        if server.feed.sockets_of("it-admin") == 0:
            break
        await asyncio.sleep(0.01)
    assert server.feed.sockets_of("it-admin") == 0


# ------------------------------------------------------------------------ through the console
@pytest.mark.integration
async def test_the_console_socket_of_a_signed_in_admin_gets_the_feed(
    console_server: ConsoleServer,
) -> None:
    """The console core's own socket: the admin's session cookie (from the real OIDC
    sign-in) opens it, and a real device's batch arrives within a second."""
    from websockets.asyncio.client import connect

    rc = console_server.rc
    admin = await asyncio.to_thread(console_server.signed_in_client)
    headers = {"Cookie": console_server.cookie_header(admin), "Origin": console_server.origin}
    ws_url = rc.base_url.replace("http://", "ws://") + "/console/ws/live"
    alice = await enroll(rc, "alice")
    async with (
        connect(ws_url, additional_headers=headers) as everything,
        connect(ws_url + "?device=nothing-like-it", additional_headers=headers) as filtered,
    ):
        await asyncio.sleep(0.1)
        sent = time.monotonic()
        await post_batch(rc, alice, event(reason="<script>x</script>"))
        [it] = await items_until(everything, 1, timeout=1.0)
        assert time.monotonic() - sent < 1.5
        assert it["device"] == alice.device_id
        assert it["reason"] == "<script>x</script>"
        await nothing_within(filtered, 0.3)


@pytest.mark.integration
def test_the_live_page_has_the_feed_hooks_and_escapes_the_filter(
    console_server: ConsoleServer,
) -> None:
    async def decisions() -> None:
        alice = await enroll(console_server.rc, "alice")
        await post_batch(console_server.rc, alice, event(reason="<script>evil()</script>"))
        await post_batch(console_server.rc, alice, event(effect="allow", reason="fine"))

    asyncio.run(decisions())
    admin = console_server.signed_in_client()
    # The page opens with the recent decisions that pass the filter, escaped.
    resp = admin.get("/console/live", params={"effect": "deny", "device": "LAPTOP"})
    assert resp.status_code == 200
    assert resp.text.count('data-effect="deny"') == 1
    assert 'data-effect="allow"' not in resp.text
    assert "&lt;script&gt;evil()&lt;/script&gt;" in resp.text
    assert "<script>evil" not in resp.text
    resp = admin.get("/console/live", params={"user": '"><script>x</script>', "effect": "deny"})
    assert resp.status_code == 200
    html = resp.text
    assert "data-effect=" not in html  # no user matches
    hooks = ('id="feed-filter"', 'id="feed-status"', 'id="feed"', 'name="user"', 'name="device"')
    hooks += ('name="resource"', 'name="effect"', 'src="/console/static/live.js"')
    for hook in hooks:
        assert hook in html, hook
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert '<option value="deny" selected>' in html
    js = admin.get("/console/static/live.js")
    assert js.status_code == 200
    assert "innerHTML" not in js.text
    assert "textContent" in js.text


@pytest.mark.integration
async def test_a_socket_ends_at_its_lifetime_and_per_admin_sockets_are_capped(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "MAX_LIFETIME_S", 0.5)
    monkeypatch.setattr(live, "SOCKETS_PER_ADMIN", 2)
    first, second = await server.socket(), await server.socket()
    await asyncio.sleep(0.05)
    third = await server.socket()
    with pytest.raises(ConnectionClosed):
        await recv(third, 2.0)
    assert third.close_code == 1008
    # The lifetime ends the others: the browser reconnects and is authenticated again.
    for ws in (first, second):
        with pytest.raises(ConnectionClosed):
            await recv(ws, 2.0)
        assert ws.close_code == 1001
