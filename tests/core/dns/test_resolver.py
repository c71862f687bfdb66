"""TunnelResolver against real DNS servers on loopback: the demo server and hostile ones."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Sequence

import dns.message
import dns.rcode
import pytest

from controller.demo.dns import DnsServer, Zone, parse_record, start
from core.dns import (
    AddressRefused,
    BadAnswer,
    BadName,
    DnsUnreachable,
    NameNotFound,
    TunnelResolver,
)
from core.dns.message import MAX_ADDRESSES
from tests.core.dns.hostile import ScriptedDns, Send, question, reply, silent_port
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.integration

SUFFIXES = ["corp.example"]
RECORDS = [
    "wiki.corp.example=10.243.0.10",
    "wiki.corp.example=fd00:243::10",
    "db.corp.example=10.243.0.11",
    "v6only.corp.example=fd00:243::12",
    "loop.corp.example=127.0.0.1",
    "mixed.corp.example=169.254.169.254",
    "mixed.corp.example=10.243.0.13",
]


SOA = "corp.example 60 IN SOA ns.corp.example. h.corp.example. 1 2 3 4 60"


class Clock:
    """An injected monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Fallback:
    """The OS resolver's stand-in: records every call."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        return ["192.0.2.1"]


@pytest.fixture
async def demo() -> AsyncIterator[DnsServer]:
    records: dict[object, list[str]] = {}
    for text in RECORDS:
        name, address = parse_record(text)
        records.setdefault(name, []).append(address)
    server = await start(Zone(records, ttl=60), "127.0.0.1", 0)  # type: ignore[arg-type]
    yield server
    await server.close()


async def scripted(script: object) -> ScriptedDns:
    return await ScriptedDns(script).start()  # type: ignore[arg-type]


def address_of(server: DnsServer) -> str:
    return f"{server.address[0]}:{server.address[1]}"


async def test_company_names_through_the_tunnel_dns(demo: DnsServer) -> None:
    fallback = Fallback()
    resolver = TunnelResolver([address_of(demo)], SUFFIXES, fallback=fallback)
    assert await resolver.resolve("wiki.corp.example", 443) == ["10.243.0.10", "fd00:243::10"]
    assert await resolver.resolve("WIKI.Corp.Example.", 443) == ["10.243.0.10", "fd00:243::10"]
    assert await resolver.resolve("v6only.corp.example", 443) == ["fd00:243::12"]
    assert await resolver.resolve("10.243.0.99", 443) == ["10.243.0.99"]  # literal: no query
    assert await resolver.resolve("[fd00::1]", 443) == ["fd00::1"]
    assert fallback.calls == []


async def test_an_ipv6_dns_server() -> None:
    name, address = parse_record("wiki.corp.example=10.243.0.10")
    server = await start(Zone({name: [address]}), "::1", 0)
    try:
        resolver = TunnelResolver([f"[::1]:{server.address[1]}"], SUFFIXES)
        assert await resolver.resolve("wiki.corp.example", 443) == ["10.243.0.10"]
    finally:
        await server.close()


async def test_other_names_go_to_the_fallback_only(demo: DnsServer) -> None:
    fallback = Fallback()
    resolver = TunnelResolver([address_of(demo)], SUFFIXES, fallback=fallback)
    assert await resolver.resolve("notcorp.example", 80) == ["192.0.2.1"]
    assert await resolver.resolve("example.com", 80) == ["192.0.2.1"]
    assert fallback.calls == ["notcorp.example", "example.com"]
    assert resolver.handles("x.corp.example")
    assert not resolver.handles("notcorp.example")


async def test_company_names_never_fall_back_when_the_tunnel_dns_is_dead() -> None:
    fallback = Fallback()
    dead = silent_port()
    try:
        port = dead.getsockname()[1]
        resolver = TunnelResolver([f"127.0.0.1:{port}"], SUFFIXES, fallback=fallback, timeout=0.2)
        with pytest.raises(DnsUnreachable, match="did not answer"):
            await resolver.resolve("wiki.corp.example", 443)
    finally:
        dead.close()
    assert fallback.calls == []


async def test_default_fallback_is_the_os_resolver() -> None:
    resolver = TunnelResolver(["127.0.0.1:9"], SUFFIXES)
    assert "127.0.0.1" in await resolver.resolve("localhost", 80)


async def test_nxdomain_is_cached_briefly(demo: DnsServer) -> None:
    clock = Clock()
    counting = await scripted(
        lambda q, tcp: [
            Send(
                reply(
                    q,
                    rcode=dns.rcode.NXDOMAIN,
                    authority=[SOA],
                )
            )
        ]
    )
    try:
        resolver = TunnelResolver([counting.address], SUFFIXES, clock=clock, negative_ttl=5)
        for _ in range(3):
            with pytest.raises(NameNotFound, match="NXDOMAIN"):
                await resolver.resolve("nope.corp.example", 80)
        assert len(counting.seen) == 2  # A and AAAA once
        clock.now += 5
        with pytest.raises(NameNotFound):
            await resolver.resolve("nope.corp.example", 80)
        assert len(counting.seen) == 4
    finally:
        await counting.close()


async def test_positive_answers_cached_by_clamped_ttl() -> None:
    clock = Clock()

    def answer(q: dns.message.Message, tcp: bool) -> list[Send]:
        name, rdtype = question(q)
        ttl = 0 if name.startswith("zero") else 86400
        return (
            [Send(reply(q, f"{name}. {ttl} IN A 10.243.0.20"))]
            if rdtype == "A"
            else [Send(reply(q))]
        )

    server = await scripted(answer)
    try:
        resolver = TunnelResolver([server.address], SUFFIXES, clock=clock, min_ttl=5, max_ttl=300)
        for name in ("zero.corp.example", "day.corp.example"):
            assert await resolver.resolve(name, 80) == ["10.243.0.20"]
        assert len(server.seen) == 4
        clock.now += 4
        await resolver.resolve("zero.corp.example", 80)
        assert len(server.seen) == 4  # TTL 0 is held min_ttl
        clock.now += 1
        await resolver.resolve("zero.corp.example", 80)
        assert len(server.seen) == 6
        clock.now += 295
        await resolver.resolve("day.corp.example", 80)
        assert len(server.seen) == 8  # a day's TTL is cut to max_ttl
        resolver.flush()
        await resolver.resolve("day.corp.example", 80)
        assert len(server.seen) == 10
    finally:
        await server.close()


async def test_concurrent_lookups_share_one_exchange(demo: DnsServer) -> None:
    server = await scripted(_a_only("wiki.corp.example. 60 IN A 10.243.0.21"))
    try:
        resolver = TunnelResolver([server.address], SUFFIXES)
        results = await asyncio.gather(
            *(resolver.resolve("wiki.corp.example", 80) for _ in range(20))
        )
        assert all(r == ["10.243.0.21"] for r in results)
        assert len(server.seen) == 2
    finally:
        await server.close()


async def test_a_caller_giving_up_does_not_fail_the_others() -> None:
    answer = asyncio.Event()

    def script(q: dns.message.Message, tcp: bool) -> list[Send]:
        if not answer.is_set():
            return []  # silent until the test says so; the resend brings the answer
        return [Send(reply(q, "db.corp.example. 60 IN A 10.243.0.11"))]

    server = await scripted(_only_a_type(script))
    try:
        resolver = TunnelResolver([server.address], SUFFIXES, timeout=0.4)
        first = asyncio.ensure_future(resolver.resolve("db.corp.example", 80))
        second = asyncio.ensure_future(resolver.resolve("db.corp.example", 80))
        await async_wait_until(lambda: len(server.seen) == 2, what="both questions asked")
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        answer.set()
        assert await second == ["10.243.0.11"]  # after the resend at half the timeout
        assert len(server.seen) == 3  # A resent once (AAAA was answered at once)
    finally:
        await server.close()


async def test_aclose_cancels_lookups_in_flight() -> None:
    server = await scripted(lambda q, tcp: [])
    try:
        resolver = TunnelResolver([server.address], SUFFIXES, timeout=30)
        pending = asyncio.ensure_future(resolver.resolve("db.corp.example", 80))
        await async_wait_until(lambda: len(server.seen) == 2, what="both questions asked")
        await resolver.aclose()
        with pytest.raises(DnsUnreachable, match="was stopped"):
            await pending
        await resolver.aclose()  # idempotent
    finally:
        await server.close()


def _only_a_type(script: object) -> object:
    """``script`` for A questions; an empty NOERROR for AAAA."""

    def wrapped(q: dns.message.Message, tcp: bool) -> list[Send]:
        if question(q)[1] != "A":
            return [Send(reply(q))]
        return script(q, tcp)  # type: ignore[operator, no-any-return]

    return wrapped


async def test_loopback_answers_refused_with_a_reason(demo: DnsServer) -> None:
    resolver = TunnelResolver([address_of(demo)], SUFFIXES)
    with pytest.raises(AddressRefused, match=r"127\.0\.0\.1 is a loopback address"):
        await resolver.resolve("loop.corp.example", 80)
    assert resolver.names_for("127.0.0.1") is None
    # One good address among refused ones: only the good one is returned.
    assert await resolver.resolve("mixed.corp.example", 80) == ["10.243.0.13"]


async def test_names_for_remembers_the_last_company_name(demo: DnsServer) -> None:
    fallback = Fallback()
    resolver = TunnelResolver([address_of(demo)], SUFFIXES, fallback=fallback)
    assert resolver.names_for("10.243.0.10") is None
    await resolver.resolve("wiki.corp.example", 80)
    assert resolver.names_for("10.243.0.10") == "wiki.corp.example"
    assert resolver.names_for("::ffff:10.243.0.10") == "wiki.corp.example"
    assert resolver.names_for("fd00:243:0::10") == "wiki.corp.example"
    await resolver.resolve("db.corp.example", 80)
    assert resolver.names_for("10.243.0.11") == "db.corp.example"
    # The fallback's answers never give an address a name.
    await resolver.resolve("example.com", 80)
    assert resolver.names_for("192.0.2.1") is None
    assert resolver.names_for("not an ip") is None


async def test_prefetch_teaches_names_for_the_policy_names(demo: DnsServer) -> None:
    """Transparent connections arrive as addresses: the policy's names are known ahead."""
    fallback = Fallback()
    resolver = TunnelResolver([address_of(demo)], SUFFIXES, fallback=fallback)
    names = [
        "wiki.corp.example",
        "DB.corp.example.",
        "*.corp.example",  # a wildcard: nothing to ask
        "nope.corp.example",  # NXDOMAIN: skipped
        "example.com",  # not a company name: the fallback is not asked
        "10.243.0.50",
        "bad..name",
    ]
    assert await resolver.prefetch(names) == 2
    assert resolver.names_for("10.243.0.10") == "wiki.corp.example"
    assert resolver.names_for("fd00:243::10") == "wiki.corp.example"
    assert resolver.names_for("10.243.0.11") == "db.corp.example"
    assert fallback.calls == []
    assert await resolver.prefetch(["x.corp.example"] * 5 + ["wiki.corp.example"], limit=1) == 0


