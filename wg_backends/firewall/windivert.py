"""Windows: the WinDivert filters of an enforced tunnel (rendering only, for now).

Choice (issue #15, researched): **WinDivert 2.2** (signed kernel driver, user-mode
library, driven from Rust through the maintained ``windivert`` crate the way mitmproxy's
Windows redirector does it) rather than our own WFP callout driver, which would need
kernel code and an EV-signed driver of ours. WFP filters alone (Windows Firewall /
``New-NetFirewallRule``) can block but cannot redirect a connection to a local listener,
and a block there always beats an allow, so "only the decider may use the tunnel" cannot
be said with them.

Three filters, in WinDivert's filter language, describe the same verbs as nftables/pf:

- ``redirect`` (NETWORK layer): outbound TCP to the ranges that the decider did not
  originate; the redirector rewrites it to the decider's listener and keeps the original
  destination in its NAT table (the decider asks for it, as with ``SO_ORIGINAL_DST``);
- ``decider`` (SOCKET layer, sniff): the decider's process id's ``connect`` events, so
  the redirector knows which local ports are the decider's (they are never redirected);
- ``killswitch`` (NETWORK layer, drop): anything else leaving through the tunnel's
  interface index, and UDP/ICMP to the ranges.

The Windows redirector process that loads these filters is not built yet (see the
issue's report); the helper refuses ``enforce`` on Windows until it is.
"""

from __future__ import annotations

import ipaddress

from wg_backends.firewall.model import Enforcement

__all__ = ["render_filters"]


def _range_terms(enf: Enforcement) -> str:
    terms = []
    for cidr in enf.ranges:
        net = ipaddress.ip_network(cidr)
        field = "ip" if net.version == 4 else "ipv6"
        terms.append(
            f"({field}.DstAddr >= {net.network_address} and "
            f"{field}.DstAddr <= {net.broadcast_address})"
        )
    return " or ".join(terms) or "false"


def render_filters(enf: Enforcement, *, decider_pid: int, tunnel_ifidx: int) -> dict[str, str]:
    """The three WinDivert filter strings (keys ``redirect``, ``decider``, ``killswitch``)."""
    ranges = _range_terms(enf)
    dns = " or ".join(
        f"{'ip' if ':' not in a else 'ipv6'}.DstAddr == {a}" for a in (*enf.dns4, *enf.dns6)
    )
    keep_dns = f" and not (({dns}) and (tcp.DstPort == 53 or udp.DstPort == 53))" if dns else ""
    return {
        "redirect": f"outbound and not loopback and tcp and ({ranges})",
        "decider": f"processId == {decider_pid} and event == CONNECT",
        "killswitch": (
            f"outbound and not loopback and (ifIdx == {tunnel_ifidx} or ({ranges})) "
            f"and not tcp{keep_dns}"
        ),
    }
