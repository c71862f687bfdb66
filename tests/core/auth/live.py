"""Helpers to run the client's flows against a live provider with the scripted browser."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import httpx

from core.auth import OidcClient, OidcConfig, SecretStore, Session
from tests.core.auth.browser import BrowserResult, browse


@dataclass
class LiveProvider:
    """A provider under test: where it is and how its login page is filled."""

    name: str
    issuer: str
    client_id: str
    fill: dict[str, str]
    expected_sub: str
    scopes: tuple[str, ...] = ("openid", "profile", "email", "offline_access")


class CountingTransport(httpx.AsyncBaseTransport):
    """A real transport that counts requests per path (to observe refreshes, JWKS fetches)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.calls: list[tuple[str, str]] = []

    def count(self, method: str, path_suffix: str) -> int:
        return sum(1 for m, p in self.calls if m == method and p.endswith(path_suffix))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class ScriptedBrowser:
    """``open_url`` for ``OidcClient``: logs in on the provider's pages like a user."""

    live: LiveProvider
    tamper: dict[str, str] | None = None
    results: list[BrowserResult] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    cookies: httpx.Cookies = field(default_factory=httpx.Cookies)

    async def __call__(self, url: str) -> None:
        self.urls.append(url)
        redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        result = await browse(
            url,
            fill=self.live.fill,
            stop_prefix=redirect_uri,
            tamper=self.tamper,
            cookies=self.cookies,
        )
        self.results.append(result)

    @property
    def callback(self) -> httpx.Response:
        return self.results[-1].final


def make_client(
    live: LiveProvider,
    *,
    open_url: Callable[[str], object] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], object] | None = None,
) -> OidcClient:
    config = OidcConfig(issuer=live.issuer, client_id=live.client_id, scopes=live.scopes)
    return OidcClient(
        config,
        transport=transport or httpx.AsyncHTTPTransport(),
        open_url=open_url or ScriptedBrowser(live),
        # The device flow's poll interval, shortened (the scenario's clock, not a settle).
        sleep=sleep or (lambda s: asyncio.sleep(0.05)),  # type: ignore[arg-type,return-value]
    )


def make_session(client: OidcClient, store: SecretStore, **kw: object) -> Session:
    return Session(client, store, **kw)  # type: ignore[arg-type]
