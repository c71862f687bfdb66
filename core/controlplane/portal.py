"""Captive-portal signs in an answer, and the optional plain-HTTP probe.

A hotel or airport network that wants a sign-in first answers every request itself: a
redirect to its login host, an HTML page, ``511 Network Authentication Required``, or
(for https) a TLS handshake with its own certificate. The controller never answers
with HTML or a redirect, so ``portal_sign`` recognises these answers; the client then
raises ``CaptivePortalError`` — never treating such an answer as valid, never failing
open. A 5xx HTML page is *not* a portal sign (that is a load balancer's error page).

A TLS verification failure alone cannot tell a portal from a corporate TLS inspector or
a wrong clock: ``probe_portal`` asks a well-known plain-HTTP URL whose exact answer is
known (``PortalProbe``); a redirect, HTML in place of the expected body, or another
status means a portal. The probe is opt-in (``ControlPlaneClient(portal_probe=...)``):
it talks to a third party, so the caller decides (``DEFAULT_PORTAL_PROBE`` is Mozilla's
``detectportal`` endpoint, the one Firefox uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import httpx

from core.i18n import QT_TRANSLATE_NOOP

__all__ = [
    "CAPTIVE_PORTAL_MESSAGE",
    "DEFAULT_PORTAL_PROBE",
    "PortalProbe",
    "PortalVerdict",
    "portal_sign",
    "probe_portal",
]

CAPTIVE_PORTAL_MESSAGE = QT_TRANSLATE_NOOP(
    "core.controlplane.portal",
    "You seem to be behind a captive portal (hotel/airport Wi-Fi login page): open a "
    "browser and sign in to the network, then Rustronaut reconnects",
)
_PROBE_CAP = 64 * 1024


@dataclass(frozen=True, slots=True)
class PortalProbe:
    """A plain-HTTP URL and the exact answer an open network gives."""

    url: str
    expect_status: int = 200
    #: the body must start with this (None: any body)
    expect_body: bytes | None = None
    timeout_s: float = 3.0


DEFAULT_PORTAL_PROBE = PortalProbe(
    "http://detectportal.firefox.com/canonical.html", 200, b'<meta http-equiv="refresh"'
)


@dataclass(frozen=True, slots=True)
class PortalVerdict:
    """``open`` (expected answer), ``portal`` (hijacked: ``location`` if redirected) or
    ``unknown`` (the probe itself failed)."""

    verdict: Literal["open", "portal", "unknown"]
    location: str | None = None
    detail: str = ""


def _is_html(response: httpx.Response) -> bool:
    ctype = str(response.headers.get("content-type", "")).lower()
    return ctype.startswith(("text/html", "application/xhtml"))


def portal_sign(response: httpx.Response, base: httpx.URL) -> tuple[str, str | None] | None:
    """Why ``response`` (to a request for ``base``'s host) looks like a captive portal.

    Returns (reason, the portal's URL if known) or None. Pure; reads headers only.
    """
    status = response.status_code
    if status == 511:
        return "the network answered 511 Network Authentication Required", None
    if 300 <= status < 400:
        location = response.headers.get("location")
        if location:
            target = response.url.join(location)
            if target.host != base.host or (base.scheme == "https" and target.scheme != "https"):
                return f"redirected to {target.host or 'another host'}", str(target)
    if _is_html(response) and status < 500:
        return f"an HTML page (status {status}) answered in place of the controller", None
    return None


async def probe_portal(
    probe: PortalProbe,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    proxy: str | None = None,
) -> PortalVerdict:
    """Fetch ``probe.url`` without following redirects and judge the answer. Never raises."""
    try:
        async with (
            httpx.AsyncClient(
                transport=transport,
                proxy=proxy if transport is None else None,
                trust_env=False,
                follow_redirects=False,
                timeout=probe.timeout_s,
            ) as http,
            http.stream("GET", probe.url, headers={"Cache-Control": "no-cache"}) as response,
        ):
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= _PROBE_CAP:
                    break
    except httpx.HTTPError as exc:
        return PortalVerdict("unknown", detail=f"probe failed: {exc}")
    if 300 <= response.status_code < 400:
        location = response.headers.get("location")
        target = str(response.url.join(location)) if location else None
        return PortalVerdict("portal", target, f"probe redirected ({response.status_code})")
    if response.status_code != probe.expect_status:
        return PortalVerdict("portal", None, f"probe answered {response.status_code}")
    if probe.expect_body is not None and not body.lstrip().startswith(probe.expect_body):
        return PortalVerdict("portal", None, "probe answer was replaced")
    return PortalVerdict("open")
