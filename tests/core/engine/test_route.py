"""The decider's route: dial only through the tunnel's sockets, company names through the
tunnel's DNS (a real DNS server on loopback), nothing when there is no tunnel."""

from __future__ import annotations

import ipaddress
import socket

import dns.name
import pytest

from controller.demo import dns as demo_dns
from core.engine.ports import TunnelPath
from core.engine.route import DeciderRoute, parse_ranges
from wg_backends.errors import NoTunnelSockets
from wg_backends.spec import PeerSpec, TunnelSpec

pytestmark = pytest.mark.integration

KEY = "A" * 43 + "="


def _spec(dns: str, suffixes: tuple[str, ...] = ("corp.example",)) -> TunnelSpec:
    peer = PeerSpec(public_key=KEY, endpoint="192.0.2.1:51820", allowed_ips=("10.243.0.0/24",))
    return TunnelSpec(
        interface="rtw0",
        addresses=("10.242.0.2/32",),
        peers=(peer,),
        dns=(dns,),
        dns_suffixes=suffixes,
    )


def _path(taken: list[tuple[int, str]]) -> TunnelPath:
    def take(family: int, kind: str) -> socket.socket:
        taken.append((family, kind))
        return socket.socket(family, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)

    return TunnelPath(
        interface="rtw0",
        ranges=(ipaddress.ip_network("10.243.0.0/24"),),
        take=take,
        transparent=True,
    )


async def test_no_tunnel_means_no_socket_and_no_ranges() -> None:
    route = DeciderRoute()
    with pytest.raises(NoTunnelSockets):
        route.take(socket.AF_INET, "tcp")
    assert route.ranges() == ()
    assert not route.unfenced
    route.set(None, None, unfenced=True)  # nothing applied: still no way out
    assert not route.unfenced


@pytest.mark.root  # a tunnel's DNS server is on port 53
async def test_company_names_resolve_through_the_tunnel_dns_over_its_sockets() -> None:
    zone = demo_dns.Zone({dns.name.from_text("wiki.corp.example"): ["10.243.0.10"]})
    server = await demo_dns.start(zone, "127.53.0.1", 53)
    try:
        taken: list[tuple[int, str]] = []
        route = DeciderRoute()
        spec = _spec("127.53.0.1")
        route.set(_path(taken), spec, unfenced=False)
        assert await route.resolve("wiki.corp.example", 80) == ["10.243.0.10"]
        assert taken  # asked over the tunnel's (marked) sockets, not the OS resolver
        assert all(kind == "udp" for _, kind in taken)
        assert route.reverse("10.243.0.10") == "wiki.corp.example"
        assert route.ranges() == (ipaddress.ip_network("10.243.0.0/24"),)
        # a new path with the same DNS keeps what the resolver knows
        route.set(_path(taken), spec, unfenced=False)
        assert route.reverse("10.243.0.10") == "wiki.corp.example"
        # the tunnel goes: company names are not asked of anyone else
        route.set(None, None, unfenced=False)
        assert route.reverse("10.243.0.10") is None
        with pytest.raises(NoTunnelSockets):
            route.take(socket.AF_INET, "tcp")
    finally:
        await server.close()


async def test_a_helper_that_cannot_fence_leaves_the_os_routes_in_use() -> None:
    route = DeciderRoute()
    route.set(None, _spec("10.243.0.53"), unfenced=True)
    assert route.unfenced


def test_parse_ranges_skips_garbage() -> None:
    assert parse_ranges(["10.0.0.0/8", "nonsense", "fd00::/64"]) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/64"),
    )
