"""From an empty profile to a signed-in, enrolled device: onboarding on the real engine.

The reference controller (with its development OIDC provider) runs on loopback and serves
the discovery record; the employee types its address in the onboarding window, confirms,
and the fully wired engine (``core.engine.wiring``) is built from the saved setting; the
sign-in (the provider's form, posted by a robot browser) enrolls the device. No helper
runs here, so connecting ends in "the helper is not running"; the tunnel itself is
covered with the real helper in tests/e2e.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import app.main as app_main
from app.windows.onboarding import OnboardingWindow, Stage
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


async def test_onboarding_from_an_empty_profile_reaches_sign_in_and_enrollment(
    make_app, qapp, request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    _keyring_or_skip()
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("RUSTRONAUT_MANAGED_DIR", str(tmp_path / "managed"))
    before = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)  # as in the tray app
    request.addfinalizer(lambda: qapp.setQuitOnLastWindowClosed(before))
    # A fresh profile: no tokens and no rollback-floor key left by an earlier test (its
    # floor file is gone with that test's data dir: the engine would refuse policy).
    SecretStore().delete(TOKENS)
    SecretStore().delete(FLOOR_KEY_NAME)
    assert app_main.needs_onboarding()  # the empty profile
    gateway = GatewayConfig(
        public_key=base64.b64encode(
            X25519PrivateKey.generate().public_key().public_bytes_raw()
        ).decode(),
        endpoint="127.0.0.1:51820",
    )
    async with run_controller(tmp_path / "controller", gateway=gateway) as rc:
        window = OnboardingWindow()  # the real discovery and the real settings file
        window.show()
        window.field.setText(rc.base_url)
        window.find_button.click()
        await until(lambda: window.stage is not Stage.LOOKING)
        assert window.stage is Stage.FOUND, window.status.text()
        confirmed: list[str] = []
        window.confirmed.connect(confirmed.append)
        window.use_button.click()
        assert confirmed == [rc.base_url]
        assert not app_main.needs_onboarding()

        settings = set_user("auto_connect", False, settings=load())
        assert settings.controller_url == rc.base_url
        engine = await build_engine(settings, helper_socket=tmp_path / "no-helper.sock")
        app = make_app(engine)
        password = next(u.password for u in rc.users if u.username == "alice")
        robot = RobotBrowser("alice", password)

        def open_url(url: str) -> None:
            spawn(robot(url), name="test.robot_browser")

        app.actions.open_url = open_url
        app.start(tray_available=True)
        try:
            await until(lambda: engine.snapshot.state is SessionState.SIGNED_OUT)
            app.tray.action("Sign in…").trigger()
            app.actions.windows["signin"].browser.click()
            await until(lambda: engine.snapshot.state is SessionState.ERROR)
            snap = engine.snapshot
            assert snap.user == "alice@example.com"
            assert snap.device_id is not None  # enrolled with the onboarded controller
            assert snap.error is not None
            assert "helper" in snap.error.title.lower()
        finally:
            await engine.stop()
