"""The helper protocol, sans I/O: frames and typed messages (see docs/helper-protocol.md).

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON, at most
:data:`MAX_FRAME` bytes and nested at most :data:`MAX_DEPTH` deep. Every message is an
object with ``v`` (protocol version, now ``1``), ``type`` and ``id`` (chosen by the
client, echoed in the answer). Requests:
``hello``, ``up`` (with a ``spec``), ``down`` (with an ``interface``, and under managed
always-on ``break_glass`` plus a ``reason``), ``status`` (with an ``interface``),
``update`` (a ``spec``, applied without taking the tunnel down), ``enforce`` /
``release`` (transparent redirect and kill switch), ``sockets`` (marked tunnel
sockets passed back with ``SCM_RIGHTS``, Linux only), ``listeners`` (the helper's
transparent listening sockets, passed back the same way, Unix only) and
``install_update`` (a signed update ``manifest``, see :mod:`wg_backends.helper.updates`).
Answers: ``ok`` (with a ``result``) or ``error`` (with ``code`` and ``message``).
:class:`FrameDecoder` takes bytes in any chunking and yields complete bodies; the decode
functions map every malformed input (invalid UTF-8, absurd nesting, wrong schema) to
:class:`~wg_backends.errors.ProtocolError` and raise nothing else.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Annotated, Any, Final, cast

import msgspec
from msgspec import Meta

from wg_backends.errors import ProtocolError, SpecError
from wg_backends.spec import TunnelSpec, validate_interface

__all__ = [
    "MAX_DEPTH",
    "MAX_FRAME",
    "MAX_REASON",
    "MAX_RELAY_CERT",
    "MAX_REQUEST_FRAME",
    "MAX_SOCKETS",
    "PROTOCOL_VERSION",
    "Down",
    "Enforce",
    "ErrorReply",
    "FrameDecoder",
    "Hello",
    "InstallUpdate",
    "Listeners",
    "Ok",
    "Release",
    "Reply",
    "Request",
    "Sockets",
    "Status",
    "Up",
    "Update",
    "decode_reply",
    "decode_request",
    "encode",
    "frame",
]

PROTOCOL_VERSION: Final = 1
MAX_FRAME: Final = 64 * 1024
#: Largest request frame: an ``up``/``update`` carries a signed policy bundle (a 10,000-rule
#: bundle is about 5 MB). Replies stay within :data:`MAX_FRAME`.
MAX_REQUEST_FRAME: Final = 16 * 1024 * 1024 + 64 * 1024
#: Endorsements one ``up``/``update`` may relay, and the size of each.
MAX_ENDORSEMENTS: Final = 16
MAX_ENDORSEMENT: Final = 2048
#: Largest relay client certificate (PEM) an ``up``/``update`` may carry.
MAX_RELAY_CERT: Final = 8192
#: Deepest nesting of arrays/objects a body may have (a spec needs 4; msgspec would recurse
#: into 30,000 levels and raise ``RecursionError``, so deeper bodies are refused first).
MAX_DEPTH: Final = 16
#: Longest break-glass reason (characters).
MAX_REASON: Final = 500
#: Most sockets one ``sockets`` request may ask for (one frame's SCM_RIGHTS).
MAX_SOCKETS: Final = 64
_HEADER = struct.Struct(">I")

# Error codes the helper answers with.
UNAUTHORIZED = "unauthorized"
BUSY = "busy"
BAD_REQUEST = "bad_request"
BAD_SPEC = "bad_spec"
BAD_BUNDLE = "bad_bundle"
BACKEND = "backend"
NOT_UP = "not_up"
UNSUPPORTED_VERSION = "unsupported_version"
INTERNAL = "internal"
ALWAYS_ON = "always_on"
NOT_OWNER = "not_owner"
TOO_MANY = "too_many_connections"
UNSUPPORTED = "unsupported"
RATE_LIMITED = "rate_limited"


class _Msg(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", kw_only=True):
    id: int
    v: int = PROTOCOL_VERSION


class Hello(_Msg, tag="hello", frozen=True):
    """Ask for the helper's identity, protocol version and backend."""


_Endorsement = Annotated[str, Meta(max_length=MAX_ENDORSEMENT)]


