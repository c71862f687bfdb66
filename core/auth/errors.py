"""The exception tree of ``core.auth`` (drawn in the package docstring).

Every error carries a user-readable ``message`` (what went wrong, naming the bad part; also
its ``detail``), a ``next_step`` (what the user can do), a ``title`` and a ``code`` (the
``core.errors.UserFacing`` shape). Foreign errors (httpx, Authlib, joserfc, keyring)
are mapped to these at the package boundary; callers never need to catch anything else.
"""

from __future__ import annotations

from core.errors import UserFacingError, translated
from core.i18n import QT_TRANSLATE_NOOP, translate

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
    "ProviderTlsError",
    "ProviderUnreachable",
    "ReauthRequired",
    "SecretStoreError",
    "TokenError",
    "describe_skew",
]


class AuthError(UserFacingError):
    """Base of every sign-in and secret-storage failure.

    ``next_step`` is the one given when raised, else the class's ``default_next_step``.
    """

    title = QT_TRANSLATE_NOOP("core.auth.errors", "Sign-in failed")
    code = "sign_in_failed"
    default_next_step = QT_TRANSLATE_NOOP(
        "core.auth.errors", "Try again; if it keeps failing, contact your IT support."
    )

    def __init__(self, message: str, next_step: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.next_step = next_step or translated(self, "default_next_step")

    def __str__(self) -> str:
        return f"{self.message} {self.next_step}"

    @property
    def detail(self) -> str:
        """The message without the next step (shown separately)."""
        return self.message


class ConfigurationError(AuthError):
    """The configured issuer or client id cannot be used (not a URL, HTTP off loopback)."""

    title = QT_TRANSLATE_NOOP("core.auth.errors", "Sign-in is not set up correctly")
    code = "setting_invalid"
    default_next_step = QT_TRANSLATE_NOOP(
        "core.auth.errors", "Check the OIDC issuer and client id in the settings (or ask IT)."
    )


class ProviderError(AuthError):
    """The identity provider could not be used."""

    title = QT_TRANSLATE_NOOP("core.auth.errors", "The sign-in service could not be used")


class ProviderUnreachable(ProviderError):
    """Connection refused, name not resolved or timeout."""

    title = QT_TRANSLATE_NOOP("core.auth.errors", "The sign-in service did not answer")
    default_next_step = QT_TRANSLATE_NOOP(
        "core.auth.errors", "Check your network connection and try again in a moment."
    )


class ProviderTlsError(ProviderUnreachable):
    """The provider's certificate did not verify: the connection cannot be trusted.

    Usually this computer's date is wrong (certificates look expired or not yet valid) or
    a network inspector (a company proxy) presents its own certificate.
    """

    title = QT_TRANSLATE_NOOP(
        "core.auth.errors", "The connection to the sign-in service could not be verified"
    )
    code = "tls"
    default_next_step = QT_TRANSLATE_NOOP(
        "core.auth.errors",
        "Check this computer's date and time. If your network inspects HTTPS traffic, ask "
        "IT to install the inspector's certificate on this computer.",
    )


class BadProviderResponse(ProviderError):
    """An answer that is oversized, not JSON, of the wrong shape or an HTTP error."""


class DiscoveryError(ProviderError):
    """The discovery document is for another issuer, uses HTTP endpoints or lacks fields."""

    default_next_step = QT_TRANSLATE_NOOP(
        "core.auth.errors", "The identity provider's configuration is not usable; contact IT."
    )


class LoginError(AuthError):
    """The interactive login did not complete."""

    title = QT_TRANSLATE_NOOP("core.auth.errors", "Sign-in did not complete")


class LoginTimeout(LoginError):
    """No valid answer from the browser or the device login in time."""

    title = QT_TRANSLATE_NOOP("core.auth.errors", "Sign-in took too long")
    default_next_step = QT_TRANSLATE_NOOP(
        "core.auth.errors", "Sign in again and finish the login in the browser in time."
    )


class CallbackError(LoginError):
    """The browser came back with a wrong ``state``, a wrong ``iss`` or an error."""

    default_next_step = QT_TRANSLATE_NOOP(
        "core.auth.errors", "Sign in again; close any other sign-in tabs first."
    )


class LoginDenied(LoginError):
    """The user or the provider refused the login (``access_denied``)."""

    title = QT_TRANSLATE_NOOP("core.auth.errors", "Sign-in was declined")
    default_next_step = QT_TRANSLATE_NOOP(
        "core.auth.errors", "Sign in again and approve the request, or ask IT for access."
    )


class DeviceCodeExpired(LoginError):
    """The device code expired before the user approved it."""

    title = QT_TRANSLATE_NOOP("core.auth.errors", "The sign-in code expired")
    default_next_step = QT_TRANSLATE_NOOP(
        "core.auth.errors", "Run the sign-in again and enter the new code sooner."
    )


class TokenError(AuthError):
    """The token endpoint refused a grant (e.g. a replayed or foreign code).

    ``oauth_error`` is the provider's OAuth error code (``invalid_grant``, ...), if any;
    ``reason`` the provider's code and description, escaped.
    """

    title = QT_TRANSLATE_NOOP("core.auth.errors", "Sign-in was refused")
    default_next_step = QT_TRANSLATE_NOOP("core.auth.errors", "Sign in again.")

    def __init__(
        self,
        message: str,
        next_step: str | None = None,
        *,
        oauth_error: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, next_step)
        self.oauth_error = oauth_error
        #: The provider's error and description, escaped ("invalid_grant: ..."), to quote
        #: inside another message without nesting sentences.
        self.reason = reason or oauth_error or "refused"


class IdTokenError(AuthError):
    """The ID token failed verification (signature, alg, iss, aud, exp, nonce)."""

    title = QT_TRANSLATE_NOOP("core.auth.errors", "The sign-in could not be verified")
    default_next_step = QT_TRANSLATE_NOOP(
        "core.auth.errors", "Sign in again; if it keeps failing, contact IT."
    )


class ClockSkewError(IdTokenError):
    """This computer's clock is off the identity provider's by more than the leeway.

    Raised when an ID token's times fail only because of this computer's clock (measured
    from the provider's ``Date`` header), and when a refresh is refused while the clock is
    far off: the stored tokens are kept, so setting the clock is enough to recover.
    ``skew_s`` is this computer's clock minus the provider's, in seconds, if measured.
    """

    title = QT_TRANSLATE_NOOP("core.auth.errors", "This computer's clock is wrong")
    code = "clock_skew"
    default_next_step = QT_TRANSLATE_NOOP(
        "core.auth.errors",
        "Set this computer's clock: turn on automatic date and time (or correct the date, "
        "time and time zone), then try again. You stay signed in meanwhile.",
    )

    def __init__(
        self, message: str, next_step: str | None = None, *, skew_s: float | None = None
    ) -> None:
        super().__init__(message, next_step)
        self.skew_s = skew_s

    @classmethod
    def measured(cls, skew_s: float, consequence: str) -> ClockSkewError:
        """ "This computer's clock is N minutes off the identity provider's (ahead); ..."."""
        return cls(f"{describe_skew(skew_s)}; {consequence}", skew_s=skew_s)


def describe_skew(skew_s: float) -> str:
    """ "This computer's clock is N minutes off the identity provider's (ahead)". Pure."""
    minutes = max(1, round(abs(skew_s) / 60))
    # one sentence per side and number: translators see whole sentences, and English
    # keeps "1 minute" without an English catalogue
    if skew_s > 0:
        if minutes == 1:
            return translate(
                "core.auth.errors",
                "This computer's clock is 1 minute off the identity provider's (ahead)",
            )
        return translate(
            "core.auth.errors",
            "This computer's clock is %n minutes off the identity provider's (ahead)",
            None,
            minutes,
        )
    if minutes == 1:
        return translate(
            "core.auth.errors",
            "This computer's clock is 1 minute off the identity provider's (behind)",
        )
    return translate(
        "core.auth.errors",
        "This computer's clock is %n minutes off the identity provider's (behind)",
        None,
        minutes,
    )


class ReauthRequired(AuthError):
    """No usable session: never signed in, signed out, or the refresh was refused."""

    title = QT_TRANSLATE_NOOP("core.auth.errors", "Sign-in needed")
    code = "signed_out"
    default_next_step = QT_TRANSLATE_NOOP("core.auth.errors", "Sign in again.")


class SecretStoreError(AuthError):
    """The OS keyring failed (locked, refused, D-Bus error)."""

    title = QT_TRANSLATE_NOOP("core.auth.errors", "The keyring could not be used")
    default_next_step = QT_TRANSLATE_NOOP(
        "core.auth.errors", "Unlock your keyring (log out and in again if needed) and retry."
    )


class NoSecretStoreError(SecretStoreError):
    """No secure keyring backend exists; secrets are never put in plain files instead."""

    title = QT_TRANSLATE_NOOP("core.auth.errors", "No keyring found")
    default_next_step = QT_TRANSLATE_NOOP(
        "core.auth.errors",
        "Install and start a Secret Service (e.g. gnome-keyring or KWallet) in your "
        "desktop session, then try again.",
    )