@pytest.mark.parametrize("host", ["wiki\\.corp.example", "a..corp.example", "x\x00.corp.example"])
async def test_bad_names_are_errors_not_queries(host: str) -> None:
    fallback = Fallback()
    resolver = TunnelResolver(["127.0.0.1:9"], SUFFIXES, fallback=fallback)
    with pytest.raises(BadName):
        await resolver.resolve(host, 80)
    assert fallback.calls == []


# --- hostile servers -----------------------------------------------------------------


EVIL = "wiki.corp.example. 60 IN A 6.6.6.6"


def _a_only(*records: str) -> object:
    def script(q: dns.message.Message, tcp: bool) -> list[Send]:
        if question(q)[1] != "A":
            return [Send(reply(q))]
        return [Send(reply(q, *records))]

    return script


@pytest.mark.parametrize(
    "lie",
    [
        pytest.param(lambda q: Send(reply(q, EVIL, msg_id=q.id ^ 1)), id="wrong-id"),
        pytest.param(lambda q: Send(reply(q, EVIL), other_port=True), id="wrong-source-port"),
        pytest.param(lambda q: Send(_other_question(q)), id="wrong-question"),
        pytest.param(lambda q: Send(b"\x00" * 3), id="garbage"),
        pytest.param(lambda q: Send(q.id.to_bytes(2, "big") + b"\xff" * 40), id="garbage-with-id"),
        pytest.param(lambda q: Send(q.to_wire()), id="query-echo-not-a-response"),
    ],
)
async def test_spoofed_answers_are_ignored(lie: object) -> None:
    def script(q: dns.message.Message, tcp: bool) -> list[Send]:
        if question(q)[1] != "A":
            return [Send(reply(q))]
        return [lie(q), Send(reply(q, "wiki.corp.example. 60 IN A 10.243.0.10"))]  # type: ignore[operator]

    server = await scripted(script)
    try:
        resolver = TunnelResolver([server.address], SUFFIXES, timeout=1)
        assert await resolver.resolve("wiki.corp.example", 80) == ["10.243.0.10"]
    finally:
        await server.close()


