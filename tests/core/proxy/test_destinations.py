"""A name's answers are checked before any is dialled (issue #15: "a policy match on a
host name accepts any address the name resolves to"; "an AAAA record for a resource name
sent 45 of 45 requests over the LAN's IPv6").

Pure checks first (``core.proxy.destinations``), then the real proxy with the real
policy engine: a hostile resolver's answers outside "Corp Wiki"'s networks, on the LAN's
IPv6, on loopback or in an IPv4-in-IPv6 disguise are dropped; when none remain the
connection is refused with a reason naming the name, the address and why, and the
connector is never called. Names resolve to documentation addresses standing in for
addresses behind the tunnel (``helpers.STAND_INS``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest

from core.policy.api import Effect
from core.policy.engine import PolicyEngine
from core.proxy import EventKind, ProxyEvent, ProxyServer
from core.proxy.destinations import ResourceScopes, drop_special, special_reason, within
from core.wire.policy import PolicyBundle, Resource, Rule, UserInfo
from tests.core.proxy.helpers import EchoServer, socks_open, stand_in_connector
from tests.fakes.wait import async_wait_until

# --------------------------------------------------------------------------- pure checks


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.169.254", "a link-local address"),  # the cloud metadata service
        ("fe80::1", "a link-local address"),
        ("224.0.0.251", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("0.1.2.3", "a 'this network' address"),
        ("255.255.255.255", "the broadcast address"),
        ("240.0.0.1", "a reserved address"),
        ("fec0::1", "a site-local address"),
        ("::ffff:10.0.0.1", "an IPv4-mapped IPv6 address"),
        ("::ffff:0:7f00:1", "an IPv4-translated IPv6 address"),
        ("::7f00:1", "an IPv4-compatible IPv6 address"),
        ("2002:7f00:1::", "a 6to4 address"),
        ("2001:0:4136:e378::1", "a Teredo address"),
        ("64:ff9b::7f00:1", "a NAT64 address of a loopback address"),
    ],
)
def test_never_a_resource(address: str, why: str) -> None:
    assert special_reason(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize(
    "address", ["10.20.0.5", "192.168.1.66", "fd00:20::5", "2001:db8::1", "64:ff9b::a14:5"]
)
def test_ordinary_addresses_pass_the_special_check(address: str) -> None:
    # (a LAN address is ordinary here: it is the networks check that drops it)
    assert special_reason(ipaddress.ip_address(address)) is None


def test_drop_special_keeps_order_and_names_the_first_dropped() -> None:
    kept, why = drop_special("wiki.corp.example", ["127.0.0.1", "10.20.0.5", "fe80::1", "x"])
    assert kept == ("10.20.0.5",)
    assert why == "wiki.corp.example resolved to 127.0.0.1, a loopback address"
    assert drop_special("a.example", ["10.0.0.1"]) == (("10.0.0.1",), None)


def test_within_networks_of_both_families() -> None:
    nets = [ipaddress.ip_network("10.20.0.0/24"), ipaddress.ip_network("fd00:20::/64")]
    kept, why = within(
        "wiki.corp.example",
        ["fd00:1::66", "10.20.0.5", "192.168.1.66", "fd00:20::5"],
        nets,
        "Corp Wiki's networks",
    )
    assert kept == ("10.20.0.5", "fd00:20::5")
    assert why == "wiki.corp.example resolved to fd00:1::66, outside Corp Wiki's networks"
    assert within("a", ["10.20.0.5"], [], "the tunnel's networks") == (
        (),
        "a resolved to 10.20.0.5, outside the tunnel's networks",
    )


def test_resource_scopes_follow_the_bundle_object() -> None:
    scopes = ResourceScopes()
    first = _bundle(cidrs=("10.20.0.0/24",), hosts=("wiki.corp.example", "10.30.0.7"))
    scope = scopes.get(first, "wiki")
    assert scope is not None
    assert scope.label == "Corp Wiki's networks"
    assert [str(n) for n in scope.networks] == ["10.20.0.0/24", "10.30.0.7/32"]
    assert scopes.get(first, "nope") is None
    assert scopes.get(None, "wiki") is None
    second = _bundle(cidrs=(), hosts=("wiki.corp.example",))
    again = scopes.get(second, "wiki")
    assert again is not None
    assert again.networks == ()


# --------------------------------------------------------------------------- the proxy


def _bundle(
    *,
    cidrs: tuple[str, ...],
    hosts: tuple[str, ...] = ("wiki.corp.example",),
    payroll: tuple[str, ...] = (),
) -> PolicyBundle:
    now = int(time.time())
    resources = (Resource(id="wiki", name="Corp Wiki", hosts=hosts, cidrs=cidrs),)
    if payroll:  # a resource nobody here may reach
        resources += (Resource(id="payroll", name="Payroll", cidrs=payroll),)
    return PolicyBundle(
        version=1,
        device_id="dev-answers",
        issued_at=now - 60,
        expires_at=now + 3600,
        user=UserInfo(subject="alice"),
        resources=resources,
        rules=(Rule(id="allow-wiki", effect="allow", resources=("wiki",)),),
    )


@dataclass
class Rig:
    server: ProxyServer
    engine: PolicyEngine
    echo: EchoServer
    answers: dict[str, list[str]]
    dialled: list[list[str]] = field(default_factory=list)
    events: list[ProxyEvent] = field(default_factory=list)
    ranges: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)

    async def socks(self, host: str) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
        return await socks_open(self.server.port, host.encode(), self.echo.port)

    async def decision(self, n: int = 1) -> ProxyEvent:
        def decided() -> list[ProxyEvent]:
            return [e for e in self.events if e.kind is EventKind.DECISION]

        await async_wait_until(lambda: len(decided()) >= n, what=f"{n} decisions")
        return decided()[n - 1]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    echo = EchoServer()
    await echo.start()
    engine = PolicyEngine(record=False)
    engine.load(_bundle(cidrs=("192.0.2.0/24", "2001:db8::/64")))
    answers: dict[str, list[str]] = {}
    holder: list[Rig] = []

    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in answers:
            raise OSError(f"no such host {host}")
        return answers[host]

    async def connect(addresses: Sequence[str], port: int) -> object:
        holder[0].dialled.append(list(addresses))
        return await stand_in_connector(addresses, port)

    server = ProxyServer(
        engine,
        host_uid=os.getuid(),
        resolver=resolve,
        connector=connect,  # type: ignore[arg-type]
        ranges=lambda: holder[0].ranges,
    )
    r = Rig(server, engine, echo, answers)
    holder.append(r)
    server.subscribe(r.events.append)
    await server.start(0)
    try:
        yield r
    finally:
        await server.stop()
        await echo.stop()


async def _echoes(w: asyncio.StreamWriter, r: asyncio.StreamReader) -> bool:
    w.write(b"ping")
    ok = await asyncio.wait_for(r.readexactly(4), 5) == b"ping"
    w.close()
    return ok


async def test_answers_outside_the_resource_are_dropped_before_dialling(rig: Rig) -> None:
    rig.answers["wiki.corp.example"] = ["192.168.1.66", "fd00:1::66", "192.0.2.1"]
    code, r, w = await rig.socks("wiki.corp.example")
    assert code == 0
    assert await _echoes(w, r)
    assert rig.dialled == [["192.0.2.1"]]  # the LAN's v4 and v6 answers never dialled
    ev = await rig.decision()
    assert ev.effect is Effect.ALLOW
    assert ev.rule == "allow-wiki"


async def test_only_lan_answers_refused_naming_name_address_and_why(rig: Rig) -> None:
    rig.answers["wiki.corp.example"] = ["192.168.1.66"]
    code, _r, w = await rig.socks("wiki.corp.example")
    w.close()
    assert code == 2  # SOCKS5 "not allowed by ruleset"
    ev = await rig.decision()
    assert ev.effect is Effect.DENY
    assert ev.reason == "wiki.corp.example resolved to 192.168.1.66, outside Corp Wiki's networks"
    assert ev.resource == "wiki"
    assert ev.rule is None  # refused outside policy: no rule denied it
    assert rig.dialled == []
    assert rig.server.counters().resources["wiki"].denials == 1


async def test_an_aaaa_answer_on_the_lan_is_never_dialled(rig: Rig) -> None:
    rig.answers["wiki.corp.example"] = ["fd00:1::66"]
    code, _r, w = await rig.socks("wiki.corp.example")
    w.close()
    assert code == 2
    ev = await rig.decision()
    assert ev.reason == "wiki.corp.example resolved to fd00:1::66, outside Corp Wiki's networks"
    assert rig.dialled == []


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("127.0.0.1", "127.0.0.1, a loopback address"),
        ("::ffff:127.0.0.1", "127.0.0.1, a loopback address"),  # unmapped, then refused
        ("169.254.169.254", "169.254.169.254, a link-local address"),
        ("fe80::1", "fe80::1, a link-local address"),
        ("0.0.0.0", "0.0.0.0, an unspecified address"),
        ("::7f00:1", "::7f00:1, an IPv4-compatible IPv6 address"),
    ],
)
async def test_loopback_link_local_and_disguises_refused(rig: Rig, answer: str, why: str) -> None:
    # Even a resource whose networks cover everything never gets these answers dialled.
    rig.engine.load(_bundle(cidrs=("0.0.0.0/0", "::/0")))
    rig.answers["wiki.corp.example"] = [answer]
    code, _r, w = await rig.socks("wiki.corp.example")
    w.close()
    assert code == 2
    ev = await rig.decision()
    assert ev.reason == f"wiki.corp.example resolved to {why}"
    assert rig.dialled == []


async def test_names_only_resource_checked_against_the_tunnels_ranges(rig: Rig) -> None:
    rig.engine.load(_bundle(cidrs=()))  # the resource names hosts only
    rig.ranges[:] = [ipaddress.ip_network("192.0.2.0/24")]
    rig.answers["wiki.corp.example"] = ["192.168.1.66"]
    code, _r, w = await rig.socks("wiki.corp.example")
    w.close()
    assert code == 2
    ev = await rig.decision()
    assert ev.reason == "wiki.corp.example resolved to 192.168.1.66, outside the tunnel's networks"
    rig.answers["wiki.corp.example"] = ["192.168.1.66", "192.0.2.1"]
    code, r, w = await rig.socks("wiki.corp.example")
    assert code == 0
    assert await _echoes(w, r)
    assert rig.dialled == [["192.0.2.1"]]


async def test_http_connect_name_checked_too(rig: Rig) -> None:
    rig.answers["wiki.corp.example"] = ["192.168.1.66"]
    r, w = await asyncio.open_connection("127.0.0.1", rig.server.port)
    w.write(f"CONNECT wiki.corp.example:{rig.echo.port} HTTP/1.1\r\n\r\n".encode())
    data = await asyncio.wait_for(r.read(), 5)
    w.close()
    assert data.startswith(b"HTTP/1.1 403")
    assert b"192.168.1.66, outside Corp Wiki&#x27;s networks" in data
    assert rig.dialled == []


async def test_ip_literal_outside_every_resource_denied_as_before(rig: Rig) -> None:
    code, _r, w = await socks_open(rig.server.port, "192.168.1.66", rig.echo.port)
    w.close()
    assert code == 2
    ev = await rig.decision()
    assert "no resource in the policy covers" in ev.reason
    assert rig.dialled == []


async def test_reevaluate_closes_a_relay_whose_answer_left_the_ranges(rig: Rig) -> None:
    rig.engine.load(_bundle(cidrs=()))
    rig.ranges[:] = [ipaddress.ip_network("192.0.2.0/24")]
    rig.answers["wiki.corp.example"] = ["192.0.2.1"]
    code, r, w = await rig.socks("wiki.corp.example")
    assert code == 0
    assert rig.server.reevaluate() == 0
    rig.ranges[:] = [ipaddress.ip_network("198.51.100.0/24")]  # the tunnel's ranges moved
    assert rig.server.reevaluate() == 1
    assert await asyncio.wait_for(r.read(), 5) == b""
    w.close()
    await async_wait_until(lambda: any(e.kind is EventKind.REVOKED for e in rig.events))
    revoked = next(e for e in rig.events if e.kind is EventKind.REVOKED)
    assert "outside the tunnel's networks" in revoked.reason


async def test_ranges_that_raise_fail_closed(rig: Rig) -> None:
    rig.engine.load(_bundle(cidrs=()))

    def broken() -> list[ipaddress.IPv4Network]:
        raise RuntimeError("engine in the middle of a reconnect")

    rig.server._ranges = broken  # the hook the engine passes as ``ranges``
    rig.answers["wiki.corp.example"] = ["192.0.2.1"]
    code, _r, w = await rig.socks("wiki.corp.example")
    w.close()
    assert code == 2
    assert rig.dialled == []
    ev = await rig.decision()
    assert ev.reason == (
        "wiki.corp.example resolved to 192.0.2.1, outside the tunnel's networks (no tunnel)"
    )


async def test_a_name_cannot_launder_an_address_the_policy_denies(rig: Rig) -> None:
    # Corp Wiki is known by name only; its name now points into Payroll's network (a
    # bad record, a stale entry): decided as that address, which nobody may reach.
    rig.engine.load(_bundle(cidrs=(), payroll=("192.0.2.128/25",)))
    rig.ranges[:] = [ipaddress.ip_network("192.0.2.0/24")]
    rig.answers["wiki.corp.example"] = ["192.0.2.130"]
    code, _r, w = await rig.socks("wiki.corp.example")
    w.close()
    assert code == 2
    ev = await rig.decision()
    assert ev.reason.startswith(
        "wiki.corp.example resolved to 192.0.2.130, which belongs to Payroll: "
    )
    assert ev.reason.endswith("to reach Payroll")  # the policy's own reason follows
    assert rig.dialled == []
    # an address in no resource's networks (inside the tunnel's ranges) is fine
    rig.answers["wiki.corp.example"] = ["192.0.2.130", "192.0.2.1"]
    code, r, w = await rig.socks("wiki.corp.example")
    assert code == 0
    assert await _echoes(w, r)
    assert rig.dialled == [["192.0.2.1"]]


async def test_a_name_that_cannot_be_resolved_says_why_in_activity(rig: Rig) -> None:
    # The split-DNS resolver's words reach the employee (they used to be logged at debug
    # level only, and the connection simply failed).
    code, _r, w = await rig.socks("wiki.corp.example")  # no answer: "no such host …"
    w.close()
    assert code != 0
    await async_wait_until(
        lambda: any(e.kind is EventKind.REFUSED for e in rig.events), what="a refusal"
    )
    refused = next(e for e in rig.events if e.kind is EventKind.REFUSED)
    assert refused.reason == (
        "wiki.corp.example could not be resolved: no such host wiki.corp.example"
    )
    assert rig.dialled == []
