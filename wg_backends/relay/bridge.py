"""The local UDP endpoint WireGuard talks to while its packets travel over a relay.

The bridge binds UDP ``127.0.0.1:0`` and ``connect()``s it to WireGuard's own listen
port: the kernel then only hands it datagrams from that port, so another local account
can neither inject packets into the tunnel's path nor read them (a datagram from any
other source is dropped, and counted). The supervisor points the WireGuard peer at the
bridge's port.

- WireGuard → bridge → the relay stream (DATA frames). While **probing** (retrying UDP in
  the background), each datagram also goes straight to the gateway's real endpoint from
  a separate unconnected *probe socket*; the gateway takes the first copy and drops the
  duplicate (WireGuard's replay window). A handshake initiation's relay copy leaves
  :data:`HEAD_START_S` later: the gateway answers where the first copy came from, and a
  relay as near as the gateway would otherwise win the race and UDP never be seen.
- Relay → bridge → WireGuard, while **delivering** (until UDP is back: then a late
  packet from the relay would pull WireGuard's endpoint back to the bridge, since
  WireGuard roams to the source of the latest authenticated packet).
- Gateway → probe socket → WireGuard: UDP works both ways; ``on_udp_back`` is called
  once. Datagrams from any other address on the probe socket are dropped, and so is
  everything once delivery stopped (the drain: WireGuard stays on its own socket).

Runs on the asyncio loop that opened it; no thread on the data path.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any

from wg_backends.relay.client import RelayStream

__all__ = ["HEAD_START_S", "Bridge"]

#: WireGuard's handshake initiation message type (the first byte, little-endian u32 1).
_INITIATION = b"\x01"
#: How long a probed handshake initiation waits before its relay copy leaves (seconds).
HEAD_START_S = 0.1


class _Local(asyncio.DatagramProtocol):
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.bridge._from_wireguard(data, addr)

    def error_received(self, exc: Exception) -> None:  # ECONNREFUSED: WireGuard restarting
        self.bridge.errors += 1


class _Probe(asyncio.DatagramProtocol):
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.bridge._from_gateway(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable while UDP is blocked
        self.bridge.errors += 1


class Bridge:
    """One tunnel's bridge. ``wg_port``: WireGuard's listen port; ``gateway``: the
    gateway's ``(ip, port)`` (resolved); ``mark``: ``SO_MARK`` for the probe socket (a
    full tunnel's fwmark, Linux). ``await open()`` binds; :attr:`port` is then the
    endpoint to give WireGuard."""

    def __init__(
        self,
        wg_port: int,
        gateway: tuple[str, int],
        *,
        mark: int | None = None,
        on_udp_back: Callable[[], None] | None = None,
    ) -> None:
        self.wg_port = wg_port
        self.gateway = gateway
        self.mark = mark
        self.on_udp_back = on_udp_back or (lambda: None)
        self.port = 0
        self.stream: RelayStream | None = None
        self.delivering = True
        self.probing = False
        self.udp_seen = False
        # Counters (status, tests, benchmark).
        self.to_relay = 0
        self.from_relay = 0
        self.to_gateway = 0
        self.from_gateway = 0
        self.dropped_foreign = 0
        self.dropped_late = 0
        self.errors = 0
        self._local: asyncio.DatagramTransport | None = None
        self._probe: asyncio.DatagramTransport | None = None

    async def open(self) -> int:
        """Bind and connect the local socket, open the probe socket; the bridge port.
        Raises ``OSError``."""
        loop = asyncio.get_running_loop()
        local, _ = await loop.create_datagram_endpoint(
            lambda: _Local(self),
            local_addr=("127.0.0.1", 0),
            remote_addr=("127.0.0.1", self.wg_port),
        )
        self._local = local
        self.port = local.get_extra_info("sockname")[1]
        family = socket.AF_INET6 if ":" in self.gateway[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if self.mark is not None and hasattr(socket, "SO_MARK"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self.mark)
            # The probe socket must reach the gateway on whichever interface routes to it.
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))  # noqa: S104
            probe, _ = await loop.create_datagram_endpoint(lambda: _Probe(self), sock=sock)
        except BaseException:
            sock.close()
            local.close()
            raise
        self._probe = probe
        return self.port

    def attach(self, stream: RelayStream | None) -> None:
        """Carry datagrams over ``stream`` from now on (None: none; WireGuard's datagrams
        are then dropped, like a lossy network). The stream's ``on_data`` is set here."""
        self.stream = stream
        if stream is not None:
            stream.on_data = self._from_relay

    def _from_wireguard(self, data: bytes, addr: Any) -> None:
        # The socket is connected: only WireGuard's port can reach it. Checked anyway.
        if addr is not None and (addr[0], addr[1]) != ("127.0.0.1", self.wg_port):
            self.dropped_foreign += 1
            return
        stream = self.stream
        probing = self.probing and self._probe is not None
        if probing:
            assert self._probe is not None
            self._probe.sendto(data, self.gateway)
            self.to_gateway += 1
        if stream is not None and self.delivering:
            if probing and data[:1] == _INITIATION:
                # The gateway answers a handshake where the first copy of its initiation
                # came from (the second is a replay): give the direct copy a head start,
                # or a relay as near as the gateway wins the race and UDP is never seen.
                asyncio.get_running_loop().call_later(HEAD_START_S, self._late_send, data)
            else:
                stream.send(data)
            self.to_relay += 1

    def _late_send(self, data: bytes) -> None:
        stream = self.stream
        if stream is not None and self.delivering:
            stream.send(data)

    def _from_relay(self, data: bytes) -> None:
        if not self.delivering or self._local is None:
            self.dropped_late += 1
            return
        self.from_relay += 1
        self._local.sendto(data)

    def _from_gateway(self, data: bytes, addr: Any) -> None:
        if (addr[0], addr[1]) != self.gateway or self._local is None:
            self.dropped_foreign += 1
            return
        if not self.delivering:  # switched back: WireGuard must not roam to the bridge
            self.dropped_late += 1
            return
        self.from_gateway += 1
        self._local.sendto(data)  # the gateway answered: deliver it like relay traffic
        if not self.udp_seen:
            self.udp_seen = True
            self.on_udp_back()

    def stop_delivery(self) -> None:
        """UDP is back: nothing from the relay or the probe socket reaches WireGuard any
        more (the drain, until :meth:`close`)."""
        self.delivering = False
        self.probing = False

    def close(self) -> None:
        """Close both sockets and the stream. Idempotent."""
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        for transport in (self._local, self._probe):
            if transport is not None:
                with contextlib.suppress(Exception):
                    transport.close()
        self._local = self._probe = None