def _other_question(q: dns.message.Message) -> bytes:
    other = dns.message.make_query("evil.corp.example", "A")
    other.id = q.id
    return reply(other, "evil.corp.example. 60 IN A 6.6.6.6")


async def test_only_spoofs_means_no_answer() -> None:
    server = await scripted(
        lambda q, tcp: [Send(reply(q, "wiki.corp.example. 60 IN A 6.6.6.6"), other_port=True)]
    )
    try:
        resolver = TunnelResolver([server.address], SUFFIXES, timeout=0.2)
        with pytest.raises(DnsUnreachable):
            await resolver.resolve("wiki.corp.example", 80)
    finally:
        await server.close()


async def test_truncated_answer_retried_over_tcp() -> None:
    def script(q: dns.message.Message, tcp: bool) -> list[Send]:
        if question(q)[1] != "A":
            return [Send(reply(q))]
        if not tcp:
            return [Send(reply(q, "wiki.corp.example. 60 IN A 6.6.6.6", tc=True))]
        return [Send(reply(q, "wiki.corp.example. 60 IN A 10.243.0.10 10.243.0.14"))]

    server = await scripted(script)
    try:
        resolver = TunnelResolver([server.address], SUFFIXES)
        got = await resolver.resolve("wiki.corp.example", 80)
        assert sorted(got) == ["10.243.0.10", "10.243.0.14"]  # 6.6.6.6 was in the TC part
        assert ("wiki.corp.example", "A", True) in server.seen
    finally:
        await server.close()


