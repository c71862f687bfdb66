"""Destination normalisation: one destination has exactly one spelling before deciding.

A policy that allows ``db.corp`` must not be fooled by ``DB.Corp.``, ``xn--`` spellings of
the same Unicode name, or an IPv4 address written as ``2130706433``, ``0x7f.1`` or
``0177.0.0.1`` (all of which ``inet_aton`` and browsers accept), nor by an IPv4 address
hidden in an IPv6 ``::ffff:`` mapped form. ``normalize_host`` returns the canonical form
or raises ``DestinationError``; it is pure and thread-safe.
"""

from __future__ import annotations

import ipaddress
import re
import socket

import idna

from core.proxy.errors import DestinationError

__all__ = ["is_ip", "normalize_host", "normalize_port"]

_MAX_NAME = 253
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")


def normalize_port(port: int | str) -> int:
    """Return ``port`` as an int in 1..65535. Raises DestinationError otherwise."""
    if isinstance(port, str):
        if not port.isascii() or not port.isdigit() or len(port) > 5:
            raise DestinationError(f"port {port!r} is not a number")
        port = int(port)
    if not 1 <= port <= 65535:
        raise DestinationError(f"port {port} is outside 1-65535")
    return port


def _parse_ipv4_number(label: str) -> int:
    """One inet_aton component: decimal, 0x hex or leading-zero octal."""
    if label[:2] in ("0x", "0X"):
        digits = label[2:]
        return int(digits, 16) if digits else 0
    if len(label) > 1 and label[0] == "0":
        if any(c not in "01234567" for c in label):
            raise DestinationError(f"{label!r} is not a valid octal IPv4 component")
        return int(label, 8)
    return int(label)


def _legacy_ipv4(labels: list[str]) -> str:
    """inet_aton/WHATWG IPv4 forms (a, a.b, a.b.c, a.b.c.d; each part dec/oct/hex)."""
    if len(labels) > 4:
        raise DestinationError("numeric host with more than four parts")
    numbers = [_parse_ipv4_number(p) for p in labels]
    for n in numbers[:-1]:
        if n > 255:
            raise DestinationError("IPv4 component above 255")
    last_bits = 8 * (5 - len(numbers))
    if numbers[-1] >= 1 << last_bits:
        raise DestinationError("IPv4 address out of range")
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value |= n << (8 * (3 - i))
    return str(ipaddress.IPv4Address(value))


def _canonical_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:
            raise DestinationError("IPv6 zone identifiers are not accepted")
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ip)
    return str(ip)


def is_ip(host: str) -> bool:
    """True when ``host`` (already normalised) is an IP literal."""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except (OSError, ValueError):
        return False
    return True


def _canonical_v4(host: str) -> bool:
    """Fast path: ``host`` already is a canonical dotted-quad IPv4 address."""
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, host)) == host
    except (OSError, ValueError):
        return False


def normalize_host(host: str | bytes) -> str:
    """Canonical spelling of a destination host.

    Names become lower-case ASCII (IDNA 2008 with UTS 46 mapping) without a trailing dot;
    IP literals (brackets allowed for IPv6) become ``ipaddress``'s canonical form, with
    ``::ffff:a.b.c.d`` turned into ``a.b.c.d`` and legacy numeric IPv4 spellings decoded.
    Raises ``DestinationError`` naming what is wrong; never anything else.
    """
    if isinstance(host, bytes):
        try:
            host = host.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DestinationError("host is not valid UTF-8") from exc
    if not host:
        raise DestinationError("empty host")
    if host[0].isdigit() and _canonical_v4(host):
        return host
    if len(host) > 1024:
        raise DestinationError("host is too long")
    if host.startswith("[") and host.endswith("]"):
        try:
            ip6 = ipaddress.IPv6Address(host[1:-1])
        except ValueError as exc:
            raise DestinationError(f"{host!r} is not a valid IPv6 literal") from exc
        return _canonical_ip(ip6)
    if ":" in host:
        try:
            return _canonical_ip(ipaddress.IPv6Address(host))
        except ValueError as exc:
            raise DestinationError(f"{host!r} is not a valid IPv6 address") from exc
    if any(c.isspace() or ord(c) < 0x21 or c in "%/\\@?#" for c in host):
        raise DestinationError(f"host {host!r} contains a forbidden character")
    name = host[:-1] if host.endswith(".") else host
    if not name or name.endswith("."):
        raise DestinationError(f"host {host!r} has an empty label")
    labels = name.split(".")
    # WHATWG: a host whose last label is numeric is an IPv4 address or invalid, never a
    # name (otherwise "1.2.3.0x4" could be a "name" to the policy and an IP to the OS).
    if _NUMERIC_LABEL.match(labels[-1]):
        if not all(_NUMERIC_LABEL.match(p) for p in labels):
            raise DestinationError(f"host {host!r} mixes names and numbers")
        try:
            return _legacy_ipv4(labels)
        except ValueError as exc:
            raise DestinationError(f"host {host!r} is not a valid IPv4 address") from exc
    if not name.isascii() or "xn--" in name.lower():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise DestinationError(f"host {host!r} is not a valid internationalised name") from exc
    name = name.lower()
    if _NUMERIC_LABEL.match(name.rsplit(".", 1)[-1]):
        # e.g. full-width or Arabic-Indic digits that UTS 46 maps to ASCII ones
        raise DestinationError(f"host {host!r} spells a number with non-ASCII characters")
    if len(name) > _MAX_NAME:
        raise DestinationError("host name longer than 253 characters")
    for label in name.split("."):
        if not _LABEL.match(label):
            raise DestinationError(f"host {host!r} has an invalid label {label!r}")
    return name
