"""A small authoritative DNS server for the bed and the demo (and a rogue LAN resolver).

``python -m controller.demo.dns --listen 10.243.0.53:53 --record wiki.corp.example=10.243.0.10``
answers A or AAAA queries (by the address's family) for the given records over UDP and
TCP on the same port (and TXT queries for ``--txt NAME=TEXT`` records, as the onboarding's
``_rustronaut.<domain>`` record), with the authoritative flag: NXDOMAIN (with an SOA for negative
caching) for names it does not know inside its zones, NODATA for a known name without
records of the asked type, and REFUSED for names outside its zones. Zones are the
``--zone`` options, or by default each record's parent domain (``corp.example`` for
``wiki.corp.example``); ``--zone .`` answers every name, which is what the e2e bed's
rogue LAN resolver does. UDP answers larger than the client's EDNS payload (512 bytes
without EDNS) are truncated (TC) so the client retries over TCP.

With port 0 the kernel picks one; the first line on stdout says
``listening on HOST:PORT`` either way. One line per query goes to stderr with
``--verbose`` only. Runs until SIGTERM or SIGINT. Demo and tests only: no rate limits,
no recursion, no zone transfers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["DnsServer", "Zone", "main", "parse_listen", "parse_record", "parse_txt", "start"]

_TCP_IDLE = 10.0  # seconds a TCP client may stay silent before we hang up
_TCP_MAX_CLIENTS = 64


def _name(text: str) -> dns.name.Name:
    """``text`` as an absolute, lower-case name (IDNA for non-ASCII)."""
    return dns.name.from_unicode(text.strip(), origin=dns.name.root).canonicalize()


def parse_record(text: str) -> tuple[dns.name.Name, str]:
    """``NAME=ADDRESS`` → (name, canonical address). ``ValueError`` on anything else."""
    name, sep, address = text.partition("=")
    if not sep or not name.strip() or not address.strip():
        raise ValueError(f"record {text!r}: expected NAME=ADDRESS")
    try:
        ip = ipaddress.ip_address(address.strip())
        return _name(name), ip.compressed
    except (ValueError, dns.exception.DNSException, UnicodeError) as exc:
        raise ValueError(f"record {text!r}: {exc}") from None


def parse_txt(text: str) -> tuple[dns.name.Name, str]:
    """``NAME=TEXT`` → (name, text) for a TXT record (the text may hold ``=`` and spaces).
    ``ValueError`` on anything else (no name, no text, over 255 bytes, non-ASCII)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value:
        raise ValueError(f"txt {text!r}: expected NAME=TEXT")
    if not value.isascii() or len(value) > 255 or not value.isprintable():
        raise ValueError(f"txt {text!r}: TEXT must be printable ASCII, at most 255 bytes")
    try:
        return _name(name), value
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise ValueError(f"txt {text!r}: {exc}") from None


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port). ``ValueError`` on anything else."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"listen address {text!r}: expected HOST:PORT")
    try:
        return ipaddress.ip_address(host).compressed, int(port)
    except ValueError:
        raise ValueError(f"listen address {text!r}: HOST must be an IP address") from None


