"""OpenID Provider discovery (``/.well-known/openid-configuration``), validated and cached.

A discovery document is accepted only if it is a JSON object (size-capped) whose
``issuer`` is exactly the configured one (OIDC Discovery §4.3, mix-up defence) and whose
endpoints are https (http only for a loopback issuer). A refused document never replaces
a cached good one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from core.auth.errors import DiscoveryError
from core.auth.http import check_endpoint_url, json_object, map_transport_error, validate_issuer

__all__ = ["DiscoveryCache", "ProviderMetadata", "parse_metadata"]


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of a provider's discovery document the client uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    device_authorization_endpoint: str | None = None
    revocation_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    code_challenge_methods_supported: tuple[str, ...] = ()
    id_token_signing_alg_values_supported: tuple[str, ...] = ()
    authorization_response_iss_parameter_supported: bool = False
    #: ``prompt`` values the provider understands (OIDC Prompt Create); empty if unsaid.
    prompt_values_supported: tuple[str, ...] = ()


def _strings(doc: dict[str, Any], key: str) -> tuple[str, ...]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DiscoveryError(f"The discovery document's {key!r} is not a list of strings.")
    return tuple(value)


def parse_metadata(doc: dict[str, Any], issuer: str) -> ProviderMetadata:
    """Validate a discovery document for ``issuer``; pure. Raises ``DiscoveryError``."""
    found = doc.get("issuer")
    if found != issuer:
        raise DiscoveryError(
            f"The discovery document is for issuer {found!r}, not the configured {issuer!r}; "
            "refusing it (possible mix-up or misconfiguration)."
        )

    def endpoint(key: str, required: bool) -> str | None:
        if not required and doc.get(key) is None:
            return None
        return check_endpoint_url(key, doc.get(key), issuer, DiscoveryError)

    iss_param = doc.get("authorization_response_iss_parameter_supported", False)
    if not isinstance(iss_param, bool):
        raise DiscoveryError(
            "The discovery document's 'authorization_response_iss_parameter_supported' "
            "is not a boolean."
        )
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=endpoint("authorization_endpoint", True) or "",
        token_endpoint=endpoint("token_endpoint", True) or "",
        jwks_uri=endpoint("jwks_uri", True) or "",
        device_authorization_endpoint=endpoint("device_authorization_endpoint", False),
        revocation_endpoint=endpoint("revocation_endpoint", False),
        userinfo_endpoint=endpoint("userinfo_endpoint", False),
        end_session_endpoint=endpoint("end_session_endpoint", False),
        code_challenge_methods_supported=_strings(doc, "code_challenge_methods_supported"),
        id_token_signing_alg_values_supported=_strings(
            doc, "id_token_signing_alg_values_supported"
        ),
        authorization_response_iss_parameter_supported=iss_param,
        prompt_values_supported=_strings(doc, "prompt_values_supported"),
    )


class DiscoveryCache:
    """Fetches and caches one issuer's ``ProviderMetadata``.

    ``get()`` is single-flight (concurrent callers share one fetch) and serves the cached
    document for ``ttl`` seconds. Use from the event loop's thread only.
    """

    def __init__(
        self,
        issuer: str,
        http: httpx.AsyncClient,
        *,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = validate_issuer(issuer)
        self._http = http
        self._ttl = ttl
        self._clock = clock
        self._cached: ProviderMetadata | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def url(self) -> str:
        """The discovery URL derived from the issuer (OIDC Discovery §4)."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    async def get(self, *, refresh: bool = False) -> ProviderMetadata:
        """The provider's metadata, fetched if not cached (or ``refresh``).

        Raises ``ProviderUnreachable``, ``BadProviderResponse`` or ``DiscoveryError``; a
        failed fetch leaves the previous cached document in place.
        """
        async with self._lock:
            fresh = self._cached is not None and self._clock() - self._fetched_at < self._ttl
            if self._cached is not None and fresh and not refresh:
                return self._cached
            metadata = await self._fetch()
            self._cached, self._fetched_at = metadata, self._clock()
            return metadata

    async def _fetch(self) -> ProviderMetadata:
        try:
            response = await self._http.get(self.url, headers={"Accept": "application/json"})
        except (httpx.HTTPError, ValueError) as exc:
            raise map_transport_error(exc, "discovery") from exc
        if response.status_code != 200:
            raise DiscoveryError(
                f"The identity provider's discovery document ({self.url}) answered "
                f"HTTP {response.status_code}; is the issuer URL right?"
            )
        return parse_metadata(json_object(response, "discovery"), self.issuer)
