"""One engine per user session: the lock across real processes, and the agent that holds
it (in process with a real Engine on in-memory ports, and as ``rustronaut agent``)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.engine.api import EngineAPI
from core.engine.localapi.agent import SetupFailedEngine, ensure_agent, run_agent, start_agent
from core.engine.localapi.client import RemoteEngine
from core.engine.localapi.errors import (
    EngineAlreadyRunningError,
    EngineNotRunningError,
    LocalApiError,
)
from core.engine.localapi.lock import EngineLock
from core.engine.state import SessionState as S
from core.engine.wiring import EngineSetupError
from tests.fakes.cli import isolated_env, run_cli

from ..ports import Tunnel
from .rig import engine, until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[4]
HOLD = """
import sys
from pathlib import Path
from core.engine.localapi.lock import EngineLock
lock = EngineLock(Path(sys.argv[1]))
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    path = tmp_path / "run" / "engine.lock"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "held\n"
    yield proc, path
    proc.kill()
    proc.wait()


def test_a_second_process_is_refused_naming_the_first(
    holder: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, path = holder
    with pytest.raises(EngineAlreadyRunningError) as caught:
        EngineLock(path).acquire()
    assert caught.value.pid == proc.pid
    assert f"process {proc.pid}" in str(caught.value)
    assert caught.value.code == "engine_already_running"
    assert caught.value.next_step


def test_the_lock_is_free_again_when_its_holder_dies(
    holder: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, path = holder
    proc.kill()  # no clean-up code runs: the OS drops the lock
    proc.wait()
    with EngineLock(path) as lock:
        assert lock.held
        assert lock.owner() == os.getpid()
    assert not lock.held


def test_acquire_is_idempotent_and_the_file_is_private(tmp_path: Path) -> None:
    lock = EngineLock(tmp_path / "run" / "engine.lock")
    lock.acquire()
    lock.acquire()
    assert (lock.path.stat().st_mode & 0o777) == 0o600
    lock.release()
    lock.release()


@pytest.mark.parametrize("always_on", [False, True])
async def test_the_agent_serves_its_engine_and_a_second_agent_is_refused(
    tmp_path: Path, always_on: bool
) -> None:
    sock = tmp_path / "run" / "engine.sock"
    tunnel = Tunnel()
    eng = engine(tunnel=tunnel, always_on=always_on)
    stop = asyncio.Event()

    async def build() -> EngineAPI:
        return eng

    agent = asyncio.ensure_future(run_agent(path=sock, build=build, stop=stop))
    client = await _attach_when_up(sock)
    try:
        assert client.hosted_by == "agent"
        await client.connect()
        assert client.snapshot.state is S.CONNECTED
        with pytest.raises(EngineAlreadyRunningError):
            await run_agent(path=sock, build=build, stop=asyncio.Event())
        # A front end that detaches (the tray quitting) leaves the session up.
        await client.stop()
        assert eng.snapshot.state is S.CONNECTED
        assert tunnel.is_up
    finally:
        stop.set()
        await asyncio.wait_for(agent, 5)
    assert agent.exception() is None
    assert not sock.exists()
    # Stopping the agent ends the session, unless managed always-on keeps the tunnel.
    assert tunnel.is_up is always_on
    EngineLock(sock.parent / "engine.lock").acquire()  # the lock was given back


async def _attach_when_up(sock: Path) -> RemoteEngine:
    async with asyncio.timeout(5):
        while True:
            try:
                return await RemoteEngine.attach(sock)
            except LocalApiError:
                await asyncio.sleep(0.02)


async def test_an_agent_that_cannot_build_its_engine_serves_the_reason(tmp_path: Path) -> None:
    sock = tmp_path / "run" / "engine.sock"
    eng = engine()
    configured = False
    stop = asyncio.Event()

    async def build() -> EngineAPI:
        if not configured:
            raise EngineSetupError("No controller URL is set.")
        return eng

    agent = asyncio.ensure_future(run_agent(path=sock, build=build, stop=stop))
    client = await _attach_when_up(sock)
    try:
        assert client.snapshot.state is S.ERROR
        assert client.snapshot.error is not None
        assert client.snapshot.error.detail == "No controller URL is set."
        assert "controller_url" in client.snapshot.error.next_step
        with pytest.raises(LocalApiError) as caught:
            await client.connect()
        assert str(caught.value) == "No controller URL is set."
        assert "controller_url" in caught.value.next_step
        # Once configured, the next connect builds the engine and carries on there.
        configured = True
        await client.connect()
        await until(lambda: client.snapshot.state is S.CONNECTED)
        assert eng.snapshot.state is S.CONNECTED
    finally:
        await client.stop()
        stop.set()
        await asyncio.wait_for(agent, 5)


async def test_setup_failed_engine_writes_offline_diagnostics(tmp_path: Path) -> None:
    async def build() -> EngineAPI:
        raise EngineSetupError("No controller URL is set.")

    async def ready(_engine: EngineAPI) -> None:
        raise AssertionError("never ready")

    failed = SetupFailedEngine(
        EngineSetupError("No controller URL is set."), rebuild=build, on_ready=ready
    )
    path = await failed.collect_diagnostics(tmp_path)
    assert path.exists()
    assert path.parent == tmp_path


def test_start_agent_falls_back_to_a_detached_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)  # no systemd user manager to ask
    spawned: list[list[str]] = []
    how = start_agent(runner=lambda argv: 1, spawner=spawned.append)
    assert how == "process" if sys.platform != "darwin" else how in {"process", "launchd"}
    assert spawned == [[sys.executable, "-m", "core.cli.main", "agent"]]


def test_start_agent_uses_the_systemd_user_unit_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "run"
    (runtime / "systemd").mkdir(parents=True)
    (runtime / "systemd" / "private").touch()
    units = tmp_path / "home" / ".config" / "systemd" / "user"
    units.mkdir(parents=True)
    (units / "rustronaut-agent.service").touch()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    calls: list[list[str]] = []

    def runner(argv: object) -> int:
        calls.append(list(argv))  # type: ignore[call-overload]
        return 0

    assert start_agent(runner=runner, spawner=lambda argv: pytest.fail("spawned")) == "systemd"
    assert calls == [["systemctl", "--user", "start", "rustronaut-agent.service"]]


async def test_rustronaut_agent_unconfigured_serves_the_cli_and_stops_on_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real command, unconfigured: ``ensure_agent`` starts it, ``status`` shows why it
    cannot connect (in words, exit 0), a second agent is refused naming the first."""
    env = isolated_env(tmp_path)
    (tmp_path / "run").mkdir(mode=0o700)
    for key in ("XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "HOME"):
        monkeypatch.setenv(key, env[key])
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> str:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "core.cli.main", "agent"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
        return "process"

    try:
        client = await ensure_agent(timeout=20, client="test", start=start)
        assert client.hosted_by == "agent"
        assert client.pid == procs[0].pid
        assert client.snapshot.state is S.ERROR
        await client.stop()

        rc, out, err = await run_cli(env, "status", no_traceback=False)
        assert rc == 0, err
        assert "State:     error" in out
        assert "Next step:" in out
        assert "controller_url" in out

        rc, out, err = await run_cli(env, "agent", no_traceback=False)
        assert rc == 3
        assert f"process {procs[0].pid}" in err
        assert "Traceback" not in err

        rc, out, err = await run_cli(env, "up", no_traceback=False)
        assert rc == 1
        assert "Next step:" in err
        assert "Traceback" not in err + out
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(10) == 0
            assert proc.stderr is not None
            log = proc.stderr.read().decode()
            assert "Traceback" not in log
            assert "could not be set up" in log or "state: error" in log
    rc, out, _ = await run_cli(env, "status", no_traceback=False)
    assert rc == 4


async def test_an_agent_that_dies_at_once_is_reported_without_waiting_out_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)

    def start() -> str:
        return start_agent(
            runner=lambda argv: 1,
            spawner=lambda argv: subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"]),
        )

    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(EngineNotRunningError) as caught:
        await ensure_agent(timeout=60, path=tmp_path / "run" / "engine.sock", start=start)
    assert loop.time() - began < 30
    assert "exit code 2" in str(caught.value)
    assert "rustronaut agent" in caught.value.next_step
