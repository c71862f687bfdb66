"""Decision telemetry: the signed batch a device sends the controller, and the API models.

A device tells its controller what its proxy decided, at the level IT chose
(``telemetry_level``): ``counts`` — per minute, per (resource, effect), how many
decisions — or ``full`` — each decision (time, app, destination host/ip/port, effect,
rule, resource, reason code and text, risk). A **batch** carries the device id, a
sequence number (monotonic per device, kept on disk by the client), the time it was
signed (``iat``), the level, how many items the client had to drop since its last batch
(its queue is capped) and at most ``MAX_ITEMS`` items. It travels as a JWS compact string
signed with the device's Ed25519 key (the posture report's key) with ``typ``
``rustronaut-decisions+jws``; the controller checks it with ``verify_batch`` and stores a
batch only when its ``seq`` is above the last one it stored for the device (a replay or a
retry of a delivered batch is answered "duplicate" and stores nothing).

App paths may be hashed (``hash_app``): ``sha256:<hex>`` of the path salted with the
organisation's controller URL, so IT can recognise a known app (hash its path the same
way) without receiving the employee's own paths, and two organisations' hashes differ.

Errors::

    BatchError                  a decision batch was refused (ValueError)
     ├── BatchMalformedError    not a valid batch document (schema, invariants)
     ├── BatchTooLargeError     the token is over the size cap
     ├── BatchSignatureError    the JWS is malformed, of another type, or does not verify
     ├── BatchStaleError        signed too long ago, or in the future beyond clock skew
     └── BatchDeviceMismatchError  signed for another device
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Final, Literal

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from msgspec import Meta

from core.wire import signing
from core.wire.canonical import CanonicalJsonError, check_canonical, check_depth

__all__ = [
    "BATCH_TYP",
    "CLOCK_SKEW_S",
    "MAX_BATCH_SIZE",
    "MAX_ITEMS",
    "BatchDeviceMismatchError",
    "BatchError",
    "BatchMalformedError",
    "BatchSignatureError",
    "BatchStaleError",
    "BatchTooLargeError",
    "DecisionAck",
    "DecisionBatch",
    "DecisionCount",
    "DecisionEvent",
    "DecisionList",
    "DecisionRecord",
    "DecisionSubmission",
    "Level",
    "decode_batch",
    "encode_batch",
    "hash_app",
    "sign_batch",
    "verify_batch",
]

BATCH_TYP: Final = "rustronaut-decisions+jws"
#: Most items (events or counts) one batch may carry.
MAX_ITEMS: Final = 500
#: Cap on a signed batch (characters of the JWS compact string).
MAX_BATCH_SIZE: Final = 256 * 1024
#: How far in the future ``iat`` may be (device clocks drift a little).
CLOCK_SKEW_S: Final = 120.0

#: What the device sends: nothing, counts per minute, or every decision.
Level = Literal["off", "counts", "full"]
Effect = Literal["allow", "deny"]
#: Why the event was emitted: a new connection decided, an open one revoked by
#: re-evaluation, or one refused before any policy question (another account, bad input).
Code = Literal["decision", "revoked", "refused"]

_ID = Annotated[str, Meta(min_length=1, max_length=256)]
_TEXT = Annotated[str, Meta(max_length=512)]
_NAME = Annotated[str, Meta(max_length=256)]
_TS = Annotated[float, Meta(ge=0)]
_JWS = Annotated[str, Meta(min_length=1, max_length=MAX_BATCH_SIZE)]


class DecisionEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One decision (level ``full``). ``app`` is the exe path or ``sha256:<hex>``;
    ``host`` the destination as the app named it, ``ip`` when that is an address, ``port``
    0 when unknown (refused before its request was read)."""

    at: _TS
    app: _TEXT
    host: _NAME
    ip: Annotated[str, Meta(max_length=45)] = ""
    port: Annotated[int, Meta(ge=0, le=65535)] = 0
    effect: Effect
    rule: _NAME | None = None
    resource: _NAME | None = None
    code: Code = "decision"
    reason: _TEXT = ""
    risk: Annotated[int, Meta(ge=0, le=100)] = 0