async def test_cname_chain_followed_and_other_names_ignored() -> None:
    server = await scripted(
        _a_only(
            "evil.example. 60 IN A 6.6.6.6",  # not on the chain: ignored
            "www.corp.example. 300 IN CNAME edge.corp.example.",
            "edge.corp.example. 30 IN CNAME wiki.corp.example.",
            "wiki.corp.example. 60 IN A 10.243.0.10",
        )
    )
    clock = Clock()
    try:
        resolver = TunnelResolver([server.address], SUFFIXES, clock=clock, min_ttl=1)
        assert await resolver.resolve("www.corp.example", 80) == ["10.243.0.10"]
        assert resolver.names_for("10.243.0.10") == "www.corp.example"
        assert resolver.names_for("6.6.6.6") is None
        clock.now += 31  # the chain lives as long as its shortest link (30 s)
        await resolver.resolve("www.corp.example", 80)
        assert len(server.seen) == 4
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("records", "match"),
    [
        (
            [
                "www.corp.example. 60 IN CNAME a.corp.example.",
                "a.corp.example. 60 IN CNAME www.corp.example.",
            ],
            "CNAME loop",
        ),
        (
            [f"c{i}.corp.example. 60 IN CNAME c{i + 1}.corp.example." for i in range(12)],
            "more than 8 CNAMEs",
        ),
    ],
)
async def test_cname_loops_and_mazes_are_bad_answers(records: list[str], match: str) -> None:
    first = records[0].split()[0].rstrip(".")
    server = await scripted(_a_only(*records))
    try:
        resolver = TunnelResolver([server.address], SUFFIXES)
        with pytest.raises(BadAnswer, match=match):
            await resolver.resolve(first, 80)
    finally:
        await server.close()


