"""HTTP plumbing shared by the OIDC flows: URL rules, TLS, size caps, JSON parsing.

Rules enforced here, in one place:
- an ``https`` URL everywhere, except that ``http`` is allowed when the issuer itself is
  on loopback (a development or test provider on this machine);
- TLS verification through the OS trust store (``truststore``), never switched off;
- every answer from the provider is read with a size cap and must be a JSON object.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.auth.errors import (
    BadProviderResponse,
    ConfigurationError,
    ProviderTlsError,
    ProviderUnreachable,
)
from core.text import safe_line

__all__ = [
    "MAX_RESPONSE_BYTES",
    "CappedTransport",
    "ResponseTooLarge",
    "check_endpoint_url",
    "is_loopback_url",
    "json_object",
    "make_transport",
    "map_transport_error",
    "validate_issuer",
]

#: Cap on any answer from the identity provider (discovery, JWKS, tokens). Real ones are
#: a few KiB; 256 KiB leaves room for large JWKS sets while refusing garbage floods.
MAX_RESPONSE_BYTES = 256 * 1024


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    host = urlsplit(url).hostname
    return host is not None and _is_loopback_host(host)


def validate_issuer(issuer: str) -> str:
    """Return the issuer URL as configured, or raise ``ConfigurationError``.

    The issuer must be an absolute ``https`` URL without query or fragment; ``http`` is
    accepted only for a loopback host. Pure; never touches the network.
    """
    parts = urlsplit(issuer)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ConfigurationError(f"The OIDC issuer {issuer!r} is not an https URL.")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"The OIDC issuer {issuer!r} must not have a query or fragment.")
    if parts.scheme == "http" and not _is_loopback_host(parts.hostname):
        raise ConfigurationError(
            f"The OIDC issuer {issuer!r} uses plain HTTP; only https is allowed "
            "(plain HTTP only for a provider on this machine's loopback)."
        )
    return issuer


def check_endpoint_url(name: str, url: object, issuer: str, error: type[Exception]) -> str:
    """Return ``url`` if it is an acceptable endpoint for ``issuer``, else raise ``error``.

    Acceptable: an absolute https URL, or http when the issuer is on loopback.
    """
    if not isinstance(url, str) or not url:
        raise error(f"The identity provider's {name} is missing or not a string.")
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in {"https", "http"}:
        raise error(f"The identity provider's {name} {url!r} is not an absolute URL.")
    if parts.scheme == "http" and not (is_loopback_url(issuer) and is_loopback_url(url)):
        raise error(
            f"The identity provider's {name} {url!r} uses plain HTTP; only https is allowed."
        )
    return url


class ResponseTooLarge(httpx.TransportError):
    """An answer exceeded ``MAX_RESPONSE_BYTES`` (raised while the body is read)."""


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, cap: int, url: str) -> None:
        self._inner = inner
        self._cap = cap
        self._url = url

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = 0
        async for chunk in self._inner:
            total += len(chunk)
            if total > self._cap:
                raise ResponseTooLarge(f"answer from {self._url} is larger than {self._cap} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class CappedTransport(httpx.AsyncBaseTransport):
    """Wraps a transport so that no response body can exceed ``cap`` bytes.

    A declared ``Content-Length`` over the cap fails at once; an undeclared one fails as
    soon as the streamed body passes it. Either way ``ResponseTooLarge`` is raised.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, cap: int = MAX_RESPONSE_BYTES) -> None:
        self._inner = inner
        self._cap = cap

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self._cap:
            await response.aclose()
            raise ResponseTooLarge(f"answer from {request.url} declares {length} bytes")
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CappedStream(response.stream, self._cap, str(request.url))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def make_transport(inner: httpx.AsyncBaseTransport | None = None) -> CappedTransport:
    """The transport every provider request goes through: OS trust store TLS, size cap.

    ``inner`` is the test seam (e.g. ``httpx.MockTransport``); by default a real
    ``httpx.AsyncHTTPTransport`` verifying certificates against the OS trust store.
    """
    if inner is None:
        import truststore

        ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        inner = httpx.AsyncHTTPTransport(verify=ctx, retries=1)
    return CappedTransport(inner)


def map_transport_error(exc: BaseException, what: str) -> Exception:
    """Turn an httpx error raised while talking to the provider into an ``AuthError``."""
    if isinstance(exc, ResponseTooLarge):
        return BadProviderResponse(f"The identity provider's {what} answer is too large.")
    if _certificate_failure(exc):
        return ProviderTlsError(
            f"The connection to the identity provider ({what}) could not be verified: its "
            "certificate was not accepted."
        )
    if isinstance(exc, httpx.TimeoutException):
        return ProviderUnreachable(f"The identity provider did not answer ({what}) in time.")
    if isinstance(exc, httpx.TransportError):
        return ProviderUnreachable(
            f"Cannot reach the identity provider ({what}): {safe_line(str(exc).rstrip('.'))}."
        )
    if isinstance(exc, httpx.HTTPStatusError):
        return BadProviderResponse(
            f"The identity provider answered {what} with HTTP {exc.response.status_code}."
        )
    return BadProviderResponse(
        f"The identity provider's {what} answer is unusable: {safe_line(str(exc).rstrip('.'))}."
    )


def _certificate_failure(exc: BaseException) -> bool:
    """True when ``exc`` or its causes are a TLS certificate verification failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        if isinstance(current, ssl.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The body of an already-read ``response`` as a JSON object, or ``BadProviderResponse``."""
    try:
        value = json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadProviderResponse(
            f"The identity provider's {what} answer (HTTP {response.status_code}) is not JSON."
        ) from exc
    if not isinstance(value, dict):
        raise BadProviderResponse(f"The identity provider's {what} answer is not a JSON object.")
    return value
