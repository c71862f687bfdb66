"""The control-plane API's request and answer bodies: one definition for both sides.

The reference controller (``controller/``) serves exactly these structs and the client
(``core.controlplane.client``) decodes answers into them, so the OpenAPI document
generated from them is the contract. All are strict msgspec structs: frozen, unknown
fields refused, sizes and patterns bounded so a hostile answer cannot balloon.
Timestamps are integer Unix seconds (UTC).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "API_VERSION",
    "BREAK_GLASS_REASON_MAX",
    "AuditList",
    "AuditRecord",
    "BreakGlassReport",
    "BundleResponse",
    "DeviceInfo",
    "DeviceList",
    "Discovery",
    "EnrollRequest",
    "Enrollment",
    "Event",
    "EventType",
    "GatewayInfo",
    "Jwk",
    "Jwks",
    "NonceResponse",
    "PostureResult",
    "PostureSubmission",
    "Problem",
    "RecheckRequest",
    "RelayKeyRequest",
    "UserGroups",
    "UserList",
]

API_VERSION = "v1"

#: base64 (standard alphabet, padded) of exactly 32 bytes: a WireGuard key.
WG_KEY_PATTERN = r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$"
#: base64url without padding of exactly 32 bytes: a raw Ed25519 public key.
ED25519_B64URL_PATTERN = r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"
_ID = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$")]
_NAME = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9 ._()-]+$")]
_TS = Annotated[int, Meta(ge=0, le=2**41)]
_URL = Annotated[str, Meta(min_length=1, max_length=512, pattern=r"^https?://[^\s]+$")]
_JWS = Annotated[str, Meta(min_length=5, max_length=262_144, pattern=r"^[A-Za-z0-9_.-]+$")]
_ENDORSEMENT = Annotated[str, Meta(min_length=5, max_length=2048, pattern=r"^[A-Za-z0-9_.-]+$")]
_B64U = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]

EventType = Literal["policy_changed", "device_revoked", "posture_recheck"]


class _Model(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every API body: frozen, strict, keyword-only."""


class Jwk(_Model, frozen=True):
    """An Ed25519 public key (RFC 8037 OKP JWK) that verifies policy bundles."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: Annotated[str, Meta(pattern=ED25519_B64URL_PATTERN)]
    kid: _B64U
    alg: Literal["Ed25519"] = "Ed25519"
    use: Literal["sig"] = "sig"


class Jwks(_Model, frozen=True):
    """A JWK set: the current bundle-signing key first, then the previous ones."""

    keys: Annotated[list[Jwk], Meta(min_length=1, max_length=8)]


class Discovery(_Model, frozen=True):
    """``GET /.well-known/rustronaut``: what a client needs to start talking."""

    api_version: Literal["v1"]
    issuer: _URL
    client_id: Annotated[str, Meta(min_length=1, max_length=128)]
    scopes: Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(max_length=16)]
    policy_keys: Jwks
    # Unsigned claims: the client uses a policy key only if it is a configured trust
    # anchor or endorsed by one (core.policy.trust); roots matter only for first-use pins.
    policy_roots: Annotated[list[Jwk], Meta(max_length=4)] = []
    policy_endorsements: Annotated[list[_ENDORSEMENT], Meta(max_length=16)] = []


class EnrollRequest(_Model, frozen=True):
    """``POST /v1/devices``: only public keys ever leave the device."""

    name: _NAME
    platform: Literal["linux", "windows", "macos"]
    wg_public_key: Annotated[str, Meta(pattern=WG_KEY_PATTERN)]
    signing_key: Annotated[str, Meta(pattern=ED25519_B64URL_PATTERN)]
    #: The helper's relay key (Ed25519, raw, base64url): the controller issues the
    #: device's relay client certificate to it (issue 21). None: no relay for this device.
    relay_key: Annotated[str, Meta(pattern=ED25519_B64URL_PATTERN)] | None = None


class RelayKeyRequest(_Model, frozen=True):
    """``PUT /v1/devices/{id}/relay-key``: register (or replace) the device's relay key."""

    relay_key: Annotated[str, Meta(pattern=ED25519_B64URL_PATTERN)]


