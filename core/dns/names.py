"""Names, suffixes, server addresses and refused destinations: pure functions.

A host name is normalised once (lower case, no trailing dot, IDNA "xn--" form for
non-ASCII labels, letters/digits/hyphen/underscore only, RFC 1035 lengths) and suffix
matching is then done on whole labels, so ``notcorp.example`` is not under
``corp.example`` and ``WIKI.Corp.Example.`` is. Thread-safe, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

import dns.exception
import dns.name

__all__ = [
    "Server",
    "ip_literal",
    "normalize_name",
    "normalize_suffixes",
    "parse_server",
    "refusal",
    "under_suffix",
]

Server = tuple[str, int]
"""A DNS server: (IP address, port)."""

MAX_NAME = 253
"""Characters in a name without its final dot (RFC 1035's 255 octets on the wire)."""
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def ip_literal(host: str) -> str | None:
    """``host`` as a canonical IP address if it is one (``[v6]`` brackets allowed)."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


def normalize_name(host: str) -> str:
    """``host`` as a canonical DNS name: lower case, no final dot, IDNA-encoded.

    Raises ``ValueError`` naming the problem for anything that is not a plain host name
    (empty labels, escapes, spaces, control characters, over-long names or labels).
    """
    if not isinstance(host, str) or not host or len(host) > 4 * MAX_NAME:
        raise ValueError("a host name must be a non-empty string of sensible length")
    if "\\" in host:
        # dnspython reads "a\.b" as one label "a.b": a name that compares differently
        # from how it prints. No legitimate host name contains a backslash.
        raise ValueError(f"{host!r} is not a host name (backslash)")
    text = host[:-1] if host.endswith(".") else host
    if not text:
        raise ValueError("the root name '.' is not a host name")
    try:
        # from_unicode applies IDNA 2008 (UTS 46 mapping) to non-ASCII labels.
        name = dns.name.from_unicode(text, origin=dns.name.root)
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise ValueError(f"{host!r} is not a valid host name: {exc}") from None
    labels = [label.decode("ascii").lower() for label in name.labels if label]
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise ValueError(f"{host!r} is not a valid host name (label {label!r})")
    out = ".".join(labels)
    if len(out) > MAX_NAME:
        raise ValueError(f"{host!r} is longer than {MAX_NAME} characters")
    return out


def normalize_suffixes(suffixes: Iterable[str]) -> tuple[str, ...]:
    """The DNS suffixes, normalised and deduplicated in order. ``ValueError`` on a bad one.

    A leading dot (``.corp.example``) is accepted. The root (``.``), an empty suffix or a
    single label (``com``) is refused: it would send every name on the machine (or a
    whole top-level domain) into the tunnel.
    """
    if isinstance(suffixes, str):
        raise ValueError("suffixes must be a list of names, not one string")
    out: list[str] = []
    for suffix in suffixes:
        if not isinstance(suffix, str):
            raise ValueError(f"a DNS suffix must be a string, not {type(suffix).__name__}")
        text = suffix[1:] if suffix.startswith(".") else suffix
        if text in ("", "."):
            raise ValueError("an empty or root DNS suffix would capture every name")
        name = normalize_name(text)
        if "." not in name:
            # Same rule as TunnelSpec.dns_suffixes: a top-level domain would send all of
            # its names (every .com) into the tunnel.
            raise ValueError(f"DNS suffix {suffix!r} is a top-level domain (needs two labels)")
        if name not in out:
            out.append(name)
    return tuple(out)


def under_suffix(name: str, suffixes: Sequence[str]) -> str | None:
    """The first suffix that normalised ``name`` equals or sits under (by labels), or None."""
    for suffix in suffixes:
        if name == suffix or name.endswith("." + suffix):
            return suffix
    return None


def parse_server(text: str) -> Server:
    """A server given as ``IP``, ``IPv4:port``, ``[IPv6]:port`` or bare IPv6 → (ip, port).

    Only IP literals: resolving the resolver's own address would go round in circles.
    Raises ``ValueError``.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("a DNS server must be an IP address")
    host, port = text, 53
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"DNS server {text!r}: missing ']'")
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"DNS server {text!r}: expected ':port' after ']'")
            port = _port(text, rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(text, port_text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"DNS server {text!r} is not an IP address") from None
    if address.is_unspecified or address.is_multicast:
        raise ValueError(f"DNS server {text!r} is not a unicast address")
    return address.compressed, port


def _port(text: str, port_text: str) -> int:
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"DNS server {text!r}: bad port")
    return int(port_text)


def refusal(ip: str) -> str | None:
    """Why ``ip`` must never be dialled for a resource, or None when it may be.

    Refused: not an IP address; unspecified; loopback; link-local; multicast; the IPv4
    broadcast address; and any of those hidden in IPv4-mapped (``::ffff:127.0.0.1``) or
    IPv4-compatible (``::127.0.0.1``) IPv6. A DNS answer pointing there is an attack
    (or a mistake) that would turn a company name into a local service.
    """
    text = ip.partition("%")[0] if isinstance(ip, str) else ""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return f"{ip!r} is not an IP address"
    own = _reason(address)
    if own is not None:
        return own
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            inner = _reason(mapped)
            return None if inner is None else f"{address.compressed} is IPv4-mapped IPv6: {inner}"
        if int(address) >> 32 == 0:
            # ::a.b.c.d, the deprecated IPv4-compatible form: never a real destination.
            return f"{address.compressed} is an IPv4-compatible IPv6 address (deprecated)"
    return None


def _reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    text = address.compressed
    if address.is_unspecified:
        return f"{text} is the unspecified address"
    if address.is_loopback:
        return f"{text} is a loopback address"
    if address.is_link_local:
        return f"{text} is a link-local address"
    if address.is_multicast:
        return f"{text} is a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and text == "255.255.255.255":
        return f"{text} is the broadcast address"
    return None
