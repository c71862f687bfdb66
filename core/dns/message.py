"""The DNS messages, sans-IO: the query we send and the checks a reply must pass.

``Query`` builds one A or AAAA question (random ID, recursion desired, EDNS with a
1232-byte payload, the size that avoids IP fragmentation). ``Query.read`` turns the
bytes of a reply into a :class:`Reply`, or None when the bytes are not an answer to
*this* query: garbage, a wrong ID, not a response, another opcode, another question. A
transport ignores such datagrams and keeps waiting, so a spoofer must guess the ID *and*
the port *and* the question. Inside an accepted answer only records on the CNAME chain
from the question's name count (at most :data:`MAX_CNAME_HOPS` hops; a loop or a longer
chain is :class:`~core.dns.errors.BadAnswer`); records for other names are ignored, and
at most :data:`MAX_ADDRESSES` addresses are kept. Thread-safe, no I/O.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from core.dns.errors import BadAnswer

__all__ = ["MAX_ADDRESSES", "MAX_CNAME_HOPS", "MAX_MESSAGE", "Query", "Reply"]

MAX_CNAME_HOPS = 8
"""CNAMEs followed inside one answer before it is refused as a loop or a maze."""
MAX_ADDRESSES = 32
"""Addresses kept per name and record type (more are a flood, not a service)."""
MAX_MESSAGE = 65535
"""Largest DNS message read (the TCP length prefix's limit; UDP reads are capped too)."""
EDNS_PAYLOAD = 1232


@dataclass(frozen=True)
class Reply:
    """What an accepted answer says.

    ``rcode`` is the DNS response code (``dns.rcode.NOERROR``, ``NXDOMAIN``, …);
    ``addresses`` the canonical A or AAAA addresses at the end of the CNAME chain
    (empty for NODATA or a failure); ``ttl`` the smallest TTL on the chain (for a negative
    answer the SOA's, or 0 when there is none); ``truncated`` the TC flag (retry on TCP);
    ``canonical`` the name the addresses belong to.
    """

    rcode: int
    addresses: tuple[str, ...]
    ttl: int
    truncated: bool
    canonical: str


class Query:
    """One question (``name``, A or AAAA) and the reply checks that go with it."""

    def __init__(self, name: str, rdtype: dns.rdatatype.RdataType) -> None:
        if rdtype not in (dns.rdatatype.A, dns.rdatatype.AAAA):
            raise ValueError("only A and AAAA questions are asked")
        self.name = name
        self.rdtype = rdtype
        self._qname = dns.name.from_text(name, origin=dns.name.root)
        self._message = dns.message.make_query(
            self._qname, rdtype, use_edns=0, payload=EDNS_PAYLOAD
        )
        self.id: int = self._message.id
        self.wire: bytes = self._message.to_wire()

    def read(self, wire: bytes) -> Reply | None:
        """The reply in ``wire`` if it answers this query, else None (ignore it).

        Raises :class:`BadAnswer` when it is our answer but unusable (a CNAME loop).
        """
        if len(wire) < 12 or len(wire) > MAX_MESSAGE:
            return None
        # Cheap pre-check before parsing: a spoofer without our ID costs nothing.
        if int.from_bytes(wire[:2], "big") != self.id:
            return None
        try:
            reply = dns.message.from_wire(wire, ignore_trailing=True)
        except Exception:  # hostile bytes: any parse failure means "not ours"
            return None
        if not self._answers(reply):
            return None
        truncated = bool(reply.flags & dns.flags.TC)
        rcode = reply.rcode()
        if rcode != dns.rcode.NOERROR:
            return Reply(rcode, (), _negative_ttl(reply), truncated, self.name)
        addresses, ttl, canonical = self._chain(reply)
        if not addresses:
            ttl = min(ttl, _negative_ttl(reply)) if ttl else _negative_ttl(reply)
        return Reply(rcode, addresses, ttl, truncated, canonical)

    def _answers(self, reply: dns.message.Message) -> bool:
        if reply.id != self.id or not reply.flags & dns.flags.QR:
            return False
        if reply.opcode() != dns.opcode.QUERY or len(reply.question) != 1:
            return False
        question = reply.question[0]
        return (
            question.name == self._qname  # case-insensitive comparison
            and question.rdtype == self.rdtype
            and question.rdclass == dns.rdataclass.IN
        )

    def _chain(self, reply: dns.message.Message) -> tuple[tuple[str, ...], int, str]:
        """Follow the CNAME chain from the question inside the answer section."""
        current = self._qname
        seen = {current}
        ttl: int | None = None
        for _ in range(MAX_CNAME_HOPS + 1):
            rrset = _find(reply, current, self.rdtype)
            if rrset is not None:
                ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
                return _addresses(rrset), ttl, _text(current)
            cname = _find(reply, current, dns.rdatatype.CNAME)
            if cname is None or len(cname) == 0:
                return (), ttl or 0, _text(current)
            ttl = cname.ttl if ttl is None else min(ttl, cname.ttl)
            target = cname[0].target
            if target in seen:
                raise BadAnswer(f"the answer for {self.name} has a CNAME loop")
            seen.add(target)
            current = target
        raise BadAnswer(f"the answer for {self.name} has more than {MAX_CNAME_HOPS} CNAMEs")


def _find(
    reply: dns.message.Message, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> dns.rrset.RRset | None:
    for rrset in reply.answer:
        if rrset.name == name and rrset.rdtype == rdtype and rrset.rdclass == dns.rdataclass.IN:
            return rrset
    return None


def _addresses(rrset: dns.rrset.RRset) -> tuple[str, ...]:
    out: list[str] = []
    for rdata in rrset:
        try:
            text = ipaddress.ip_address(rdata.address).compressed
        except (AttributeError, ValueError):
            continue
        if text not in out:
            out.append(text)
            if len(out) >= MAX_ADDRESSES:
                break
    return tuple(out)


def _negative_ttl(reply: dns.message.Message) -> int:
    """The SOA's negative-caching TTL (RFC 2308: min of its TTL and MINIMUM), or 0."""
    for rrset in reply.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return int(min(rrset.ttl, rrset[0].minimum))
    return 0


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()
