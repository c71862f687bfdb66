"""Split DNS owned by the client: company names asked of the tunnel's DNS servers.

Names equal to or under the policy's DNS suffixes (``corp.example`` covers
``wiki.corp.example``, not ``notcorp.example``) are resolved by :class:`TunnelResolver`
through the tunnel's DNS servers, over sockets the helper marked and bound to the tunnel
interface, A and AAAA together; every other name goes to the OS resolver untouched (no
global DNS takeover). dnspython is used for the wire format only; the I/O is our own
asyncio code, so a reply is accepted only from the server asked, with our ID and our
question. ``refusal`` says why an address must never be dialled (loopback, link-local,
multicast, unspecified — also hidden inside IPv4-mapped IPv6).

Modules: ``names`` (name and suffix normalisation, server addresses, refusals),
``message`` (sans-IO: the query, the checks on a reply, CNAME chains), ``transport`` (one
exchange over UDP or TCP), ``cache`` (TTL cache with an injected clock), ``resolver``
(:class:`TunnelResolver`), ``errors`` (the exception tree). Imports only the shared
utilities, dnspython and the standard library.
"""

from __future__ import annotations

from core.dns.errors import (
    AddressRefused,
    BadAnswer,
    BadName,
    DnsError,
    DnsUnreachable,
    NameNotFound,
)
from core.dns.names import normalize_name, normalize_suffixes, refusal, under_suffix
from core.dns.resolver import SockFactory, TunnelResolver

__all__ = [
    "AddressRefused",
    "BadAnswer",
    "BadName",
    "DnsError",
    "DnsUnreachable",
    "NameNotFound",
    "SockFactory",
    "TunnelResolver",
    "normalize_name",
    "normalize_suffixes",
    "refusal",
    "under_suffix",
]
