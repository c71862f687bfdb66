"""The local API protocol, sans I/O: frames and typed messages (see docs/local-api.md).

Modelled on the helper protocol (``wg_backends/helper/protocol.py``). A frame is a 4-byte
big-endian length followed by that many bytes of UTF-8 JSON, at most :data:`MAX_FRAME`
bytes; once a frame has started the rest must arrive within :data:`FRAME_TIMEOUT` seconds
(the I/O layer enforces it, using :attr:`FrameDecoder.pending`). Every message is an object
with ``v`` (protocol version, now ``1``), ``type`` and ``id``: the client picks the id of
a request and every reply to it carries the same id; events pushed to a subscriber carry
id 0. Requests are answered independently (a long sign-in does not hold up a status read).

The engine's models travel as they are: ``Snapshot``, ``Event``, ``Setting`` (frozen
dataclasses) and their enums are encoded and decoded by msgspec directly, so a client gets
the very objects the engine made (equal, field by field). Every malformed input raises
:class:`~core.engine.localapi.errors.ProtocolError`; a version other than 1 raises
:class:`~core.engine.localapi.errors.UnsupportedVersionError`.
"""

from __future__ import annotations

import struct
from typing import Any, Final, cast

import msgspec

from core.engine.api import Setting
from core.engine.localapi.errors import ProtocolError, UnsupportedVersionError
from core.engine.state import Event, Snapshot
from wg_backends.helper.protocol import FrameDecoder as _Frames

__all__ = [
    "FRAME_TIMEOUT",
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "Connect",
    "Diagnostics",
    "DiagnosticsReply",
    "Disconnect",
    "Done",
    "ErrorReply",
    "EventMsg",
    "FrameDecoder",
    "GetSettings",
    "GetSnapshot",
    "Hello",
    "HelloReply",
    "OpenUrl",
    "RecheckPosture",
    "Reply",
    "Request",
    "SetSetting",
    "SettingsReply",
    "SignIn",
    "SignOut",
    "SnapshotReply",
    "Subscribe",
    "decode_reply",
    "decode_request",
    "encode",
    "frame",
]

PROTOCOL_VERSION: Final = 1
#: Largest frame body either side accepts (a snapshot with hundreds of resources fits).
MAX_FRAME: Final = 256 * 1024
#: Seconds within which a started frame must be complete.
FRAME_TIMEOUT: Final = 10.0
_HEADER = struct.Struct(">I")


