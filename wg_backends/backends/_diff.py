"""What ``update`` needs on every platform: the diff of two tunnel states.

Pure helpers shared by the backends: allowed-IP networks from ``wg`` output, the IP
families with a ``/0``, a stable route order, and the ``wg setconf`` text of a config we
rendered ourselves (for roll-back).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Sequence

from wg_backends.spec import IPNetwork

__all__ = [
    "allowed_nets",
    "config_lines",
    "dns_line",
    "full_families",
    "ip_proto",
    "route_order",
    "strip_config",
]


def allowed_nets(raws: Sequence[str]) -> set[IPNetwork]:
    """Networks from ``wg`` allowed-IPs strings (``(none)`` and junk skipped)."""
    out: set[IPNetwork] = set()
    for raw in raws:
        with contextlib.suppress(ValueError):
            out.add(ipaddress.ip_network(raw, strict=False))
    return out


def ip_proto(net: IPNetwork | ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> str:
    """``-4`` or ``-6``: the ``ip`` option of ``net``'s family."""
    return "-6" if net.version == 6 else "-4"


def full_families(nets: set[IPNetwork]) -> frozenset[int]:
    """The IP versions with a ``/0`` (a full tunnel of that family)."""
    return frozenset(n.version for n in nets if n.prefixlen == 0)


def config_lines(config: str, *keys: str) -> tuple[str, ...]:
    """The lines of a config we rendered whose key is one of ``keys``, in order."""
    return tuple(ln for ln in config.splitlines() if ln.split(" = ", 1)[0] in keys)


def dns_line(config: str) -> str | None:
    """The ``DNS =`` line of a wg-quick config we rendered (``None`` without one)."""
    return next((ln for ln in config.splitlines() if ln.startswith("DNS = ")), None)


def strip_config(config: str, listen_port: int | None, fwmark: int | None) -> str:
    """A config we rendered, reduced to what ``wg setconf`` reads (like ``wg-quick strip``).

    Only our own renderer's output is fed here, so dropping wg-quick's keys by line is
    exact; the live listen port and fwmark are added for the same reason as in
    :func:`~wg_backends.render.render_wg_set`.
    """
    lines: list[str] = []
    for line in config.splitlines():
        if line.split(" = ", 1)[0] in {"Address", "DNS", "MTU"}:
            continue
        lines.append(line)
        if line == "[Interface]":
            if listen_port is not None:
                lines.append(f"ListenPort = {int(listen_port)}")
            if fwmark is not None:
                lines.append(f"FwMark = {int(fwmark)}")
    return "\n".join(lines) + "\n"


def route_order(net: IPNetwork) -> tuple[int, int, int]:
    """Sort key: IPv4 first, most specific first, then by address (stable commands)."""
    return (net.version, -net.prefixlen, int(net.network_address))
