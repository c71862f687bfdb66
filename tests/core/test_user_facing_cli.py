"""The CLI shows failures in words and exits with its documented code, never a traceback
(unless ``--debug``); ``rustronaut diag`` works when the controller is unreachable.

Each case runs the real ``python -m core.cli.main`` (its console logging included) in a
temporary user session: its own config (``XDG_CONFIG_HOME``), managed dir
(``RUSTRONAUT_MANAGED_DIR``), runtime, data and log directories.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import core.cli.commands.version as version_command
from core.cli.main import main
from core.engine.errors import AlwaysOnError, HelperLostError, ReasonTooShortError
from core.engine.localapi.errors import EngineNotRunningError
from wg_backends.errors import HelperRefused

pytestmark = pytest.mark.integration

_ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def session(tmp_path: Path) -> dict[str, str]:
    """The environment of a user whose settings point at a controller that is down."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "RUSTRONAUT_"))}
    for name in ("config", "data", "state", "cache", "run", "managed"):
        (tmp_path / name).mkdir(mode=0o700)
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_RUNTIME_DIR=str(tmp_path / "run"),
        RUSTRONAUT_MANAGED_DIR=str(tmp_path / "managed"),
        RUSTRONAUT_HELPER_SOCKET=str(tmp_path / "run" / "no-helper.sock"),
        PYTHONPATH=str(_ROOT),
    )
    (tmp_path / "config" / "rustronaut").mkdir()
    (tmp_path / "config" / "rustronaut" / "settings.json").write_text(
        json.dumps({"controller_url": f"https://127.0.0.1:{_closed_port()}"})
    )
    return env


def _run(
    env: dict[str, str], *args: str, code: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``rustronaut ARGS`` (or ``python -c CODE ARGS``) in the temporary session."""
    argv = (
        [sys.executable, "-c", code, *args]
        if code
        else [sys.executable, "-m", "core.cli.main", *args]
    )
    return subprocess.run(argv, env=env, cwd=_ROOT, capture_output=True, text=True, timeout=120)


def _no_internals(text: str) -> None:
    assert "Traceback" not in text
    assert "Errno" not in text
    assert "Error:" not in text  # "SomethingError: ..." is how a class name shows


def test_diag_works_when_the_controller_is_unreachable(
    session: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = _run(session, "diag", "--out", str(out))
    _no_internals(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    (zip_path,) = out.glob("rustronaut-diagnostics-*.zip")
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        settings = {s["key"]: s for s in json.loads(zf.read("settings.json"))}
    assert {"versions.json", "settings.json", "failure.json"} <= names
    assert settings["controller_url"]["source"] == "user"


def test_status_without_an_engine_says_so_and_exits_4(session: dict[str, str]) -> None:
    done = _run(session, "status")
    _no_internals(done.stdout + done.stderr)
    assert done.returncode == 4
    assert "not running" in done.stdout + done.stderr


#: ``rustronaut version`` whose work meets a controller that refuses the connection: a
#: real failure no command catches, so the top level must show it.
_UNCAUGHT = textwrap.dedent(
    """
    import asyncio, sys
    import core.cli.commands.version as command
    from core.controlplane import ControlPlaneClient
    from core.settings import load

    def versions():
        async def ask():
            async with ControlPlaneClient(load().controller_url) as client:
                await client.discovery()
        asyncio.run(ask())

    command.versions = versions
    from core.cli.main import entry
    sys.argv = ["rustronaut", *sys.argv[1:]]
    entry()
    """
)


def test_an_uncaught_failure_is_shown_in_words_with_a_next_step(session: dict[str, str]) -> None:
    done = _run(session, "version", code=_UNCAUGHT)
    assert done.returncode == 1
    assert done.stdout == ""
    _no_internals(done.stderr)
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "Controller unreachable: The controller did not answer (connection refused).",
        "Next step: Check your network connection. Rustronaut keeps retrying.",
    ]
    # ... and the trace went to the log file, for ``rustronaut diag``
    log = Path(session["XDG_STATE_HOME"]) / "rustronaut" / "log" / "cli.log"
    assert "Traceback" in log.read_text()


def test_debug_shows_the_traceback(session: dict[str, str]) -> None:
    done = _run(session, "--debug", "version", code=_UNCAUGHT)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "ControllerUnreachableError" in done.stderr
    assert done.stderr.rstrip().endswith(
        "Next step: Check your network connection. Rustronaut keeps retrying."
    )


def test_a_usage_error_exits_2(session: dict[str, str]) -> None:
    done = _run(session, "no-such-command")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def _raiser(exc: BaseException) -> Callable[[], dict[str, str]]:
    def versions() -> dict[str, str]:
        raise exc

    return versions


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (AlwaysOnError("Your organization keeps Rustronaut connected."), 3),
        (ReasonTooShortError(), 3),
        (EngineNotRunningError("nobody serves the socket"), 4),
        (HelperLostError(), 1),
        (HelperRefused("bad_spec", "endpoint missing"), 1),
        (ValueError("odd"), 1),
        (KeyboardInterrupt(), 130),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_exit_status_follows_the_error_code(
    exc: BaseException,
    status: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(version_command, "versions", _raiser(exc))
    assert main(["version"]) == status
    err = capsys.readouterr().err
    _no_internals(err)
    assert type(exc).__name__ not in err
    if status != 130:
        assert "\nNext step: " in err
