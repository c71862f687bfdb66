"""Linux: one nftables table per enforced tunnel, applied and replaced atomically.

``table inet rustronaut_t_<iface>`` (see :func:`~wg_backends.firewall.model.table_name`)
holds two base chains:

- ``divert`` (nat, hook output, priority -100): TCP from the owner uid (``meta skuid``)
  to the ranges, without the decider's mark, is redirected to the decider's transparent
  listener (``redirect to :<port>``: 127.0.0.1 for IPv4, ::1 for IPv6; the original
  destination stays readable with ``SO_ORIGINAL_DST``). Loopback, TCP DNS to the
  tunnel's DNS servers and TCP to the relays' exact address+port pairs are left alone.
  Without a redirect port (transparent mode off) there is no ``divert`` chain: the kill
  switch only.
- ``guard`` (filter, hook output, priority 0): the decider's marked sockets pass, and so
  do loopback destinations (a redirected packet keeps the tunnel as its output interface
  through the output chains, so it must pass on its new destination); DNS
  (udp/tcp 53) to the tunnel's DNS servers passes (the OS resolver's per-link look-ups);
  literal endpoints pass over UDP and the relays' resolved address+port pairs over TCP
  (the helper's relay connection of a ``/0`` tunnel; its socket carries wg-quick's fwmark,
  not the decider's); with IPv6 ranges, the kernel's neighbour discovery (hop limit 255)
  out of any other interface passes (else a ``::/0`` would cut the LAN's neighbour
  look-ups, and an IPv6 gateway or relay with them); anything else to the ranges is
  rejected (other accounts, UDP, ICMP, traffic a rogue more-specific LAN route would
  carry) and so is anything else leaving through the tunnel interface (the kill switch).
  Named counters ``rejected_ranges`` and ``rejected_tunnel`` count the rejects,
  ``redirected`` the redirected connections.

Every change is one ``nft -f`` transaction: ``add table`` + ``delete table`` (so a
missing table is no error) + the new table, and — when enforcing — the deletion of the
always-on block table; either all of it applies or nothing does. The ruleset goes through
a 0600 file in the helper's private directory (the injected runner has no stdin).

The always-on block table (``rustronaut_block``) rejects the last ranges for everyone
while the tunnel is down, except the same exact endpoint (UDP) and relay (TCP) pairs the
guard lets through: the tunnel must be able to come back over either path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from wg_backends.errors import CommandError
from wg_backends.firewall.model import (
    Enforcement,
    block_table_name,
    interface_of_table,
    literal_endpoints,
    split_ranges,
    table_name,
)
from wg_backends.runner import CommandRunner

__all__ = ["NftFirewall", "render_block", "render_enforcement", "render_remove"]

_log = logging.getLogger(__name__)
NAT_PRIORITY = -100
FILTER_PRIORITY = 0


def _set(items: Sequence[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _fam(host: str) -> str:
    return "ip6" if ":" in host else "ip"


def _passes(endpoints: Iterable[tuple[str, int]], relays: Iterable[tuple[str, int]]) -> list[str]:
    """The exact pairs that pass: gateway endpoints over UDP, relays over TCP."""
    rules = [f"{_fam(h)} daddr {h} udp dport {p} accept" for h, p in endpoints]
    rules += [f"{_fam(h)} daddr {h} tcp dport {p} accept" for h, p in relays]
    return rules


#: IPv6 neighbour discovery: the kernel's NS/NA/RS (hop limit 255, which no router
#: forwards on). Without it an IPv6 ``/0`` reject cuts the LAN's neighbour look-ups, and
#: with them the way to an IPv6 gateway endpoint or relay.
_NDP = "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255"


def _drop(table: str) -> str:
    # "add" first: deleting a table that is not there would fail the whole transaction.
    return f"add table inet {table}\ndelete table inet {table}\n"


def render_remove(interface: str) -> str:
    """The transaction that removes ``interface``'s table (no error if absent)."""
    return _drop(table_name(interface))


