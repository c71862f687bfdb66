"""``rustronaut login --device`` / ``whoami`` / ``logout`` as a user runs them.

The CLI runs as a real subprocess against the npm provider and the real Secret Service
(only inside the private keyring session of scripts/with-keyring.sh, so a developer's
own keyring is never touched); the test plays the user approving the code in a browser.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.core.auth.browser import browse
from tests.core.auth.conftest import CLIENT_ID, ROOT, NpmProvider, free_port, need

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "core.cli.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_login_device_whoami_logout(
    tmp_path: Path, npm_provider: NpmProvider, secret_service: None
) -> None:
    need(
        bool(os.environ.get("RUSTRONAUT_IN_KEYRING_SESSION")),
        "writes the 'rustronaut' keyring entry: runs only in scripts/with-keyring.sh",
    )
    env = _env(tmp_path)
    flags = ["--issuer", npm_provider.issuer, "--client-id", CLIENT_ID]
    rc, _, err = await _cli(env, "whoami", *flags)
    assert rc == 1
    assert "Not signed in" in err

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "core.cli.main",
        "login",
        "--device",
        *flags,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while not any("code:" in line for line in lines):
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line, f"CLI ended early: {lines}"
        lines.append(line)
    user_code = lines[-1].split("code:")[1].strip()
    uri = lines[-2].split("open ", 1)[1].strip()
    await browse(uri, fill={"user_code": user_code, "login": "carol", "password": "x"})
    out, errb = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, errb.decode()
    assert "Signed in as carol@example.test" in out.decode()

    rc, out_s, _ = await _cli(env, "whoami", *flags)
    assert rc == 0
    assert "carol@example.test" in out_s
    assert "Test User carol" in out_s

    rc, out_s, _ = await _cli(env, "logout", *flags)
    assert rc == 0
    assert "revoked" in out_s
    rc, _, err = await _cli(env, "whoami", *flags)
    assert rc == 1


async def test_login_without_keyring_says_so_and_contacts_nobody(tmp_path: Path) -> None:
    env = _env(tmp_path, XDG_RUNTIME_DIR=str(tmp_path / "run"), HOME=str(tmp_path))
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    (tmp_path / "run").mkdir(mode=0o700)
    # A closed port as issuer: reaching the network would fail differently.
    issuer = f"http://127.0.0.1:{free_port()}"
    rc, out, err = await _cli(env, "login", "--device", "--issuer", issuer, "--client-id", "c")
    assert rc == 3
    assert "Cannot store secrets safely" in err
    assert "Next step:" in err
    assert out == ""


async def test_login_without_issuer_explains_how_to_configure(tmp_path: Path) -> None:
    rc, _, err = await _cli(_env(tmp_path), "login")
    assert rc == 2
    assert "rustronaut config set controller_url" in err


async def test_issuer_comes_from_the_controller_when_not_set(tmp_path: Path) -> None:
    """Like the engine: no oidc_issuer setting, so the controller's discovery names it."""
    from controller.testing import run_controller

    env = _env(tmp_path, XDG_RUNTIME_DIR=str(tmp_path / "run"), HOME=str(tmp_path))
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)  # no keyring: whoami must say so, not crash
    (tmp_path / "run").mkdir(mode=0o700)
    async with run_controller() as rc:
        code, _, err = await _cli(env, "config", "set", "controller_url", rc.base_url)
        assert code == 0, err
        code, _, err = await _cli(env, "whoami")
    assert code == 3  # got past the configuration: the issuer was found
    assert "Cannot" in err
