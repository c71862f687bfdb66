"""Text is text on the terminal (issue 16 item 9, issue 17 item 4): every string from the
controller, the provider, the device or a settings file reaches the real CLI's output
with its control, C1 and bidi characters escaped — no colour, no cleared screen, no
forged line — and ``--json`` stays the same JSON value, printable on a terminal.

The CLI runs in a subprocess against real parts: a session served on the local API, a
signed policy bundle in the client's cache, a settings file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from core.cli.commands.posture import _table
from core.cli.commands.tunnel import format_status as tunnel_status
from core.engine.localapi.server import LocalApiServer
from core.engine.state import ErrorInfo, ResourceView, SessionState, TunnelView
from core.policy.store import PolicyStore
from core.text import safe_line
from core.wire.policy import Resource, UserInfo
from tests.core.policy.helpers import DEVICE, KEYS, bundle, fact, rule, token
from tests.fakes.cli import isolated_env, run_cli
from tests.fakes.scripted_engine import ScriptedEngine, demo_settings, demo_snapshot
from wg_backends.status import TunnelStatus

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]

#: A controller's string: markup, an ANSI colour, a forged line, a bidi override, a C1 CSI
#: (one byte that clears the screen on terminals reading 8-bit controls) and DEL.
HOSTILE = "<b>x</b> \x1b[31mred\x1b[0m\nFORGED: line \u202eevil \x9b2J\x7f"
SHOWN = safe_line(HOSTILE)
#: What must never reach a terminal.
RAW = ("\x1b", "\u202e", "\x9b", "\x7f", "\nFORGED")


def assert_terminal_safe(out: str) -> None:
    for raw in RAW:
        assert raw not in out, f"{raw!r} reached the terminal: {out!r}"


async def test_status_escapes_every_controller_string_and_json_stays_json(
    tmp_path: Path,
) -> None:
    (tmp_path / "run").mkdir(mode=0o700)
    snap = demo_snapshot(
        SessionState.ERROR,
        user=HOSTILE,
        organization=HOSTILE,
        device_id=HOSTILE,
        resources=(ResourceView(HOSTILE, HOSTILE, False, HOSTILE, HOSTILE),),
        tunnel=TunnelView(HOSTILE, HOSTILE, 3.0, 1, 2),
        risk=40,
        risk_signals=(HOSTILE,),
        error=ErrorInfo(HOSTILE, HOSTILE, HOSTILE, "controller_error"),
    )
    engine = ScriptedEngine(snap, demo_settings())
    server = LocalApiServer(engine, tmp_path / "run" / "rustronaut" / "engine.sock", "agent")  # type: ignore[arg-type]
    await server.start()
    try:
        env = isolated_env(tmp_path)
        code, out, _ = await run_cli(env, "status")
        assert code == 0
        assert_terminal_safe(out)
        assert f"User:      {SHOWN}" in out
        assert f"Device:    {SHOWN}" in out
        assert f"Problem:   {SHOWN}: {SHOWN}" in out
        assert f"Next step: {SHOWN}" in out
        assert f"  ✘ {SHOWN} ({SHOWN}) — {SHOWN} (fix: {SHOWN})" in out
        assert not any(line.startswith("FORGED") for line in out.splitlines())

        code, out, _ = await run_cli(env, "status", "--json")
        assert code == 0
        assert_terminal_safe(out)
        data = json.loads(out)  # the same value: the escapes are JSON's own
        assert data["user"] == HOSTILE
        assert data["resources"][0]["reason"] == HOSTILE
    finally:
        await server.stop()


@pytest.fixture
def hostile_cache(tmp_path: Path) -> Path:
    now = int(time.time())
    b = bundle(
        rule(
            "git-eng",
            conditions=fact("posture.disk.encrypted", "eq", True),
            remediation={"posture.disk.encrypted": HOSTILE},
        ),
        version=3,
        issued_at=now - 60,
        expires_at=now + 7200,
        resources=(Resource(id="git", name=HOSTILE, hosts=("git.corp.example",)),),
        user=UserInfo(subject=HOSTILE, email=HOSTILE, groups=(HOSTILE,)),
    )
    path = tmp_path / "policy.json"
    PolicyStore(device_id=DEVICE, keys=KEYS, cache_path=path).update(token(b))
    return path


async def test_policy_show_and_explain_escape_the_controllers_words(
    tmp_path: Path, hostile_cache: Path
) -> None:
    env = isolated_env(tmp_path)
    code, out, _ = await run_cli(env, "policy", "show", "--cache", str(hostile_cache))
    assert code == 0
    assert_terminal_safe(out)
    assert f"User:     {SHOWN} (groups: {SHOWN})" in out
    assert f"  git                  {SHOWN}  [git.corp.example]" in out

    code, out, _ = await run_cli(env, "policy", "show", "--json", "--cache", str(hostile_cache))
    assert code == 0
    assert_terminal_safe(out)
    assert json.loads(out)["user"]["email"] == HOSTILE

    args = (
        *("--app", "/usr/bin/git", "--to", "git.corp.example:22", "--cache", str(hostile_cache)),
        *("--facts", "none"),  # the same answer whatever this machine's posture
    )
    code, out, _ = await run_cli(env, "policy", "explain", *args)
    assert code == 1
    assert_terminal_safe(out)
    assert f"    fix: {SHOWN}" in out
    code, out, _ = await run_cli(env, "policy", "explain", "--json", *args)
    assert_terminal_safe(out)
    assert json.loads(out)["unmet"][0]["remediation"].startswith(HOSTILE)


async def test_config_show_escapes_values_and_problems_from_settings_files(
    tmp_path: Path,
) -> None:
    env = isolated_env(tmp_path)
    folder = tmp_path / "config" / "rustronaut"
    folder.mkdir(parents=True)
    (folder / "settings.json").write_text(
        json.dumps({"organization_name": HOSTILE, "log_level": HOSTILE, HOSTILE: 1})
    )
    code, out, _ = await run_cli(env, "config", "show")
    assert code == 0
    assert_terminal_safe(out)
    assert f"organization_name           {SHOWN}" in out
    assert f"unknown setting '{SHOWN}'" in out

    code, out, _ = await run_cli(env, "config", "show", "--json")
    assert code == 0
    assert_terminal_safe(out)
    values = {row["key"]: row["value"] for row in json.loads(out)["settings"]}
    assert values["organization_name"] == HOSTILE


def test_posture_table_escapes_what_the_device_reported() -> None:
    table = [
        {"fact": "posture.proc." + HOSTILE, "status": "known", "value": HOSTILE, "fix": HOSTILE},
        {"fact": "posture.edr", "status": "unknown", "value": None, "reason": HOSTILE, "fix": ""},
    ]
    out = _table(table)
    assert_terminal_safe(out)
    assert len(out.splitlines()) == 3
    assert out.splitlines()[2].endswith(f"unknown: {SHOWN}")


def test_tunnel_status_escapes_the_helpers_strings() -> None:
    out = tunnel_status(TunnelStatus(interface=HOSTILE, up=True, backend=HOSTILE, state=HOSTILE))
    assert_terminal_safe(out)
    assert out.splitlines()[0] == f"interface   {SHOWN} ({SHOWN}) [{SHOWN}]"
    down = tunnel_status(TunnelStatus(interface=HOSTILE, up=False, backend="", state=HOSTILE))
    assert down == f"{SHOWN}: down ({SHOWN})"
