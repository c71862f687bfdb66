"""Noticing that the machine's network changed (new Wi-Fi, cable, VPN, DHCP renewal).

A *fingerprint* is the set of (interface, address) pairs plus the default routes. The
engine's live session (``core.engine.live``) polls it every health tick (psutil plus two
small /proc reads, ~0.4 ms) and re-establishes the session when it differs from the last
one: the endpoint is resolved again and the tunnel re-applied, without user action. The
tunnel's own interfaces are ignored, or bringing the tunnel up would look like a network
change.

Reading is injected (``NetworkWatch(read=...)``) so tests drive changes by hand. Errors:
none escape; an unreadable source counts as empty (logged), which is itself a change
only if it persists into the next tick.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "Fingerprint",
    "NetworkWatch",
    "fingerprint",
    "parse_default_routes",
    "parse_routes",
    "read_routes",
    "read_system",
    "shadowing",
]

#: A route: its destination network and the interface it leaves by.
Route = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]

_log = logging.getLogger(__name__)

#: ("addr", interface, address) and ("route", interface, gateway) entries.
Fingerprint = frozenset[tuple[str, str, str]]


def parse_default_routes(route_v4: str, route_v6: str = "") -> list[tuple[str, str]]:
    """Default routes as (interface, gateway) from /proc/net/route and /proc/net/ipv6_route.

    Pure; malformed lines are skipped.
    """
    out: list[tuple[str, str]] = []
    for line in route_v4.splitlines()[1:]:
        cols = line.split()
        # Iface Destination Gateway Flags RefCnt Use Metric Mask ...
        if len(cols) >= 8 and cols[1] == "00000000" and cols[7] == "00000000":
            out.append((cols[0], cols[2]))
    for line in route_v6.splitlines():
        cols = line.split()
        # dest prefixlen src srcprefixlen nexthop metric refcnt use flags iface
        if len(cols) >= 10 and cols[0] == "0" * 32 and cols[1] == "00" and cols[9] != "lo":
            out.append((cols[9], cols[4]))
    return out


def parse_routes(route_v4: str, route_v6: str = "") -> list[Route]:
    """Every route of the main table as (network, interface), from /proc/net/route and
    /proc/net/ipv6_route (destinations are little-endian hex on IPv4). Pure; malformed
    lines are skipped."""
    out: list[Route] = []
    for line in route_v4.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        try:
            dest = socket.inet_ntoa(struct.pack("<I", int(cols[1], 16)))
            mask = socket.inet_ntoa(struct.pack("<I", int(cols[7], 16)))
            out.append((ipaddress.IPv4Network(f"{dest}/{mask}", strict=False), cols[0]))
        except (ValueError, struct.error, OSError):
            continue
    for line in route_v6.splitlines():
        cols = line.split()
        if len(cols) < 10:
            continue
        try:
            dest6 = ipaddress.IPv6Address(bytes.fromhex(cols[0]))
            prefix = int(cols[1], 16)
            out.append((ipaddress.IPv6Network(f"{dest6}/{prefix}", strict=False), cols[9]))
        except ValueError:
            continue
    return out


def shadowing(
    routes: Iterable[Route],
    ranges: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
    tunnel_interfaces: Collection[str],
) -> list[str]:
    """Routes by another interface more specific than (inside) a range the tunnel
    carries — what a rogue DHCP server's classless routes (option 121) or a rogue router
    advertisement add — as "network via interface" lines, sorted. Such routes are
    overridden (the decider's sockets are bound to the tunnel, and the helper rejects
    everything else to the ranges) and said so; loopback is ignored. Pure."""
    found = set()
    for network, name in routes:
        if name == "lo" or name in tunnel_interfaces:
            continue
        for carried in ranges:
            if (
                network.version == carried.version
                and network.prefixlen > carried.prefixlen
                and network.subnet_of(carried)  # type: ignore[arg-type]
            ):
                found.add(f"{network} via {name}")
    return sorted(found)


def read_routes() -> list[Route]:
    """This machine's main-table routes (empty where /proc has none). Never raises."""
    texts = []
    for path in ("/proc/net/route", "/proc/net/ipv6_route"):
        try:
            texts.append(Path(path).read_text())
        except OSError:
            texts.append("")
    return parse_routes(*texts)


def fingerprint(
    addresses: Mapping[str, Iterable[str]],
    routes: Iterable[tuple[str, str]],
    *,
    ignore: Collection[str] = (),
) -> Fingerprint:
    """The fingerprint of these addresses and default routes, without loopback and the
    interfaces in ``ignore``. Pure."""
    skip = {"lo", *ignore}
    entries = {
        ("addr", name, addr)
        for name, addrs in addresses.items()
        if name not in skip
        for addr in addrs
    }
    entries |= {("route", name, gw) for name, gw in routes if name not in skip}
    return frozenset(entries)


def read_system(ignore: Collection[str] = ()) -> Fingerprint:
    """This machine's fingerprint (psutil addresses + /proc routes). Never raises."""
    import psutil

    try:
        addrs = {
            name: [a.address for a in entries if a.address]
            for name, entries in psutil.net_if_addrs().items()
        }
    except OSError as exc:
        _log.warning("cannot list addresses: %s", exc)
        addrs = {}
    texts = []
    for path in ("/proc/net/route", "/proc/net/ipv6_route"):
        try:
            texts.append(Path(path).read_text())
        except OSError:
            texts.append("")  # no IPv6, or not Linux
    return fingerprint(addrs, parse_default_routes(*texts), ignore=ignore)


class NetworkWatch:
    """Compares the fingerprint with the previous one. Call from one thread (the loop)."""

    def __init__(
        self,
        read: Callable[[Collection[str]], Fingerprint] = read_system,
        routes: Callable[[], list[Route]] = read_routes,
    ) -> None:
        self._read = read
        self._routes = routes
        self._last: Fingerprint | None = None

    def shadowed(
        self,
        ranges: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
        tunnel_interfaces: Collection[str],
    ) -> list[str]:
        """``shadowing`` over the machine's routes now (see there)."""
        return shadowing(self._routes(), ranges, tunnel_interfaces)

    def prime(self, ignore: Collection[str] = ()) -> None:
        """Take the current fingerprint as the baseline (no change reported)."""
        self._last = self._read(ignore)

    def changed(self, ignore: Collection[str] = ()) -> bool:
        """True when the fingerprint differs from the last one read; the first call after
        construction only primes and returns False."""
        now = self._read(ignore)
        last, self._last = self._last, now
        if last is None or now == last:
            return False
        _log.info("network changed: +%s -%s", sorted(now - last), sorted(last - now))
        return True
