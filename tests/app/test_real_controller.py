"""The tray on the fully wired engine (``core.engine.wiring``) against the reference
controller and its development OIDC provider on loopback: a real sign-in (the provider's
login form, posted as a browser would), real enrollment, real Linux posture and a real
signed bundle. No helper runs here, so connecting ends in the "helper is not running"
error — which the tray must show with its next step. The tunnel itself is covered with
the real helper in tests/e2e."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from app.presenter import IconKind
from controller.config import GatewayConfig
from controller.demo.robot import RobotBrowser
from controller.testing import run_controller
from core.aio import spawn
from core.auth import TOKENS, SecretStore
from core.engine.state import SessionState
from core.engine.wiring import build_engine
from core.policy.floor import FLOOR_KEY_NAME
from core.settings import load, set_user

pytestmark = [pytest.mark.ui, pytest.mark.integration, pytest.mark.timeout(120)]


def _keyring_or_skip() -> None:
    try:
        available = SecretStore().available()
    except Exception:
        available = False
    if not available:
        if os.environ.get("CI"):
            pytest.fail("CI must provide a Secret Service (scripts/with-keyring.sh)")
        pytest.skip("needs a Secret Service: run inside scripts/with-keyring.sh")


async def until(pred: Callable[[], object], within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while not pred():
            await asyncio.sleep(0.02)


async def test_sign_in_enroll_and_the_helper_error_reach_the_tray(
    make_app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _keyring_or_skip()
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("RUSTRONAUT_MANAGED_DIR", str(tmp_path / "managed"))
    # A fresh profile: no tokens and no rollback-floor key left by an earlier test (its
    # floor file is gone with that test's data dir: the engine would refuse policy).
    SecretStore().delete(TOKENS)
    SecretStore().delete(FLOOR_KEY_NAME)  # a fresh keyring session per test run
    gateway = GatewayConfig(
        public_key=base64.b64encode(
            X25519PrivateKey.generate().public_key().public_bytes_raw()
        ).decode(),
        endpoint="127.0.0.1:51820",
    )
    async with run_controller(tmp_path / "controller", gateway=gateway) as rc:
        password = next(u.password for u in rc.users if u.username == "alice")
        settings = set_user("controller_url", rc.base_url, settings=load())
        settings = set_user("auto_connect", False, settings=settings)
        engine = await build_engine(settings, helper_socket=tmp_path / "no-helper.sock")
        app = make_app(engine)
        # The front end that asks opens the sign-in page (here a robot posting the form).
        robot = RobotBrowser("alice", password)
        opened: list[str] = []

        def open_url(url: str) -> None:
            opened.append(url)
            spawn(robot(url), name="test.robot_browser")

        app.actions.open_url = open_url
        app.start(tray_available=True)
        try:
            await until(lambda: engine.snapshot.state is SessionState.SIGNED_OUT)
            assert app.tray.icon_kind is IconKind.SIGNED_OUT
            app.tray.action("Sign in…").trigger()
            window = app.actions.windows["signin"]
            assert window.isVisible()
            window.browser.click()  # the robot browser posts the provider's login form
            await until(lambda: engine.snapshot.state is SessionState.ERROR)
            assert len(opened) == 1  # opened by the tray, not by the engine
            snap = engine.snapshot
            assert snap.user == "alice@example.com"
            assert snap.device_id is not None  # enrolled with the controller for real
            assert snap.policy_version is not None  # a real signed bundle was verified
            assert {p.name for p in snap.posture} >= {"os.name", "firewall.enabled"}
            assert snap.error is not None
            assert "helper" in snap.error.title.lower()
            assert app.tray.icon_kind is IconKind.ERROR
            assert snap.error.title in app.tray.icon.toolTip()
            settings_window = app.actions.show_window("settings")
            assert settings_window.isVisible()
            assert any(s.key == "controller_url" and s.source == "user" for s in engine.settings())
        finally:
            await engine.stop()
