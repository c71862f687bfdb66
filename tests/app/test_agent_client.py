"""The tray as a client of the session's engine, over the real local API (a real Unix
socket, ``LocalApiServer`` and ``RemoteEngine``), with a scripted engine behind it:

- attached to the agent, quitting the tray (menu or SIGTERM) leaves the session running;
- where no agent can run, the tray hosts the engine and serves the same API to the CLI;
- when the agent goes away the tray says so, and Restart starts it again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

import app.main as app_main
from app.link import AttachedLink, HostedLink
from app.presenter import IconKind
from core.aio import spawn
from core.engine.localapi.agent import ensure_agent
from core.engine.localapi.client import RemoteEngine
from core.engine.localapi.errors import EngineAlreadyRunningError, EngineNotRunningError
from core.engine.localapi.lock import EngineLock
from core.engine.localapi.server import LocalApiServer
from core.engine.localapi.transport import default_lock_path
from core.engine.state import SessionState
from tests.fakes.scripted_engine import ScriptedEngine, demo_settings, demo_snapshot

pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(sys.platform == "win32", reason="Unix socket transport"),
]

ROOT = Path(__file__).resolve().parents[2]


async def until(pred: Callable[[], object], timeout: float = 5.0) -> None:
    """Let the loop run until ``pred()`` is true (fails the test after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.01)


