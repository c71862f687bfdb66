"""One tray per user: a second launch knocks, the first raises its window."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from app.single_instance import SingleInstance, default_name

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parents[2]


def _name(tmp_path: Path) -> str:
    return str(tmp_path / f"rt-{uuid.uuid4().hex[:8]}.sock")


async def test_second_instance_knocks_and_first_is_activated(qapp, tmp_path: Path) -> None:
    name = _name(tmp_path)
    first = SingleInstance(name)
    assert first.acquire()
    assert first.acquire()  # idempotent
    activated = asyncio.Event()
    first.activated.connect(activated.set)
    second = SingleInstance(name)
    assert not second.acquire()
    await asyncio.wait_for(activated.wait(), 3)
    first.release()
    third = SingleInstance(name)
    assert third.acquire()  # free again after release
    third.release()


async def test_garbage_on_the_socket_does_not_activate(qapp, tmp_path: Path) -> None:
    from PySide6.QtNetwork import QLocalSocket

    name = _name(tmp_path)
    first = SingleInstance(name)
    assert first.acquire()
    hits: list[int] = []
    first.activated.connect(lambda: hits.append(1))
    sock = QLocalSocket()
    sock.connectToServer(name)
    assert sock.waitForConnected(1000)
    sock.write(b"rm -rf /\n")
    sock.waitForBytesWritten(1000)
    # The first instance reads one line, finds no "raise" and hangs up on us.
    async with asyncio.timeout(3):
        while sock.state() != QLocalSocket.LocalSocketState.UnconnectedState:
            await asyncio.sleep(0.01)
    assert hits == []
    sock.disconnectFromServer()
    first.release()


def test_stale_socket_from_a_crash_is_replaced(qapp, tmp_path: Path) -> None:
    import socket

    name = _name(tmp_path)
    s = socket.socket(socket.AF_UNIX)
    s.bind(name)  # a socket file nobody listens on, as a crashed instance leaves it
    s.close()
    inst = SingleInstance(name)
    assert inst.acquire()
    inst.release()


def test_default_name_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_name() == str(tmp_path / "rustronaut-tray.sock")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_name() == f"rustronaut-tray-{os.getuid()}"


RUNNER = textwrap.dedent(
    """
    import sys
    from tests.fakes.scripted_engine import ScriptedEngine
    import app.main as m
    import app.single_instance as si

    class Probe(si.SingleInstance):
        # Report the knock on stdout, then quit through the normal path.
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.activated.connect(self._report)

        def _report(self):
            print("raised", flush=True)
            for a in apps:
                a.actions.quit()

    apps = []
    si.SingleInstance = Probe  # app.main.run imports it when it runs

    def ready(tray_app):
        apps.append(tray_app)
        print("ready", flush=True)

    sys.exit(m.run(["--autostart"], engine_factory=ScriptedEngine,
                   instance_name={name!r}, on_ready=ready))
    """
)


def test_second_process_raises_the_first_and_exits(tmp_path: Path) -> None:
    """Two real processes: the second exits 0 at once, the first is told to come forward."""
    name = _name(tmp_path)
    script = tmp_path / "run.py"
    script.write_text(RUNNER.format(name=name))
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),  # the script imports tests.fakes
    }
    first = subprocess.Popen(
        [sys.executable, str(script)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "ready"
        second = subprocess.run(
            [sys.executable, str(script)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        assert first.stdout.readline().strip() == "raised"
        assert first.wait(timeout=30) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


SAYS = textwrap.dedent(
    """
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QWidget
    from app.single_instance import SingleInstance

    app = QApplication([])
    inst = SingleInstance({name!r})
    assert inst.acquire()
    window = QWidget()
    if {with_window!r}:
        def raise_window():
            window.showNormal()
            return window.isVisible()
        inst.raise_window = raise_window
    # Quit soon after answering the knock.
    inst.activated.connect(lambda: QTimer.singleShot(100, app.quit))
    print("ready", flush=True)
    app.exec()
    """
)


@pytest.mark.parametrize("with_window", [True, False])
def test_second_launch_says_brought_forward_only_when_it_was(
    qapp, tmp_path: Path, with_window: bool
) -> None:
    """Issue 18: the second launch claimed the window was brought forward even when the
    first instance showed nothing (still starting). It now asks, and is told."""
    name = _name(tmp_path)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(
        [sys.executable, "-c", SAYS.format(name=name, with_window=with_window)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "ready"
        second = SingleInstance(name)
        assert not second.acquire(timeout_ms=5000)
        assert second.brought_forward is with_window
        assert first.wait(timeout=30) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