def render_enforcement(enf: Enforcement, *, drop_block: bool = True) -> str:
    """The full transaction that (re)places ``enf``'s table; exact text is tested."""
    table = table_name(enf.interface)
    mark = f"{enf.mark:#x}"
    nat = [
        f"meta mark {mark} return",
        "ip daddr 127.0.0.0/8 return",
        "ip6 daddr ::1 return",
    ]
    # A redirected packet still carries the output interface its first route chose (the
    # tunnel) through every output chain: its loopback destination is what lets it pass.
    guard = [
        f"meta mark {mark} accept",
        'oifname "lo" accept',
        "ip daddr 127.0.0.0/8 accept",
        "ip6 daddr ::1 accept",
    ]
    for fam, dns in (("ip", enf.dns4), ("ip6", enf.dns6)):
        if dns:
            nat.append(f"{fam} daddr {_set(dns)} tcp dport 53 return")
            guard.append(f"{fam} daddr {_set(dns)} meta l4proto {{ tcp, udp }} th dport 53 accept")
    # The helper's own relay connection is never the decider's to judge: not redirected
    # even when the owner is root (the helper's uid).
    nat += [f"{_fam(h)} daddr {h} tcp dport {p} return" for h, p in enf.relay_endpoints]
    guard += _passes(enf.endpoints, enf.relay_endpoints)
    if enf.ranges6:  # never into the tunnel (a WireGuard link has no neighbours)
        guard.append(f'oifname != "{enf.interface}" {_NDP} accept')
    for fam, ranges in (("ip", enf.ranges4), ("ip6", enf.ranges6)):
        if ranges and enf.redirect_port is not None:
            nat.append(
                f"meta skuid {enf.owner_uid} {fam} daddr {_set(ranges)} meta l4proto tcp "
                f'counter name "redirected" redirect to :{enf.redirect_port}'
            )
        if ranges:
            guard.append(f'{fam} daddr {_set(ranges)} counter name "rejected_ranges" reject')
    guard.append(f'oifname "{enf.interface}" counter name "rejected_tunnel" reject')
    divert = (
        [
            "\tchain divert {",
            f"\t\ttype nat hook output priority {NAT_PRIORITY}; policy accept;",
            *(f"\t\t{r}" for r in nat),
            "\t}",
        ]
        if enf.redirect_port is not None
        else []
    )
    lines = [
        *(_drop(block_table_name()).splitlines() if drop_block else ()),
        *_drop(table).splitlines(),
        f"table inet {table} {{",
        "\tcounter redirected { }",
        "\tcounter rejected_ranges { }",
        "\tcounter rejected_tunnel { }",
        *divert,
        "\tchain guard {",
        f"\t\ttype filter hook output priority {FILTER_PRIORITY}; policy accept;",
        *(f"\t\t{r}" for r in guard),
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_block(
    ranges: Iterable[str], *, endpoints: Iterable[str] = (), relay_endpoints: Iterable[str] = ()
) -> str:
    """The always-on block table: the last ranges rejected for everyone, nothing leaks but
    the exact gateway ``endpoints`` (UDP) and ``relay_endpoints`` (TCP), ``host:port``
    literals as the record keeps them (names are skipped).

    Raises :class:`~wg_backends.errors.SpecError`."""
    r4, r6 = split_ranges(ranges)
    table = block_table_name()
    rules = ['oifname "lo" accept']
    rules += _passes(
        literal_endpoints(endpoints), literal_endpoints(relay_endpoints, "relay_endpoints")
    )
    if r6:
        rules.append(f"{_NDP} accept")
    for fam, nets in (("ip", r4), ("ip6", r6)):
        if nets:
            rules.append(f'{fam} daddr {_set(nets)} counter name "blocked" reject')
    lines = [
        *_drop(table).splitlines(),
        f"table inet {table} {{",
        "\tcounter blocked { }",
        "\tchain guard {",
        f"\t\ttype filter hook output priority {FILTER_PRIORITY}; policy accept;",
        *(f"\t\t{r}" for r in rules),
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


class NftFirewall:
    """Applies the rules with ``nft`` through the injected runner. Blocking; the helper
    calls it from worker threads (one request per interface at a time).

    ``workdir`` is where the transaction file is written (the helper's private state
    directory; the system temporary directory if ``None``). Raises
    :class:`~wg_backends.errors.CommandError` when ``nft`` refuses (nothing applied).
    """

    name = "nftables"

    def __init__(self, runner: CommandRunner, *, workdir: Path | None = None) -> None:
        self._run = runner
        self._workdir = workdir

    def _apply(self, text: str) -> None:
        fd, path = tempfile.mkstemp(prefix=".nft.", suffix=".rules", dir=self._workdir)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            self._run(["nft", "-f", path], timeout=20)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def apply(self, enf: Enforcement) -> None:
        """Install or atomically replace ``enf``'s table, dropping the block table."""
        self._apply(render_enforcement(enf))

    def remove(self, interface: str) -> None:
        """Remove ``interface``'s table. Idempotent."""
        self._apply(render_remove(interface))

    def block(
        self,
        ranges: Sequence[str],
        *,
        endpoints: Sequence[str] = (),
        relay_endpoints: Sequence[str] = (),
    ) -> None:
        """Install (replace) the always-on block table for ``ranges``, letting the exact
        gateway endpoints (UDP) and relay endpoints (TCP) through."""
        if ranges:
            self._apply(render_block(ranges, endpoints=endpoints, relay_endpoints=relay_endpoints))

    def unblock(self) -> None:
        """Remove the always-on block table. Idempotent."""
        self._apply(_drop(block_table_name()))

    def tables(self) -> list[str]:
        """Names of the ``inet`` tables that are ours (``rustronaut_*``)."""
        res = self._run(["nft", "list", "tables", "inet"], check=False, timeout=10)
        if res.returncode != 0:
            raise CommandError(res.argv, res.returncode, res.stderr)
        names = []
        for line in res.stdout.splitlines():
            parts = line.split()
            if (
                len(parts) == 3
                and parts[:2] == ["table", "inet"]
                and parts[2].startswith("rustronaut_")
            ):
                names.append(parts[2])
        return names

    def reconcile(self, live: Iterable[str], *, keep_block: bool) -> list[str]:
        """Delete every table of ours not backed by a ``live`` interface (and the block
        table unless ``keep_block``). Returns the deleted names. Never raises (logged)."""
        keep = {table_name(i) for i in live}
        if keep_block:
            keep.add(block_table_name())
        try:
            stale = [t for t in self.tables() if t not in keep]
        except CommandError as exc:
            _log.warning("cannot list nftables tables: %s", exc)  # e.g. no nft: none of ours
            return []
        for t in stale:
            if t != block_table_name() and interface_of_table(t) is None:
                _log.warning("deleting unknown table %s", t)
            try:
                self._apply(_drop(t))
            except CommandError as exc:
                _log.error("cannot delete stale table %s: %s", t, exc)
        return stale

    def counters(self, interface: str) -> dict[str, int]:
        """Packet counts of ``interface``'s named counters (empty if no table)."""
        return self._counters(table_name(interface))

    def block_counters(self) -> dict[str, int]:
        """Packet counts of the block table's counters (empty if none)."""
        return self._counters(block_table_name())

    def _counters(self, table: str) -> dict[str, int]:
        res = self._run(["nft", "-j", "list", "counters", "table", "inet", table], check=False)
        if res.returncode != 0:
            return {}
        out: dict[str, int] = {}
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            for item in json.loads(res.stdout).get("nftables", []):
                c = item.get("counter") if isinstance(item, dict) else None
                if isinstance(c, dict) and isinstance(c.get("packets"), int):
                    out[str(c.get("name"))] = c["packets"]
        return out
