"""Scripted DNS servers on loopback for the resolver's tests: honest, slow or lying.

``ScriptedDns`` listens on UDP and TCP on one loopback port and hands every query to a
script: ``script(query, tcp) -> list[Send]``. Each ``Send`` carries the bytes to send and
whether to send them from a *second* socket (another source port: a spoofer on the
path). Helpers build replies: ``reply(query, ...)`` makes an answer to the query with the
given records, ID and flags, so each test states its lie in one line.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.rcode
import dns.rrset


@dataclass(frozen=True)
class Send:
    """Bytes to send back; ``other_port``: from another socket (a spoofed source)."""

    data: bytes
    other_port: bool = False


Script = Callable[[dns.message.Message, bool], Sequence[Send]]


def reply(
    query: dns.message.Message,
    *records: str,
    rcode: int = dns.rcode.NOERROR,
    msg_id: int | None = None,
    tc: bool = False,
    authority: Sequence[str] = (),
) -> bytes:
    """An answer to ``query`` holding ``records`` ("name ttl IN A 1.2.3.4" each)."""
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    for text in records:
        response.answer.append(_rrset(text))
    for text in authority:
        response.authority.append(_rrset(text))
    if tc:
        response.flags |= dns.flags.TC
    if msg_id is not None:
        response.id = msg_id
    return response.to_wire(max_size=65535)


def _rrset(text: str) -> dns.rrset.RRset:
    """``"name ttl IN TYPE data"``; for A/AAAA every word of data is one record."""
    name, ttl, rdclass, rdtype, *rest = text.split()
    name = name if name.endswith(".") else name + "."
    rdatas = rest if rdtype in ("A", "AAAA") else [" ".join(rest)]
    return dns.rrset.from_text_list(name, int(ttl), rdclass, rdtype, rdatas)


def question(query: dns.message.Message) -> tuple[str, str]:
    """(name without the final dot, lower case; "A" or "AAAA")."""
    q = query.question[0]
    return q.name.to_text(omit_final_dot=True).lower(), dns.rdatatype.to_text(q.rdtype)


@dataclass
class ScriptedDns:
    """A UDP+TCP server on 127.0.0.1 running ``script``; ``seen`` lists (name, type, tcp)."""

    script: Script
    seen: list[tuple[str, str, bool]] = field(default_factory=list)
    port: int = 0
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.Server | None = None
    _other: socket.socket | None = None

    @property
    def address(self) -> str:
        """The server as ``TunnelResolver`` takes it."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> ScriptedDns:
        loop = asyncio.get_running_loop()
        outer = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                for send in outer._handle(data, tcp=False):
                    if send.other_port:
                        assert outer._other is not None
                        outer._other.sendto(send.data, addr)
                    else:
                        self.transport.sendto(send.data, addr)  # type: ignore[attr-defined]

        for _ in range(8):
            udp, _ = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", 0))
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._client, "127.0.0.1", port)
            except OSError:
                udp.close()
                continue
            self._udp, self.port = udp, port
            break
        self._other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._other.bind(("127.0.0.1", 0))
        return self

    def _handle(self, data: bytes, *, tcp: bool) -> Sequence[Send]:
        query = dns.message.from_wire(data)
        name, rdtype = question(query)
        self.seen.append((name, rdtype, tcp))
        return self.script(query, tcp)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            size = int.from_bytes(await reader.readexactly(2), "big")
            for send in self._handle(await reader.readexactly(size), tcp=True):
                writer.write(len(send.data).to_bytes(2, "big") + send.data)
            await writer.drain()
            await reader.read()  # until the client closes
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._other is not None:
            self._other.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()


def silent_port() -> socket.socket:
    """A bound UDP socket nobody reads: a server that never answers (caller closes it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock
