"""Errors of the policy package: why a bundle was refused, or the cache failed.

Every refusal leaves the held bundle (and so every decision) exactly as it was. The
message is meant for logs and for the engine's user-facing error ("the policy from the
controller was refused: <message>").

Errors::

    PolicyError                     anything raised by core.policy
     ├── BundleRejected (ValueError) a bundle was refused; the held one stays
     │    ├── BundleSignatureError   unsigned, malformed JWS, unknown key, bad signature
     │    ├── BundleSchemaError      signed, but not a valid bundle (types, sizes, refs)
     │    ├── WrongDeviceError       issued for another device
     │    ├── BundleExpiredError     ``expires_at`` is past
     │    ├── BundleNotYetValidError ``issued_at`` is in the future beyond the clock skew
     │    └── RollbackError          older than the bundle held (replay/downgrade)
     ├── PolicyCacheError            the on-disk cache cannot be read or written
     ├── TrustError                  the controller's signing keys are not trusted
     │    ├── UntrustedKeysError     no listed key is an anchor or endorsed by one
     │    └── PinnedRootMismatchError (no anchors set) the root differs from the pinned one
     └── RollbackFloorError          the version floor cannot be read, fails its MAC, or
                                     would go down
"""

from __future__ import annotations

from core.errors import UserFacingError
from core.i18n import QT_TRANSLATE_NOOP

__all__ = [
    "BundleExpiredError",
    "BundleNotYetValidError",
    "BundleRejected",
    "BundleSchemaError",
    "BundleSignatureError",
    "PinnedRootMismatchError",
    "PolicyCacheError",
    "PolicyError",
    "RollbackError",
    "RollbackFloorError",
    "TrustError",
    "UntrustedKeysError",
    "WrongDeviceError",
]


class PolicyError(UserFacingError):
    """Base of every error raised by ``core.policy``."""

    title = QT_TRANSLATE_NOOP("core.policy.errors", "The access policy could not be used")
    code = "policy_invalid"


class BundleRejected(PolicyError, ValueError):
    """A policy bundle was refused; the message says why. The held bundle is unchanged."""

    title = QT_TRANSLATE_NOOP("core.policy.errors", "The policy from the controller was refused")
    next_step = QT_TRANSLATE_NOOP(
        "core.policy.errors",
        "Nothing to do on this device: access stays as it was. If it keeps happening, "
        "collect diagnostics (rustronaut diag) and contact IT.",
    )


class BundleSignatureError(BundleRejected):
    """Not a well-formed JWS of the bundle type, signed by an unknown key or badly signed."""


class BundleSchemaError(BundleRejected):
    """The signed payload is not a valid bundle (schema, sizes, cross-references)."""


class WrongDeviceError(BundleRejected):
    """The bundle is bound to another device."""

    title = QT_TRANSLATE_NOOP("core.policy.errors", "The policy is for another device")


class BundleExpiredError(BundleRejected):
    """The bundle's ``expires_at`` has passed."""

    title = QT_TRANSLATE_NOOP("core.policy.errors", "The access policy has expired")
    next_step = QT_TRANSLATE_NOOP(
        "core.policy.errors",
        "Check that this computer's date and time are correct; Rustronaut fetches a new "
        "policy when it reaches the controller.",
    )


class BundleNotYetValidError(BundleRejected):
    """The bundle's ``issued_at`` is further in the future than the allowed clock skew."""

    title = QT_TRANSLATE_NOOP("core.policy.errors", "This computer's clock is off")
    next_step = QT_TRANSLATE_NOOP(
        "core.policy.errors", "Check that this computer's date, time and time zone are correct."
    )


class RollbackError(BundleRejected):
    """The bundle is older than (or conflicts with) the one held: replay or downgrade."""


class PolicyCacheError(PolicyError):
    """The on-disk cache of the last valid bundle cannot be read or written."""

    title = QT_TRANSLATE_NOOP("core.policy.errors", "The saved policy could not be read or written")
    next_step = QT_TRANSLATE_NOOP(
        "core.policy.errors",
        "Check that your disk is not full. If it keeps happening, collect diagnostics "
        "(rustronaut diag) and contact IT.",
    )
    code = "internal"


class TrustError(PolicyError):
    """The controller's policy-signing keys do not chain to a trust anchor: no bundle
    signed by them is used. The held bundle is unchanged."""

    title = QT_TRANSLATE_NOOP("core.policy.errors", "The controller's policy keys are not trusted")
    next_step = QT_TRANSLATE_NOOP(
        "core.policy.errors",
        "Access stays as it was. Contact IT: the controller's signing keys are not "
        "endorsed by your organisation's policy trust anchors (setting "
        "policy_trust_anchors).",
    )


class UntrustedKeysError(TrustError):
    """No signing key listed by discovery is an anchor or endorsed by one."""


class PinnedRootMismatchError(TrustError):
    """No anchors are configured and the controller's root key is not the one pinned on
    first use."""

    title = QT_TRANSLATE_NOOP("core.policy.errors", "The controller's policy root key changed")
    next_step = QT_TRANSLATE_NOOP(
        "core.policy.errors",
        "Access stays as it was. If your organisation really replaced its controller's "
        "root key, have IT set policy_trust_anchors (or remove the pinned key file named "
        "in the details); otherwise someone may be impersonating the controller.",
    )


class RollbackFloorError(PolicyError):
    """The anti-rollback floor cannot be trusted (missing, failing its MAC, keyring
    unavailable) or would be lowered; no bundle is accepted until it is fixed."""

    title = QT_TRANSLATE_NOOP(
        "core.policy.errors", "The saved policy version could not be verified"
    )
    next_step = QT_TRANSLATE_NOOP(
        "core.policy.errors",
        "Access through new policies stays blocked until this is fixed. Contact IT with "
        "the details: they can reset the policy version record after checking the device.",
    )
