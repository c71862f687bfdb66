"""Sign-in with any standards-compliant OpenID provider, and the client's secrets.

A native app as RFC 8252 describes it: discovery (validated, cached), authorization code
+ PKCE S256 through the system browser with a loopback redirect on 127.0.0.1, or the
device authorization grant (RFC 8628) for the CLI and headless machines; ID tokens
verified with joserfc (JWKS with rotation, iss, aud, exp/iat with skew, nonce; only
asymmetric algorithms); tokens refreshed before expiry with single flight and revoked
on logout (RFC 7009). Tokens and device keys live in the OS keyring (``SecretStore``),
never in plain files. The engine uses ``Session`` (and ``Session.auth()`` as the
controller client's ``httpx.Auth``); the CLI uses the same objects.

Exceptions (``core.auth.errors``); each has ``message`` and ``next_step`` for the user::

    AuthError
    ├── ConfigurationError        issuer/client id unusable (not https off loopback, ...)
    ├── ProviderError
    │   ├── ProviderUnreachable   connection refused, DNS, timeout
    │   │   └── ProviderTlsError  certificate did not verify (clock, HTTPS inspector)
    │   ├── BadProviderResponse   oversized, not JSON, wrong shape, HTTP error
    │   └── DiscoveryError        doc for another issuer, http endpoints, missing fields
    ├── LoginError
    │   ├── LoginTimeout          no browser callback / device approval in time
    │   ├── CallbackError         wrong state, wrong or missing iss (RFC 9207), error
    │   ├── LoginDenied           access_denied
    │   └── DeviceCodeExpired     device code expired
    ├── TokenError                token endpoint refused a grant (e.g. replayed code)
    ├── IdTokenError              signature, alg, iss, aud, nonce, expiry
    │   └── ClockSkewError        this computer's clock is off the provider's (clock_skew)
    ├── ReauthRequired            signed out, or the refresh token was refused
    └── SecretStoreError          keyring locked or failing
        └── NoSecretStoreError    no secure keyring backend (no plain-file fallback)
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
    from core.auth.discovery import DiscoveryCache, ProviderMetadata
    from core.auth.errors import (
        AuthError,
        BadProviderResponse,
        CallbackError,
        ClockSkewError,
        ConfigurationError,
        DeviceCodeExpired,
        DiscoveryError,
        IdTokenError,
        LoginDenied,
        LoginError,
        LoginTimeout,
        NoSecretStoreError,
        ProviderError,
        ProviderTlsError,
        ProviderUnreachable,
        ReauthRequired,
        SecretStoreError,
        TokenError,
    )
    from core.auth.flows import DEFAULT_SCOPES, DevicePrompt, OidcClient, OidcConfig, OpenUrl
    from core.auth.idtoken import IdTokenClaims
    from core.auth.secrets import (
        DEVICE_SIGNING_KEY,
        TOKENS,
        WIREGUARD_PRIVATE_KEY,
        SecretStore,
    )
    from core.auth.session import Session, SessionAuth
    from core.auth.tokens import TokenSet

__all__ = [
    "DEFAULT_SCOPES",
    "DEVICE_SIGNING_KEY",
    "TOKENS",
    "WIREGUARD_PRIVATE_KEY",
    "AuthError",
    "BadProviderResponse",
    "CallbackError",
    "ClockSkewError",
    "ConfigurationError",
    "DeviceCodeExpired",
    "DevicePrompt",
    "DiscoveryCache",
    "DiscoveryError",
    "IdTokenClaims",
    "IdTokenError",
    "LoginDenied",
    "LoginError",
    "LoginTimeout",
    "NoSecretStoreError",
    "OidcClient",
    "OidcConfig",
    "OpenUrl",
    "ProviderError",
    "ProviderMetadata",
    "ProviderTlsError",
    "ProviderUnreachable",
    "ReauthRequired",
    "SecretStore",
    "SecretStoreError",
    "Session",
    "SessionAuth",
    "TokenError",
    "TokenSet",
]

# Exports load on first use (PEP 562): importing one submodule (``core.auth.errors``…)
# or the package does not pull in every submodule and its third-party dependencies.
_LAZY: dict[str, str] = {
    "AuthError": "core.auth.errors",
    "BadProviderResponse": "core.auth.errors",
    "CallbackError": "core.auth.errors",
    "ClockSkewError": "core.auth.errors",
    "ConfigurationError": "core.auth.errors",
    "DEFAULT_SCOPES": "core.auth.flows",
    "DEVICE_SIGNING_KEY": "core.auth.secrets",
    "DeviceCodeExpired": "core.auth.errors",
    "DevicePrompt": "core.auth.flows",
    "DiscoveryCache": "core.auth.discovery",
    "DiscoveryError": "core.auth.errors",
    "IdTokenClaims": "core.auth.idtoken",
    "IdTokenError": "core.auth.errors",
    "LoginDenied": "core.auth.errors",
    "LoginError": "core.auth.errors",
    "LoginTimeout": "core.auth.errors",
    "NoSecretStoreError": "core.auth.errors",
    "OidcClient": "core.auth.flows",
    "OidcConfig": "core.auth.flows",
    "OpenUrl": "core.auth.flows",
    "ProviderError": "core.auth.errors",
    "ProviderMetadata": "core.auth.discovery",
    "ProviderTlsError": "core.auth.errors",
    "ProviderUnreachable": "core.auth.errors",
    "ReauthRequired": "core.auth.errors",
    "SecretStore": "core.auth.secrets",
    "SecretStoreError": "core.auth.errors",
    "Session": "core.auth.session",
    "SessionAuth": "core.auth.session",
    "TOKENS": "core.auth.secrets",
    "TokenError": "core.auth.errors",
    "TokenSet": "core.auth.tokens",
    "WIREGUARD_PRIVATE_KEY": "core.auth.secrets",
}


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)