class GatewayInfo(_Model, frozen=True):
    """The gateway peer a device's tunnel points at."""

    public_key: Annotated[str, Meta(pattern=WG_KEY_PATTERN)]
    endpoint: Annotated[str, Meta(min_length=3, max_length=261)]


class Enrollment(_Model, frozen=True):
    """The answer to an enrollment: the device's identity and tunnel address."""

    device_id: _ID
    user: _ID
    address: Annotated[str, Meta(min_length=3, max_length=64)]
    created_at: _TS
    gateway: GatewayInfo | None = None


class NonceResponse(_Model, frozen=True):
    """A single-use posture nonce and when it stops being accepted."""

    nonce: _B64U
    expires_at: _TS


class PostureSubmission(_Model, frozen=True):
    """``POST /v1/devices/{id}/posture``: the device-signed report (JWS compact)."""

    report: _JWS


class PostureResult(_Model, frozen=True):
    """What the controller concluded from a posture report."""

    accepted: bool
    reachable: Annotated[list[_ID], Meta(max_length=4096)]
    checked_at: _TS
    bundle_version: Annotated[int, Meta(ge=0)]


class BundleResponse(_Model, frozen=True):
    """``GET /v1/devices/{id}/bundle``: the signed policy bundle (JWS) and its headline."""

    bundle: _JWS
    version: Annotated[int, Meta(ge=1)]
    expires_at: _TS
    #: The device's relay client certificate (PEM, issued by the controller's relay CA
    #: to the registered relay key), when the deployment has relays and the device a key.
    relay_cert: Annotated[str, Meta(max_length=8192)] | None = None


class Event(_Model, frozen=True):
    """One event on the stream; ``device_id`` is None when it concerns every device."""

    type: EventType
    at: _TS
    device_id: _ID | None = None
    detail: Annotated[str, Meta(max_length=512)] = ""


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """An RFC 9457 problem document (unknown members tolerated, as the RFC asks)."""

    type: Annotated[str, Meta(max_length=512)] = "about:blank"
    title: Annotated[str, Meta(max_length=256)] = ""
    status: Annotated[int, Meta(ge=100, le=599)] = 500
    detail: Annotated[str, Meta(max_length=2048)] = ""


class DeviceInfo(_Model, frozen=True):
    """A device as the admin API shows it."""

    device_id: _ID
    user: _ID
    name: _NAME
    platform: Literal["linux", "windows", "macos"]
    wg_public_key: Annotated[str, Meta(pattern=WG_KEY_PATTERN)]
    address: Annotated[str, Meta(max_length=64)] | None
    status: Literal["active", "revoked"]
    created_at: _TS
    posture_at: _TS | None = None
    reachable: Annotated[list[_ID], Meta(max_length=4096)] = []


class DeviceList(_Model, frozen=True):
    """``GET /v1/admin/devices``."""

    devices: list[DeviceInfo]


class UserGroups(_Model, frozen=True):
    """A user's groups as the controller knows them (admin-managed)."""

    user: _ID
    groups: Annotated[list[_ID], Meta(max_length=64)]


class UserList(_Model, frozen=True):
    """``GET /v1/admin/users``."""

    users: list[UserGroups]


class RecheckRequest(_Model, frozen=True):
    """``POST /v1/admin/posture-recheck``: ask one device (or all, when None) to re-check."""

    device_id: _ID | None = None


#: The longest break-glass reason the controller stores (characters).
BREAK_GLASS_REASON_MAX = 500
_REASON = Annotated[str, Meta(min_length=1, max_length=BREAK_GLASS_REASON_MAX)]


class BreakGlassReport(_Model, frozen=True):
    """``POST /v1/devices/{device_id}/break-glass``: why always-on was bypassed."""

    reason: _REASON


class AuditRecord(_Model, frozen=True):
    """One audit entry: what happened, when, by which user on which device."""

    record_id: _B64U
    at: _TS
    kind: Literal["break_glass"]
    user: _ID
    device_id: _ID
    reason: _REASON


class AuditList(_Model, frozen=True):
    """``GET /v1/admin/audit``: audit records, oldest first."""

    records: list[AuditRecord]
