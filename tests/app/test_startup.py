"""Start-up and shut-down of ``app.main.run`` in a real child process (offscreen)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox
    import app.main as m
    mode = {mode!r}
    cancelled = []

    async def never():
        try:
            await asyncio.Event().wait()  # a controller that never answers
        except asyncio.CancelledError:
            cancelled.append(True)
            print("factory cancelled", flush=True)
            raise

    async def unavailable():
        if mode == "hostile":  # the cause quotes a controller's words
            raise m.EngineUnavailable("Rustronaut could not start: <b>bold</b> \\x1b[31m\\nFORGED")
        raise m.EngineUnavailable("Rustronaut could not start: No controller URL is set.")

    def on_ready(a):
        print("ready", a.bridge.starting, a.tray.icon.toolTip() or "-", flush=True)
        if mode == "quit-while-building":
            QTimer.singleShot(200, a.actions.quit)
        else:
            def close_box():
                for w in QApplication.topLevelWidgets():
                    if isinstance(w, QMessageBox) and w.isVisible():
                        print("dialog", w.text().splitlines()[0], flush=True)
                        print("format", w.textFormat().name, flush=True)
                        w.done(0)
                        return
                QTimer.singleShot(50, close_box)
            QTimer.singleShot(50, close_box)

    factory = never if mode == "quit-while-building" else unavailable
    rc = m.run([], engine_factory=factory, instance_name={name!r}, on_ready=on_ready)
    print("exit", rc, flush=True)
    sys.exit(rc)
    """
)


def _run(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    code = CHILD.format(mode=mode, name=str(tmp_path / "i.sock"))
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_quit_while_the_engine_is_still_being_built(tmp_path: Path) -> None:
    out = _run(tmp_path, "quit-while-building")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("ready True")  # the UI is up while the engine is not
    assert "factory cancelled" in lines
    assert lines[-1] == "exit 0"


def test_engine_unavailable_is_explained_then_exits_1(tmp_path: Path) -> None:
    out = _run(tmp_path, "unavailable")
    assert out.returncode == 1, out.stderr[-2000:]
    assert "dialog Rustronaut could not start: No controller URL is set." in out.stdout
    assert out.stdout.splitlines()[-1] == "exit 1"


def test_the_start_up_dialog_shows_a_cause_as_escaped_plain_text(tmp_path: Path) -> None:
    out = _run(tmp_path, "hostile")
    assert out.returncode == 1, out.stderr[-2000:]
    assert "dialog Rustronaut could not start: <b>bold</b> \\x1b[31m\\nFORGED" in out.stdout
    assert "format PlainText" in out.stdout


def test_the_tray_executable_runs_the_agent_when_asked(tmp_path: Path) -> None:
    """A frozen tray starts the agent as ``<its own exe> agent``: that must be the agent,
    not a second tray (which would reject the argument)."""
    code = (
        "import sys, app.main as m; sys.argv = ['rustronaut-tray', 'agent', '--help']\n"
        "try:\n    m.main()\n"
        "finally:\n    print('qt loaded' if 'PySide6' in sys.modules else 'no qt')"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("usage: rustronaut agent")
    assert out.stdout.splitlines()[-1] == "no qt"  # the agent never loads a GUI toolkit