@dataclass
class Zone:
    """The records served and the zones they make up; :meth:`answer` is the whole server.

    ``records``: name → addresses. ``zones``: the names answered for authoritatively
    (None: each record's parent domain). ``ttl``: seconds on every answer. ``texts``:
    name → TXT strings (each one record of one string).
    """

    records: Mapping[dns.name.Name, Sequence[str]]
    zones: Sequence[dns.name.Name] | None = None
    ttl: int = 60
    texts: Mapping[dns.name.Name, Sequence[str]] = field(default_factory=dict)
    _zones: tuple[dns.name.Name, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.zones is not None:
            zones = list(self.zones)
        else:
            names = [*self.records, *self.texts]
            zones = [n.parent() if len(n) > 2 else n for n in names]
        # Longest first, so the most specific zone is found first.
        self._zones = tuple(sorted(set(zones), key=len, reverse=True))

    def zone_of(self, name: dns.name.Name) -> dns.name.Name | None:
        """The zone ``name`` belongs to, or None (not ours: REFUSED)."""
        return next((z for z in self._zones if name.is_subdomain(z)), None)

    def answer(self, wire: bytes, *, max_size: int | None = None) -> tuple[bytes, str] | None:
        """The reply to the query in ``wire`` and a one-line summary, or None (drop it).

        ``max_size``: None for TCP; for UDP the answer is truncated to the client's EDNS
        payload (512 bytes without EDNS).
        """
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # garbage from the network: drop it silently
            return None
        if query.flags & dns.flags.QR:
            return None  # a response sent to us: never answer it (no reflection loops)
        response = dns.message.make_response(query)
        response.flags &= ~dns.flags.RA
        summary = "?"
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
        elif len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
        else:
            question = query.question[0]
            summary = f"{question.name} {dns.rdatatype.to_text(question.rdtype)}"
            self._fill(response, question.name, question.rdtype, question.rdclass)
        if max_size is None:
            limit = 65535
        else:
            limit = max(512, query.payload) if query.edns >= 0 else 512
            limit = min(limit, max_size)
        try:
            out = response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer.clear()
            response.authority.clear()
            response.additional.clear()
            response.flags |= dns.flags.TC
            out = response.to_wire(max_size=limit)
        return out, f"{summary} -> {dns.rcode.to_text(response.rcode())}"

    def _fill(
        self,
        response: dns.message.Message,
        qname: dns.name.Name,
        rdtype: int,
        rdclass: int,
    ) -> None:
        name = qname.canonicalize()
        zone = self.zone_of(name)
        if zone is None or rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return
        response.flags |= dns.flags.AA
        addresses = self.records.get(name)
        texts = self.texts.get(name)
        if texts and rdtype == dns.rdatatype.TXT:
            quoted = ['"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in texts]
            response.answer.append(dns.rrset.from_text_list(qname, self.ttl, "IN", "TXT", quoted))
            return
        if addresses is not None and rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            version = 4 if rdtype == dns.rdatatype.A else 6
            mine = [a for a in addresses if ipaddress.ip_address(a).version == version]
            if mine:
                rtype = "A" if version == 4 else "AAAA"
                response.answer.append(dns.rrset.from_text_list(qname, self.ttl, "IN", rtype, mine))
                return
        # NXDOMAIN only when the name owns nothing (an empty non-terminal is NODATA).
        exists = (
            addresses is not None
            or texts is not None
            or any(n.is_subdomain(name) for n in (*self.records, *self.texts))
        )
        if not exists:
            response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(self._soa(zone))

    def _soa(self, zone: dns.name.Name) -> dns.rrset.RRset:
        host = zone.to_text() if zone != dns.name.root else "invalid."
        return dns.rrset.from_text(
            zone, self.ttl, "IN", "SOA",
            f"ns.{host} hostmaster.{host} 1 3600 600 86400 {self.ttl}",
        )  # fmt: skip


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport is not a registered DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        result = self._server.zone.answer(data, max_size=4096)
        if result is None or self.transport is None:
            return
        self._server.log(f"udp {addr[0]} {result[1]}")
        self.transport.sendto(result[0], addr)


class DnsServer:
    """A running server: ``address`` (host, port); :meth:`close` stops it. Idempotent close."""

    def __init__(self, zone: Zone, *, verbose: bool = False) -> None:
        self.zone = zone
        self.verbose = verbose
        self.address: tuple[str, int] = ("", 0)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    def log(self, line: str) -> None:
        """One line to stderr when verbose (query summaries are dnspython-escaped text)."""
        if self.verbose:
            print(line, file=sys.stderr, flush=True)

    async def _bind(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(8):
            udp, _proto = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(host, port)
            )
            chosen = int(udp.get_extra_info("sockname")[1])
            try:
                self._tcp = await asyncio.start_server(
                    self._tcp_client, host, chosen, reuse_address=True
                )
            except OSError:
                udp.close()
                if port:
                    raise
                continue  # port 0: the kernel's UDP port is taken for TCP; try another
            self._udp = udp
            self.address = (host, chosen)
            return
        raise OSError(f"no free port for UDP and TCP on {host}")

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._clients) >= _TCP_MAX_CLIENTS:
            writer.close()
            return
        self._clients.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)  # so close() can wait for it to finish
        peer = writer.get_extra_info("peername")
        try:
            while True:
                async with asyncio.timeout(_TCP_IDLE):
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    data = await reader.readexactly(size)
                result = self.zone.answer(data)
                if result is None:
                    break
                self.log(f"tcp {peer[0] if peer else '?'} {result[1]}")
                writer.write(len(result[0]).to_bytes(2, "big") + result[0])
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._clients.discard(writer)
            if task is not None:
                self._handlers.discard(task)
            writer.close()

    async def close(self) -> None:
        """Stop answering and close every connection."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for writer in list(self._clients):
                writer.close()  # the handler sees EOF and ends
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._tcp.wait_closed()
            self._tcp = None


async def start(zone: Zone, host: str, port: int, *, verbose: bool = False) -> DnsServer:
    """Start answering for ``zone`` on ``host:port`` (UDP and TCP; port 0: any)."""
    server = DnsServer(zone, verbose=verbose)
    await server._bind(host, port)
    return server


async def _run(args: argparse.Namespace) -> int:
    records: dict[dns.name.Name, list[str]] = {}
    for name, address in args.record:
        records.setdefault(name, []).append(address)
    texts: dict[dns.name.Name, list[str]] = {}
    for name, value in args.txt:
        texts.setdefault(name, []).append(value)
    zone = Zone(records, args.zone or None, ttl=args.ttl, texts=texts)
    servers = [await start(zone, h, p, verbose=args.verbose) for h, p in args.listen]
    for server in servers:
        host, port = server.address
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        print(f"listening on {shown}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        await server.close()
    return 0


def _zone_arg(text: str) -> dns.name.Name:
    try:
        return dns.name.root if text.strip() == "." else _name(text)
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise argparse.ArgumentTypeError(f"zone {text!r}: {exc}") from None


def _arg(parse: Callable[[str], object]) -> Callable[[str], object]:
    """``parse`` with its ``ValueError`` turned into argparse's clean usage error."""

    def wrapped(text: str) -> object:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return wrapped


def _ttl(text: str) -> int:
    if not text.isdigit() or int(text) > 86400:
        raise ValueError(f"ttl {text!r}: expected 0..86400 seconds")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m controller.demo.dns", description=__doc__)
    p.add_argument(
        "--listen",
        action="append",
        required=True,
        type=_arg(parse_listen),
        help="HOST:PORT to answer on, UDP and TCP (repeatable)",
    )
    p.add_argument(
        "--record",
        action="append",
        default=[],
        type=_arg(parse_record),
        help="NAME=ADDRESS (repeatable; A or AAAA by the address's family)",
    )
    p.add_argument(
        "--txt",
        action="append",
        default=[],
        type=_arg(parse_txt),
        help="NAME=TEXT: a TXT record (repeatable; each one string)",
    )
    p.add_argument(
        "--zone",
        action="append",
        type=_zone_arg,
        help="a zone to answer for ('.': every name; default: each record's parent)",
    )
    p.add_argument("--ttl", type=_arg(_ttl), default=60, metavar="SECONDS")
    p.add_argument("--verbose", action="store_true", help="one line per query on stderr")
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
