"""The typed model of one tunnel's enforcement, shared by every OS renderer.

An :class:`Enforcement` is built by the helper from its *own* record of the spec it
brought up (AllowedIPs, DNS servers, endpoints, the relays' resolved addresses) plus the
owner uid it read from the socket; nothing in it comes from the caller except the redirect
port, which is checked.
Every address is re-serialised by :mod:`ipaddress` before it reaches a rule text, so a
rule can never carry a character the renderer did not put there.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from wg_backends.errors import SpecError
from wg_backends.spec import TunnelSpec, parse_endpoint, validate_interface

__all__ = [
    "MARK_BASE",
    "Enforcement",
    "block_table_name",
    "interface_of_table",
    "literal_endpoints",
    "mark_for",
    "split_ranges",
    "table_name",
]

#: The high half of every mark the helper hands out ("RT" in ASCII); the low half is a
#: hash of the interface name, so a tunnel keeps its mark across helper restarts.
MARK_BASE: Final = 0x5254_0000
TABLE_PREFIX: Final = "rustronaut_t_"
BLOCK_TABLE: Final = "rustronaut_block"
# nft identifiers allow [A-Za-z0-9_./]; interface names also allow "+" and "-". The escape
# is injective ("_" doubles), so two interfaces never share a table and the name parses
# back for the start-up reconcile.
_ESCAPE: Final = {"_": "__", "-": "_d", "+": "_p", ".": "_o"}
_UNESCAPE: Final = {v[1]: k for k, v in _ESCAPE.items()}
#: Relay (address, TCP port) pairs one enforcement may open: 8 relays (the contract's
#: maximum) with up to 8 addresses each. More is a bug or an attack, never a config.
MAX_RELAY_ENDPOINTS: Final = 64


def mark_for(interface: str) -> int:
    """The fixed fwmark of ``interface``'s decider sockets (``0x5254xxxx``, never 0x5254_0000)."""
    low = zlib.crc32(interface.encode()) & 0xFFFF
    return MARK_BASE | (low or 1)


def table_name(interface: str) -> str:
    """The nftables table (family ``inet``) that enforces ``interface``."""
    validate_interface(interface)
    return TABLE_PREFIX + "".join(_ESCAPE.get(c, c) for c in interface)


def block_table_name() -> str:
    """The always-on block table (rejects the last ranges for everyone while disconnected)."""
    return BLOCK_TABLE


def interface_of_table(name: str) -> str | None:
    """Invert :func:`table_name`; ``None`` for a table that is not a tunnel's."""
    if not name.startswith(TABLE_PREFIX):
        return None
    out, it = [], iter(name[len(TABLE_PREFIX) :])
    for c in it:
        if c != "_":
            out.append(c)
            continue
        nxt = next(it, "")
        if nxt not in _UNESCAPE:
            return None
        out.append(_UNESCAPE[nxt])
    iface = "".join(out)
    try:
        validate_interface(iface)
    except SpecError:
        return None
    return iface


