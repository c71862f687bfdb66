"""The relay stream's framing: WireGuard datagrams and a little control over TLS 1.3.

Both ends use this module: the helper's bridge (``wg_backends.relay``) and the reference
relay (``controller.relay``). A stream is a TLS 1.3 connection with a client certificate
(ALPN :data:`ALPN`); on it, frames::

    +--------+----------------+-----------------+
    | type 1 | length 2 (BE)  | payload (length)|
    +--------+----------------+-----------------+

* ``HELLO`` (client → relay, first frame, JSON): ``{"v": 1, "gateway": "host:port"}``
  opens a stream to that gateway; ``{"v": 1, "probe": true}`` opens a probe (ping only,
  no gateway socket, not the device's stream: used to measure latency and health).
* ``READY`` (relay → client, JSON): ``{"v": 1, "relay": name, "streams": n}`` (n: the
  relay's open streams, its load).
* ``ERROR`` (relay → client, JSON, then the relay closes): ``{"code": c, "message": m}``
  with ``c`` among :data:`ERROR_CODES`.
* ``DATA``: one WireGuard datagram, 1–65535 bytes, either way.
* ``PING``: 8 opaque bytes (client → relay); ``PONG``: the same 8 bytes and the relay's
  open streams as a big-endian u32 (relay → client).

Anything else — an unknown type, an empty DATA, a JSON frame over
:data:`MAX_CONTROL_BYTES`, a second HELLO — is a protocol error: the receiver closes the
stream. Pure code; no I/O. Raises :class:`FrameError`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any, Final

__all__ = [
    "ALPN",
    "DATA",
    "ERROR",
    "ERROR_CODES",
    "HEADER",
    "HELLO",
    "MAX_CONTROL_BYTES",
    "MAX_PAYLOAD",
    "PING",
    "PONG",
    "READY",
    "FrameDecoder",
    "FrameError",
    "control",
    "encode",
    "parse_control",
    "parse_pong",
    "pong",
]

ALPN: Final = "rustronaut-relay/1"
HELLO: Final = 0x01
READY: Final = 0x02
ERROR: Final = 0x05
DATA: Final = 0x10
PING: Final = 0x20
PONG: Final = 0x21
_TYPES: Final = frozenset({HELLO, READY, ERROR, DATA, PING, PONG})

HEADER: Final = struct.Struct("!BH")
MAX_PAYLOAD: Final = 65535
MAX_CONTROL_BYTES: Final = 1024

#: Why a relay refuses or closes a stream.
ERROR_CODES: Final = frozenset(
    {
        "unknown_device",  # the certificate's device is not (or no longer) enrolled with this key
        "revoked",  # the device was revoked while connected
        "gateway_not_served",  # this relay does not forward to that gateway
        "replaced",  # the same device opened a newer stream
        "overloaded",  # the relay is at its stream limit
        "protocol",  # a malformed or unexpected frame
        "shutdown",  # the relay is stopping
    }
)


class FrameError(ValueError):
    """A malformed frame or control message: the stream must be closed."""


def encode(kind: int, payload: bytes = b"") -> bytes:
    """One frame. Raises :class:`FrameError` for an unknown type or a payload over 65535
    bytes (or an empty DATA)."""
    if kind not in _TYPES:
        raise FrameError(f"unknown frame type {kind:#x}")
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"frame payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    if kind == DATA and not payload:
        raise FrameError("an empty DATA frame")
    return HEADER.pack(kind, len(payload)) + payload


def control(kind: int, message: dict[str, Any]) -> bytes:
    """A JSON control frame (HELLO, READY, ERROR)."""
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_CONTROL_BYTES:
        raise FrameError(f"control message of {len(body)} bytes is over {MAX_CONTROL_BYTES}")
    return encode(kind, body)


def parse_control(payload: bytes) -> dict[str, Any]:
    """A control frame's JSON object. Raises :class:`FrameError`."""
    if len(payload) > MAX_CONTROL_BYTES:
        raise FrameError(f"control message of {len(payload)} bytes is over {MAX_CONTROL_BYTES}")
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FrameError(f"control message is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise FrameError("control message is not a JSON object")
    return value


def pong(ping_payload: bytes, streams: int) -> bytes:
    """The PONG frame answering a PING's payload with the relay's load."""
    if len(ping_payload) != 8:
        raise FrameError("a PING carries exactly 8 bytes")
    return encode(PONG, ping_payload + struct.pack("!I", max(0, min(streams, 2**32 - 1))))


def parse_pong(payload: bytes) -> tuple[bytes, int]:
    """``(ping payload, relay streams)`` from a PONG. Raises :class:`FrameError`."""
    if len(payload) != 12:
        raise FrameError("a PONG carries exactly 12 bytes")
    return payload[:8], struct.unpack("!I", payload[8:])[0]


class FrameDecoder:
    """Incremental decoder: ``feed`` bytes, iterate ``(type, payload)`` frames.

    Holds at most one partial frame (≤ 65,538 bytes): memory per stream is bounded
    whatever the peer sends. Raises :class:`FrameError` on an unknown type or an empty
    DATA frame.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        """Add ``data`` and yield every complete frame in it."""
        buf = self._buf
        buf += data
        pos = 0
        size = HEADER.size
        try:
            while len(buf) - pos >= size:
                kind, length = HEADER.unpack_from(buf, pos)
                if kind not in _TYPES:
                    raise FrameError(f"unknown frame type {kind:#x}")
                if kind == DATA and length == 0:
                    raise FrameError("an empty DATA frame")
                end = pos + size + length
                if len(buf) < end:
                    break
                payload = bytes(buf[pos + size : end])
                pos = end
                yield kind, payload
        finally:
            del buf[:pos]

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held."""
        return len(self._buf)
