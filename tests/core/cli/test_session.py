"""``rustronaut status | up | down | logout | diag`` as a user runs them: the real CLI in a
subprocess, against a real Engine (in-memory ports) served on the local API in this
process — the session a tray would be showing at the same time."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from core.cli.commands.session import format_status
from core.engine.engine import Engine
from core.engine.localapi.client import RemoteEngine
from core.engine.localapi.server import LocalApiServer
from core.engine.state import ErrorInfo, ResourceView, Snapshot, TunnelView
from core.engine.state import SessionState as S
from tests.core.engine.localapi.rig import engine, serve, until
from tests.fakes.cli import isolated_env, run_cli

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Session:
    engine: Engine
    server: LocalApiServer
    tray: RemoteEngine
    env: dict[str, str]


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[Session]:
    (tmp_path / "run").mkdir(mode=0o700)
    eng = engine(always_on=True)
    server = await serve(eng, tmp_path / "run" / "rustronaut" / "engine.sock")
    tray = await RemoteEngine.attach(tmp_path / "run" / "rustronaut" / "engine.sock")
    await tray.connect()
    yield Session(eng, server, tray, isolated_env(tmp_path))
    await tray.stop()
    await server.stop()
    await eng.stop()


async def test_status_shows_the_session_the_tray_shows(session: Session) -> None:
    rc, out, _ = await run_cli(session.env, "status")
    assert rc == 0
    assert "State:     connected" in out
    assert "User:      alice@example.com" in out

    rc, out, _ = await run_cli(session.env, "status", "--json")
    assert rc == 0
    assert msgspec.json.decode(out, type=Snapshot) == session.engine.snapshot


async def test_logout_signs_the_running_session_out_everywhere(session: Session) -> None:
    rc, _, err = await run_cli(session.env, "logout")
    assert rc == 3  # managed always-on: a reason is required
    assert "Next step:" in err
    assert session.tray.snapshot.state is S.CONNECTED

    rc, out, err = await run_cli(session.env, "logout", "--reason", "leaving the company VPN now")
    assert rc == 0, err
    assert "Signed out" in out
    await until(lambda: session.tray.snapshot.state is S.SIGNED_OUT, within=1.0)
    assert session.engine.snapshot.user is None


async def test_down_needs_a_reason_under_always_on_and_the_tray_sees_it(session: Session) -> None:
    rc, _, err = await run_cli(session.env, "down")
    assert rc == 3
    assert "Always-on" in err or "always-on" in err
    assert "Next step:" in err

    rc, _, err = await run_cli(session.env, "down", "--reason", "too short")
    assert rc == 3
    assert "at least 10 characters" in err
    assert session.engine.snapshot.state is S.CONNECTED

    rc, out, err = await run_cli(
        session.env, "down", "--reason", "video call needs the direct route"
    )
    assert rc == 0, err
    assert "State:     disconnected" in out
    await until(lambda: session.tray.snapshot.state is S.DISCONNECTED, within=1.0)

    rc, out, err = await run_cli(session.env, "up")
    assert rc == 0, err
    assert "State:     connected" in out
    await until(lambda: session.tray.snapshot.state is S.CONNECTED, within=1.0)


async def test_nothing_running(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    (tmp_path / "run").mkdir(mode=0o700)
    rc, out, _ = await run_cli(env, "status")
    assert rc == 4
    assert "not running" in out
    rc, out, _ = await run_cli(env, "status", "--json")
    assert rc == 4
    assert msgspec.json.decode(out) == {"state": "not_running"}
    rc, out, _ = await run_cli(env, "down")
    assert rc == 0
    assert "nothing to disconnect" in out


async def test_diag_without_an_engine_builds_nothing_and_writes_the_zip(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    (tmp_path / "run").mkdir(mode=0o700)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rc, out, err = await run_cli(env, "diag", "--out", str(out_dir))
    assert rc == 0, err
    assert "was not running" in out
    assert [p.suffix for p in out_dir.iterdir()] == [".zip"]


def test_format_status_formats_typed_models_and_escapes_control_characters() -> None:
    snap = Snapshot(
        state=S.BLOCKED,
        user="alice\x1b[31m@example.com",
        tunnel=TunnelView("rtw0", "gw1", 3.0, 10, 20),
        resources=(
            ResourceView("Wiki", "wiki.corp", False, "firewall off", "Turn the firewall on", True),
        ),
        error=None,
    )
    text = format_status(snap, now=0)
    assert "State:     connected, access blocked" in text
    assert "\x1b" not in text
    assert "✘ Wiki (wiki.corp) — firewall off (fix: Turn the firewall on)" in text
    assert "rtw0 → gw1, handshake 3 s ago" in text
    failed = Snapshot(state=S.ERROR, error=ErrorInfo("Helper stopped", "gone", "Restart it"))
    assert "Next step: Restart it" in format_status(failed)


async def test_login_through_the_agent_opens_the_page_here(tmp_path: Path) -> None:
    from tests.core.engine.localapi.rig import SIGN_IN_URL, BrowserAuth

    (tmp_path / "run").mkdir(mode=0o700)
    auth = BrowserAuth(None)
    eng = engine(auth=auth)
    server = await serve(eng, tmp_path / "run" / "rustronaut" / "engine.sock")
    tray = await RemoteEngine.attach(tmp_path / "run" / "rustronaut" / "engine.sock")
    env = {**isolated_env(tmp_path), "BROWSER": "true"}  # webbrowser runs `true`: no real browser
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "core.cli.main",
        "login",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(20):
            while SIGN_IN_URL not in "".join(lines):
                line = (await proc.stdout.readline()).decode()
                assert line, f"the CLI ended early: {lines}"
                lines.append(line)
        await until(lambda: tray.snapshot.state is S.SIGNING_IN)  # the tray shows it going on
        auth.approved.set()  # the user approves in the browser
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        assert "Signed in as alice@example.com" in out.decode()
        await until(lambda: tray.snapshot.user == "alice@example.com")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await tray.stop()
        await server.stop()
        await eng.stop()


async def test_diag_goes_through_the_running_engine_or_falls_back_to_offline(
    session: Session, tmp_path: Path
) -> None:
    out_dir = tmp_path / "diag"
    out_dir.mkdir()
    rc, out, err = await run_cli(session.env, "diag", "--out", str(out_dir))
    assert rc == 0, err
    assert "Diagnostics written to" in out
    assert [p.suffix for p in out_dir.iterdir()] == [".zip"]


async def test_diag_falls_back_to_offline_when_the_engine_cannot_write_them(
    tmp_path: Path,
) -> None:
    async def broken(_engine: Engine, _destination: Path) -> Path:
        raise PermissionError(13, "Permission denied", "/nowhere")

    (tmp_path / "run").mkdir(mode=0o700)
    eng = engine(diagnostics=broken)
    server = await serve(eng, tmp_path / "run" / "rustronaut" / "engine.sock")
    out_dir = tmp_path / "diag"
    out_dir.mkdir()
    try:
        rc, out, err = await run_cli(isolated_env(tmp_path), "diag", "--out", str(out_dir))
    finally:
        await server.stop()
        await eng.stop()
    assert rc == 0, err
    assert "Next step:" in err  # the agent's failure, in words
    assert "the agent could not write them" in out
    assert [p.suffix for p in out_dir.iterdir()] == [".zip"]
