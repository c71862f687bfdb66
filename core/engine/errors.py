"""One place that turns failures into words for the employee: what happened, what next.

Ports raise their own packages' exceptions; ``explain`` maps them by duck-typing on a few
well-known attributes and class names, so the engine does not need to import every
package's exception tree (and a new part only has to give its errors a ``user_message``
and ``next_step`` to be explained well).

Adapters re-raise some errors as others (the control adapter turns "controller
unreachable" into ``ConnectionError`` so the engine goes offline): ``explain`` looks
through the ``__cause__`` chain for a captive portal or a failed proxy first, because
those tell the employee exactly what to do.
"""

from __future__ import annotations

import asyncio
import ssl

import httpx

from core.controlplane import CaptivePortalError, ProxyFailedError
from core.controlplane.portal import CAPTIVE_PORTAL_MESSAGE
from core.engine.state import ErrorInfo

__all__ = [
    "AlwaysOnError",
    "EngineError",
    "NoGatewayError",
    "SignInRequiredError",
    "captive_portal",
    "explain",
]


class EngineError(Exception):
    """An engine-level refusal with its own user message."""

    title = "Something went wrong"
    next_step = "Try again. If it keeps happening, collect diagnostics and contact IT."


class SignInRequiredError(EngineError):
    """There is no usable sign-in."""

    title = "Sign-in needed"
    next_step = "Choose Sign in and complete the sign-in in your browser."


class NoGatewayError(EngineError):
    """The signed policy gives this device no gateway (the controller has none set up)."""

    title = "No gateway for this device"
    next_step = "Ask IT: the controller has no WireGuard gateway configured for you yet."


class AlwaysOnError(EngineError):
    """Disconnect refused: always-on is set by the organization."""

    title = "Always-on is required by your organization"
    next_step = "Use the break-glass disconnect and give a reason; IT is told."


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in out and len(out) < 16:
        out.append(seen)
        seen = seen.__cause__ or seen.__context__
    return out


def captive_portal(exc: BaseException) -> CaptivePortalError | None:
    """The captive-portal error behind ``exc`` (itself or a cause), else None.

    For the engine: an "offline" failure that is a portal deserves the portal message.
    """
    return next((e for e in _chain(exc) if isinstance(e, CaptivePortalError)), None)


def explain(exc: BaseException, *, during: str) -> ErrorInfo:
    """Map ``exc`` (raised while ``during``, e.g. "connecting") to an ``ErrorInfo``.

    Pure; never raises; safe from any thread.
    """
    portal = captive_portal(exc)
    if portal is not None:
        where = f" The sign-in page: {portal.portal_url}" if portal.portal_url else ""
        return ErrorInfo(
            title="Sign in to the Wi-Fi network",
            detail=CAPTIVE_PORTAL_MESSAGE + "." + where,
            next_step=portal.next_step,
        )
    proxy = next((e for e in _chain(exc) if isinstance(e, ProxyFailedError)), None)
    if proxy is not None:
        return ErrorInfo(
            title="The proxy did not get through",
            detail=f"{proxy.user_message} {proxy}",
            next_step=proxy.next_step,
        )
    if isinstance(exc, EngineError):
        return ErrorInfo(title=exc.title, detail=str(exc), next_step=exc.next_step)
    user_message = getattr(exc, "user_message", None)
    next_step = getattr(exc, "next_step", None)
    if isinstance(user_message, str) and isinstance(next_step, str):
        return ErrorInfo(title=f"Problem while {during}", detail=user_message, next_step=next_step)
    if isinstance(exc, ssl.SSLError) or "certificate" in str(exc).lower():
        return ErrorInfo(
            title="Secure connection failed",
            detail=f"The connection to the controller could not be verified: {exc}",
            next_step="Check the date and time, then your network; a corporate TLS inspector "
            "may need IT's certificate installed.",
        )
    if isinstance(exc, httpx.TransportError | ConnectionError | asyncio.TimeoutError | OSError):
        return ErrorInfo(
            title="Controller unreachable",
            detail=f"Could not reach the controller while {during}: {exc or type(exc).__name__}",
            next_step="Check your network connection. Rustronaut keeps retrying.",
        )
    name = type(exc).__name__
    if "Helper" in name or "helper" in str(exc).lower():
        return ErrorInfo(
            title="The Rustronaut helper is not running",
            detail=str(exc) or name,
            next_step="Reinstall Rustronaut or ask IT to start the rustronaut-helper service.",
        )
    return ErrorInfo(
        title=f"Problem while {during}",
        detail=f"{name}: {exc}" if str(exc) else name,
        next_step="Try again. If it keeps happening, collect diagnostics and contact IT.",
    )
