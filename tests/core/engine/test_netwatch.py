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
