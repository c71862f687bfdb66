"""Which addresses a connection may be dialled to: the check of name answers.

A policy that allows a *name* is only as good as the addresses the name resolves to: a
hostile or hijacked DNS answer (a rogue LAN resolver, a poisoned record, an AAAA record
pointing at the LAN's IPv6) would otherwise send an allowed app's traffic anywhere. So
the addresses a name resolved to (SOCKS5 and CONNECT host names, the resolver seam, a
transparent connection's reverse-looked-up name) must lie inside the matched resource's
networks (its ``cidrs`` and IP-literal ``hosts``) when it has any, else inside the
tunnel's ranges. Whatever the networks, addresses that are never a company resource are
dropped first: loopback, link-local, multicast, unspecified, broadcast, and IPv6
spellings that smuggle an IPv4 address (mapped, translated, compatible, 6to4, Teredo,
and NAT64 of such an address). An IP-literal destination is not an answer: the policy
decides it by its ``cidrs`` as it is.

Pure functions and a small per-bundle cache; no I/O. The reason texts name the name, the
address and why ("wiki.corp.example resolved to 192.168.1.66, outside Corp Wiki's
networks"): they become the decision's reason in Activity.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Network",
    "RangesSource",
    "ResourceScopes",
    "Scope",
    "drop_special",
    "special_reason",
    "within",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
RangesSource = Callable[[], Sequence[Network]]
"""``ranges() -> networks``: the tunnel's ranges now (the engine reads them from the
tunnel's allowed IPs); called on the proxy's loop thread, must not block."""

_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# IPv6 spellings of an IPv4 address: a resource is never reached through one, and each
# could carry 127.0.0.1 or a LAN address past a check made on the IPv6 form.
_V4_IN_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (ipaddress.IPv6Network("::ffff:0:0/96"), "an IPv4-mapped IPv6 address"),
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), "an IPv4-translated IPv6 address"),
    (ipaddress.IPv6Network("::/96"), "an IPv4-compatible IPv6 address"),
    (ipaddress.IPv6Network("2002::/16"), "a 6to4 address"),
    (ipaddress.IPv6Network("2001::/32"), "a Teredo address"),
)


def special_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` can never be a company resource's answer, or None when it may be."""
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address):
        if ip == _BROADCAST:
            return "the broadcast address"
        if ip in _THIS_NETWORK:
            return "a 'this network' address"
        return "a reserved address" if ip.is_reserved else None
    if ip.is_site_local:
        return "a site-local address"
    for net, what in _V4_IN_V6:
        if ip in net:
            return what
    if ip in _NAT64:
        inner = special_reason(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if inner is not None:
            return f"a NAT64 address of {inner}"
    return None


def drop_special(name: str, addresses: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    """``addresses`` without the special ones (see ``special_reason``), and the reason
    the first one dropped was dropped (None when none was). Addresses are canonical IP
    text (``normalize_host`` output); one that does not parse is dropped too."""
    kept: list[str] = []
    first: str | None = None
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            why: str | None = "not an IP address"
        else:
            why = special_reason(ip)
        if why is None:
            kept.append(text)
        elif first is None:
            first = f"{name} resolved to {text}, {why}"
    if first is None:
        return tuple(addresses), None
    return tuple(kept), first


def within(
    name: str, addresses: Sequence[str], networks: Sequence[Network], label: str
) -> tuple[tuple[str, ...], str | None]:
    """The ``addresses`` inside ``networks``, and why the first other one was dropped
    ("NAME resolved to ADDRESS, outside LABEL"; None when none was)."""
    kept: list[str] = []
    first: str | None = None
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            inside = False
        else:
            # A version mismatch is simply "not in": IPv4 never matches an IPv6 network.
            inside = any(ip.version == net.version and ip in net for net in networks)
        if inside:
            kept.append(text)
        elif first is None:
            first = f"{name} resolved to {text}, outside {label}"
    return tuple(kept), first


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a resource's answers must lie: its ``networks`` (empty: names only) and
    its ``name`` for the reason text."""

    name: str
    networks: tuple[Network, ...]

    @property
    def label(self) -> str:
        """ "Corp Wiki's networks"."""
        return f"{self.name}'s networks"


class ResourceScopes:
    """Resource id → ``Scope``, built from the decider's policy bundle and rebuilt only
    when the bundle object changes (one identity check per lookup otherwise).

    The bundle is read duck-typed (``bundle.resources``, each with ``id``, ``name``,
    ``cidrs`` and ``hosts``): a decider without a bundle has no scopes, and the caller
    then falls back to the tunnel's ranges.
    """

    __slots__ = ("_for", "_scopes")

    def __init__(self) -> None:
        self._for: object = None
        self._scopes: dict[str, Scope] = {}

    def get(self, bundle: object, resource_id: str | None) -> Scope | None:
        """The scope of ``resource_id`` in ``bundle`` (None: unknown resource)."""
        if bundle is None or resource_id is None:
            return None
        if bundle is not self._for:
            self._scopes = _scopes(getattr(bundle, "resources", ()))
            self._for = bundle
        return self._scopes.get(resource_id)


def _scopes(resources: Iterable[object]) -> dict[str, Scope]:
    out: dict[str, Scope] = {}
    for res in resources:
        nets: list[Network] = []
        for cidr in getattr(res, "cidrs", ()):
            try:
                nets.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                continue  # the bundle was validated; a bad entry covers nothing
        for host in getattr(res, "hosts", ()):
            try:
                nets.append(ipaddress.ip_network(host))
            except ValueError:
                continue  # a name or wildcard: not a network
        rid = str(getattr(res, "id", ""))
        name = str(getattr(res, "name", "") or rid)
        out[rid] = Scope(name, tuple(nets))
    return out
