"""The control-plane client's exception tree (drawn in the package docstring).

Each class carries the employee's words as class-level ``title``, ``next_step`` and
``code`` (the ``core.errors.UserFacing`` shape); ``detail`` is the message. The client
(``core.controlplane.client``) raises these and re-exports them.
"""

from __future__ import annotations

from core.controlplane.models import Problem
from core.controlplane.portal import CAPTIVE_PORTAL_MESSAGE
from core.errors import UserFacingError
from core.i18n import QT_TRANSLATE_NOOP, translate

__all__ = [
    "ApiRefusedError",
    "AuthenticationError",
    "CaptivePortalError",
    "ConflictError",
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
]

_RETRYING = QT_TRANSLATE_NOOP(
    "core.controlplane.errors", "Check your network connection. Rustronaut keeps retrying."
)


class ControlPlaneError(UserFacingError):
    """Talking to the controller failed; the message says how."""

    title = QT_TRANSLATE_NOOP("core.controlplane.errors", "Problem talking to the controller")


class ControllerUnreachableError(ControlPlaneError):
    """Could not connect, read, or establish trusted TLS."""

    title = QT_TRANSLATE_NOOP("core.controlplane.errors", "Controller unreachable")
    next_step = _RETRYING
    code = "controller_unreachable"


class PinMismatchError(ControllerUnreachableError):
    """The server's public key does not match the configured SPKI pin."""

    title = QT_TRANSLATE_NOOP(
        "core.controlplane.errors", "The controller's identity could not be confirmed"
    )
    next_step = QT_TRANSLATE_NOOP(
        "core.controlplane.errors",
        "Do not work around this: tell IT. Another network (or a TLS inspector) may be "
        "answering in the controller's place.",
    )
    code = "tls"


class CaptivePortalError(ControllerUnreachableError):
    """A captive portal answered in place of the controller (HTML, a redirect off-host,
    511, or a TLS failure while a plain-HTTP probe was hijacked).

    ``portal_url`` is the login page when the portal told it (a redirect), else None.
    ``user_message``/``next_step`` are what the employee is told.
    """

    title = QT_TRANSLATE_NOOP("core.controlplane.errors", "Sign in to the Wi-Fi network")
    user_message = CAPTIVE_PORTAL_MESSAGE
    next_step = QT_TRANSLATE_NOOP(
        "core.controlplane.errors",
        "Open a browser and sign in to the network; Rustronaut reconnects by itself.",
    )
    code = "captive_portal"

    def __init__(self, message: str, *, portal_url: str | None = None) -> None:
        super().__init__(message)
        self.portal_url = portal_url

    @property
    def detail(self) -> str:
        """The portal message and, when known, the portal's sign-in page."""
        # the portal message is marked where it is defined (core.controlplane.portal)
        message = translate("core.controlplane.portal", self.user_message)
        if self.portal_url:
            return translate(
                "core.controlplane.errors", "{message}. The sign-in page: {url}"
            ).format(message=message, url=self.portal_url)
        return f"{message}."


class ProxyFailedError(ControllerUnreachableError):
    """The proxy chosen for the controller could not be reached or refused to connect.

    ``proxy`` is its URL without credentials, ``source`` where it was configured.
    """

    title = QT_TRANSLATE_NOOP("core.controlplane.errors", "The proxy did not get through")

    def __init__(self, message: str, *, proxy: str, source: str) -> None:
        super().__init__(message)
        self.proxy = proxy
        self.source = source
        self.user_message = translate(
            "core.controlplane.errors",
            "Could not reach the controller through the proxy {proxy} (set by {source}).",
        ).format(proxy=proxy, source=source)
        self.next_step = translate(
            "core.controlplane.errors",
            "Check the proxy settings (or that you are on the network the proxy belongs "
            "to); ask IT if the proxy refuses the controller.",
        )

    @property
    def detail(self) -> str:
        """Which proxy failed and who configured it."""
        return self.user_message


class InvalidAnswerError(ControlPlaneError):
    """The answer is oversized, not JSON, or does not match its schema."""

    title = QT_TRANSLATE_NOOP("core.controlplane.errors", "The controller's answer was not usable")
    next_step = QT_TRANSLATE_NOOP(
        "core.controlplane.errors",
        "Try again later. If it keeps happening, something on the network may be changing "
        "the traffic: collect diagnostics (rustronaut diag) and contact IT.",
    )


class ApiRefusedError(ControlPlaneError):
    """The controller refused with a problem document."""

    title = QT_TRANSLATE_NOOP("core.controlplane.errors", "The controller refused the request")

    def __init__(self, status: int, problem: Problem) -> None:
        super().__init__(f"{status} {problem.title}: {problem.detail}".strip())
        self.status = status
        self.problem = problem

    @property
    def detail(self) -> str:
        """The controller's own explanation (its problem document's detail or title)."""
        return (
            self.problem.detail
            or self.problem.title
            or translate("core.controlplane.errors", "HTTP status {status}").format(
                status=self.status
            )
        )


class AuthenticationError(ApiRefusedError):
    """401: the bearer token was missing or refused."""

    title = QT_TRANSLATE_NOOP("core.controlplane.errors", "Sign-in needed")
    next_step = QT_TRANSLATE_NOOP("core.controlplane.errors", "Sign in again.")
    code = "signed_out"


class ForbiddenError(ApiRefusedError):
    """403: authenticated but not allowed (e.g. the device is revoked)."""

    title = QT_TRANSLATE_NOOP("core.controlplane.errors", "The controller refused this device")
    next_step = QT_TRANSLATE_NOOP(
        "core.controlplane.errors",
        "This device may have been removed from your organization: contact IT.",
    )
    code = "device_revoked"


class NotFoundError(ApiRefusedError):
    """404."""

    title = QT_TRANSLATE_NOOP(
        "core.controlplane.errors", "The controller does not know what was asked"
    )


class ConflictError(ApiRefusedError):
    """409: e.g. the key is already enrolled for another device."""

    title = QT_TRANSLATE_NOOP("core.controlplane.errors", "This device's key is already enrolled")
    next_step = QT_TRANSLATE_NOOP(
        "core.controlplane.errors",
        "Ask IT to remove the old enrollment of this device, then sign in again.",
    )


class RejectedError(ApiRefusedError):
    """400/413/422: the request or the posture report was refused."""

    title = QT_TRANSLATE_NOOP("core.controlplane.errors", "The controller rejected the request")


class RateLimitedError(ApiRefusedError):
    """429; ``retry_after`` is the server's hint in seconds (None if absent)."""

    title = QT_TRANSLATE_NOOP("core.controlplane.errors", "The controller is busy")
    next_step = QT_TRANSLATE_NOOP(
        "core.controlplane.errors", "Wait a moment; Rustronaut retries by itself."
    )
    code = "controller_unreachable"

    def __init__(self, status: int, problem: Problem, retry_after: float | None) -> None:
        super().__init__(status, problem)
        self.retry_after = retry_after


class ServerError(ApiRefusedError):
    """5xx."""

    title = QT_TRANSLATE_NOOP("core.controlplane.errors", "The controller has a problem")
    next_step = QT_TRANSLATE_NOOP(
        "core.controlplane.errors", "Rustronaut keeps retrying. If it lasts, contact IT."
    )
    code = "controller_unreachable"