def split_ranges(cidrs: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Normalised, de-duplicated, sorted (IPv4, IPv6) networks. Raises :class:`SpecError`."""
    v4: set[ipaddress.IPv4Network] = set()
    v6: set[ipaddress.IPv6Network] = set()
    for raw in cidrs:
        try:
            net = ipaddress.ip_network(raw, strict=False)
        except (ValueError, TypeError):
            raise SpecError(f"range: {str(raw)[:60]!r} is not a network") from None
        if isinstance(net, ipaddress.IPv4Network):
            v4.add(net)
        else:
            v6.add(net)
    return (
        tuple(str(n) for n in ipaddress.collapse_addresses(sorted(v4))),
        tuple(str(n) for n in ipaddress.collapse_addresses(sorted(v6))),
    )


def _addresses(values: Iterable[str], field: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    v4: list[str] = []
    v6: list[str] = []
    for raw in values:
        try:
            addr = ipaddress.ip_address(raw)
        except (ValueError, TypeError):
            raise SpecError(f"{field}: {str(raw)[:60]!r} is not an IP address") from None
        (v4 if addr.version == 4 else v6).append(str(addr))
    return tuple(sorted(set(v4))), tuple(sorted(set(v6)))


def literal_endpoints(
    values: Iterable[str], field: str = "endpoint"
) -> tuple[tuple[str, int], ...]:
    """``host:port`` strings as sorted, de-duplicated (address, port) pairs; host names are
    skipped (a rule matches addresses, and resolving is the helper's job, done once).
    Raises :class:`SpecError` on a malformed value."""
    out: set[tuple[str, int]] = set()
    for raw in values:
        try:
            host, port = parse_endpoint(raw)
        except SpecError as exc:
            raise SpecError(f"{field}: {exc}") from None
        try:
            out.add((str(ipaddress.ip_address(host)), port))
        except ValueError:
            continue
    return tuple(sorted(out))


def _check_pairs(pairs: tuple[tuple[str, int], ...], field: str) -> None:
    """Refuse pairs that are not canonical literal addresses with a port 1-65535."""
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise SpecError(f"{field}: {str(pair)[:60]!r} is not an (address, port) pair")
        host, port = pair
        try:
            canonical = str(ipaddress.ip_address(host))
        except (ValueError, TypeError):
            raise SpecError(f"{field}: {str(host)[:60]!r} is not an IP address") from None
        if canonical != host:  # the text goes into a rule: only what ipaddress wrote
            raise SpecError(f"{field}: {host!r} is not normalised")
        if type(port) is not int or not 1 <= port <= 65535:
            raise SpecError(f"{field}: port {port!r} out of range")


@dataclass(frozen=True, slots=True)
class Enforcement:
    """What one enforced tunnel's rules say. Build with :meth:`for_spec`; immutable.

    - ``interface``: the tunnel interface; ``owner_uid``: the account whose TCP to the
      ranges is redirected (read from the socket by the helper);
    - ``redirect_port``: the transparent listener on 127.0.0.1 / ::1 (held open by the
      helper itself, handed to the decider); ``None``: the kill switch only (transparent
      mode off: no redirect, the owner's TCP to the ranges is rejected like the rest);
    - ``mark``: the fwmark of the decider's own sockets (never redirected, the only
      traffic allowed into the tunnel);
    - ``ranges4``/``ranges6``: the tunnel's AllowedIPs; ``dns4``/``dns6``: its DNS
      servers (port 53 to them stays open for the OS resolver's per-link look-ups);
    - ``endpoints``: literal endpoint (address, port) pairs, always allowed over UDP (a
      ``/0`` tunnel must still reach its gateway);
    - ``relay_endpoints``: the relays' resolved (address, TCP port) pairs from the signed
      spec, always allowed over TCP and never redirected (a ``/0`` tunnel's relay
      fallback must still reach its relays). Only these exact pairs: another port of a
      relay's address, or UDP to it, is rejected like the rest of the ranges.
    """

    interface: str
    owner_uid: int
    redirect_port: int | None
    mark: int
    ranges4: tuple[str, ...]
    ranges6: tuple[str, ...]
    dns4: tuple[str, ...] = ()
    dns6: tuple[str, ...] = ()
    endpoints: tuple[tuple[str, int], ...] = ()
    relay_endpoints: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        validate_interface(self.interface)
        if not isinstance(self.owner_uid, int) or not 0 <= self.owner_uid < 2**32:
            raise SpecError(f"owner_uid: {self.owner_uid!r} is not a uid")
        port = self.redirect_port
        if port is not None and (type(port) is not int or not 1 <= port <= 65535):
            raise SpecError(f"redirect_port: {port!r} must be 1-65535 or None")
        if self.mark & 0xFFFF_0000 != MARK_BASE:
            raise SpecError(f"mark: {self.mark:#x} is not a helper mark")
        if (self.ranges4, self.ranges6) != split_ranges((*self.ranges4, *self.ranges6)):
            raise SpecError("ranges: not normalised (build with Enforcement.for_spec)")
        if (self.dns4, self.dns6) != _addresses((*self.dns4, *self.dns6), "dns"):
            raise SpecError("dns: not normalised")
        _check_pairs(self.endpoints, "endpoints")
        _check_pairs(self.relay_endpoints, "relay_endpoints")
        if len(self.relay_endpoints) > MAX_RELAY_ENDPOINTS:
            raise SpecError(f"relay_endpoints: more than {MAX_RELAY_ENDPOINTS}")

    @property
    def ranges(self) -> tuple[str, ...]:
        """All ranges, IPv4 first."""
        return (*self.ranges4, *self.ranges6)

    @classmethod
    def build(
        cls,
        interface: str,
        *,
        owner_uid: int,
        redirect_port: int | None,
        allowed_ips: Iterable[str],
        dns: Iterable[str] = (),
        endpoints: Iterable[str] = (),
        relay_endpoints: Iterable[str] = (),
    ) -> Enforcement:
        """From recorded values (``endpoints`` and ``relay_endpoints`` as ``host:port``;
        names are skipped: they cannot be matched by address — the helper records the
        relays' resolved addresses). Raises :class:`SpecError`."""
        r4, r6 = split_ranges(allowed_ips)
        d4, d6 = _addresses(dns, "dns")
        return cls(
            interface=interface,
            owner_uid=owner_uid,
            redirect_port=redirect_port,
            mark=mark_for(interface),
            ranges4=r4,
            ranges6=r6,
            dns4=d4,
            dns6=d6,
            endpoints=literal_endpoints(endpoints),
            relay_endpoints=literal_endpoints(relay_endpoints, "relay_endpoints"),
        )

    @classmethod
    def for_spec(
        cls, spec: TunnelSpec, *, owner_uid: int, redirect_port: int | None
    ) -> Enforcement:
        """The enforcement of ``spec`` (its AllowedIPs, DNS servers, endpoints and the
        relays named by a literal address; the helper itself builds from its record, which
        holds the relays' resolved addresses)."""
        return cls.build(
            spec.interface,
            owner_uid=owner_uid,
            redirect_port=redirect_port,
            allowed_ips=[a for peer in spec.peers for a in peer.allowed_ips],
            dns=spec.dns,
            endpoints=[peer.endpoint for peer in spec.peers],
            relay_endpoints=[relay.endpoint for relay in spec.relay_list()],
        )
