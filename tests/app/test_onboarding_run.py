"""``app.main.run`` at first start: onboarding first, and start-up failures with Retry.

Each scenario runs the real ``run`` in a child process (offscreen), as ``test_startup``
does, with an empty profile in a temporary XDG tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import app.main as app_main

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    import app.main as m
    from app.windows.onboarding import OnboardingWindow, Stage
    from app.windows.startup_error import StartupErrorWindow
    mode = {mode!r}
    calls = []

    async def factory():
        calls.append(1)
        print("factory", len(calls), flush=True)
        if mode == "retry" and len(calls) == 1:
            raise m.EngineUnavailable(
                "Rustronaut could not start: connect failed: [Errno 111] Connection refused",
                "Check your network connection, then choose Retry.",
            )
        QTimer.singleShot(0, holder[0].actions.quit)
        await asyncio.Event().wait()

    holder = []

    def find(kind):
        return [w for w in QApplication.topLevelWidgets() if isinstance(w, kind) and w.isVisible()]

    def on_ready(a):
        holder.append(a)
        def poll():
            if mode in ("link", "close", "second"):
                wins = find(OnboardingWindow)
                if not wins:
                    return QTimer.singleShot(20, poll)
                w = wins[0]
                if mode == "close":
                    print("onboarding shown, factory calls", len(calls), flush=True)
                    return w.close()
                if mode == "second":  # a second launch while onboarding
                    return second(a, w)
                if w.stage is not Stage.FOUND:
                    return QTimer.singleShot(20, poll)
                print("found", w.found_url.text(), "factory calls", len(calls), flush=True)
                w.use_button.click()
            elif mode == "retry":
                boxes = find(StartupErrorWindow)
                if not boxes:
                    return QTimer.singleShot(20, poll)
                print("error", boxes[0].text().replace(chr(10), "|"), flush=True)
                boxes[0].retry_button.click()
        QTimer.singleShot(20, poll)

    def second(a, w):
        import subprocess
        main = a.actions.windows.get("main")
        print("main shown at start", bool(main and main.isVisible()), flush=True)
        if main is not None:  # offscreen there is no tray: the main window opened then
            main.hide()
        knock = subprocess.Popen([sys.executable, "-c", "import sys, app.main as m; "
                                  "sys.exit(m.run(['--show'], instance_name={name!r}))"])
        def done():
            if knock.poll() is None:
                return QTimer.singleShot(20, done)
            main = a.actions.windows.get("main")
            print("second exit", knock.returncode, flush=True)
            print("main shown", bool(main and main.isVisible()), flush=True)
            print("onboarding shown", w.isVisible(), flush=True)
            w.close()
        QTimer.singleShot(20, done)

    rc = m.run({argv!r}, engine_factory=factory, instance_name={name!r}, on_ready=on_ready,
               onboarding=lambda: mode != "retry")
    print("exit", rc, flush=True)
    sys.exit(rc)
    """
)


def _run(tmp_path: Path, mode: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    code = CHILD.format(mode=mode, argv=argv, name=str(tmp_path / "i.sock"))
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_a_join_link_onboards_then_the_engine_is_built(tmp_path: Path) -> None:
    link = "rustronaut://join?controller=https://zt.example.com"
    out = _run(tmp_path, "link", [link])
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    # The controller is shown for confirmation before anything is built...
    assert "found https://zt.example.com factory calls 0" in lines
    # ...then saved as the user's setting, and only then the engine is built.
    assert lines.index("factory 1") > lines.index("found https://zt.example.com factory calls 0")
    saved = json.loads((tmp_path / "config" / "rustronaut" / "settings.json").read_text())
    assert saved["controller_url"] == "https://zt.example.com"
    assert lines[-1] == "exit 0"


def test_a_second_launch_during_onboarding_brings_onboarding_forward(tmp_path: Path) -> None:
    """A second launch (the menu entry, ``--show``) brings the onboarding window forward,
    not a main window that can only say "Starting…"."""
    out = _run(tmp_path, "second", ["--show"])
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert "second exit 0" in lines
    # Offscreen there is no system tray, so the main window opened at start (the child
    # hid it): the knock must not open it again.
    assert "main shown False" in lines
    assert "onboarding shown True" in lines


def test_closing_the_onboarding_quits_without_building(tmp_path: Path) -> None:
    out = _run(tmp_path, "close", [])
    assert out.returncode == 0, out.stderr[-2000:]
    assert "onboarding shown, factory calls 0" in out.stdout
    assert "factory 1" not in out.stdout
    assert out.stdout.splitlines()[-1] == "exit 0"


def test_a_start_up_failure_says_why_without_errno_and_retry_builds_again(
    tmp_path: Path,
) -> None:
    out = _run(tmp_path, "retry", [])
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert (
        "error Rustronaut could not start: connect failed: Connection refused||"
        "Check your network connection, then choose Retry." in lines
    )
    assert "factory 2" in lines  # Retry built again
    assert lines[-1] == "exit 0"
    logs = list(tmp_path.rglob("app.log*"))
    assert logs, "the app log was not written"
    text = "".join(p.read_text() for p in logs)
    assert "start-up failed: Rustronaut could not start" in text
    assert "start-up: Retry" in text


# ----------------------------------------------------------------------- the decision
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("RUSTRONAUT_MANAGED_DIR", str(tmp_path / "managed"))


def test_an_empty_profile_needs_onboarding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(tmp_path, monkeypatch)
    assert app_main.needs_onboarding() is True


def test_a_configured_controller_skips_onboarding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import set_user

    _env(tmp_path, monkeypatch)
    set_user("controller_url", "https://zt.example.com")
    assert app_main.needs_onboarding() is False


def test_managed_settings_skip_onboarding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(tmp_path, monkeypatch)
    managed = tmp_path / "managed"
    managed.mkdir(mode=0o755)
    (managed / "managed.json").write_text(json.dumps({"proxy_port": 18080}))
    (managed / "managed.json").chmod(0o644)
    from core.settings import load

    if not load().managed.values:
        pytest.skip("managed files must be root-owned: run as root to test this")
    assert app_main.needs_onboarding() is False


def test_the_desktop_entry_opens_join_links() -> None:
    """The OS hands ``rustronaut://join?…`` links to the tray (``%u``), which reads them."""
    entry = (ROOT / "resources" / "linux" / "com.rustronaut.Client.desktop").read_text()
    keys = dict(line.split("=", 1) for line in entry.splitlines() if "=" in line)
    assert "x-scheme-handler/rustronaut" in keys["MimeType"].split(";")
    assert keys["Exec"] == "rustronaut-tray --show %u"
    link = "rustronaut://join?controller=https://zt.example.com"
    assert app_main._parse(["--show", link]).link == link
    assert app_main._parse(["--show"]).link is None


async def test_an_unreachable_controller_at_start_is_said_without_errno(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real wiring with a configured controller that does not answer: words and a next
    step, nothing technical (the technical cause goes to the log)."""
    import socket

    from core.settings import set_user

    _env(tmp_path, monkeypatch)
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    set_user("controller_url", f"http://127.0.0.1:{port}")
    with pytest.raises(app_main.EngineUnavailable) as caught:
        await app_main.build_engine()
    assert str(caught.value) == "Rustronaut could not reach your organisation's controller."
    assert caught.value.next_step.startswith("Check your network connection")
    assert "Errno" not in str(caught.value)
