"""``TunnelSpec``: the typed, validated description of one WireGuard tunnel.

The controller produces it (without the private key, which it never knows), the policy
bundle carries it, the client fills in the private key and hands it to the helper, and the
helper renders the WireGuard config from it — never from a string it was given. Every
value is checked when the struct is built or decoded (``__post_init__``), so an invalid
spec cannot exist; checks that depend on context (private key required, routes that must
not enter the tunnel) are in :meth:`TunnelSpec.validate`.

Rules (all raise :class:`~wg_backends.errors.SpecError` naming the field):

- no newline, ``=``, ``#``, ``[``/``]`` outside an IPv6 endpoint, or control character in
  any string (keys are checked as canonical base64 of exactly 32 bytes instead, whose
  ``=`` padding is part of the format);
- interface name follows wg-quick's rule ``[a-zA-Z0-9_=+.-]{1,15}`` minus ``=``;
- addresses are interface CIDRs, allowed IPs strict networks, DNS IP literals only;
- MTU 1280–9000, endpoint port 1–65535, keepalive 0–65535;
- DNS suffixes (``dns_suffixes``, split DNS) are lower-case host names of at least two
  LDH labels (IDNA A-labels allowed), at most 32 of 253 characters each, and need a DNS
  server; a single label or the root would hand all of DNS (or a whole TLD) to the tunnel;
- at most 1,000 allowed IPs in total, however they are spread over the peers;
- an IPv4 list covering half the address space or more (a ``/1`` worth) without a full
  IPv6 tunnel (``::/0``) is refused: it would send most IPv4 traffic into the tunnel while
  IPv6 leaks past it (or, if the gateway drops it, is blocked);
- an allowed IP narrower than ``/0`` that covers any peer's (literal) endpoint is a
  routing loop and is refused (``/0`` is fine: wg-quick and the WireGuard apps exclude the
  endpoint by policy routing).

:meth:`TunnelSpec.validate` adds the checks only the helper can make, from facts it reads
itself: the controller's address (``protect``) and the host's connected subnets
(``local_networks``) must not be captured by a route.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from wg_backends.errors import SpecError

__all__ = [
    "MAX_PROMISED_KEEPALIVE_S",
    "MAX_SPEC_BYTES",
    "PeerSpec",
    "RelaySpec",
    "TunnelSpec",
    "parse_endpoint",
    "parse_spec",
    "silent_after",
    "validate_dns_suffix",
    "validate_interface",
    "validate_key",
]

MAX_SPEC_BYTES = 64 * 1024  # a spec is a few hundred bytes; anything bigger is hostile
_MAX_PEERS = 64
_MAX_ALLOWED = 256
_MAX_ALLOWED_TOTAL = 1000
_HALF_V4 = 2**31  # a /1 worth of IPv4 addresses
_MAX_ADDRESSES = 16
_MAX_DNS = 8
_MAX_SUFFIXES = 32
_WHOLE_TREES = frozenset({"in-addr.arpa", "ip6.arpa"})
_SUFFIX_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_IFNAME = re.compile(r"[a-zA-Z0-9_+.-]{1,15}")
_HOSTLABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# Characters that could end a line, start a comment or a new key in an INI-style file.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f=#\[\]\\]")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _clean(field: str, value: str, *, limit: int = 256) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{field}: expected a string")
    if not value:
        raise SpecError(f"{field}: must not be empty")
    if len(value) > limit:
        raise SpecError(f"{field}: longer than {limit} characters")
    bad = _FORBIDDEN.search(value)
    if bad:
        raise SpecError(f"{field}: forbidden character {bad.group()!r} in {value[:40]!r}")
    if value != value.strip():
        raise SpecError(f"{field}: leading or trailing whitespace")
    return value


def validate_interface(name: object) -> str:
    """Check an interface name and return it. Raises :class:`SpecError`. Pure.

    wg-quick's rule ``[a-zA-Z0-9_=+.-]{1,15}`` minus ``=``, and never starting with ``-``:
    the name becomes an argument of ``wg``, ``ip`` and ``wg-quick``, where ``-x`` would be
    read as an option.
    """
    if not isinstance(name, str) or not _IFNAME.fullmatch(name):
        raise SpecError(f"interface: {name!r} must be 1-15 of letters, digits, '_', '+', '.', '-'")
    if name.startswith("-"):
        raise SpecError(f"interface: {name!r} must not start with '-'")
    if name in {".", ".."}:
        raise SpecError(f"interface: {name!r} is not a usable name")
    return name


def validate_dns_suffix(value: object) -> str:
    """Check one split-DNS suffix (``"corp.example"``) and return it. Raises :class:`SpecError`.

    Lower-case LDH labels of 1-63 characters (no leading or trailing hyphen), joined by
    single dots, no leading or trailing dot, at most 253 characters, at least two labels
    (``"."``, ``"example"`` or ``"com"`` alone would route every name — or a whole TLD — to
    the tunnel's servers), a top label that is not all digits (it would read as an
    address), and not a whole reverse tree (``in-addr.arpa``, ``ip6.arpa``). A label with
    ``--`` in positions 3-4 must be a valid IDNA A-label (``xn--…``). Pure.
    """
    if not isinstance(value, str):
        raise SpecError("dns_suffixes: expected a string")
    if not value or len(value) > 253:
        raise SpecError(f"dns_suffixes: {value[:40]!r} must be 1-253 characters")
    if value.startswith(".") or value.endswith("."):
        raise SpecError(f"dns_suffixes: {value[:60]!r} must not start or end with a dot")
    labels = value.split(".")
    for label in labels:
        if not _SUFFIX_LABEL.fullmatch(label):
            raise SpecError(
                f"dns_suffixes: {value[:60]!r}: label {label[:63]!r} must be 1-63 lower-case "
                "letters, digits or inner hyphens"
            )
        if label[2:4] == "--":
            if not label.startswith("xn--"):
                raise SpecError(f"dns_suffixes: {value[:60]!r}: label {label!r} is reserved")
            try:
                label.encode("ascii").decode("idna")
            except UnicodeError:
                raise SpecError(
                    f"dns_suffixes: {value[:60]!r}: {label!r} is not a valid IDNA A-label"
                ) from None
    if len(labels) < 2:
        raise SpecError(
            f"dns_suffixes: {value!r} is a top-level domain; a suffix needs at least two "
            "labels (corp.example), or the tunnel would take over all of its names"
        )
    if labels[-1].isdigit():
        raise SpecError(f"dns_suffixes: {value[:60]!r}: the top label must not be all digits")
    if value in _WHOLE_TREES:
        raise SpecError(
            f"dns_suffixes: {value!r} is a whole reverse-lookup tree (every address's name "
            "would be asked of the tunnel); name a part of it, e.g. 10.in-addr.arpa"
        )
    return value


def validate_key(field: str, value: str) -> str:
    """Check that ``value`` is canonical base64 of exactly 32 bytes; return it.

    Raises :class:`SpecError` naming ``field``. Pure; callable from any thread.
    """
    if not isinstance(value, str) or len(value) != 44 or not value.endswith("="):
        raise SpecError(f"{field}: must be base64 of 32 bytes (44 characters)")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SpecError(f"{field}: not valid base64") from None
    if len(raw) != 32 or base64.b64encode(raw).decode() != value:
        raise SpecError(f"{field}: must be canonical base64 of exactly 32 bytes")
    return value


def parse_endpoint(value: str) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port`` into (host, port), validating both.

    The host is an IP literal or a DNS name (letters, digits, hyphens, dots). Raises
    :class:`SpecError`.
    """
    if not isinstance(value, str) or not value or len(value) > 261:
        raise SpecError("endpoint: must be host:port")
    bad = re.search(r"[\x00-\x20\x7f=#\\]", value)
    if bad:
        raise SpecError(f"endpoint: forbidden character {bad.group()!r}")
    if value.startswith("["):
        host, sep, port_s = value[1:].partition("]:")
        if not sep:
            raise SpecError("endpoint: IPv6 endpoint must be [address]:port")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise SpecError(f"endpoint: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port_s = value.rpartition(":")
        if not sep or not host:
            raise SpecError("endpoint: must be host:port")
        if "[" in host or "]" in host or ":" in host:
            raise SpecError("endpoint: an IPv6 endpoint needs brackets: [address]:port")
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            labels = host.rstrip(".").split(".")
            if len(host) > 253 or not all(_HOSTLABEL.fullmatch(lb) for lb in labels):
                raise SpecError(f"endpoint: {host!r} is not an IP address or host name") from None
            if all(lb.isdigit() for lb in labels):
                raise SpecError(f"endpoint: {host!r} is not a valid IPv4 address") from None
    if not port_s.isascii() or not port_s.isdigit() or len(port_s) > 5:
        raise SpecError(f"endpoint: port {port_s!r} is not a number")
    port = int(port_s)
    if not 1 <= port <= 65535:
        raise SpecError(f"endpoint: port {port} outside 1-65535")
    return host, port


def _endpoint_ip(endpoint: str) -> IPAddress | None:
    host, _ = parse_endpoint(endpoint)
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _full(nets: Iterable[IPNetwork], version: int) -> bool:
    """Whether ``nets`` together cover the whole address space of ``version``."""
    collapsed: list[IPNetwork]
    if version == 4:
        collapsed = list(
            ipaddress.collapse_addresses(n for n in nets if isinstance(n, ipaddress.IPv4Network))
        )
    else:
        collapsed = list(
            ipaddress.collapse_addresses(n for n in nets if isinstance(n, ipaddress.IPv6Network))
        )
    return len(collapsed) == 1 and collapsed[0].prefixlen == 0


def _v4_size(nets: Iterable[IPNetwork]) -> int:
    """How many IPv4 addresses ``nets`` cover together (overlaps counted once)."""
    v4 = (n for n in nets if isinstance(n, ipaddress.IPv4Network))
    return sum(n.num_addresses for n in ipaddress.collapse_addresses(v4))


def _parse_nets(field: str, raws: Iterable[str]) -> list[IPNetwork]:
    out: list[IPNetwork] = []
    for raw in raws:
        try:
            out.append(ipaddress.ip_network(raw, strict=False))
        except ValueError:
            raise SpecError(f"{field}: {raw!r} is not an address or network") from None
    return out


class PeerSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One WireGuard peer (the gateway). Validated on construction and decode."""

    public_key: str
    endpoint: str
    allowed_ips: tuple[str, ...]
    preshared_key: str | None = None
    persistent_keepalive: int | None = None

    def __post_init__(self) -> None:
        validate_key("peers.public_key", self.public_key)
        if self.preshared_key is not None:
            validate_key("peers.preshared_key", self.preshared_key)
        parse_endpoint(self.endpoint)
        if not self.allowed_ips:
            raise SpecError("peers.allowed_ips: at least one network is required")
        if len(self.allowed_ips) > _MAX_ALLOWED:
            raise SpecError(f"peers.allowed_ips: more than {_MAX_ALLOWED} networks")
        nets = self.networks()
        ka = self.persistent_keepalive
        if ka is not None and not (isinstance(ka, int) and 0 <= ka <= 65535):
            raise SpecError(f"peers.persistent_keepalive: {ka!r} outside 0-65535")
        ep = _endpoint_ip(self.endpoint)
        if ep is not None:
            for net in nets:
                if net.prefixlen and ep in net:
                    raise SpecError(
                        f"peers.allowed_ips: {net} covers the peer's own endpoint {ep} "
                        "(routing loop)"
                    )

    def networks(self) -> tuple[IPNetwork, ...]:
        """``allowed_ips`` parsed (strict: no host bits). Raises :class:`SpecError`."""
        out: list[IPNetwork] = []
        for raw in self.allowed_ips:
            _clean("peers.allowed_ips", raw, limit=64)
            try:
                out.append(ipaddress.ip_network(raw, strict=True))
            except ValueError as exc:
                raise SpecError(f"peers.allowed_ips: {raw!r} is not a network: {exc}") from None
        return tuple(out)


_MAX_RELAYS = 8
_MAX_PINS = 4
_RELAY_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_PIN = re.compile(r"[A-Za-z0-9+/]{43}=")


class RelaySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One mTLS relay that carries this tunnel's WireGuard packets when UDP is blocked.

    ``name``: a short label (``[a-z0-9-]``, shown to the user and in logs);
    ``endpoint``: the relay's ``host:port`` (TCP, TLS 1.3); ``server_name``: the name its
    certificate must carry (default: the endpoint's host; required when the host is an IP
    literal); ``spki``: base64 SHA-256 pins of the relay's SubjectPublicKeyInfo (any
    certificate of the verified chain may match; empty: the OS trust store alone).
    The relay forwards to the spec's (first) peer endpoint; which gateways a relay serves
    is the relay's own configuration. Validated on construction and decode.
    """

    name: str
    endpoint: str
    server_name: str | None = None
    spki: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _RELAY_NAME.fullmatch(self.name):
            raise SpecError(f"relays.name: {self.name!r} is not [a-z0-9-]{{1,32}}")
        host, _ = parse_endpoint(self.endpoint)
        if self.server_name is not None:
            _clean("relays.server_name", self.server_name, limit=253)
            labels = self.server_name.rstrip(".").split(".")
            if not all(_HOSTLABEL.fullmatch(lb) for lb in labels) or all(
                lb.isdigit() for lb in labels
            ):
                raise SpecError(f"relays.server_name: {self.server_name!r} is not a host name")
        elif _endpoint_ip(self.endpoint) is not None:
            raise SpecError(
                f"relays.server_name: relay {self.name} is an IP address ({host}); "
                "give the name its certificate carries"
            )
        if len(self.spki) > _MAX_PINS:
            raise SpecError(f"relays.spki: more than {_MAX_PINS} pins")
        for pin in self.spki:
            if not isinstance(pin, str) or not _PIN.fullmatch(pin):
                raise SpecError(f"relays.spki: {pin!r} is not a base64 SHA-256 digest")

    def tls_name(self) -> str:
        """The name the relay's certificate must carry (SNI and hostname check)."""
        return self.server_name or parse_endpoint(self.endpoint)[0]

    def address(self) -> tuple[str, int]:
        """``(host, port)`` to connect to."""
        return parse_endpoint(self.endpoint)


class TunnelSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One tunnel: the interface and its peers.

    ``private_key`` is ``None`` on the wire from the controller (it never knows it); the
    client fills it with :meth:`with_private_key` before sending the spec to the helper,
    which refuses a spec without it. Instances are immutable and always valid.

    ``dns`` alone: the tunnel's servers become the system's resolvers (wg-quick's global
    ``DNS =``). ``dns`` with ``dns_suffixes``: split DNS — only names under the suffixes
    go to those servers (the backends apply it per OS, see :mod:`wg_backends.dns`), the
    rest of DNS is left alone.
    """

    interface: str
    addresses: tuple[str, ...]
    peers: tuple[PeerSpec, ...]
    private_key: str | None = None
    dns: tuple[str, ...] = ()
    mtu: int | None = None
    # UNSET (left out of the JSON) when empty, so a spec without split DNS encodes exactly
    # as before the field existed: signed bundles of older controllers keep their
    # canonical form, and older clients and helpers still read newer specs. Read it with
    # ``suffixes()``.
    dns_suffixes: tuple[str, ...] | msgspec.UnsetType = msgspec.UNSET
    # UNSET when empty for the same reason: mTLS relays for networks that drop UDP
    # (issue 21). Read it with ``relay_list()``.
    relays: tuple[RelaySpec, ...] | msgspec.UnsetType = msgspec.UNSET

    def suffixes(self) -> tuple[str, ...]:
        """The split-DNS suffixes (empty: none)."""
        return () if isinstance(self.dns_suffixes, msgspec.UnsetType) else self.dns_suffixes

    def relay_list(self) -> tuple[RelaySpec, ...]:
        """The relays that may carry this tunnel when UDP is blocked (empty: none)."""
        return () if isinstance(self.relays, msgspec.UnsetType) else self.relays

    def __post_init__(self) -> None:
        if not isinstance(self.dns_suffixes, msgspec.UnsetType) and not self.dns_suffixes:
            msgspec.structs.force_setattr(self, "dns_suffixes", msgspec.UNSET)
        if not isinstance(self.relays, msgspec.UnsetType) and not self.relays:
            msgspec.structs.force_setattr(self, "relays", msgspec.UNSET)
        relays = self.relay_list()
        if len(relays) > _MAX_RELAYS:
            raise SpecError(f"relays: more than {_MAX_RELAYS}")
        if len({r.name for r in relays}) != len(relays):
            raise SpecError("relays.name: two relays have the same name")
        validate_interface(self.interface)
        if self.private_key is not None:
            validate_key("private_key", self.private_key)
        if not self.addresses:
            raise SpecError("addresses: at least one interface address is required")
        if len(self.addresses) > _MAX_ADDRESSES:
            raise SpecError(f"addresses: more than {_MAX_ADDRESSES}")
        self.interfaces()
        if len(self.dns) > _MAX_DNS:
            raise SpecError(f"dns: more than {_MAX_DNS} servers")
        self.dns_servers()
        suffixes = self.suffixes()
        if len(suffixes) > _MAX_SUFFIXES:
            raise SpecError(f"dns_suffixes: more than {_MAX_SUFFIXES}")
        for suffix in suffixes:
            validate_dns_suffix(suffix)
        if len(set(suffixes)) != len(suffixes):
            raise SpecError("dns_suffixes: the same suffix appears twice")
        if suffixes and not self.dns:
            raise SpecError("dns_suffixes: split DNS needs at least one DNS server (dns)")
        mtu = self.mtu
        if mtu is not None and not (isinstance(mtu, int) and 1280 <= mtu <= 9000):
            raise SpecError(f"mtu: {mtu!r} outside 1280-9000")
        if not self.peers:
            raise SpecError("peers: at least one peer is required")
        if len(self.peers) > _MAX_PEERS:
            raise SpecError(f"peers: more than {_MAX_PEERS}")
        keys = [p.public_key for p in self.peers]
        if len(set(keys)) != len(keys):
            raise SpecError("peers.public_key: the same peer appears twice")
        total = sum(len(p.allowed_ips) for p in self.peers)
        if total > _MAX_ALLOWED_TOTAL:
            raise SpecError(
                f"peers.allowed_ips: {total} networks in total, more than {_MAX_ALLOWED_TOTAL}"
            )
        nets = [n for p in self.peers for n in p.networks()]
        if _full(nets, 4) and not _full(nets, 6):
            raise SpecError(
                "peers.allowed_ips: full IPv4 tunnel without a full IPv6 tunnel would leak "
                "IPv6 traffic; add ::/0"
            )
        if _v4_size(nets) >= _HALF_V4 and not _full(nets, 6):
            raise SpecError(
                "peers.allowed_ips: the IPv4 routes cover most of the address space without "
                "a full IPv6 tunnel; IPv6 would leak or be blocked; add ::/0"
            )
        for peer in self.peers:
            ep = _endpoint_ip(peer.endpoint)
            if ep is None:
                continue
            for net in nets:
                if net.prefixlen and ep in net:
                    raise SpecError(
                        f"peers.allowed_ips: {net} covers the gateway endpoint {ep} (routing loop)"
                    )
        for relay in self.relay_list():
            ep = _endpoint_ip(relay.endpoint)
            for net in nets if ep is not None else ():
                # /0 is fine, as for the gateway: the helper's relay sockets carry
                # wg-quick's fwmark, and the kill switch lets exactly the relays' TCP pass.
                if net.prefixlen and ep in net:
                    raise SpecError(
                        f"relays.endpoint: {net} covers relay {relay.name} ({ep}): "
                        "the relay would be reached through the tunnel it carries"
                    )

    def interfaces(self) -> tuple[IPInterface, ...]:
        """``addresses`` parsed as interface CIDRs. Raises :class:`SpecError`."""
        out: list[IPInterface] = []
        for raw in self.addresses:
            _clean("addresses", raw, limit=64)
            if "/" not in raw:
                raise SpecError(f"addresses: {raw!r} needs a prefix length (CIDR)")
            try:
                out.append(ipaddress.ip_interface(raw))
            except ValueError as exc:
                raise SpecError(f"addresses: {raw!r} is not an interface CIDR: {exc}") from None
        return tuple(out)

    def dns_servers(self) -> tuple[IPAddress, ...]:
        """``dns`` parsed; IP literals only. Raises :class:`SpecError`."""
        out: list[IPAddress] = []
        for raw in self.dns:
            _clean("dns", raw, limit=64)
            try:
                out.append(ipaddress.ip_address(raw))
            except ValueError:
                raise SpecError(f"dns: {raw!r} is not an IP address literal") from None
        return tuple(out)

    def validate(
        self,
        *,
        require_private_key: bool = False,
        forbid_routes: Sequence[str] = (),
        protect: Sequence[str] = (),
        local_networks: Sequence[str] = (),
    ) -> TunnelSpec:
        """Apply the context-dependent checks and return ``self``.

        ``require_private_key``: the helper's side; a spec without a key is refused.
        ``forbid_routes``: addresses or networks that must not be routed into the tunnel
        at all; any allowed IP overlapping one — even ``/0`` — is refused.
        ``protect``: addresses (the controller's) that must keep their own route; an
        allowed IP narrower than ``/0`` covering one is refused. A ``/0`` is a deliberate
        full tunnel, which wg-quick builds with policy routing that keeps every more
        specific route of the main table.
        ``local_networks``: the host's connected subnets (the LAN); an allowed IP equal to
        or inside one would take local traffic into the tunnel and is refused. A broader
        one is harmless: the connected route is more specific and wins.
        Raises :class:`SpecError`. Pure and idempotent.
        """
        if require_private_key and self.private_key is None:
            raise SpecError("private_key: missing; the client must fill it in")
        forbidden = _parse_nets("forbid_routes", forbid_routes)
        protected = _parse_nets("protect", protect)
        local = _parse_nets("local_networks", local_networks)
        for peer in self.peers:
            for net in peer.networks():
                for bad in forbidden:
                    if net.version == bad.version and net.overlaps(bad):
                        raise SpecError(
                            f"peers.allowed_ips: {net} would route {bad} (controller) "
                            "into the tunnel"
                        )
                for bad in protected:
                    if net.prefixlen and net.version == bad.version and net.overlaps(bad):
                        raise SpecError(
                            f"peers.allowed_ips: {net} would route the controller's address "
                            f"{bad.network_address} into the tunnel"
                        )
                for lan in local:
                    if net.version == lan.version and net.subnet_of(lan):  # type: ignore[arg-type]
                        raise SpecError(
                            f"peers.allowed_ips: {net} would take the local network {lan} "
                            "into the tunnel"
                        )
        return self

    def with_private_key(self, key: str) -> TunnelSpec:
        """Return a copy carrying ``key`` (validated). Raises :class:`SpecError`."""
        validate_key("private_key", key)
        return msgspec.structs.replace(self, private_key=key)

    def redacted(self) -> dict[str, Any]:
        """The spec as builtins with key material replaced, safe for logs."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        if data.get("private_key"):
            data["private_key"] = "<redacted>"
        for peer in data["peers"]:
            if peer.get("preshared_key"):
                peer["preshared_key"] = "<redacted>"
        return data


def parse_spec(
    data: bytes | str | Mapping[str, Any],
    *,
    require_private_key: bool = False,
    forbid_routes: Sequence[str] = (),
    protect: Sequence[str] = (),
    local_networks: Sequence[str] = (),
) -> TunnelSpec:
    """Decode and fully validate a spec from JSON bytes/str or a builtins mapping.

    Raises :class:`SpecError` with the field path on any problem (size, JSON, unknown
    field, type, value). Pure; callable from any thread.
    """
    try:
        if isinstance(data, bytes | str):
            if len(data) > MAX_SPEC_BYTES:
                raise SpecError(f"spec: larger than {MAX_SPEC_BYTES} bytes")
            spec = msgspec.json.decode(data, type=TunnelSpec)
        else:
            spec = msgspec.convert(data, type=TunnelSpec)
    except msgspec.ValidationError as exc:
        raise SpecError(f"spec: {exc}") from None
    except msgspec.DecodeError as exc:
        raise SpecError(f"spec: not valid JSON: {exc}") from None
    return spec.validate(
        require_private_key=require_private_key,
        forbid_routes=forbid_routes,
        protect=protect,
        local_networks=local_networks,
    )


#: The longest keepalive that still promises quick silence detection (seconds); longer
#: ones (WireGuard's customary 25 s) fall back to the handshake's age.
MAX_PROMISED_KEEPALIVE_S = 10


def silent_after(spec: TunnelSpec) -> float | None:
    """Seconds without a received byte that mean the gateway of ``spec`` went silent.

    ``2k + 1`` for the shortest keepalive *k* of the spec's peers when it is at most
    ``MAX_PROMISED_KEEPALIVE_S`` (two keepalives missed, plus WireGuard's own slack);
    None when no peer promises one. One rule for the engine's health and the helper's
    relay supervisor. Pure.
    """
    keepalives = [p.persistent_keepalive for p in spec.peers if p.persistent_keepalive]
    if not keepalives or min(keepalives) > MAX_PROMISED_KEEPALIVE_S:
        return None
    return 2.0 * min(keepalives) + 1.0
