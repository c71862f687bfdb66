"""Policy on the device: verify signed bundles, hold the current one, decide connections.

``core.policy.api`` holds the request/decision types every caller uses (the proxy, the
CLI's ``policy explain``, the UI). Deny by default: no valid bundle means every decision
is a deny. The pieces: ``verify`` (the one gate for signed bundles), ``store`` (the held
bundle, anti-rollback, 0600 disk cache), ``conditions`` (three-valued compiled tests),
``compiled`` (destination index and rule order), ``engine`` (``PolicyEngine`` — the
``Decider`` — and ``reachable_resources`` for the controller), ``risk`` (posture and
behavioural risk), ``explain`` (unmet requirements and fixes), ``trust`` (which signing
keys chain to the organisation's trust anchors; first-use pins), ``floor`` (the
anti-rollback floor, authenticated with a keyring key). Imports only ``core.wire``,
``core.paths`` and the standard library (plus msgspec/cryptography).

Errors (``core.policy.errors``)::

    PolicyError
     ├── BundleRejected (ValueError)   BundleSignatureError, BundleSchemaError,
     │                                 WrongDeviceError, BundleExpiredError,
     │                                 BundleNotYetValidError, RollbackError
     ├── PolicyCacheError
     ├── TrustError                    UntrustedKeysError, PinnedRootMismatchError
     └── RollbackFloorError
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from core.policy.api import AccessRequest, AppIdentity, Decider, Decision, Effect, Unmet
    from core.policy.conditions import UNKNOWN_VALUE
    from core.policy.engine import (
        PolicyEngine,
        Reachability,
        allowed_networks,
        reachable_resources,
    )
    from core.policy.errors import (
        BundleExpiredError,
        BundleNotYetValidError,
        BundleRejected,
        BundleSchemaError,
        BundleSignatureError,
        PinnedRootMismatchError,
        PolicyCacheError,
        PolicyError,
        RollbackError,
        RollbackFloorError,
        TrustError,
        UntrustedKeysError,
        WrongDeviceError,
    )
    from core.policy.floor import RollbackFloor
    from core.policy.risk import RiskSnapshot, RiskTracker
    from core.policy.store import PolicyStore, default_cache_path
    from core.policy.trust import DiscoveredKeys, PolicyTrust
    from core.policy.verify import verify_bundle

__all__ = [
    "UNKNOWN_VALUE",
    "AccessRequest",
    "AppIdentity",
    "BundleExpiredError",
    "BundleNotYetValidError",
    "BundleRejected",
    "BundleSchemaError",
    "BundleSignatureError",
    "Decider",
    "Decision",
    "DiscoveredKeys",
    "Effect",
    "PinnedRootMismatchError",
    "PolicyCacheError",
    "PolicyEngine",
    "PolicyError",
    "PolicyStore",
    "PolicyTrust",
    "Reachability",
    "RiskSnapshot",
    "RiskTracker",
    "RollbackError",
    "RollbackFloor",
    "RollbackFloorError",
    "TrustError",
    "Unmet",
    "UntrustedKeysError",
    "WrongDeviceError",
    "allowed_networks",
    "default_cache_path",
    "reachable_resources",
    "verify_bundle",
]

# Exports load on first use (PEP 562): importing one submodule (``core.policy.errors``…)
# or the package does not pull in every submodule and its third-party dependencies.
_LAZY: dict[str, str] = {
    "AccessRequest": "core.policy.api",
    "AppIdentity": "core.policy.api",
    "BundleExpiredError": "core.policy.errors",
    "BundleNotYetValidError": "core.policy.errors",
    "BundleRejected": "core.policy.errors",
    "BundleSchemaError": "core.policy.errors",
    "BundleSignatureError": "core.policy.errors",
    "Decider": "core.policy.api",
    "Decision": "core.policy.api",
    "Effect": "core.policy.api",
    "DiscoveredKeys": "core.policy.trust",
    "PinnedRootMismatchError": "core.policy.errors",
    "PolicyTrust": "core.policy.trust",
    "RollbackFloor": "core.policy.floor",
    "RollbackFloorError": "core.policy.errors",
    "TrustError": "core.policy.errors",
    "UntrustedKeysError": "core.policy.errors",
    "PolicyCacheError": "core.policy.errors",
    "PolicyEngine": "core.policy.engine",
    "PolicyError": "core.policy.errors",
    "PolicyStore": "core.policy.store",
    "Reachability": "core.policy.engine",
    "RiskSnapshot": "core.policy.risk",
    "RiskTracker": "core.policy.risk",
    "RollbackError": "core.policy.errors",
    "UNKNOWN_VALUE": "core.policy.conditions",
    "Unmet": "core.policy.api",
    "WrongDeviceError": "core.policy.errors",
    "allowed_networks": "core.policy.engine",
    "default_cache_path": "core.policy.store",
    "reachable_resources": "core.policy.engine",
    "verify_bundle": "core.policy.verify",
}


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)
