"""The PyInstaller bundle of build.spec: three executables sharing one bundle, trimmed Qt,
resources inside; the built CLI, helper and tray start (the tray offscreen).

The tray has no "quit after start-up" switch: the smoke test starts it with a private
XDG_RUNTIME_DIR, waits for its single-instance socket (it listens only once the Qt loop
runs), checks that a second launch reaches it (the first instance answers from its event
loop) and stops it with SIGTERM, which must end it cleanly with exit code 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import __version__
from tests.fakes.installers import run
from tests.fakes.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

EXES = ("rustronaut", "rustronaut-tray", "rustronaut-helper")


def test_three_executables_share_one_bundle(bundle_dir: Path) -> None:
    for exe in EXES:
        path = bundle_dir / exe
        assert path.is_file(), exe
        assert os.access(path, os.X_OK), exe
    internal = bundle_dir / "_internal"
    # One copy of the shared libraries, not one per executable.
    assert len(list(internal.glob("libpython3*.so*"))) == 1
    assert not (bundle_dir / "rustronaut-tray" / "_internal").exists()


def test_qt_is_trimmed_to_what_the_app_uses(bundle_dir: Path) -> None:
    qt = bundle_dir / "_internal" / "PySide6" / "Qt"
    libs = {p.name for p in (qt / "lib").iterdir()}
    for needed in ("libQt6Core", "libQt6Gui", "libQt6Widgets", "libQt6Network", "libQt6Svg"):
        assert any(n.startswith(needed) for n in libs), needed
    for dropped in ("libQt6Qml", "libQt6Quick", "libQt6Pdf", "libQt6Designer", "libQt6EglFS"):
        assert not any(n.startswith(dropped) for n in libs), dropped
    assert not (qt / "qml").exists()
    assert not (qt / "translations").exists()
    plugins = {p.name for p in (qt / "plugins").iterdir()}
    assert {"platforms", "imageformats", "iconengines"} <= plugins
    assert not plugins & {"qmltooling", "sqldrivers", "designer", "printsupport", "qmllint"}
    platforms = {p.name for p in (qt / "plugins" / "platforms").iterdir()}
    assert {"libqxcb.so", "libqwayland.so", "libqoffscreen.so"} <= platforms
    assert not platforms & {"libqeglfs.so", "libqvnc.so", "libqlinuxfb.so"}
    assert not (qt / "plugins" / "platformthemes" / "libqgtk3.so").exists()
    assert not (bundle_dir / "_internal" / "libgtk-3.so.0").exists()


def test_resources_are_inside(bundle_dir: Path) -> None:
    res = bundle_dir / "_internal" / "resources"
    for rel in (
        "helper/rustronaut-helper.service",
        "helper/com.rustronaut.helper.plist",
        "linux/com.rustronaut.Client.desktop",
        "linux/com.rustronaut.Client.metainfo.xml",
        "icons/com.rustronaut.Client.svg",
        "mdm/managed.schema.json",
        "mdm/windows/rustronaut.admx",
    ):
        assert (res / rel).is_file(), rel


def test_cli_version_runs_frozen(bundle_dir: Path) -> None:
    out = run([str(bundle_dir / "rustronaut"), "version", "--json"], timeout=60).stdout
    info = json.loads(out)
    assert info["rustronaut"] == __version__
    # Distribution metadata was copied: versions are real, not "not installed".
    for dist in ("PySide6-Essentials", "httpx", "cryptography", "msgspec"):
        assert info[dist] != "not installed", dist


def test_cli_discovers_its_commands_when_frozen(bundle_dir: Path) -> None:
    """core.cli finds core/cli/commands/* with pkgutil: the frozen importer must list them."""
    out = run([str(bundle_dir / "rustronaut"), "--help"], timeout=60).stdout
    for command in ("version", "config", "tunnel", "login"):
        assert command in out, command


def test_cli_and_helper_carry_no_qt(bundle_dir: Path) -> None:
    """The privileged helper and the CLI contain no Qt and no UI code (own Analyses)."""
    from PyInstaller.archive.readers import CArchiveReader

    for exe in ("rustronaut", "rustronaut-helper"):
        reader = CArchiveReader(str(bundle_dir / exe))
        assert "pyi_rth_pyside6" not in reader.toc, exe
        modules = set(reader.open_embedded_archive("PYZ.pyz").toc)
        assert not {m for m in modules if m.split(".")[0] in {"PySide6", "qasync", "app"}}, exe
    helper = set(
        CArchiveReader(str(bundle_dir / "rustronaut-helper")).open_embedded_archive("PYZ.pyz").toc
    )
    assert "wg_backends.helper.server" in helper
    assert not {m for m in helper if m.split(".")[0] in {"core", "httpx", "authlib"}}


def test_frozen_helper_ignores_pythonpath(bundle_dir: Path, tmp_path: Path) -> None:
    """Like ``python -I`` in the resource unit: a module planted on PYTHONPATH that
    shadows one the helper imports is not loaded by the frozen helper."""
    evil = tmp_path / "evil"
    evil.mkdir()
    for name in ("argparse", "sitecustomize", "wg_backends"):
        (evil / f"{name}.py").write_text('raise SystemExit("PLANTED MODULE LOADED")\n')
    env = {**os.environ, "PYTHONPATH": str(evil), "PYTHONSTARTUP": str(evil / "argparse.py")}
    proc = run([str(bundle_dir / "rustronaut-helper"), "--help"], env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PLANTED" not in proc.stdout + proc.stderr
    assert "usage: rustronaut-helper" in proc.stdout


def test_helper_starts_frozen(bundle_dir: Path, tmp_path: Path) -> None:
    """The frozen helper listens on its socket and removes it on SIGTERM."""
    sock = tmp_path / "helper.sock"
    proc = subprocess.Popen(
        [
            str(bundle_dir / "rustronaut-helper"),
            "--socket",
            str(sock),
            "--state-dir",
            str(tmp_path / "state"),
            "--allow-uid",
            str(os.getuid()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not sock.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sock.exists(), proc.stdout.read() if proc.poll() is not None else "no socket"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert not sock.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def controller_url(tmp_path: Path) -> Iterator[str]:
    """The reference controller (dev OIDC, SQLite) on a free loopback port."""
    ctl = Path(sys.executable).parent / "rustronaut-controller"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    work = tmp_path / "controller"
    work.mkdir()
    config = work / "controller.json"
    init = [str(ctl), "init", "--config", str(config), "--host", "127.0.0.1"]
    run([*init, "--port", str(port), "--dev-oidc"], cwd=work, timeout=60)
    proc = subprocess.Popen(
        [str(ctl), "serve", "--config", str(config)],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        assert proc.poll() is None, "controller exited"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _agents(bundle: Path) -> list[int]:
    """Pids of ``rustronaut agent`` processes run from ``bundle`` (the frozen agent)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[0].startswith(str(bundle).encode()) and argv[1] == b"agent":
            pids.append(int(entry.name))
    return pids


def _stop_agents(bundle: Path) -> None:
    """SIGTERM the bundle's agents (as logging out would), SIGKILL what stays."""
    for pid in _agents(bundle):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(AssertionError):
        wait_until(lambda: not _agents(bundle), 15, what="the agent to stop")
    for pid in _agents(bundle):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.ui
def test_tray_starts_the_agent_attaches_and_quits_on_sigterm_leaving_it_up(
    bundle_dir: Path, tmp_path: Path, controller_url: str
) -> None:
    """The frozen tray starts the frozen agent (``rustronaut agent``: the real engine,
    which asks the controller for discovery), attaches to it, answers a second launch from
    its event loop and exits 0 on SIGTERM. The agent (and so the session) stays up."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    config = tmp_path / "config"
    (config / "rustronaut").mkdir(parents=True)
    (config / "rustronaut" / "settings.json").write_text(
        json.dumps({"controller_url": controller_url})
    )
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": str(runtime),
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(config),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "RUSTRONAUT_MANAGED_DIR": str(tmp_path / "managed"),
    }
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
        env.pop(var, None)
    tray = str(bundle_dir / "rustronaut-tray")
    log = tmp_path / "tray.log"
    with log.open("w") as sink:
        proc = subprocess.Popen([tray, "--debug"], env=env, stdout=sink, stderr=subprocess.STDOUT)
    sock = runtime / "rustronaut-tray.sock"
    engine_sock = runtime / "rustronaut" / "engine.sock"
    discovery = f"GET {controller_url}/.well-known/rustronaut"

    def tray_log() -> str:
        return log.read_text(errors="replace")

    def every_log() -> str:  # the tray's output and the agent's log file
        return "".join(p.read_text(errors="replace") for p in sorted(tmp_path.rglob("*.log")))

    def up() -> bool:
        return proc.poll() is not None or (
            sock.exists()
            and engine_sock.exists()
            and "engine attached (hosted by agent)" in tray_log()
            and discovery in every_log()
        )

    try:
        with contextlib.suppress(AssertionError):
            wait_until(up, 90, what="the tray attached to the agent's engine")
        text = tray_log()
        assert sock.exists(), f"tray never listened (exit {proc.poll()}): {text[-3000:]}"
        assert "engine attached (hosted by agent)" in text, text[-3000:]
        assert _agents(bundle_dir), "no frozen `rustronaut agent` process"
        assert engine_sock.exists(), "the agent does not serve the local API"
        assert discovery in every_log(), f"the engine never asked the controller: {text[-3000:]}"
        # A second launch knocks on the first and exits 0 at once.
        second = run([tray], env=env, timeout=60, check=False)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "already running" in second.stdout
        assert proc.poll() is None, "the first instance died when knocked on"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        text = tray_log()
        assert proc.returncode == 0, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
        assert not sock.exists(), "the single-instance socket outlived the tray"
        # Quitting the tray is not quitting the session: the agent keeps serving.
        assert _agents(bundle_dir), "the agent ended with the tray"
        assert engine_sock.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _stop_agents(bundle_dir)
