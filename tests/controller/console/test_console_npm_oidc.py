"""Admins sign in to the console through an OpenID provider we did not write: the certified
panva/node-oidc-provider (tests/tools/oidc-provider), as a confidential web client.

That provider, at its default settings, keeps the ``groups`` claim out of the ID token
and answers it from userinfo, checks the client secret and the exact redirect URI, and
shows its own login and consent pages; the console must work with all of that.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import urljoin

import httpx
import pytest

from tests.controller.console.conftest import (
    SESSION_COOKIE,
    ConsoleServer,
    console_server_running,
)
from tests.core.auth.browser import forms
from tests.core.auth.conftest import NpmProvider, free_port, start_npm_provider

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

CLIENT = "rustronaut-console-test"


@pytest.fixture
def npm_console() -> Iterator[tuple[ConsoleServer, NpmProvider]]:
    """A controller whose console trusts the npm provider, and that provider."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    # Always led by a dash: token_urlsafe does that one time in 64, and such a secret once
    # failed the provider's start in CI (node's parseArgs took it for an option).
    secret = "-" + secrets.token_urlsafe(24)
    with console_server_running(
        console={"issuer": issuer, "client_id": CLIENT, "client_secret": secret}
    ) as server:
        provider = start_npm_provider(
            port,
            web_client=CLIENT,
            web_secret=secret,
            web_redirect=server.url + "/console/callback",
        )
        try:
            yield server, provider
        finally:
            provider.stop()


def _walk(server: ConsoleServer, login: str) -> httpx.Response:
    """GET /console/login, then the provider's login and consent pages like a browser
    (its cookies kept), until the redirect back to the console's callback is answered."""
    console = server.client()
    start = console.get("/console/login")
    assert start.status_code == 303, start.text
    with httpx.Client(timeout=10, follow_redirects=False) as idp:
        resp = idp.get(start.headers["location"])
        for _ in range(12):
            if resp.is_redirect:
                target = urljoin(str(resp.url), resp.headers["location"])
                if target.startswith(server.url + "/console/callback"):
                    return console.get(target.removeprefix(server.url))
                resp = idp.get(target)
                continue
            page = forms(resp.text)
            assert page, f"the provider showed no form: {resp.status_code} {resp.text[:300]}"
            form = page[0]
            data = dict(form.fields)
            data.update(
                {k: v for k, v in {"login": login, "password": "any"}.items() if k in form.visible}
            )
            resp = idp.post(urljoin(str(resp.url), form.action), data=data)
    raise AssertionError("the provider never sent the browser back to the console")


def test_an_admin_signs_in_through_the_certified_provider(
    npm_console: tuple[ConsoleServer, NpmProvider],
) -> None:
    server, _ = npm_console
    final = _walk(server, "admin-erin")
    assert final.status_code == 200, final.text
    cookie = server.clients[-1].jar.values.get(SESSION_COOKIE)  # type: ignore[attr-defined]
    assert cookie, "a session cookie was set"
    page = server.clients[-1].get("/console/")
    assert page.status_code == 200
    # The groups came from userinfo (the ID token has none at default settings) and the
    # name from the profile scope: both shown as the provider said them.
    assert "admin-erin@example.test" in page.text or "Test User admin-erin" in page.text


def test_a_provider_user_outside_the_admin_groups_gets_no_session(
    npm_console: tuple[ConsoleServer, NpmProvider],
) -> None:
    server, _ = npm_console
    final = _walk(server, "dana")
    assert final.status_code == 403
    assert "not in an admin group" in final.text
    assert SESSION_COOKIE not in server.clients[-1].jar.values  # type: ignore[attr-defined]
    assert server.clients[-1].get("/console/").status_code == 303


def test_a_wrong_client_secret_is_a_clear_sign_in_failure() -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    with console_server_running(
        console={"issuer": issuer, "client_id": CLIENT, "client_secret": "not-the-secret"}
    ) as server:
        provider = start_npm_provider(
            port,
            web_client=CLIENT,
            web_secret="the-real-secret-" + secrets.token_hex(8),
            web_redirect=server.url + "/console/callback",
        )
        try:
            final = _walk(server, "admin-erin")
        finally:
            provider.stop()
    assert final.status_code == 400
    assert "refused the code" in final.text
    assert SESSION_COOKIE not in server.clients[-1].jar.values  # type: ignore[attr-defined]
