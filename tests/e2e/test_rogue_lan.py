"""A rogue LAN beside the client (issue 15, "Done when"): a more specific LAN route for a
resource range (a rogue DHCP server's option 121) and a LAN resolver answering the
company's names with its own A and AAAA records. Not one packet may reach the rogue host
by any of the decider's ways in, and the client says why (root).

The rogue host is the client namespace's default router on its own link, serves HTTP for
any address routed to it, and counts every unicast packet it receives from the client
(``Bed.rogue_packets``; queries to its DNS server apart, ``Bed.rogue_dns_queries``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from controller.demo.bed import RESOURCES, ROGUE_HOST, Bed, make_bed, run
from controller.demo.harness import Session, session
from core.wire.policy import FactCondition, Resource, Rule

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns, pytest.mark.timeout(240)]

WIKI = "http://wiki.corp.example/"
WIKI_IP = RESOURCES["wiki.corp.example"][0]
WIKI_BODY = "through the Rustronaut tunnel"
ROGUE_BODY = "rogue LAN host"
#: A resource range wider than one address, so a LAN route can be more specific than it.
WIKI_NET = Resource(
    id="wiki-net",
    name="Wiki network",
    hosts=(),
    cidrs=("10.243.0.0/28",),
    ports=(80,),
)
WIKI_NET_RULE = Rule(
    id="engineering-wiki-net",
    effect="allow",
    resources=("wiki-net",),
    priority=10,
    conditions=FactCondition(fact="user.groups", op="eq", value="engineering"),
    description="Engineers may reach the wiki's network.",
)
#: Inside WIKI_NET, holding the wiki's address: more specific than the tunnel's route.
ROGUE_CIDR = "10.243.0.8/29"


@pytest.fixture
def bed() -> Iterator[Bed]:
    with make_bed(rogue_lan=True) as b:
        yield b
    assert not [ns for ns in run(["ip", "netns", "list"]).stdout.split() if b.tag in ns]


def _ok(result: object) -> bool:
    return getattr(result, "returncode", 1) == 0 and getattr(result, "stdout", "").endswith("200")


def _every_way_in(s: Session) -> dict[str, Any]:
    """The wiki by each of the decider's ways in: plain curl (transparent) by address with
    the wiki's Host, SOCKS5 with the host name, HTTP CONNECT and HTTP proxying by name."""
    host = ("-H", "Host: wiki.corp.example")
    return {
        "plain": s.curl(f"http://{WIKI_IP}/", direct=True, timeout=3, extra=host),
        "socks5-hostname": s.curl(WIKI, timeout=3),
        "connect": s.curl(WIKI, socks=False, timeout=3, extra=("--proxytunnel",)),
        "http-proxy": s.curl(WIKI, socks=False, timeout=3),
    }


def _mentions(event: dict[str, Any], *needles: str) -> bool:
    text = f"{event.get('message', '')} {event.get('details', '')}".lower()
    return any(n.lower() in text for n in needles)


async def test_a_more_specific_lan_route_is_never_followed(bed: Bed) -> None:
    async with session(
        bed, split_dns=True, extra_resources=[WIKI_NET], extra_rules=[WIKI_NET_RULE]
    ) as s:
        await s.wait_state("connected", "degraded")
        assert _ok(await asyncio.to_thread(s.curl, WIKI))
        before, queries = bed.rogue_packets(), bed.rogue_dns_queries()
        seen = len(s.events)

        bed.rogue_route(ROGUE_CIDR)  # what a rogue DHCP server's option 121 does
        tries = await asyncio.to_thread(_every_way_in, s)
        for name, result in tries.items():
            # overridden (the real wiki through the tunnel) or refused, never followed
            assert ROGUE_BODY not in result.stdout, (name, result)
        leaked = bed.rogue_packets() - before
        assert leaked == 0, f"{leaked} packets reached the rogue host: {tries}"
        assert bed.rogue_dns_queries() == queries

        # The client says why: an event naming the route (its range, interface or router).
        why = await s.wait_event(
            lambda e: (
                s.events.index(e) >= seen
                and _mentions(e, ROGUE_CIDR, bed.rogue_if, ROGUE_HOST)
                and _mentions(e, "route")
            ),
            within=10,
        )
        print(f"the client said: {why['message']}")
        access = (await s.status()).get("access") or {}
        assert f"{ROGUE_CIDR} via {bed.rogue_if}" in access.get("overridden_routes", ()), access


async def test_rogue_a_and_aaaa_answers_are_never_followed(bed: Bed) -> None:
    async with session(bed, split_dns=True) as s:
        await s.wait_state("connected", "degraded")
        assert _ok(await asyncio.to_thread(s.curl, WIKI))
        # The LAN's resolver now answers wiki.corp.example with 10.246.0.66 and fd46::66.
        bed.point_resolver_at_rogue()
        before, queries = bed.rogue_packets(), bed.rogue_dns_queries()
        tries = await asyncio.to_thread(_every_way_in, s)
        for name, result in tries.items():
            assert ROGUE_BODY not in result.stdout, (name, result)
        # The decider resolves corp.example through the tunnel's DNS server, so the names
        # still lead to the wiki, and the LAN resolver is never even asked.
        for name in ("socks5-hostname", "connect", "http-proxy"):
            assert _ok(tries[name]), (name, tries[name])
            assert WIKI_BODY in tries[name].stdout, (name, tries[name])
        leaked = bed.rogue_packets() - before
        assert leaked == 0, f"{leaked} packets reached the rogue host: {tries}"
        asked = bed.rogue_dns_queries() - queries
        assert asked == 0, f"the decider asked the LAN's resolver {asked} times"


async def test_a_dead_tunnel_never_falls_back_to_the_lan(bed: Bed) -> None:
    # The rogue host is the LAN's default router: anything sent by the OS's routes while
    # the tunnel is gone lands there.
    async with session(bed, split_dns=True) as s:
        await s.wait_state("connected", "degraded")
        assert _ok(await asyncio.to_thread(s.curl, WIKI))
        await asyncio.to_thread(bed.silence_gateway)
        await s.wait_state("reconnecting", "connecting", "offline", "error", within=20)
        before = bed.rogue_packets()
        tries = await asyncio.to_thread(_every_way_in, s)
        for name in ("socks5-hostname", "connect", "http-proxy"):
            assert not _ok(tries[name]), (name, tries[name])
        leaked = bed.rogue_packets() - before
        assert leaked == 0, f"{leaked} packets reached the LAN while the tunnel was down: {tries}"


async def test_the_fence_holds_while_reconnecting(bed: Bed) -> None:
    # A plain app's connection to a resource range while the tunnel is being replaced is
    # blocked (or caught and refused by the decider), never sent to the LAN in cleartext.
    async with session(bed, split_dns=True) as s:
        await s.wait_state("connected", "degraded")
        await asyncio.to_thread(bed.silence_gateway)
        snap = await s.wait_state("reconnecting", "connecting", "offline", "error", within=20)
        before = bed.rogue_packets()
        plain = await asyncio.to_thread(
            s.curl, f"http://{WIKI_IP}/", direct=True, timeout=3,
            extra=("-H", "Host: wiki.corp.example"),
        )  # fmt: skip
        leaked = bed.rogue_packets() - before
        assert ROGUE_BODY not in plain.stdout, (snap["state"], snap.get("access"), plain)
        assert leaked == 0, f"{leaked} packets of a plain app reached the LAN ({snap['state']})"
