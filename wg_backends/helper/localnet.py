"""What the helper must keep out of a tunnel, read by the helper itself: the host's LAN
subnets and the controller's addresses.

The LAN is the set of *connected* routes of the main routing table (no gateway, prefix
longer than 0), read from ``/proc/net/route`` and ``/proc/net/ipv6_route`` of the
helper's own network namespace — never from a caller. Routes through loopback, IPv6
link-local and multicast, and routes through the helper's own tunnels are not the LAN.
On systems without ``/proc/net`` (macOS, Windows) the list is empty. The controller's
addresses come from the managed ``controller_url``: an IP literal as is, a host name
resolved with the system resolver.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Collection, Iterable
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["connected_networks", "controller_addresses", "parse_ipv6_route", "parse_route"]

_log = logging.getLogger("rustronaut.helper")
_RTF_UP, _RTF_GATEWAY = 0x1, 0x2
_NOT_LAN_V6 = (ipaddress.IPv6Network("fe80::/10"), ipaddress.IPv6Network("ff00::/8"))


def parse_route(text: str, exclude: Collection[str] = ()) -> list[str]:
    """Connected IPv4 networks in ``/proc/net/route`` text (little-endian hex fields)."""
    out: list[str] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        dev, dest, _gw, flags, mask = fields[0], fields[1], fields[2], fields[3], fields[7]
        try:
            flag = int(flags, 16)
            net = ipaddress.IPv4Network(
                (
                    ipaddress.IPv4Address(bytes.fromhex(dest)[::-1]),
                    bin(int.from_bytes(bytes.fromhex(mask), "little")).count("1"),
                ),
                strict=False,
            )
        except ValueError:
            continue
        if dev == "lo" or dev in exclude or not flag & _RTF_UP or flag & _RTF_GATEWAY:
            continue
        if net.prefixlen:
            out.append(str(net))
    return out


def parse_ipv6_route(text: str, exclude: Collection[str] = ()) -> list[str]:
    """Connected IPv6 networks in ``/proc/net/ipv6_route`` text."""
    out: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        dest, plen, flags, dev = fields[0], fields[1], fields[8], fields[9]
        try:
            net = ipaddress.IPv6Network(
                (ipaddress.IPv6Address(bytes.fromhex(dest)), int(plen, 16)), strict=False
            )
            flag = int(flags, 16)
        except ValueError:
            continue
        if dev == "lo" or dev in exclude or not flag & _RTF_UP or flag & _RTF_GATEWAY:
            continue
        if net.prefixlen and not any(net.subnet_of(n) for n in _NOT_LAN_V6):
            out.append(str(net))
    return out


def connected_networks(
    exclude: Collection[str] = (), proc_net: Path = Path("/proc/net")
) -> tuple[str, ...]:
    """The host's LAN subnets now (without routes through ``exclude`` devices). Blocking;
    never raises (an unreadable table counts as empty, logged)."""
    out: list[str] = []
    for name, parse in (("route", parse_route), ("ipv6_route", parse_ipv6_route)):
        try:
            text = (proc_net / name).read_text()
        except FileNotFoundError:
            continue
        except OSError as exc:
            _log.warning("cannot read %s: %s", proc_net / name, exc)
            continue
        out += parse(text, exclude)
    return tuple(dict.fromkeys(out))


def controller_addresses(url: str | None) -> tuple[str, ...]:
    """The addresses of the managed controller URL's host. Blocking (DNS); never raises."""
    if not url:
        return ()
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    if not host:
        _log.warning("managed controller_url %r has no host", url)
        return ()
    try:
        return (str(ipaddress.ip_address(host)),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        _log.warning("cannot resolve the controller %s: %s", host, exc)
        return ()
    return tuple(dict.fromkeys(_addresses(info[4][0] for info in infos)))


def _addresses(raw: Iterable[object]) -> Iterable[str]:
    for value in raw:
        try:
            yield str(ipaddress.ip_address(str(value).split("%", 1)[0]))
        except ValueError:
            continue
