"""Sans-IO SOCKS5 server handshake (RFC 1928, no-auth method only).

``Socks5Handshake.feed(data)`` takes whatever bytes arrived and returns actions for the
I/O layer: ``Send`` (bytes to write), ``Connect`` (the client asked for a TCP CONNECT to
a destination; the server decides and then calls ``reply``) or ``Fail`` (write its bytes,
then close). It never performs I/O, never raises on client input, and accepts input split
at any byte boundary. BIND and UDP ASSOCIATE are refused with "command not supported"
(0x07): policy is decided per TCP connection, and a UDP relay would bypass it.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "Connect",
    "Fail",
    "Reply",
    "Send",
    "Socks5Handshake",
    "reply_bytes",
]

VERSION = 5
_NO_AUTH = 0x00
_NO_ACCEPTABLE = 0xFF


class Reply(IntEnum):
    """SOCKS5 reply codes (RFC 1928 §6)."""

    SUCCEEDED = 0x00
    GENERAL_FAILURE = 0x01
    NOT_ALLOWED = 0x02
    NETWORK_UNREACHABLE = 0x03
    HOST_UNREACHABLE = 0x04
    CONNECTION_REFUSED = 0x05
    TTL_EXPIRED = 0x06
    COMMAND_NOT_SUPPORTED = 0x07
    ADDRESS_TYPE_NOT_SUPPORTED = 0x08


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``data`` to the client and go on reading."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Connect:
    """The client asked to CONNECT to ``host`` (raw, not yet normalised) and ``port``.

    ``rest`` holds bytes the client sent after the request (optimistic data) that must
    be forwarded once the connection is up.
    """

    host: str | bytes
    port: int
    rest: bytes


@dataclass(frozen=True, slots=True)
class Fail:
    """Protocol error: write ``data`` (may be empty), then close. ``reason`` is for logs."""

    data: bytes
    reason: str


Action = Send | Connect | Fail

_FAIL_REPLY_TAIL = b"\x00\x01" + bytes(6)  # RSV, ATYP=IPv4, 0.0.0.0:0


def reply_bytes(code: Reply, bind: tuple[str, int] | None = None) -> bytes:
    """The SOCKS5 reply for ``code`` with bound address ``bind`` (0.0.0.0:0 when None)."""
    if bind is None:
        return bytes((VERSION, code)) + _FAIL_REPLY_TAIL
    v6 = ":" in bind[0]
    packed = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, bind[0])
    return bytes((VERSION, code, 0, 4 if v6 else 1)) + packed + struct.pack("!H", bind[1])


class Socks5Handshake:
    """State of one client's SOCKS5 handshake. One instance per connection; not threadsafe.

    States: greeting → request → done. After ``Connect`` or ``Fail`` every further ``feed``
    returns nothing (the I/O layer owns the connection from then on).
    """

    __slots__ = ("_buf", "_state")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._state = "greeting"

    @property
    def done(self) -> bool:
        """True once a ``Connect`` or ``Fail`` has been returned."""
        return self._state == "done"

    def feed(self, data: bytes) -> list[Action]:
        """Consume ``data``; return the actions it makes possible (often none yet)."""
        if self._state == "done":
            return []
        self._buf += data
        actions: list[Action] = []
        while True:
            action = self._greeting() if self._state == "greeting" else self._request()
            if action is None:
                return actions
            actions.append(action)
            if not isinstance(action, Send):
                self._state = "done"
                self._buf.clear()
                return actions

    def _greeting(self) -> Action | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        if buf[0] != VERSION:
            return Fail(b"", f"not SOCKS5 (version byte {buf[0]:#04x})")
        nmethods = buf[1]
        if nmethods == 0:
            return Fail(bytes((VERSION, _NO_ACCEPTABLE)), "SOCKS5 greeting offers no method")
        if len(buf) < 2 + nmethods:
            return None
        methods = bytes(buf[2 : 2 + nmethods])
        del buf[: 2 + nmethods]
        if _NO_AUTH not in methods:
            return Fail(bytes((VERSION, _NO_ACCEPTABLE)), "SOCKS5 client does not offer no-auth")
        self._state = "request"
        return Send(bytes((VERSION, _NO_AUTH)))

    def _request(self) -> Action | None:
        buf = self._buf
        if len(buf) < 4:
            if buf and buf[0] != VERSION:
                return Fail(reply_bytes(Reply.GENERAL_FAILURE), "bad version in request")
            return None
        ver, cmd, rsv, atyp = buf[0], buf[1], buf[2], buf[3]
        if ver != VERSION:
            return Fail(reply_bytes(Reply.GENERAL_FAILURE), "bad version in request")
        if rsv != 0:
            return Fail(reply_bytes(Reply.GENERAL_FAILURE), "non-zero reserved byte")
        if atyp == 1:
            end = 4 + 4
        elif atyp == 4:
            end = 4 + 16
        elif atyp == 3:
            if len(buf) < 5:
                return None
            if buf[4] == 0:
                return Fail(reply_bytes(Reply.GENERAL_FAILURE), "empty domain name")
            end = 5 + buf[4]
        else:
            return Fail(
                reply_bytes(Reply.ADDRESS_TYPE_NOT_SUPPORTED), f"address type {atyp} unknown"
            )
        if cmd != 1:
            # Refuse before waiting for the address: BIND/UDP ASSOCIATE are never served.
            names = {2: "BIND", 3: "UDP ASSOCIATE"}
            return Fail(
                reply_bytes(Reply.COMMAND_NOT_SUPPORTED),
                f"command {names.get(cmd, cmd)} not supported",
            )
        if len(buf) < end + 2:
            return None
        host: str | bytes
        if atyp == 1:
            host = socket.inet_ntoa(bytes(buf[4:8]))  # C: the same dotted quad, faster
        elif atyp == 4:
            host = str(ipaddress.IPv6Address(bytes(buf[4:20])))
        else:
            host = bytes(buf[5:end])
        (port,) = struct.unpack_from("!H", buf, end)
        rest = bytes(buf[end + 2 :])
        if port == 0:
            return Fail(reply_bytes(Reply.GENERAL_FAILURE), "destination port 0")
        return Connect(host, port, rest)
