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
    │   ├── ProviderUnreachable   connection refused, DNS, TLS, timeout
    │   ├── BadProviderResponse   oversized, not JSON, wrong shape, HTTP error
    │   └── DiscoveryError        doc for another issuer, http endpoints, missing fields
    ├── LoginError
    │   ├── LoginTimeout          no browser callback / device approval in time
    │   ├── CallbackError         wrong state, wrong or missing iss (RFC 9207), error
    │   ├── LoginDenied           access_denied
    │   └── DeviceCodeExpired     device code expired
    ├── TokenError                token endpoint refused a grant (e.g. replayed code)
    ├── IdTokenError              signature, alg, iss, aud, nonce, expiry
    │   └── ClockSkewError        times off: check this computer's clock
    ├── ReauthRequired            signed out, or the refresh token was refused
    └── SecretStoreError          keyring locked or failing
        └── NoSecretStoreError    no secure keyring backend (no plain-file fallback)
"""

from __future__ import annotations

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
    "ProviderUnreachable",
    "ReauthRequired",
    "SecretStore",
    "SecretStoreError",
    "Session",
    "SessionAuth",
    "TokenError",
    "TokenSet",
]
