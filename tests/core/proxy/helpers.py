"""Shared pieces of the proxy tests: a table-driven Decider and small real servers.

``TableDecider`` is a legitimate injected policy (the proxy accepts any ``Decider``): it
allows destinations by host name, CIDR and port and denies everything else by default.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.policy.api import AccessRequest, Decision, Effect
from core.proxy.dial import system_connector


@dataclass
class TableDecider:
    """Allow rules: (resource, hosts, cidrs, ports). Deny by default. Records requests."""

    rules: list[tuple[str, tuple[str, ...], tuple[str, ...], tuple[int, ...]]] = field(
        default_factory=list
    )
    seen: list[AccessRequest] = field(default_factory=list)

    def decide(self, request: AccessRequest) -> Decision:
        self.seen.append(request)
        for resource, hosts, cidrs, ports in self.rules:
            if ports and request.port not in ports:
                continue
            if request.host in hosts:
                return Decision(Effect.ALLOW, f"allow-{resource}", "host allowed", resource)
            candidates = [request.host, *request.addresses]
            for cand in candidates:
                try:
                    ip = ipaddress.ip_address(cand)
                except ValueError:
                    continue
                if any(ip in ipaddress.ip_network(c) for c in cidrs):
                    return Decision(Effect.ALLOW, f"allow-{resource}", "cidr allowed", resource)
        return Decision(Effect.DENY, None, "no rule allows this destination")


class EchoServer:
    """Real asyncio echo server on loopback; ``half_close_reply`` answers after EOF."""

    def __init__(self) -> None:
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.after_eof = b""

    async def start(self, host: str = "127.0.0.1") -> int:
        self.server = await asyncio.start_server(self._handle, host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
            if self.after_eof:
                w.write(self.after_eof)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def socks_open(
    proxy_port: int,
    host: str | bytes,
    port: int,
    *,
    proxy_host: str = "127.0.0.1",
) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
    """SOCKS5 CONNECT through the proxy; returns (reply code, reader, writer)."""
    r, w = await asyncio.open_connection(proxy_host, proxy_port)
    w.write(b"\x05\x01\x00")
    assert await r.readexactly(2) == b"\x05\x00"
    if isinstance(host, bytes):
        addr = b"\x03" + bytes([len(host)]) + host
    else:
        try:
            ip = ipaddress.ip_address(host)
            addr = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
        except ValueError:
            addr = b"\x03" + bytes([len(host)]) + host.encode()
    w.write(b"\x05\x01\x00" + addr + struct.pack("!H", port))
    reply = await r.readexactly(4)
    rest = 4 if reply[3] == 1 else 16
    await r.readexactly(rest + 2)
    return reply[1], r, w


async def refused_at_accept(proxy_port: int, first: bytes = b"\x05\x01\x00") -> bool:
    """Whether the proxy closes a connection that sends ``first`` without answering a
    byte (refused at accept, before the handshake)."""
    r, w = await asyncio.open_connection("127.0.0.1", proxy_port)
    try:
        w.write(first)
        try:
            data = await asyncio.wait_for(r.read(), 5)
        except ConnectionResetError:
            data = b""
        return data == b""
    finally:
        w.close()


STAND_INS = {"192.0.2.1": "127.0.0.1", "2001:db8::1": "::1"}
"""Documentation addresses the tests' resolvers answer for names, standing in for
addresses behind the tunnel: a name's answer may not be loopback (``destinations``),
so ``stand_in_connector`` dials the loopback servers in their place."""


async def stand_in_connector(addresses: Sequence[str], port: int) -> socket.socket:
    """``system_connector`` to the loopback address each stand-in address stands for."""
    return await system_connector([STAND_INS.get(a, a) for a in addresses], port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