def _always_on_engine() -> ScriptedEngine:
    return ScriptedEngine(demo_snapshot(SessionState.CONNECTED, always_on=True), demo_settings())


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    """The local API socket in a private (0700) directory, as the agent makes it."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    return run / "engine.sock"


@pytest.fixture
async def agent(sock: Path) -> AsyncIterator[tuple[ScriptedEngine, LocalApiServer]]:
    """An "agent": a scripted always-on engine served on ``sock``."""
    engine = _always_on_engine()
    server = LocalApiServer(engine, sock, hosted_by="agent")
    await server.start()
    yield engine, server
    await server.stop()


def _ends_session(engine: ScriptedEngine) -> list[str]:
    return [name for name, _ in engine.calls if name in {"stop", "disconnect", "sign_out"}]


async def test_quitting_the_tray_attached_to_the_agent_leaves_the_session_up(
    make_app, agent, sock: Path
) -> None:
    engine, server = agent

    async def no_build() -> ScriptedEngine:
        raise AssertionError("the tray must not build a second engine")

    link = await app_main.make_engine(path=sock, build=no_build)
    assert isinstance(link, AttachedLink)
    assert link.hosted_by == "agent"
    app = make_app(link)
    app.start(tray_available=True)
    await until(lambda: app.engine_task is not None and app.engine_task.done())
    assert app.tray.icon_kind is IconKind.CONNECTED
    assert not app.actions.quit_stops_engine
    quits: list[bool] = []
    app.actions.quit_requested.connect(lambda: quits.append(True))

    app.tray.action("Quit").trigger()  # always-on, yet no reason asked: nothing ends
    await until(lambda: quits)
    await until(lambda: server.clients == 0)
    assert "breakglass" not in app.actions.windows
    assert _ends_session(engine) == []
    # Another front end (the CLI) still finds the session connected.
    cli = await RemoteEngine.attach(sock, client="cli")
    try:
        assert cli.snapshot.state is SessionState.CONNECTED
    finally:
        await cli.stop()


CHILD = textwrap.dedent(
    """
    import functools, sys
    import app.main as m

    async def no_build():
        raise AssertionError("a second engine")

    def on_ready(a):
        a.bridge.attached.connect(lambda engine: print("attached", flush=True))

    factory = functools.partial(m.make_engine, path=m.Path({sock!r}), build=no_build)
    rc = m.run([], engine_factory=factory, instance_name={name!r}, on_ready=on_ready)
    print("exit", rc, flush=True)
    sys.exit(rc)
    """
)


async def test_sigterm_to_the_attached_tray_leaves_the_session_up(
    agent, sock: Path, tmp_path: Path
) -> None:
    """The real ``app.main.run`` in its own process: attached to the agent; SIGTERM (the
    desktop session ends) detaches; the engine neither stops nor disconnects."""
    engine, server = agent
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    code = CHILD.format(sock=str(sock), name=str(tmp_path / "i.sock"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = await proc.stdout.readline()
        assert line.decode().strip() == "attached"
        await until(lambda: server.clients == 1)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert out.decode().splitlines()[-1] == "exit 0"
    await until(lambda: server.clients == 0)
    assert _ends_session(engine) == []
    assert engine.snapshot.state is SessionState.CONNECTED


async def test_the_tray_hosts_the_engine_where_no_agent_can_run(make_app, sock: Path) -> None:
    """No agent: the tray takes the lock, builds the engine and serves it, so the CLI
    (a ``RemoteEngine``) sees the same session and a second engine cannot start."""
    engine = ScriptedEngine(demo_snapshot(SessionState.CONNECTED), demo_settings())

    async def no_agent(timeout: float, path: Path | None) -> RemoteEngine:
        raise EngineNotRunningError("no agent can run here")

    async def build() -> ScriptedEngine:
        return engine

    link = await app_main.make_engine(path=sock, ensure_agent=no_agent, build=build)
    assert isinstance(link, HostedLink)
    app = make_app(link)
    app.start(tray_available=True)
    assert app.actions.quit_stops_engine

    cli = await RemoteEngine.attach(sock, client="cli")
    try:
        assert cli.hosted_by == "tray"
        assert cli.snapshot == engine.snapshot
        assert {s.key for s in cli.settings()} == {s.key for s in engine.settings()}
        await cli.disconnect()  # a change from the CLI shows in the tray
        await until(lambda: app.tray.icon_kind is IconKind.DISCONNECTED)
        assert cli.snapshot.state is SessionState.DISCONNECTED
    finally:
        await cli.stop()
    with pytest.raises(EngineAlreadyRunningError):
        EngineLock(default_lock_path(sock)).acquire()

    quits: list[bool] = []
    app.actions.quit_requested.connect(lambda: quits.append(True))
    app.tray.action("Quit").trigger()  # hosting: Quit stops the engine and its server
    await until(lambda: quits)
    assert engine.stopped
    with pytest.raises(EngineNotRunningError):
        await RemoteEngine.attach(sock)
    lock = EngineLock(default_lock_path(sock))
    lock.acquire()  # released with the engine
    lock.release()


async def test_a_lost_agent_shows_not_running_and_restart_starts_it(
    make_app, agent, sock: Path
) -> None:
    engine, server = agent
    second = ScriptedEngine(demo_snapshot(SessionState.DEGRADED), demo_settings())
    restarted = LocalApiServer(second, sock, hosted_by="agent")
    started: list[object] = []

    def start_agent() -> str:
        started.append(spawn(restarted.start(), name="test.agent"))
        return "process"

    async def start_and_attach(timeout: float, path: Path | None) -> RemoteEngine:
        return await ensure_agent(timeout, path=path, start=start_agent)

    link = await app_main.make_engine(path=sock, ensure_agent=start_and_attach)
    assert started == []  # the agent was running: attached at once
    app = make_app(
        link, connector=lambda: app_main.make_engine(path=sock, ensure_agent=start_and_attach)
    )
    app.start(tray_available=True)
    main = app.actions.show_window("main")

    await server.stop()  # the agent goes away
    tray = app.tray
    await until(lambda: tray.entries()[0] == ("Rustronaut is not running", False))
    assert tray.icon_kind is IconKind.ERROR
    assert ("Restart Rustronaut", True) in tray.entries()
    assert "Choose Restart Rustronaut" in tray.icon.toolTip()
    assert [n.key for n in tray.notifier.shown][-1] == "engine-lost"
    assert main.state_line.text() == "Rustronaut is not running"
    assert main.primary.text() == "Restart Rustronaut"
    # What the lost engine last said is not shown as if it were still true.
    assert "ada@corp.example" not in main.who.text()
    assert main.resources.topLevelItem(0).text(0) == "Unknown"
    assert main.resources.topLevelItemCount() == 1
    assert app.actions.connect_session() is None  # no engine to ask: nothing, no crash

    tray.action("Restart Rustronaut").trigger()
    await until(lambda: tray.icon_kind is IconKind.DEGRADED)
    assert len(started) == 1  # Restart started the agent, then attached to it
    assert not app.bridge.lost
    assert main.state_line.text() == "Connected — some access blocked"
    assert _ends_session(engine) == []
    await app.link.close()
    await restarted.stop()


AGENT_CHILD = textwrap.dedent(
    """
    import sys
    from PySide6.QtCore import QTimer
    import app.main as m

    def on_ready(a):
        def attached(_engine):
            print("attached", a.link.hosted_by, a.bridge.snapshot.state, flush=True)
            QTimer.singleShot(0, a.actions.quit)  # the menu's Quit
        a.bridge.attached.connect(attached)

    # Nothing configured: the agent serves its set-up error (onboarding, which would
    # wait for the employee, is tested in test_onboarding_run.py).
    rc = m.run([], instance_name={name!r}, on_ready=on_ready, onboarding=lambda: False)
    print("exit", rc, flush=True)
    sys.exit(rc)
    """
)


async def test_the_tray_starts_the_agent_and_quitting_leaves_it_running(tmp_path: Path) -> None:
    """Real processes, the real factory: no engine runs, so the tray starts the agent
    (``rustronaut agent``) and attaches; after the tray quits, the agent still serves."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": str(run),
        "RUSTRONAUT_MANAGED_DIR": str(tmp_path / "managed"),
        **{var: str(tmp_path / var.lower()) for var in (
            "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"
        )},
    }  # fmt: skip
    sock = run / "rustronaut" / "engine.sock"
    lock = EngineLock(default_lock_path(sock))
    code = AGENT_CHILD.format(name=str(tmp_path / "i.sock"))
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()[-2000:]
        lines = out.decode().splitlines()
        # Not configured here: the agent serves the set-up error, the tray shows it.
        assert lines == ["attached agent error", "exit 0"]
        cli = await RemoteEngine.attach(sock, client="cli")
        try:
            assert cli.hosted_by == "agent"
            assert cli.pid not in (0, os.getpid(), proc.pid)
            assert cli.snapshot.state is SessionState.ERROR
        finally:
            await cli.stop()
    finally:
        pid = lock.owner()
        if pid:
            os.kill(pid, signal.SIGTERM)
            await until(lambda: _gone(pid), timeout=10)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_no_agent_and_no_safe_place_to_host_is_explained(tmp_path: Path) -> None:
    """No agent, and the runtime directory is open to others: the tray does not host an
    engine there; start-up explains why with the next step (no traceback, no hang)."""
    from core.engine.localapi.transport import UnsafeDirectoryError

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)

    async def no_agent(timeout: float, path: Path | None) -> RemoteEngine:
        raise EngineNotRunningError("no agent can run here")

    async def build() -> ScriptedEngine:
        raise AssertionError("no engine may be built in an unsafe place")

    with pytest.raises(app_main.EngineUnavailable) as caught:
        await app_main.make_engine(path=shared / "engine.sock", ensure_agent=no_agent, build=build)
    assert str(caught.value).startswith("Rustronaut could not start: ")
    assert caught.value.next_step == UnsafeDirectoryError.next_step
    assert "Error" not in str(caught.value)


async def test_about_says_what_survives_quitting(make_app, agent, sock: Path) -> None:
    link = await app_main.make_engine(path=sock)
    app = make_app(link)
    about = app.actions.show_window("about")
    assert (
        about.session.text() == "Kept by the Rustronaut agent: it stays up when you quit this app."
    )
    _engine, server = agent
    await server.stop()
    await until(lambda: app.bridge.lost)
    assert about.session.text() == "Not running."
    hosted = make_app(ScriptedEngine(demo_snapshot(), demo_settings()))
    assert hosted.actions.show_window("about").session.text() == (
        "Runs inside this app: quitting it disconnects."
    )
