"""Fixtures for the admin console: a real controller (uvicorn on 127.0.0.1, the dev OIDC
provider, the console) in a background thread, and httpx clients that sign an admin in by
walking the real redirects and posting the provider's login form.

Browsers treat loopback http as a secure context and send ``Secure`` cookies there;
Python's cookie jar does not, so ``BrowserCookies`` keeps the cookies like a browser
would (per name, ``Max-Age=0`` deletes) and sends them on every request.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from controller.config import ControllerConfig
from controller.service import ControllerService
from controller.testing import RunningController, run_controller

ADMIN = ("it-admin", "it-admin-password")
USER = ("alice", "alice-password")
SESSION_COOKIE = "__Host-rtc_console"
PREAUTH_COOKIE = "__Host-rtc_console_login"


class Clock:
    """A settable clock for the service (session expiry): real time plus an offset."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the service's time forward."""
        self.offset += seconds


class BrowserCookies:
    """A browser-like cookie jar for one loopback origin (Secure cookies sent over http)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        #: the raw ``Set-Cookie`` headers seen, newest last (attribute checks)
        self.set_cookie_headers: list[str] = []

    def on_request(self, request: httpx.Request) -> None:
        if self.values:
            request.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.values.items())

    def on_response(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            self.set_cookie_headers.append(header)
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or (morsel["expires"] and "1970" in morsel["expires"]):
                    self.values.pop(name, None)
                else:
                    self.values[name] = morsel.value


def browser(base_url: str, jar: BrowserCookies | None = None) -> httpx.Client:
    """An httpx client with a ``BrowserCookies`` jar (``client.jar``); no auto-redirects."""
    jar = jar or BrowserCookies()
    client = httpx.Client(
        base_url=base_url,
        timeout=10.0,
        event_hooks={"request": [jar.on_request], "response": [jar.on_response]},
    )
    client.jar = jar  # type: ignore[attr-defined]
    return client


@dataclass
class SignInWalk:
    """The URLs a sign-in went through (for replay and tampering tests)."""

    provider_url: str = ""
    callback_url: str = ""
    final: httpx.Response | None = None


def walk_sign_in(
    client: httpx.Client, username: str, password: str, *, stop_before_callback: bool = False
) -> SignInWalk:
    """Sign in like a browser: /console/login → provider form → POST → /console/callback.

    Returns the walk; ``final`` is the callback's response (None when stopped before it).
    """
    walk = SignInWalk()
    start = client.get("/console/login")
    assert start.status_code == 303, start.text
    walk.provider_url = start.headers["location"]
    form = client.get(walk.provider_url)
    assert form.status_code == 200, form.text
    action = re.search(r'<form method="post" action="([^"]+)"', form.text)
    assert action is not None, form.text
    post_url = urljoin(walk.provider_url, action.group(1).replace("&amp;", "&"))
    posted = client.post(post_url, data={"username": username, "password": password})
    assert posted.status_code == 302, posted.text
    walk.callback_url = posted.headers["location"]
    if stop_before_callback:
        return walk
    walk.final = client.get(walk.callback_url)
    return walk


@dataclass
class ConsoleServer:
    """A running controller with the console; see the module docstring."""

    url: str
    rc: RunningController
    clock: Clock
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def service(self) -> ControllerService:
        """The controller's service (storage, devices, policy)."""
        return self.rc.service

    @property
    def config(self) -> ControllerConfig:
        """The controller's configuration."""
        return self.rc.service.config

    @property
    def origin(self) -> str:
        """The console's origin (``Origin`` header of its own pages)."""
        return self.url

    def client(self) -> httpx.Client:
        """A fresh, signed-out browser-like client."""
        c = browser(self.url)
        self.clients.append(c)
        return c

    def signed_in_client(self, username: str = ADMIN[0], password: str = ADMIN[1]) -> httpx.Client:
        """A client signed in as ``username`` through the real OIDC flow. Its ``csrf``
        attribute is the session's CSRF token; ``session_cookie`` the cookie value."""
        c = self.client()
        walk = walk_sign_in(c, username, password)
        assert walk.final is not None
        assert walk.final.status_code == 200, walk.final.text
        cookie = c.jar.values[SESSION_COOKIE]  # type: ignore[attr-defined]
        row = self.service.storage.get_console_session(hashlib.sha256(cookie.encode()).hexdigest())
        assert row is not None
        c.csrf = row.csrf  # type: ignore[attr-defined]
        c.session_cookie = cookie  # type: ignore[attr-defined]
        return c

    def cookie_header(self, client: httpx.Client) -> str:
        """The ``Cookie`` header a browser would send with ``client``'s cookies."""
        jar: BrowserCookies = client.jar  # type: ignore[attr-defined]
        return "; ".join(f"{k}={v}" for k, v in jar.values.items())

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the server's loop (for service calls that must run there)."""
        loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    _loop: Any = None


@contextmanager
def console_server_running(**overrides: Any) -> Iterator[ConsoleServer]:
    """Start a controller with the console in a thread; ``overrides`` go to
    ``run_controller`` (``console`` defaults to ``{}``: the dev provider)."""
    clock = Clock()
    ready = threading.Event()
    holder: dict[str, Any] = {}
    overrides.setdefault("console", {})
    overrides.setdefault("sensitive_rate_per_min", 1000)

    async def main() -> None:
        stop = asyncio.Event()
        holder["stop"] = stop
        holder["loop"] = asyncio.get_running_loop()
        try:
            async with run_controller(clock=clock, **overrides) as rc:
                holder["rc"] = rc
                ready.set()
                await stop.wait()
        except BaseException as exc:
            holder["error"] = exc
            ready.set()
            raise

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(60), "the controller did not start"
    if "error" in holder:
        raise holder["error"]
    rc: RunningController = holder["rc"]
    server = ConsoleServer(url=rc.base_url, rc=rc, clock=clock)
    server._loop = holder["loop"]
    try:
        yield server
    finally:
        for c in server.clients:
            c.close()
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(30)


@pytest.fixture
def console_server() -> Iterator[ConsoleServer]:
    """A real controller (uvicorn on 127.0.0.1, SQLite) with the dev provider and the
    console; demo users alice, bob (no admin) and it-admin (group rustronaut-admins)."""
    with console_server_running() as server:
        yield server