class _Msg(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", kw_only=True):
    id: int = 0
    v: int = PROTOCOL_VERSION


# ----------------------------------------------------------------------------- requests
class Hello(_Msg, tag="hello", frozen=True):
    """Say who is calling (``client``: "tray", "cli", …, for the agent's log)."""

    client: str = ""


class GetSnapshot(_Msg, tag="get_snapshot", frozen=True):
    """Ask for the current snapshot (answered with ``SnapshotReply``)."""


class Subscribe(_Msg, tag="subscribe", frozen=True):
    """Receive every following event as ``EventMsg`` (answered first with the snapshot)."""


class Connect(_Msg, tag="connect", frozen=True):
    """Connect; answered with the snapshot once the engine settled (or ``ErrorReply``)."""


class Disconnect(_Msg, tag="disconnect", frozen=True):
    """Disconnect; ``reason`` is required under managed always-on (break-glass)."""

    reason: str | None = None


class SignIn(_Msg, tag="sign_in", frozen=True):
    """Sign in; the browser page comes back to *this* client as ``OpenUrl``."""

    device_code: bool = False


class SignOut(_Msg, tag="sign_out", frozen=True):
    """Sign out; ``reason`` is required under managed always-on (break-glass)."""

    reason: str | None = None


class RecheckPosture(_Msg, tag="recheck_posture", frozen=True):
    """Collect posture now and re-evaluate."""


class Diagnostics(_Msg, tag="diagnostics", frozen=True):
    """Write the redacted diagnostics zip to ``path`` (a directory or a .zip path)."""

    path: str


class GetSettings(_Msg, tag="get_settings", frozen=True):
    """Ask for the effective settings (answered with ``SettingsReply``)."""


class SetSetting(_Msg, tag="set_setting", frozen=True):
    """Change a user setting to ``value`` (any JSON value)."""

    key: str
    value: Any


# ------------------------------------------------------------------------------ replies
class HelloReply(_Msg, tag="hello_reply", frozen=True):
    """Who serves: protocol version, "agent" | "tray" | "cli", and the process id."""

    version: int
    hosted_by: str
    pid: int


class SnapshotReply(_Msg, tag="snapshot", frozen=True):
    """The snapshot after the request."""

    snapshot: Snapshot


class EventMsg(_Msg, tag="event", frozen=True):
    """One engine event, pushed to a subscribed client (id 0)."""

    event: Event


class OpenUrl(_Msg, tag="open_url", frozen=True):
    """Open ``url`` in this client's browser (for the sign-in it asked for; id of SignIn)."""

    url: str


class SettingsReply(_Msg, tag="settings", frozen=True):
    """The effective settings with their source and lock."""

    settings: tuple[Setting, ...]


class DiagnosticsReply(_Msg, tag="diagnostics_reply", frozen=True):
    """Where the diagnostics zip was written."""

    path: str


class Done(_Msg, tag="done", frozen=True):
    """The request succeeded and has nothing more to say."""


class ErrorReply(_Msg, tag="error", frozen=True):
    """A refusal or failure in words, with a stable ``code`` (docs/local-api.md)."""

    code: str = "internal"
    title: str = ""
    detail: str = ""
    next_step: str = ""


Request = (
    Hello
    | GetSnapshot
    | Subscribe
    | Connect
    | Disconnect
    | SignIn
    | SignOut
    | RecheckPosture
    | Diagnostics
    | GetSettings
    | SetSetting
)
Reply = (
    HelloReply | SnapshotReply | EventMsg | OpenUrl | SettingsReply | DiagnosticsReply | Done
) | ErrorReply

_enc = msgspec.json.Encoder()
_req_dec = msgspec.json.Decoder(Request)
_rep_dec = msgspec.json.Decoder(Reply)
_raw_dec = msgspec.json.Decoder()


def encode(msg: Request | Reply) -> bytes:
    """A message as one complete frame. Raises :class:`ProtocolError` if too large."""
    return frame(_enc.encode(msg))


def frame(body: bytes) -> bytes:
    """Prefix ``body`` with its length. Raises :class:`ProtocolError` above MAX_FRAME."""
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"message of {len(body)} bytes exceeds {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


def message_id(body: bytes) -> int:
    """The ``id`` of a body, if it has a readable one (to answer a bad request), else 0."""
    try:
        raw = _raw_dec.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return 0
    ident = raw.get("id") if isinstance(raw, dict) else None
    return ident if isinstance(ident, int) and not isinstance(ident, bool) else 0


def _version(body: bytes) -> None:
    # The version is checked before the schema, so a client of another version gets a
    # clear answer rather than "unknown field".
    try:
        raw = _raw_dec.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("a message must be a JSON object")
    v = raw.get("v", PROTOCOL_VERSION)
    if v != PROTOCOL_VERSION or isinstance(v, bool):
        raise UnsupportedVersionError(
            f"protocol version {v!r} is not supported (this side speaks {PROTOCOL_VERSION})"
        )


def decode_request(body: bytes) -> Request:
    """Parse one request body. Raises :class:`ProtocolError` (JSON, schema, version)."""
    _version(body)
    try:
        return cast(Request, _req_dec.decode(body))
    except (
        msgspec.ValidationError,
        msgspec.DecodeError,
        UnicodeDecodeError,
        RecursionError,
    ) as exc:
        raise ProtocolError(f"bad request: {exc}") from None


def decode_reply(body: bytes) -> Reply:
    """Parse one reply body. Raises :class:`ProtocolError`."""
    _version(body)
    try:
        return cast(Reply, _rep_dec.decode(body))
    except (
        msgspec.ValidationError,
        msgspec.DecodeError,
        UnicodeDecodeError,
        RecursionError,
    ) as exc:
        raise ProtocolError(f"bad reply: {exc}") from None


class FrameDecoder(_Frames):
    """Accumulates bytes and yields complete frame bodies, in order (the helper
    protocol's framing, with this protocol's cap and error).

    Raises :class:`ProtocolError` as soon as a header announces more than ``max_frame``
    bytes (before buffering them). One per connection; not thread-safe.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        super().__init__(max_frame, error=ProtocolError)
