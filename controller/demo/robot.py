"""A scripted browser for the development OIDC provider (demo and tests only).

The engine opens the system browser at the provider's authorization URL; here, instead,
``RobotBrowser`` posts the demo user's name and password to the login form and follows
the redirect to the client's loopback listener, exactly as a browser would. Nothing in
the product uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

__all__ = ["RobotBrowser"]


@dataclass
class RobotBrowser:
    """``open_url`` for ``core.auth.OidcClient`` that signs ``username`` in."""

    username: str
    password: str

    async def __call__(self, url: str) -> bool:
        redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        async with httpx.AsyncClient(timeout=10) as http:
            login = await http.post(
                url, data={"username": self.username, "password": self.password}
            )
            location = login.headers.get("location", "")
            if login.status_code not in (302, 303) or not location.startswith(redirect_uri):
                raise RuntimeError(f"login page refused {self.username}: {login.status_code}")
            # The loopback listener answers the "browser" with its close-this-tab page.
            await http.get(location)
        return True