async def test_huge_answers_are_bounded() -> None:
    addresses = " ".join(f"10.243.{i // 250}.{i % 250 + 1}" for i in range(1000))

    def script(q: dns.message.Message, tcp: bool) -> list[Send]:
        if question(q)[1] != "A":
            return [Send(reply(q))]
        if not tcp:
            return [Send(reply(q, tc=True))]
        return [Send(reply(q, f"big.corp.example. 60 IN A {addresses}"))]

    server = await scripted(script)
    try:
        resolver = TunnelResolver([server.address], SUFFIXES)
        got = await resolver.resolve("big.corp.example", 80)
        assert len(got) == MAX_ADDRESSES
        assert set(got) <= set(addresses.split())
    finally:
        await server.close()


async def test_slow_server_fails_over_to_the_next(demo: DnsServer) -> None:
    dead = silent_port()
    try:
        servers = [f"127.0.0.1:{dead.getsockname()[1]}", address_of(demo)]
        resolver = TunnelResolver(servers, SUFFIXES, timeout=0.3)
        started = time.monotonic()
        assert await resolver.resolve("db.corp.example", 80) == ["10.243.0.11"]
        assert time.monotonic() - started < 1.5  # one timeout (A and AAAA run together)
    finally:
        dead.close()


@pytest.mark.parametrize("rcode", [dns.rcode.SERVFAIL, dns.rcode.REFUSED])
async def test_failing_server_fails_over(demo: DnsServer, rcode: int) -> None:
    failing = await scripted(lambda q, tcp: [Send(reply(q, rcode=rcode))])
    try:
        resolver = TunnelResolver([failing.address, address_of(demo)], SUFFIXES)
        assert await resolver.resolve("db.corp.example", 80) == ["10.243.0.11"]
        only = TunnelResolver([failing.address], SUFFIXES)
        with pytest.raises(BadAnswer, match=dns.rcode.to_text(rcode)):
            await only.resolve("db.corp.example", 80)
    finally:
        await failing.close()


async def test_sockets_come_from_the_factory(demo: DnsServer) -> None:
    asked: list[tuple[int, str]] = []

    def factory(family: int, kind: str) -> socket.socket:
        asked.append((family, kind))
        return socket.socket(family, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)

    resolver = TunnelResolver([address_of(demo)], SUFFIXES, factory)
    await resolver.resolve("wiki.corp.example", 80)
    assert asked == [(socket.AF_INET, "udp")] * 2


async def test_a_blocking_factory_does_not_stall_the_loop(demo: DnsServer) -> None:
    """The helper's pool may fetch in the caller's thread: never on the event loop."""
    release = threading.Event()
    called: list[str] = []

    def factory(family: int, kind: str) -> socket.socket:
        called.append(kind)
        assert release.wait(5)
        return socket.socket(family, socket.SOCK_DGRAM)

    resolver = TunnelResolver([address_of(demo)], SUFFIXES, factory)
    task = asyncio.ensure_future(resolver.resolve("db.corp.example", 80))
    await async_wait_until(lambda: len(called) == 2, what="both factory calls in flight")
    release.set()
    assert await task == ["10.243.0.11"]


async def test_no_tunnel_socket_is_a_clear_error() -> None:
    class NoTunnelSockets(Exception):
        pass

    def factory(family: int, kind: str) -> socket.socket:
        raise NoTunnelSockets("the tunnel is down")

    fallback = Fallback()
    resolver = TunnelResolver(["10.0.0.53"], SUFFIXES, factory, fallback=fallback)
    with pytest.raises(DnsUnreachable, match="no udp socket into the tunnel: the tunnel is down"):
        await resolver.resolve("wiki.corp.example", 80)
    assert fallback.calls == []
