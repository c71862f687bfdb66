"""The network-change detector: parsing real /proc outputs and comparing fingerprints."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pytest

from core.engine.netwatch import (
    Fingerprint,
    NetworkWatch,
    fingerprint,
    parse_default_routes,
    read_system,
)

pytestmark = pytest.mark.unit

# Captured on a Debian 12 VM: cat /proc/net/route; cat /proc/net/ipv6_route
DATA = Path(__file__).parent / "data"
ROUTE_V4 = (DATA / "proc_net_route.txt").read_text()
ROUTE_V6 = (DATA / "proc_net_ipv6_route.txt").read_text()


def test_default_routes_from_proc() -> None:
    assert parse_default_routes(ROUTE_V4, ROUTE_V6) == [
        ("eth0", "010200C0"),
        ("eth0", "fd000000000000000000000000000001"),
    ]
    assert parse_default_routes("garbage\nmore garbage") == []


def test_fingerprint_ignores_loopback_and_the_tunnel() -> None:
    addrs = {"lo": ["127.0.0.1"], "eth0": ["192.168.0.5"], "rt0": ["10.77.0.2"]}
    fp = fingerprint(addrs, [("eth0", "0100A8C0"), ("rt0", "0")], ignore={"rt0"})
    assert fp == {("addr", "eth0", "192.168.0.5"), ("route", "eth0", "0100A8C0")}


def test_watch_reports_a_change_once() -> None:
    current: dict[str, list[str]] = {"eth0": ["192.168.0.5"]}

    def read(ignore: Collection[str]) -> Fingerprint:
        return fingerprint(current, [], ignore=ignore)

    watch = NetworkWatch(read)
    assert not watch.changed()  # the first read only primes
    assert not watch.changed()
    current["eth0"] = ["10.1.2.3"]  # DHCP on a new network
    assert watch.changed()
    assert not watch.changed()
    current["rt0"] = ["10.77.0.2"]  # the tunnel itself coming up is not a change
    assert not watch.changed(ignore={"rt0"})


def test_read_system_sees_loopback_free_addresses() -> None:
    fp = read_system()
    assert all(entry[1] != "lo" for entry in fp)


# --- routes more specific than the tunnel's ranges (a rogue DHCP option 121) ---------

_ROUTE_V4 = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    # 10.243.0.0/25 via eth0 (little-endian hex) and the tunnel's own 10.243.0.0/24
    "eth0\t0000F30A\t4200A8C0\t0003\t0\t0\t0\t80FFFFFF\t0\t0\t0\n"
    "rtw0\t0000F30A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)
_ROUTE_V6 = (
    "fd460000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
)


def test_parse_routes_reads_both_families() -> None:
    from core.engine.netwatch import parse_routes

    routes = {(str(n), i) for n, i in parse_routes(_ROUTE_V4, _ROUTE_V6)}
    assert ("10.243.0.0/25", "eth0") in routes
    assert ("10.243.0.0/24", "rtw0") in routes
    assert ("0.0.0.0/0", "eth0") in routes
    assert ("fd46::/64", "eth0") in routes
    assert parse_routes("header\ngarbage line\n", "zz 40 broken") == []


def test_a_more_specific_lan_route_inside_a_tunnel_range_is_found() -> None:
    import ipaddress

    from core.engine.netwatch import parse_routes, shadowing

    routes = parse_routes(_ROUTE_V4, _ROUTE_V6)
    ranges = [ipaddress.ip_network("10.243.0.0/24"), ipaddress.ip_network("fd46::/48")]
    assert shadowing(routes, ranges, {"rtw0"}) == ["10.243.0.0/25 via eth0", "fd46::/64 via eth0"]
    # the tunnel's own route, the default route and a wider route are not shadowing
    assert shadowing(routes, [ipaddress.ip_network("192.0.2.0/25")], {"rtw0"}) == []
    assert shadowing(routes, [ipaddress.ip_network("10.243.0.0/25")], {"rtw0"}) == []