class DecisionCount(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How many decisions of one (resource, effect) in the minute starting at ``minute``
    (level ``counts``). Counts are additive: two rows of one key add up."""

    minute: Annotated[int, Meta(ge=0)]
    resource: _NAME | None = None
    effect: Effect
    count: Annotated[int, Meta(ge=1, le=1_000_000)]


class DecisionBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What the device signs. Invariants: ``full`` carries events only, ``counts`` counts
    only (``off`` is never sent); at most ``MAX_ITEMS`` items; ``seq`` ≥ 1."""

    device_id: _ID
    seq: Annotated[int, Meta(ge=1, le=2**62)]
    iat: _TS
    level: Literal["counts", "full"]
    dropped: Annotated[int, Meta(ge=0, le=2**62)] = 0
    events: tuple[DecisionEvent, ...] = ()
    counts: tuple[DecisionCount, ...] = ()
    v: int = 1

    def __post_init__(self) -> None:
        if self.v != 1:
            raise ValueError(f"decision batch version {self.v} is not supported")
        if len(self.events) + len(self.counts) > MAX_ITEMS:
            raise ValueError(f"decision batch has over {MAX_ITEMS} items")
        if self.level == "full" and self.counts:
            raise ValueError("a full batch carries events, not counts")
        if self.level == "counts" and self.events:
            raise ValueError("a counts batch carries counts, not events")


# HTTP models -----------------------------------------------------------------------------
class DecisionSubmission(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Body of ``POST /v1/devices/{id}/decisions``: the signed batch."""

    batch: _JWS


class DecisionAck(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The controller's answer: ``duplicate`` when ``seq`` was not above the last stored
    (nothing stored; the client drops the batch), else ``stored`` rows were kept."""

    seq: Annotated[int, Meta(ge=0)]
    duplicate: bool
    stored: Annotated[int, Meta(ge=0)]


class DecisionRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One stored row (admin view): an event (``count`` 1) or a per-minute count."""

    record_id: Annotated[int, Meta(ge=0)]
    device_id: _ID
    user: _ID
    seq: Annotated[int, Meta(ge=0)]
    kind: Literal["event", "count"]
    at: _TS
    effect: Effect
    count: Annotated[int, Meta(ge=0)] = 1
    app: _TEXT = ""
    host: _NAME = ""
    ip: Annotated[str, Meta(max_length=45)] = ""
    port: Annotated[int, Meta(ge=0, le=65535)] = 0
    rule: _NAME | None = None
    resource: _NAME | None = None
    code: _NAME = ""
    reason: _TEXT = ""
    risk: Annotated[int, Meta(ge=0, le=100)] = 0
    dropped: Annotated[int, Meta(ge=0)] = 0


class DecisionList(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The newest records matching the filters, newest first."""

    records: list[DecisionRecord]


# errors ----------------------------------------------------------------------------------
class BatchError(ValueError):
    """A decision batch was refused; the message says why."""


class BatchMalformedError(BatchError):
    """The payload is not a valid decision batch."""


class BatchTooLargeError(BatchError):
    """The token is larger than the cap."""


class BatchSignatureError(BatchError):
    """The JWS is malformed, of another document type, signed by another key or forged."""


class BatchStaleError(BatchError):
    """Signed longer ago than allowed, or dated in the future beyond clock skew."""


class BatchDeviceMismatchError(BatchError):
    """The batch names another device than the one whose key verified it."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DecisionBatch)


def encode_batch(batch: DecisionBatch) -> bytes:
    """The batch as canonical JSON bytes (the JWS payload). Pure; never raises."""
    return _encoder.encode(batch)


def decode_batch(payload: bytes) -> DecisionBatch:
    """Parse and validate a payload in its canonical form; raises ``BatchMalformedError``."""
    try:
        check_depth(payload, what="decision batch")
        batch = _decoder.decode(payload)
        check_canonical(payload, batch, _encoder.encode, what="decision batch")
    except (CanonicalJsonError, UnicodeDecodeError, msgspec.DecodeError) as exc:
        raise BatchMalformedError(f"not a valid decision batch: {exc}") from exc
    return batch


def sign_batch(batch: DecisionBatch, key: Ed25519PrivateKey) -> str:
    """Sign ``batch`` with the device key; the JWS compact string. Pure, thread-safe."""
    return signing.sign(encode_batch(batch), key, typ=BATCH_TYP)


def verify_batch(
    token: str | bytes,
    public_key: Ed25519PublicKey,
    *,
    device_id: str,
    now: float,
    max_age_s: float,
    max_size: int = MAX_BATCH_SIZE,
) -> DecisionBatch:
    """Verify a signed batch from ``device_id`` and return it (controller side).

    Checks, in order: size cap, JWS envelope and signature with the device's key, schema,
    device id, age (``now - iat <= max_age_s`` and not over ``CLOCK_SKEW_S`` ahead). The
    sequence number is the caller's to check against its store. Raises a ``BatchError``
    subclass; never returns an unverified batch. Pure, thread-safe.
    """
    if len(token) > max_size:
        raise BatchTooLargeError(f"decision batch is {len(token)} bytes, over {max_size}")
    keys = {signing.key_id(public_key): public_key}
    try:
        doc = signing.verify(token, keys, typ=BATCH_TYP, max_size=max_size)
    except signing.SignatureError as exc:
        raise BatchSignatureError(f"decision batch signature refused: {exc}") from exc
    batch = decode_batch(doc.payload)
    if not hmac.compare_digest(batch.device_id.encode(), device_id.encode()):
        raise BatchDeviceMismatchError(
            f"decision batch is for device {batch.device_id!r}, not {device_id!r}"
        )
    age = now - batch.iat
    if age > max_age_s:
        raise BatchStaleError(f"decision batch was signed {age:.0f} s ago, over {max_age_s:.0f}")
    if age < -CLOCK_SKEW_S:
        raise BatchStaleError(f"decision batch is dated {-age:.0f} s in the future")
    return batch


def hash_app(path: str, salt: str) -> str:
    """``sha256:<hex>`` of an app path salted with the organisation (its controller URL).
    Pure; the same path and salt always give the same text."""
    digest = hashlib.sha256(b"rustronaut-app\0" + salt.encode() + b"\0" + path.encode())
    return "sha256:" + digest.hexdigest()