class _TunnelRequest(_Msg, frozen=True):
    """A tunnel to bring up or update: a caller-built ``spec`` (private key required;
    refused when the organisation manages policy trust anchors) or a signed policy
    ``bundle`` with the ``profile`` to take from it (``"tunnel"`` or ``"gateway:<n>"``),
    the ``endorsements`` that chain its signer to the anchors and, optionally, the
    ``device_id`` the caller expects. With a bundle the helper verifies it itself and adds
    the caller's device key (:mod:`wg_backends.helper.bundles`). ``relay_cert``: the
    controller's client certificate (PEM) for the caller's relay key, used when UDP is
    blocked and the spec lists relays (issue 21); with either form."""

    spec: TunnelSpec | msgspec.UnsetType = msgspec.UNSET
    bundle: str | msgspec.UnsetType = msgspec.UNSET
    profile: str | msgspec.UnsetType = msgspec.UNSET
    endorsements: (
        Annotated[tuple[_Endorsement, ...], Meta(max_length=MAX_ENDORSEMENTS)] | msgspec.UnsetType
    ) = msgspec.UNSET
    device_id: Annotated[str, Meta(max_length=128)] | msgspec.UnsetType = msgspec.UNSET
    relay_cert: Annotated[str, Meta(max_length=MAX_RELAY_CERT)] | msgspec.UnsetType = msgspec.UNSET


class Up(_TunnelRequest, tag="up", frozen=True):
    """Bring a tunnel up (see :class:`_TunnelRequest`). The connection becomes its owner."""


class Down(_Msg, tag="down", frozen=True):
    """Bring a tunnel made by this helper down.

    Under managed always-on the helper refuses a plain ``down``; the break-glass path sets
    ``break_glass`` and gives the employee's ``reason`` (required then, logged by the
    helper with the caller's uid and pid).
    """

    interface: str
    # UNSET (omitted on the wire) rather than False/"" so a plain down stays the v1 frame.
    break_glass: bool | msgspec.UnsetType = msgspec.UNSET
    reason: str | msgspec.UnsetType = msgspec.UNSET


class Status(_Msg, tag="status", frozen=True):
    """Report a tunnel's live status."""

    interface: str


class Update(_TunnelRequest, tag="update", frozen=True):
    """Apply a spec (or a signed bundle's profile, as for ``up``) to the caller's tunnel of
    the same interface without taking it down (``wg syncconf`` + route diff: the handshake
    survives); enforcement follows the new AllowedIPs atomically. Same checks as ``up``."""


class Enforce(_Msg, tag="enforce", frozen=True):
    """Let only the decider's marked sockets into the tunnel (the kill switch) and, with a
    ``redirect_port``, redirect the owner's TCP to the tunnel's ranges to the transparent
    listeners the helper opens and holds on 127.0.0.1 / ::1 at that port (another free
    port, the same for both, when it is taken). The ranges come from the helper's own
    record. ``block_when_down``: keep rejecting the ranges if the tunnel goes away without
    a deliberate ``down``. Result: ``{"mark": int, "ranges": [cidr, ...],
    "redirect_port": int | null}`` (the port really used)."""

    interface: str
    redirect_port: int | None = None
    block_when_down: bool | msgspec.UnsetType = msgspec.UNSET


class Release(_Msg, tag="release", frozen=True):
    """Remove ``interface``'s enforcement (the tunnel stays up)."""

    interface: str


class Sockets(_Msg, tag="sockets", frozen=True):
    """``count`` (1-64) unconnected sockets of ``family`` (4 or 6) and ``kind`` ("tcp" or
    "udp") carrying the tunnel's mark and bound to its interface, passed in the answer's
    frame with ``SCM_RIGHTS``. Only the tunnel's owner uid; Linux only."""

    interface: str
    family: int
    kind: str = "tcp"
    count: int = 1


class Listeners(_Msg, tag="listeners", frozen=True):
    """Duplicates of the tunnel's transparent listening sockets (127.0.0.1 and ::1 at the
    enforced redirect port), passed in the answer's frame with ``SCM_RIGHTS``; result
    ``{"count": int, "redirect_port": int}``. Only the tunnel's owner uid; Unix only."""

    interface: str


class InstallUpdate(_Msg, tag="install_update", frozen=True):
    """Install the release a signed update ``manifest`` (JWS compact) names: the helper
    verifies it with its own managed keys, downloads, re-checks and runs the installer
    (:mod:`wg_backends.helper.updates`). Result ``{"version", "platform", "argv"}``;
    refusals carry an ``update_*`` code."""

    manifest: Annotated[str, Meta(min_length=1, max_length=32 * 1024)]


class Ok(_Msg, tag="ok", frozen=True):
    """Success; ``result`` depends on the request."""

    result: dict[str, Any] = {}


class ErrorReply(_Msg, tag="error", frozen=True):
    """Failure with a stable ``code`` and a human ``message``."""

    code: str = INTERNAL
    message: str = ""


