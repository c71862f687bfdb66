"""A tiny scripted "browser" for the sign-in tests: follows redirects, fills and posts forms.

It behaves like a user's browser on a provider's login pages: cookies kept, redirects
followed (including the final one to the client's loopback listener), each page's first
form posted with its hidden fields plus the values given for visible inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    visible: list[str] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag in {"input", "select", "textarea"} and self.forms and a.get("name"):
            form = self.forms[-1]
            if a.get("type") == "hidden":
                form.fields[a["name"]] = a.get("value", "")
            elif a.get("type") not in {"submit", "button", "checkbox"}:
                form.visible.append(a["name"])
                form.fields.setdefault(a["name"], a.get("value", ""))


def forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


@dataclass
class BrowserResult:
    final: httpx.Response
    visited: list[str]


async def browse(
    url: str,
    *,
    fill: dict[str, str],
    stop_prefix: str | None = None,
    max_steps: int = 20,
    tamper: dict[str, str] | None = None,
    cookies: httpx.Cookies | None = None,
) -> BrowserResult:
    """Open ``url`` and keep posting forms until the page has no form (or ``stop_prefix``
    is reached). ``tamper`` rewrites query parameters of the redirect to ``stop_prefix``
    (to play a forged callback). ``cookies``: the browser's cookie jar, kept across calls
    (the provider's session lives there)."""
    visited: list[str] = []
    async with httpx.AsyncClient(timeout=10, cookies=cookies) as client:
        try:
            return await _browse(client, url, fill, stop_prefix, max_steps, tamper, visited)
        finally:
            if cookies is not None:  # httpx copies the jar: bring the new cookies back
                for cookie in client.cookies.jar:
                    cookies.jar.set_cookie(cookie)


async def _browse(
    client: httpx.AsyncClient,
    url: str,
    fill: dict[str, str],
    stop_prefix: str | None,
    max_steps: int,
    tamper: dict[str, str] | None,
    visited: list[str],
) -> BrowserResult:
    response = await _get(client, url, visited, stop_prefix, tamper)
    for _ in range(max_steps):
        if stop_prefix and str(response.url).startswith(stop_prefix):
            return BrowserResult(response, visited)
        page = forms(response.text) if "html" in response.headers.get("content-type", "") else []
        if not page:
            return BrowserResult(response, visited)
        form = page[0]
        data = dict(form.fields)
        for name in form.visible:
            if name in fill:
                data[name] = fill[name]
        target = urljoin(str(response.url), form.action or str(response.url))
        visited.append(f"POST {target}")
        response = await client.post(target, data=data)
        response = await _follow(client, response, visited, stop_prefix, tamper)
    raise AssertionError(f"browser did not finish in {max_steps} steps: {visited}")


async def _get(
    client: httpx.AsyncClient,
    url: str,
    visited: list[str],
    stop_prefix: str | None,
    tamper: dict[str, str] | None,
) -> httpx.Response:
    visited.append(f"GET {url}")
    return await _follow(client, await client.get(url), visited, stop_prefix, tamper)


async def _follow(
    client: httpx.AsyncClient,
    response: httpx.Response,
    visited: list[str],
    stop_prefix: str | None,
    tamper: dict[str, str] | None,
) -> httpx.Response:
    for _ in range(20):
        if not response.is_redirect:
            return response
        location = urljoin(str(response.url), response.headers["location"])
        if stop_prefix and location.startswith(stop_prefix) and tamper:
            u = httpx.URL(location)
            location = str(u.copy_merge_params(tamper))
        visited.append(f"GET {location}")
        response = await client.get(location)
    raise AssertionError("too many redirects")
