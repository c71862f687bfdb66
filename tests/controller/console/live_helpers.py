"""Helpers for the live-feed tests: a real controller (uvicorn, dev provider, SQLite or
PostgreSQL) with the feed's socket served beside it, real enrolled devices that sign and
POST decision batches, and a ``websockets`` client.

The socket is served by a small Starlette app on the same loop that authenticates a
random session cookie and then calls ``LiveFeed.serve`` exactly as the console core does
after its own cookie check; the console core's sign-in has its own tests.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect

from controller.console.base import Admin
from controller.console.live import LiveFeed
from controller.testing import RunningController, listen_socket, login, run_controller, serve_app
from core.controlplane import BearerAuth, ControlPlaneClient
from core.wire.telemetry import DecisionBatch, DecisionEvent, sign_batch
from tests.controller.conftest import DeviceKeys, new_device

ADMIN = Admin(
    user_id="it-admin",
    email="it-admin@example.com",
    name="IT Admin",
    groups=("rustronaut-admins",),
    csrf="c" * 32,
    session_hash="0" * 64,
)
COOKIE = "__Host-rtc_console"


@dataclass
class FeedServer:
    """A controller and its feed's socket."""

    rc: RunningController
    feed: LiveFeed
    ws_url: str
    session: str

    async def socket(self, **query: str) -> ClientConnection:
        """A signed-in socket (query = the initial filter)."""
        url = self.ws_url + ("?" + urlencode(query) if query else "")
        return await connect(url, additional_headers={"Cookie": f"{COOKIE}={self.session}"})


@asynccontextmanager
async def feed_server(database: str | None = None, **overrides: Any) -> AsyncIterator[FeedServer]:
    """A running controller (``run_controller``) plus ``/console/ws/live`` for its feed."""
    async with run_controller(database=database, sensitive_rate_per_min=1000, **overrides) as rc:
        feed = LiveFeed.for_service(rc.service)
        session = secrets.token_urlsafe(32)

        async def live(ws: WebSocket) -> None:
            if not secrets.compare_digest(ws.cookies.get(COOKIE, ""), session):
                await ws.close(4401, "sign in first")
                return
            await feed.serve(ws, ADMIN)

        app = Starlette(routes=[WebSocketRoute("/console/ws/live", live)])
        sock = listen_socket("127.0.0.1", 0)
        port = sock.getsockname()[1]
        try:
            async with serve_app(app, sock):
                yield FeedServer(rc, feed, f"ws://127.0.0.1:{port}/console/ws/live", session)
        finally:
            await feed.aclose()
            sock.close()


@dataclass
class Device:
    """An enrolled device with its user's access token."""

    device_id: str
    user: str
    name: str
    keys: DeviceKeys
    token: str
    seq: int = 0


async def enroll(rc: RunningController, user: str = "alice", name: str = "laptop") -> Device:
    """Sign ``user`` in through the dev provider and enroll a device named ``name``."""
    tokens = await login(rc, user, f"{user}-password")
    keys = new_device()
    async with ControlPlaneClient(
        rc.base_url, auth=BearerAuth(tokens["access_token"]), proxy=None
    ) as client:
        enrolled = await client.enroll(keys.enroll_request(name))
    return Device(enrolled.device_id, user, name, keys, tokens["access_token"])


def event(**fields: Any) -> DecisionEvent:
    """A decision event (defaults: ssh to git.corp.example, denied, now)."""
    base: dict[str, Any] = {
        "at": time.time(),
        "app": "/usr/bin/ssh",
        "host": "git.corp.example",
        "ip": "10.1.2.3",
        "port": 22,
        "effect": "deny",
        "resource": "git",
        "rule": "engineers",
        "reason": "posture failed",
        "risk": 40,
    }
    base.update(fields)
    return DecisionEvent(**base)


async def post_batch(rc: RunningController, dev: Device, *events: DecisionEvent) -> dict[str, Any]:
    """Sign the next batch of ``dev`` and POST it; the ack."""
    dev.seq += 1
    batch = DecisionBatch(
        device_id=dev.device_id, seq=dev.seq, iat=time.time(), level="full", events=events
    )
    async with httpx.AsyncClient(base_url=rc.base_url) as http:
        resp = await http.post(
            f"/v1/devices/{dev.device_id}/decisions",
            json={"batch": sign_batch(batch, dev.keys.signing)},
            headers={"Authorization": f"Bearer {dev.token}"},
        )
    assert resp.status_code == 200, resp.text
    ack: dict[str, Any] = resp.json()
    return ack


async def recv(ws: ClientConnection, timeout: float = 1.0) -> dict[str, Any]:
    """The next JSON message; ``TimeoutError`` after ``timeout`` seconds."""
    raw = await asyncio.wait_for(ws.recv(), timeout)
    data: dict[str, Any] = json.loads(raw)
    return data


async def items_until(ws: ClientConnection, n: int, timeout: float = 1.0) -> list[dict[str, Any]]:
    """Decision items from ``ws`` until ``n`` arrived (``TimeoutError`` otherwise)."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            msg = await recv(ws, timeout)
            if msg["type"] == "decisions":
                out.extend(msg["items"])
    return out


async def nothing_within(ws: ClientConnection, seconds: float) -> None:
    """Assert that no message arrives for ``seconds``."""
    try:
        msg = await recv(ws, seconds)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message {msg!r}")
