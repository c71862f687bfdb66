"""Client of the control-plane API: discovery, enrollment, posture, bundles, events.

``ControlPlaneClient`` speaks the ``/v1`` API of ``controller/`` (the contract is the
shared models in ``core.controlplane.models`` and the committed OpenAPI document). It
takes an injectable httpx transport (tests) and an ``httpx.Auth`` for the bearer token
(the auth package's refreshing flow); TLS verifies through the OS trust store
(truststore) with an optional SPKI pin. Every answer is size-capped and decoded
strictly into its model: an invalid answer is an error, never partially used.

The controller is reached through the proxy the environment, the OS settings or a PAC
file give (``core.controlplane.proxy``); an answer from a captive portal (HTML, a
redirect to another host, 511; or a TLS failure while the opt-in plain-HTTP probe is
hijacked) is refused as ``CaptivePortalError`` (``core.controlplane.portal``).

Errors::

    ControlPlaneError                  anything that went wrong talking to the controller
     ├── ControllerUnreachableError    connect/read failure, timeout, TLS failure
     │    ├── PinMismatchError         the server key is not the pinned one
     │    ├── CaptivePortalError       a captive portal answered (``portal_url``)
     │    └── ProxyFailedError         the proxy failed or refused (``proxy``, ``source``)
     ├── InvalidAnswerError            oversized, not JSON, wrong type or schema
     └── ApiRefusedError               a problem document (``status``, ``problem``)
          ├── AuthenticationError      401: token missing, expired, wrong issuer/audience
          ├── ForbiddenError           403: e.g. the device is revoked
          ├── NotFoundError            404
          ├── ConflictError            409: key already enrolled
          ├── RejectedError            400/413/422: the request or report was refused
          ├── RateLimitedError         429 (``retry_after`` seconds)
          └── ServerError              5xx
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from core.lazy import lazy_exports

# httpx imports its optional command-line client (click, rich, pygments: ~8 MB resident
# in the tray) whenever those happen to be installed; nothing in Rustronaut uses it.
# Marking that submodule absent before httpx's first import makes httpx keep its stub
# ``httpx.main`` instead. Done here because this package's modules import httpx first.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

if TYPE_CHECKING:
    from core.controlplane.client import (
        ApiRefusedError,
        AuthenticationError,
        BearerAuth,
        CaptivePortalError,
        ConflictError,
        ControllerUnreachableError,
        ControlPlaneClient,
        ControlPlaneError,
        ForbiddenError,
        InvalidAnswerError,
        NotFoundError,
        PinMismatchError,
        ProxyFailedError,
        RateLimitedError,
        RejectedError,
        ServerError,
        spki_sha256,
    )

__all__ = [
    "ApiRefusedError",
    "AuthenticationError",
    "BearerAuth",
    "CaptivePortalError",
    "ConflictError",
    "ControlPlaneClient",
    "ControlPlaneError",
    "ControllerUnreachableError",
    "ForbiddenError",
    "InvalidAnswerError",
    "NotFoundError",
    "PinMismatchError",
    "ProxyFailedError",
    "RateLimitedError",
    "RejectedError",
    "ServerError",
    "spki_sha256",
]

# Exports load on first use (PEP 562): importing one submodule (``core.controlplane.errors``…)
# or the package does not pull in every submodule and its third-party dependencies.
_LAZY: dict[str, str] = {
    "ApiRefusedError": "core.controlplane.client",
    "AuthenticationError": "core.controlplane.client",
    "BearerAuth": "core.controlplane.client",
    "CaptivePortalError": "core.controlplane.client",
    "ConflictError": "core.controlplane.client",
    "ControlPlaneClient": "core.controlplane.client",
    "ControlPlaneError": "core.controlplane.client",
    "ControllerUnreachableError": "core.controlplane.client",
    "ForbiddenError": "core.controlplane.client",
    "InvalidAnswerError": "core.controlplane.client",
    "NotFoundError": "core.controlplane.client",
    "PinMismatchError": "core.controlplane.client",
    "ProxyFailedError": "core.controlplane.client",
    "RateLimitedError": "core.controlplane.client",
    "RejectedError": "core.controlplane.client",
    "ServerError": "core.controlplane.client",
    "spki_sha256": "core.controlplane.client",
}


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)
