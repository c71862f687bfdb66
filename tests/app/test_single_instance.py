"""One tray per user: a second launch knocks, the first raises its window."""

from __future__ import annotations

import asyncio
import json
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


# ------------------------------------------------------------ join links (issue 18)
async def _exchange(name: str, data: bytes) -> bytes:
    """Send ``data`` as a later launch would and return all the first instance answered
    before it hung up."""
    from PySide6.QtNetwork import QLocalSocket

    from tests.fakes.wait import async_wait_until

    sock = QLocalSocket()
    sock.connectToServer(name)
    assert sock.waitForConnected(1000)
    sock.write(data)
    sock.flush()
    got = bytearray()

    def hung_up() -> bool:
        got.extend(bytes(sock.readAll().data()))
        return sock.state() == QLocalSocket.LocalSocketState.UnconnectedState

    await async_wait_until(hung_up, what="the first instance to answer and hang up")
    got.extend(bytes(sock.readAll().data()))
    sock.abort()
    return bytes(got)


async def test_a_forwarded_join_link_reaches_on_join(qapp, tmp_path: Path) -> None:
    from app.single_instance import JoinAnswer, join_message

    name = _name(tmp_path)
    first = SingleInstance(name)
    assert first.acquire()
    links: list[str] = []
    first.on_join = lambda link: links.append(link) or JoinAnswer.OPENED
    link = "rustronaut://join?controller=https://zt.example.com"
    try:
        assert await _exchange(name, join_message(link)) == b"opened\n"
        assert links == [link]
    finally:
        first.release()


async def test_a_join_link_before_the_tray_can_take_it_is_answered_no(qapp, tmp_path: Path) -> None:
    from app.single_instance import join_message

    name = _name(tmp_path)
    first = SingleInstance(name)
    assert first.acquire()
    try:  # no on_join yet: still starting
        assert await _exchange(name, join_message("rustronaut://join?x")) == b"no\n"
    finally:
        first.release()


async def test_a_link_with_control_characters_is_framed_and_handed_over_whole(
    qapp, tmp_path: Path
) -> None:
    """A newline inside the link cannot split the message: the handler sees the link as
    it was (and refuses it with words, see test_main_join)."""
    from app.single_instance import JoinAnswer, join_message

    name = _name(tmp_path)
    first = SingleInstance(name)
    assert first.acquire()
    links: list[str] = []
    first.on_join = lambda link: links.append(link) or JoinAnswer.REFUSED
    link = "rustronaut://join?controller=https://a.example\nraise\n\x1b[31m"
    try:
        assert await _exchange(name, join_message(link)) == b"refused\n"
        assert links == [link]
    finally:
        first.release()


def test_an_over_long_link_is_cut_but_stays_over_long() -> None:
    from app.single_instance import MAX_LINE, join_message

    line = join_message("rustronaut://join?controller=https://" + "a" * 100_000)
    assert len(line) < MAX_LINE
    assert len(json.loads(line)["link"]) == 1025  # still refused as too long


@pytest.mark.parametrize(
    "data",
    [
        b'{"type": "join"}\n',
        b'{"type": "join", "link": 5}\n',
        b'{"type": "join", "link": "x", "token": "secret"}\n',
        b'{"type": "leave", "link": "rustronaut://join?controller=https://a.example"}\n',
        b"[1, 2]\n",
        b"\xff\xfe\n",
        b"[" * 5000,  # no newline: longer than a line
        b"raise and more\n",
    ],
    ids=["no-link", "link-not-text", "extra-key", "unknown-type", "not-an-object",
         "not-utf8", "over-long", "raise-plus"],
)  # fmt: skip
async def test_garbage_is_refused_and_reaches_nothing(qapp, tmp_path: Path, data: bytes) -> None:
    name = _name(tmp_path)
    first = SingleInstance(name)
    assert first.acquire()
    hits: list[object] = []
    reasons: list[str] = []
    first.activated.connect(lambda: hits.append("raise"))
    first.on_join = hits.append  # type: ignore[assignment,method-assign]
    first.refused.connect(reasons.append)
    try:
        assert await _exchange(name, data) == b"refused\n"
        assert hits == []
        assert reasons
    finally:
        first.release()


async def test_a_process_of_another_account_is_refused(
    qapp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The kernel's peer uid must be ours. Here the first instance believes it runs as
    another uid, so this test's own (real) connection is a stranger's."""
    import app.single_instance as si

    if sys.platform not in ("linux", "darwin"):
        pytest.skip("peer credentials of Unix sockets")
    name = _name(tmp_path)
    first = SingleInstance(name)
    assert first.acquire()
    hits: list[object] = []
    reasons: list[str] = []
    first.activated.connect(lambda: hits.append("raise"))
    first.on_join = hits.append  # type: ignore[assignment,method-assign]
    first.refused.connect(reasons.append)
    real = os.getuid()
    monkeypatch.setattr(si.os, "getuid", lambda: real + 1)
    try:
        await _exchange(name, b"raise\n")
        assert hits == []
        assert reasons == [f"a process of another account (uid {real}) knocked"]
        assert "another account" in caplog.text
    finally:
        first.release()


async def test_a_silent_peer_is_hung_up_on(
    qapp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.single_instance as si

    monkeypatch.setattr(si, "IDLE_MS", 50)
    name = _name(tmp_path)
    first = SingleInstance(name)
    assert first.acquire()
    try:
        assert await _exchange(name, b"") == b""
    finally:
        first.release()
