"""The gateway's per-device filter: the nftables text the controller installs on a gateway.

The gateway is the coarse outer fence. A WireGuard peer's allowed IPs only say which
*source* address a device may use; without a filter a device reaches every network the
gateway can route to. This module renders one nftables table per gateway interface that
forwards a packet arriving on the tunnel interface only when its (source, destination)
pair is granted, and drops everything else from the tunnel (forwarded or addressed to the
gateway itself). Traffic arriving on other interfaces (the resources' replies) is not
touched. Keying on the source address is sound because WireGuard authenticates it: a
peer's packets are accepted only from its allowed IPs (its own tunnel address), so one
device cannot send as another.

What the fence knows is the controller's view, per device address: the networks
(resource ``cidrs`` and IP-literal ``hosts``) of every resource the device's user may
reach under the current rules, with the posture facts the device last reported. It does
not know apps, ports, protocols or host names that are not IP literals: which app may
open which connection, and to which port, is decided by the client (its decider). The
destinations every device may always reach are the gateways' own tunnel addresses (the
client's liveness probe) and the tunnel's DNS servers.

Layout (``render_filter``), replaced as a whole in one ``nft -f -`` transaction, so a
reader never sees a half-applied state and re-applying the same text is a no-op::

    table inet rtc_gw_<if>            (non-alphanumerics of <if> become "_")
      set grants4/grants6             device . network pairs (concatenated, intervals)
      set always4/always6             gateways' tunnel addresses, tunnel DNS servers
      chain forward / chain input     iifname != <if> accept; granted/always accept; drop

Every value is parsed with ``ipaddress`` before it is written, so no string from an
administrator or a database reaches the nftables parser as text: a bad value raises
``FilterError`` and nothing is applied.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["HEADER", "FilterError", "command_interface", "render_filter", "table_name"]

_IFNAME = re.compile(r"[A-Za-z0-9_.+-]{1,15}")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


#: The script's first line names the interface (a comment to ``nft``; see ``command_interface``).
HEADER = "# rustronaut gateway filter for "


def command_interface(argv: Sequence[str], input: str | None = None) -> str | None:
    """The gateway interface a command of ``Gateway`` is for, so a runner can pick the
    host or namespace: ``argv[2]`` of ``wg set|show <if> ...``, and for ``nft -f -`` the
    name in the script's first line. None when neither says."""
    if input is not None and input.startswith(HEADER):
        return input[len(HEADER) :].split("\n", 1)[0]
    if len(argv) > 2 and argv[1] in ("set", "show"):
        return argv[2]
    return None


class FilterError(ValueError):
    """A grant, address or interface name is not valid; nothing was applied."""


def table_name(interface: str) -> str:
    """The nftables table for ``interface`` (``rtc_gw_`` + the name, ``[^A-Za-z0-9]`` → ``_``)."""
    _check_interface(interface)
    return "rtc_gw_" + re.sub(r"[^A-Za-z0-9]", "_", interface)


def _check_interface(interface: str) -> None:
    if not _IFNAME.fullmatch(interface) or interface.startswith("-"):
        raise FilterError(f"interface {interface!r} is not a valid interface name")


def _host(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A device's tunnel address: an IP or a single-host interface (``/32``, ``/128``)."""
    try:
        iface = ipaddress.ip_interface(value)
    except ValueError:
        raise FilterError(f"device address {value!r} is not an IP address") from None
    if iface.network.num_addresses != 1:
        raise FilterError(f"device address {value!r} is not a single host")
    return iface.ip


def _network(value: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise FilterError(f"network {value!r} is not valid: {exc}") from None


def _collapsed(nets: Iterable[IPNetwork], version: int) -> list[IPNetwork]:
    # Interval sets refuse overlapping elements; collapsing also keeps the set small.
    same = [n for n in nets if n.version == version]
    return sorted(ipaddress.collapse_addresses(same))  # type: ignore[type-var]


def _addr(net: IPNetwork) -> str:
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def _set(name: str, type_: str, items: list[str]) -> str:
    elements = f" elements = {{ {', '.join(items)} }};" if items else ""
    return f"  set {name} {{ type {type_}; flags interval;{elements} }}"


def render_filter(
    interface: str, grants: Mapping[str, Iterable[str]], always: Iterable[str] = ()
) -> str:
    """The nftables script that makes the gateway on ``interface`` forward exactly the grants.

    ``grants`` maps a device's tunnel address (``10.77.0.2`` or ``10.77.0.2/32``) to the
    networks it may reach (strict CIDRs or IP literals); a network of the other address
    family than the device's is ignored (it cannot be reached from that address).
    ``always`` lists destinations open to every device. The script deletes and re-creates
    the table in one transaction (atomic, idempotent). Pure; raises ``FilterError``
    naming the first bad value.
    """
    _check_interface(interface)
    table = table_name(interface)
    pairs: dict[int, list[str]] = {4: [], 6: []}
    for device in sorted(grants, key=lambda d: (_host(d).version, _host(d))):
        src = _host(device)
        nets = [_network(n) for n in grants[device]]
        for net in _collapsed(nets, src.version):
            pairs[src.version].append(f"{src} . {_addr(net)}")
    always_nets = [_network(a) for a in always]
    open_to_all = {v: [_addr(n) for n in _collapsed(always_nets, v)] for v in (4, 6)}
    sets = "\n".join(
        [
            _set("grants4", "ipv4_addr . ipv4_addr", pairs[4]),
            _set("grants6", "ipv6_addr . ipv6_addr", pairs[6]),
            _set("always4", "ipv4_addr", open_to_all[4]),
            _set("always6", "ipv6_addr", open_to_all[6]),
        ]
    )
    # The table is declared first so "delete" never fails on a gateway that has none yet.
    chains = "\n".join(
        f"  chain {hook} {{\n"
        f"    type filter hook {hook} priority filter - 10; policy accept;\n"
        f'    iifname != "{interface}" accept\n'
        "    ip saddr . ip daddr @grants4 accept\n"
        "    ip6 saddr . ip6 daddr @grants6 accept\n"
        "    ip daddr @always4 accept\n"
        "    ip6 daddr @always6 accept\n"
        "    counter drop\n"
        "  }"
        for hook in ("forward", "input")
    )
    return (
        f"{HEADER}{interface}\n"
        f"table inet {table}\n"
        f"delete table inet {table}\n"
        f"table inet {table} {{\n{sets}\n{chains}\n}}\n"
    )
