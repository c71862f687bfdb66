"""The transparent listener's one question: where was this connection really going?

In transparent mode the helper's nftables rules redirect apps' TCP connections to the
resources' ranges to the proxy's transparent port on 127.0.0.1 / ::1 (``redirect``:
destination NAT to the loopback address). The kernel's connection tracking remembers
the original destination; ``original_destination`` reads it back with one
``getsockopt(SO_ORIGINAL_DST)`` (``IP6T_SO_ORIGINAL_DST`` for IPv6, the same number).

A connection with no original destination (nothing redirected it: someone connected to
the port directly and conntrack has no entry) or whose original destination is the
listener itself or another loopback address is not a redirected app connection and is
refused (``redirect_refusal``). The app is then identified from the ORIGINAL
connection: its socket's local end is the accepted connection's peer address and its
remote end the original destination, which is what the peer lookup is asked for.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys

__all__ = [
    "SO_ORIGINAL_DST",
    "SUPPORTED",
    "original_destination",
    "parse_sockaddr",
    "redirect_refusal",
]

SUPPORTED = sys.platform.startswith("linux")
"""Whether this OS gives a redirected connection's original destination this way
(Linux netfilter). macOS pf ``rdr`` answers through ``DIOCNATLOOK`` and Windows has no
such redirect: ``ProxyServer`` does not open the transparent listener there."""

SO_ORIGINAL_DST = 80
"""``SO_ORIGINAL_DST`` (linux/netfilter_ipv4.h) and ``IP6T_SO_ORIGINAL_DST``
(linux/netfilter_ipv6/ip6_tables.h) have the same value."""
_SOL_IP = getattr(socket, "SOL_IP", 0)
_SOL_IPV6 = getattr(socket, "SOL_IPV6", getattr(socket, "IPPROTO_IPV6", 41))
_SIN_LEN = 16  # struct sockaddr_in
_SIN6_LEN = 28  # struct sockaddr_in6
_PORT = struct.Struct("!H")


def parse_sockaddr(raw: bytes) -> tuple[str, int] | None:
    """(address, port) from a ``sockaddr_in`` / ``sockaddr_in6`` as the kernel writes
    it (family in host byte order, port and address in network order); None for
    anything else (short, another family)."""
    if len(raw) < 8:
        return None
    family = int.from_bytes(raw[:2], sys.byteorder)
    (port,) = _PORT.unpack_from(raw, 2)
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    if family == socket.AF_INET6 and len(raw) >= 24:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    return None


def original_destination(conn: socket.socket) -> tuple[str, int] | None:
    """The destination ``conn``'s client originally connected to, before a ``redirect``
    rule sent it here; None when there is none (not redirected, no conntrack, not
    Linux). One system call; never raises."""
    if not SUPPORTED:  # the same option number means something else elsewhere
        return None
    try:
        if conn.family == socket.AF_INET6:
            raw = conn.getsockopt(_SOL_IPV6, SO_ORIGINAL_DST, _SIN6_LEN)
        else:
            raw = conn.getsockopt(_SOL_IP, SO_ORIGINAL_DST, _SIN_LEN)
    except OSError:  # ENOENT: conntrack knows no such connection
        return None
    return parse_sockaddr(raw)


def redirect_refusal(original: tuple[str, int] | None, local: tuple[str, int]) -> str | None:
    """Why a connection accepted on the transparent listener at ``local`` (its
    getsockname) is not a redirected app connection; None when it is."""
    if original is None:
        return (
            "not a redirected connection: it has no original destination "
            "(something connected to the transparent port directly)"
        )
    if original[1] == local[1] and original[0] == local[0]:
        return "not a redirected connection: its destination is the transparent listener itself"
    try:
        ip = ipaddress.ip_address(original[0])
    except ValueError:
        return f"not a redirected connection: original destination {original[0]!r} is not an IP"
    if ip.is_loopback or ip.is_unspecified:
        return (
            f"not a redirected connection: its destination {original[0]} is "
            "this computer, not a company resource"
        )
    return None
