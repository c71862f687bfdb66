"""A real engine on the in-memory ports (tests/core/engine/ports.py), served for real.

The engine is ``core.engine.engine.Engine`` itself; only its ports are in memory. Settings
live in a dict behind the engine's settings seam; the auth port's browser flow "opens"
the sign-in page through the ``open_url`` it is given, as the real OIDC client does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from core.engine.api import Setting
from core.engine.config import EngineConfig
from core.engine.engine import Engine
from core.engine.localapi.server import LocalApiServer
from core.engine.ports import UserInfo

from ..ports import ALICE, Auth, Control, Device, Policy, Posture, Proxy, Tunnel

SIGN_IN_URL = "https://idp.example/authorize?state=s1"


class BrowserAuth(Auth):
    """The auth port with a browser flow: the page goes to ``open_url``, then ``approve``."""

    def __init__(self, user: UserInfo | None = None) -> None:
        super().__init__(user)
        self.approved = asyncio.Event()

    async def sign_in(  # type: ignore[override]
        self,
        *,
        device_code: bool,
        on_prompt: Callable[[str, str, str | None], None],
        open_url: Callable[[str], None] | None = None,
    ) -> UserInfo:
        if not device_code and open_url is not None:
            open_url(SIGN_IN_URL)
            await self.approved.wait()
        return await super().sign_in(device_code=device_code, on_prompt=on_prompt)


class Settings:
    """A tiny settings store: ``auto_connect`` (user) and ``controller_url`` (managed)."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {"auto_connect": False, "proxy_port": 9080}

    def view(self) -> list[Setting]:
        return [
            Setting("auto_connect", self.values["auto_connect"], "user", False, "Connect at start"),
            Setting("proxy_port", self.values["proxy_port"], "default", False, "Proxy port"),
            Setting("controller_url", "https://ctl.example", "managed", True, "Controller"),
        ]

    def set(self, key: str, value: object) -> None:
        from core.settings import SettingLockedError, SettingValueError

        if key == "controller_url":
            raise SettingLockedError("'controller_url' is set by your organization.", key=key)
        if key not in self.values:
            raise SettingValueError(f"Unknown setting '{key}'.", key=key)
        self.values[key] = value


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def engine(
    auth: Auth | None = None,
    settings: Settings | None = None,
    diagnostics: Callable[[Engine, Path], Awaitable[Path]] | None = None,
    tunnel: Tunnel | None = None,
    **config: Any,
) -> Engine:
    """A real ``Engine`` on in-memory ports."""
    clock = Clock()
    store = settings or Settings()
    cfg = EngineConfig(
        auto_connect=False,
        health_interval_s=0.05,
        backoff_initial_s=0.02,
        backoff_max_s=0.1,
        **config,
    )
    return Engine(
        auth=auth or BrowserAuth(ALICE),
        device=Device(),
        control=Control(),
        posture=Posture(),
        policy=Policy(clock),
        tunnel=tunnel or Tunnel(clock),
        proxy=Proxy(),
        config=cfg,
        settings_view=store.view,
        settings_setter=store.set,
        diagnostics=diagnostics,
    )


async def serve(eng: Engine, path: Path, hosted_by: str = "agent") -> LocalApiServer:
    """Start ``eng`` and serve it on ``path``."""
    await eng.start()
    server = LocalApiServer(eng, path, hosted_by)
    await server.start()
    return server


async def until(predicate: Callable[[], bool], within: float = 1.0) -> None:
    """Wait until ``predicate()`` holds; TimeoutError after ``within`` s."""
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.005)
