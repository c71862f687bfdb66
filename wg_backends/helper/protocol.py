"""The helper protocol, sans I/O: frames and typed messages (see docs/helper-protocol.md).

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON, at most
:data:`MAX_FRAME` bytes. Every message is an object with ``v`` (protocol version, now
``1``), ``type`` and ``id`` (chosen by the client, echoed in the answer). Requests:
``hello``, ``up`` (with a ``spec``), ``down`` and ``status`` (with an ``interface``).
Answers: ``ok`` (with a ``result``) or ``error`` (with ``code`` and ``message``).
:class:`FrameDecoder` takes bytes in any chunking and yields complete bodies; the decode
functions map every malformed input to :class:`~wg_backends.errors.ProtocolError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, Final, cast

import msgspec

from wg_backends.errors import ProtocolError
from wg_backends.spec import TunnelSpec

__all__ = [
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "Down",
    "ErrorReply",
    "FrameDecoder",
    "Hello",
    "Ok",
    "Reply",
    "Request",
    "Status",
    "Up",
    "decode_reply",
    "decode_request",
    "encode",
    "frame",
]

PROTOCOL_VERSION: Final = 1
MAX_FRAME: Final = 64 * 1024
_HEADER = struct.Struct(">I")

# Error codes the helper answers with.
UNAUTHORIZED = "unauthorized"
BUSY = "busy"
BAD_REQUEST = "bad_request"
BAD_SPEC = "bad_spec"
BACKEND = "backend"
NOT_UP = "not_up"
UNSUPPORTED_VERSION = "unsupported_version"
INTERNAL = "internal"


class _Msg(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", kw_only=True):
    id: int
    v: int = PROTOCOL_VERSION


class Hello(_Msg, tag="hello", frozen=True):
    """Ask for the helper's identity, protocol version and backend."""


class Up(_Msg, tag="up", frozen=True):
    """Bring ``spec`` up (private key required). The connection becomes the tunnel's owner."""

    spec: TunnelSpec


class Down(_Msg, tag="down", frozen=True):
    """Bring a tunnel made by this helper down."""

    interface: str


class Status(_Msg, tag="status", frozen=True):
    """Report a tunnel's live status."""

    interface: str


class Ok(_Msg, tag="ok", frozen=True):
    """Success; ``result`` depends on the request."""

    result: dict[str, Any] = {}


class ErrorReply(_Msg, tag="error", frozen=True):
    """Failure with a stable ``code`` and a human ``message``."""

    code: str = INTERNAL
    message: str = ""


Request = Hello | Up | Down | Status
Reply = Ok | ErrorReply

_enc = msgspec.json.Encoder()
_req_dec = msgspec.json.Decoder(Request)
_rep_dec = msgspec.json.Decoder(Reply)


def encode(msg: Request | Reply) -> bytes:
    """A message as one complete frame. Raises :class:`ProtocolError` if too large."""
    return frame(_enc.encode(msg))


def frame(body: bytes) -> bytes:
    """Prefix ``body`` with its length. Raises :class:`ProtocolError` above MAX_FRAME."""
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"message of {len(body)} bytes exceeds {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


def _version(body: bytes) -> None:
    # Check the version before the schema, so that a v2 client gets a clear answer.
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("message must be a JSON object")
    v = raw.get("v", PROTOCOL_VERSION)
    if v != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {v!r} (this helper speaks 1)")


def decode_request(body: bytes) -> Request:
    """Parse one request body. Raises :class:`ProtocolError` (schema, JSON, version, spec)."""
    _version(body)
    try:
        return cast(Request, _req_dec.decode(body))
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ProtocolError(f"bad request: {exc}") from None


def decode_reply(body: bytes) -> Reply:
    """Parse one reply body. Raises :class:`ProtocolError`."""
    _version(body)
    try:
        return cast(Reply, _rep_dec.decode(body))
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ProtocolError(f"bad reply: {exc}") from None


class FrameDecoder:
    """Accumulates bytes and yields complete frame bodies, in order.

    Raises :class:`ProtocolError` as soon as a header announces more than ``max_frame``
    bytes (before buffering them). Not thread-safe; one per connection.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a complete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Add ``data``; yield every frame body now complete."""
        self._buf += data
        while len(self._buf) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self._buf)
            if length > self._max:
                raise ProtocolError(f"frame of {length} bytes exceeds {self._max}")
            if len(self._buf) < _HEADER.size + length:
                return
            body = bytes(self._buf[_HEADER.size : _HEADER.size + length])
            del self._buf[: _HEADER.size + length]
            yield body
