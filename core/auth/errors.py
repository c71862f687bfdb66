"""The exception tree of ``core.auth`` (drawn in the package docstring).

Every error carries a user-readable ``message`` (what went wrong, naming the bad part) and
a ``next_step`` (what the user can do). Foreign errors (httpx, Authlib, joserfc, keyring)
are mapped to these at the package boundary; callers never need to catch anything else.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BadProviderResponse",
    "CallbackError",
    "ClockSkewError",
    "ConfigurationError",
    "DeviceCodeExpired",
    "DiscoveryError",
    "IdTokenError",
    "LoginDenied",
    "LoginError",
    "LoginTimeout",
    "NoSecretStoreError",
    "ProviderError",
    "ProviderUnreachable",
    "ReauthRequired",
    "SecretStoreError",
    "TokenError",
]


class AuthError(Exception):
    """Base of every sign-in and secret-storage failure."""

    default_next_step = "Try again; if it keeps failing, contact your IT support."

    def __init__(self, message: str, next_step: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.next_step = next_step or self.default_next_step

    def __str__(self) -> str:
        return f"{self.message} {self.next_step}"


class ConfigurationError(AuthError):
    """The configured issuer or client id cannot be used (not a URL, HTTP off loopback)."""

    default_next_step = "Check the OIDC issuer and client id in the settings (or ask IT)."


class ProviderError(AuthError):
    """The identity provider could not be used."""


class ProviderUnreachable(ProviderError):
    """Connection refused, name not resolved, TLS failure or timeout."""

    default_next_step = "Check your network connection and try again in a moment."


class BadProviderResponse(ProviderError):
    """An answer that is oversized, not JSON, of the wrong shape or an HTTP error."""


class DiscoveryError(ProviderError):
    """The discovery document is for another issuer, uses HTTP endpoints or lacks fields."""

    default_next_step = "The identity provider's configuration is not usable; contact IT."


class LoginError(AuthError):
    """The interactive login did not complete."""


class LoginTimeout(LoginError):
    """No valid answer from the browser or the device login in time."""

    default_next_step = "Sign in again and finish the login in the browser in time."


class CallbackError(LoginError):
    """The browser came back with a wrong ``state``, a wrong ``iss`` or an error."""

    default_next_step = "Sign in again; close any other sign-in tabs first."


class LoginDenied(LoginError):
    """The user or the provider refused the login (``access_denied``)."""

    default_next_step = "Sign in again and approve the request, or ask IT for access."


class DeviceCodeExpired(LoginError):
    """The device code expired before the user approved it."""

    default_next_step = "Run the sign-in again and enter the new code sooner."


class TokenError(AuthError):
    """The token endpoint refused a grant (e.g. a replayed or foreign code).

    ``oauth_error`` is the provider's OAuth error code (``invalid_grant``, ...), if any.
    """

    default_next_step = "Sign in again."

    def __init__(
        self, message: str, next_step: str | None = None, *, oauth_error: str | None = None
    ) -> None:
        super().__init__(message, next_step)
        self.oauth_error = oauth_error


class IdTokenError(AuthError):
    """The ID token failed verification (signature, alg, iss, aud, exp, nonce)."""

    default_next_step = "Sign in again; if it keeps failing, contact IT."


class ClockSkewError(IdTokenError):
    """The ID token's times are off by more than the allowed skew."""

    default_next_step = "Check that this computer's date, time and time zone are correct."


class ReauthRequired(AuthError):
    """No usable session: never signed in, signed out, or the refresh was refused."""

    default_next_step = "Sign in again."


class SecretStoreError(AuthError):
    """The OS keyring failed (locked, refused, D-Bus error)."""

    default_next_step = "Unlock your keyring (log out and in again if needed) and retry."


class NoSecretStoreError(SecretStoreError):
    """No secure keyring backend exists; secrets are never put in plain files instead."""

    default_next_step = (
        "Install and start a Secret Service (e.g. gnome-keyring or KWallet) in your "
        "desktop session, then try again."
    )
