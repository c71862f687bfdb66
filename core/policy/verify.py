"""Verify a signed policy bundle: signature, schema, device binding, validity, version.

The single gate every bundle passes before use, whether it comes from the controller or
from the on-disk cache. Checks run cheapest-first and stop at the first failure; each
failure is its own ``BundleRejected`` subclass (see ``core.policy.errors``).
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.policy.errors import (
    BundleExpiredError,
    BundleNotYetValidError,
    BundleSchemaError,
    BundleSignatureError,
    RollbackError,
    WrongDeviceError,
)
from core.wire.policy import (
    BUNDLE_TYP,
    MAX_BUNDLE_BYTES,
    BundleFormatError,
    PolicyBundle,
    decode_bundle,
)
from core.wire.signing import SignatureError, verify

__all__ = ["DEFAULT_SKEW_S", "verify_bundle"]

DEFAULT_SKEW_S = 300
"""Clock skew tolerated on ``issued_at`` (a device clock a few minutes behind is common)."""


def verify_bundle(
    token: str | bytes,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    device_id: str,
    now: float,
    held_version: int | None = None,
    max_size: int = MAX_BUNDLE_BYTES,
    skew: float = DEFAULT_SKEW_S,
) -> PolicyBundle:
    """Return the bundle in ``token`` if it may be used now by ``device_id``.

    ``keys`` are the controller's trusted signing keys by ``kid`` (from its discovery
    JWKS, see ``core.wire.signing.public_key_from_jwk``); ``held_version`` the version of
    the bundle currently held (None: none held). ``now`` should be trusted time
    (``core.clock.TrustedTime.now``, as ``PolicyStore`` passes it), not the local clock
    alone, or setting the clock back extends access. A bundle of the same version passes here
    (re-fetch); ``PolicyStore`` refuses one whose content differs.

    Raises ``BundleSignatureError``, ``BundleSchemaError``, ``WrongDeviceError``,
    ``BundleExpiredError``, ``BundleNotYetValidError`` or ``RollbackError``. Pure; any
    thread.
    """
    try:
        doc = verify(token, keys, typ=BUNDLE_TYP, max_size=max_size)
    except SignatureError as exc:
        raise BundleSignatureError(f"policy bundle signature refused: {exc}") from exc
    try:
        bundle = decode_bundle(doc.payload)
    except BundleFormatError as exc:
        raise BundleSchemaError(str(exc)) from exc
    if bundle.device_id != device_id:
        raise WrongDeviceError(
            f"policy bundle is for device {bundle.device_id!r}, this device is {device_id!r}"
        )
    if now >= bundle.expires_at:
        raise BundleExpiredError(
            f"policy bundle version {bundle.version} expired at {bundle.expires_at} "
            f"(now {int(now)})"
        )
    if bundle.issued_at > now + skew:
        raise BundleNotYetValidError(
            f"policy bundle is issued at {bundle.issued_at}, {int(bundle.issued_at - now)} s "
            f"in the future (skew allowed: {int(skew)} s); check the device clock"
        )
    if held_version is not None and bundle.version < held_version:
        raise RollbackError(
            f"policy bundle version {bundle.version} is older than the held version "
            f"{held_version} (replay or downgrade refused)"
        )
    return bundle
