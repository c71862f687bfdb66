"""``rustronaut-controller``: init + serve as a real process, and the admin commands."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from controller.cli import main
from controller.config import admin_token_matches, load_config
from controller.testing import RunningController, login
from core.controlplane import BearerAuth, ControlPlaneClient
from tests.controller.conftest import new_device

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_init_then_serve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = tmp_path / "controller.json"
    port = _free_port()
    assert main(["init", "--config", str(cfg_path), "--port", str(port), "--dev-oidc"]) == 0
    token = capsys.readouterr().out.split("admin token (shown once): ")[1].strip()
    cfg = load_config(cfg_path)
    assert admin_token_matches(cfg, token)
    assert token not in cfg_path.read_text()  # only the hash is stored
    assert cfg_path.stat().st_mode & 0o077 == 0
    assert (tmp_path / "keys" / "signing-keys.json").stat().st_mode & 0o077 == 0
    assert main(["init", "--config", str(cfg_path)]) == 2  # no silent overwrite
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "serve", "--config", str(cfg_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        disc = None
        for _ in range(100):
            try:
                disc = httpx.get(f"http://127.0.0.1:{port}/.well-known/rustronaut").json()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert disc is not None
        assert disc["issuer"] == f"http://127.0.0.1:{port}/oidc"
        capsys.readouterr()
        assert main(["keys", "root", "--config", str(cfg_path)]) == 0
        assert capsys.readouterr().out.strip() == disc["policy_roots"][0]["x"]
        resp = httpx.get(
            f"http://127.0.0.1:{port}/v1/admin/devices",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.json() == {"devices": []}
    finally:
        proc.terminate()
        proc.wait(10)
    # State (the database file) survives the process.
    assert (tmp_path / "controller.db").exists()


def test_serve_with_a_bad_config_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "c.json"
    bad.write_text('{"admin_token_sha256": "00", "keys_dir": "k", "typo": 1}')
    assert main(["serve", "--config", str(bad)]) == 2
    assert "invalid config" in capsys.readouterr().err


async def test_admin_commands(
    controller: RunningController, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = controller
    # "--token=…": a random token may start with "-", which argparse reads as an option.
    admin = ["--url", rc.base_url, f"--token={rc.admin_token}"]

    async def cli(*argv: str) -> int:
        return await asyncio.to_thread(main, list(argv))

    assert (
        await cli("resource", "add", "wiki", "--cidr", "10.20.0.0/24", "--port", "443", *admin) == 0
    )
    assert (
        await cli("rule", "add", "eng", "--resource", "wiki", "--group", "engineering", *admin) == 0
    )
    assert await cli("rule", "add", "bad", "--resource", "missing", *admin) == 1
    assert "unknown resources" in capsys.readouterr().err
    assert await cli("resource", "add", "x", "--cidr", "10.0.0.1/8", *admin) == 1
    assert "host bits" in capsys.readouterr().err
    assert await cli("device", "list", "--url", rc.base_url, "--token", "wrong") == 1
    capsys.readouterr()
    tokens = await login(rc, "alice", "alice-password")
    async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as c:
        dev = (await c.enroll(new_device().enroll_request())).device_id
    assert await cli("device", "list", *admin) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["device_id"] for d in listed["devices"]] == [dev]
    assert await cli("device", "revoke", dev, *admin) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "revoked"
    async with httpx.AsyncClient(
        base_url=rc.base_url, headers={"Authorization": f"Bearer {rc.admin_token}"}
    ) as http:
        rules = (await http.get("/v1/admin/rules")).json()
    assert [r["id"] for r in rules] == ["eng"]
    assert rules[0]["conditions"]["value"] == ["engineering"]


def test_serve_without_any_issuer_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_path = tmp_path / "c.json"
    assert main(["init", "--config", str(cfg_path)]) == 0  # no --dev-oidc, no issuers
    capsys.readouterr()
    assert main(["serve", "--config", str(cfg_path)]) == 2
    assert "no OIDC issuer configured" in capsys.readouterr().err


def test_new_admin_tokens_never_look_like_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    # One in 64 random tokens starts with "-": `--token TOKEN` then failed (a CI flake).
    from controller import config

    drawn = iter(["-starts-with-a-dash", "fine-token"])
    monkeypatch.setattr(config.secrets, "token_urlsafe", lambda n: next(drawn))
    assert config.new_admin_token() == "fine-token"


def test_init_with_the_console_writes_a_config_serve_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from controller.config import load_config

    cfg_path = tmp_path / "c.json"
    assert main(["init", "--config", str(cfg_path), "--dev-oidc", "--console"]) == 0
    out = capsys.readouterr().out
    assert "admin console: http://127.0.0.1:8443/console/" in out
    cfg = load_config(cfg_path)
    assert cfg.console is not None
    assert cfg.console.admin_groups == ("rustronaut-admins",)

    secret = tmp_path / "console.secret"
    secret.write_text("s3cret\n")
    other = tmp_path / "o.json"
    argv = ["init", "--config", str(other), "--console-issuer", "https://idp.example"]
    argv += ["--console-secret-file", str(secret), "--public-url", "https://ztna.example"]
    argv += ["--console-admin-group", "it-ops", "--console-admin-group", "secops"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "https://ztna.example/console/callback" in out  # what to register at the provider
    cfg = load_config(other)
    assert cfg.console is not None
    assert (cfg.console.issuer, cfg.console.admin_groups) == (
        "https://idp.example",
        ("it-ops", "secops"),
    )


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (["--console"], "--dev-oidc or --console-issuer"),
        (["--console-issuer", "https://idp.example"], "--console-secret-file"),
        # A Secure session cookie is never sent back over plain http to a LAN address.
        (["--console", "--dev-oidc", "--public-url", "http://10.0.0.5:8443"], "https://"),
    ],
)
def test_init_refuses_a_console_that_could_not_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], why: str
) -> None:
    cfg_path = tmp_path / "c.json"
    assert main(["init", "--config", str(cfg_path), *extra]) == 2
    assert why in capsys.readouterr().err
    assert not cfg_path.exists()