Request = (
    Hello | Up | Down | Status | Update | Enforce | Release | Sockets | Listeners | InstallUpdate
)
Reply = Ok | ErrorReply

_enc = msgspec.json.Encoder()
_req_dec = msgspec.json.Decoder(Request)
_rep_dec = msgspec.json.Decoder(Reply)


def encode(msg: Request | Reply) -> bytes:
    """A message as one complete frame. Raises :class:`ProtocolError` if too large
    (:data:`MAX_REQUEST_FRAME` for ``up``/``update``, :data:`MAX_FRAME` otherwise)."""
    limit = MAX_REQUEST_FRAME if isinstance(msg, _TunnelRequest) else MAX_FRAME
    return frame(_enc.encode(msg), limit)


def frame(body: bytes, limit: int = MAX_FRAME) -> bytes:
    """Prefix ``body`` with its length. Raises :class:`ProtocolError` above ``limit``."""
    if len(body) > limit:
        raise ProtocolError(f"message of {len(body)} bytes exceeds {limit}")
    return _HEADER.pack(len(body)) + body


def _check_depth(body: bytes, limit: int = MAX_DEPTH) -> None:
    """Refuse a body nested deeper than ``limit`` (brackets inside strings do not count)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return  # cannot be deeper than the number of openers: the usual case, no scan
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                raise ProtocolError(f"message nested deeper than {limit} levels")
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1


def _version(body: bytes) -> None:
    # Check the version before the schema, so that a v2 client gets a clear answer.
    # msgspec raises UnicodeDecodeError / RecursionError for some inputs rather than its
    # own DecodeError: the UTF-8 and depth checks come first so that cannot happen.
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"not UTF-8 (byte {exc.start})") from None
    _check_depth(body)
    try:
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, ValueError, RecursionError) as exc:
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
        req = cast(Request, _req_dec.decode(body))
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"bad request: {exc}") from None
    if isinstance(req, Up | Update):
        _check_tunnel_request(req)
    if isinstance(req, Down) and isinstance(req.reason, str) and len(req.reason) > MAX_REASON:
        raise ProtocolError(f"bad request: reason longer than {MAX_REASON} characters")
    if isinstance(req, Down | Status | Enforce | Release | Sockets | Listeners):
        try:
            validate_interface(req.interface)
        except SpecError as exc:
            raise ProtocolError(f"bad request: {exc}") from None
    if (
        isinstance(req, Enforce)
        and req.redirect_port is not None
        and not (type(req.redirect_port) is int and 1 <= req.redirect_port <= 65535)
    ):
        raise ProtocolError("bad request: redirect_port must be 1-65535 or null")
    if isinstance(req, Sockets):
        if req.family not in (4, 6) or type(req.family) is not int:
            raise ProtocolError("bad request: family must be 4 or 6")
        if req.kind not in ("tcp", "udp"):
            raise ProtocolError("bad request: kind must be tcp or udp")
        if type(req.count) is not int or not 1 <= req.count <= MAX_SOCKETS:
            raise ProtocolError(f"bad request: count must be 1-{MAX_SOCKETS}")
    return req


def _check_tunnel_request(req: Up | Update) -> None:
    signed = isinstance(req.bundle, str)
    if signed == isinstance(req.spec, TunnelSpec):
        raise ProtocolError("bad request: give either a spec or a signed bundle (not both)")
    if signed and not isinstance(req.profile, str):
        raise ProtocolError("bad request: a signed bundle needs a profile")
    if not signed and not all(
        f is msgspec.UNSET for f in (req.profile, req.endorsements, req.device_id)
    ):
        raise ProtocolError("bad request: profile, endorsements and device_id go with a bundle")


def decode_reply(body: bytes) -> Reply:
    """Parse one reply body. Raises :class:`ProtocolError`."""
    _version(body)
    try:
        return cast(Reply, _rep_dec.decode(body))
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"bad reply: {exc}") from None


class FrameDecoder:
    """Accumulates bytes and yields complete frame bodies, in order.

    Raises ``error`` (:class:`ProtocolError` by default) as soon as a header announces
    more than ``max_frame`` bytes (before buffering them). Not thread-safe; one per
    connection. The engine's local API uses the same framing with its own error.
    """

    def __init__(
        self, max_frame: int = MAX_FRAME, *, error: type[Exception] = ProtocolError
    ) -> None:
        self._buf = bytearray()
        self._max = max_frame
        self._error = error

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
                raise self._error(f"frame of {length} bytes exceeds {self._max}")
            if len(self._buf) < _HEADER.size + length:
                return
            body = bytes(self._buf[_HEADER.size : _HEADER.size + length])
            del self._buf[: _HEADER.size + length]
            yield body
