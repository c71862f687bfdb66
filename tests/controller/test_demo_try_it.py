"""The demo's "try it yourself" lines are commands that run as printed: the venv's own
``rustronaut`` by its full path (it is not on PATH), and ``sudo`` when the demo was
started with sudo (issue 18)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from controller.demo.__main__ import try_it_lines

pytestmark = pytest.mark.unit

ARGS = dict(
    client_ns="rt-client",
    proxy_port=9080,
    wiki="wiki.corp.example",
    payroll="payroll.corp.example",
    runtime_dir=Path("/tmp/demo state/run"),
)


def test_rustronaut_is_the_venv_s_by_its_full_path() -> None:
    lines = try_it_lines(**ARGS, sudo=False)  # type: ignore[arg-type]
    status = next(ln for ln in lines if ln.endswith("status"))
    argv = shlex.split(status)
    assert argv[0] == "XDG_RUNTIME_DIR=/tmp/demo state/run"  # quoted: a space survives
    exe = Path(argv[1])
    assert exe.is_absolute()
    assert exe == Path(sys.executable).parent / "rustronaut"
    assert exe.exists()
    assert argv[2:] == ["status"]


def test_under_sudo_every_line_starts_with_sudo() -> None:
    lines = try_it_lines(**ARGS, sudo=True)  # type: ignore[arg-type]
    assert lines
    assert all(ln.startswith("sudo ") for ln in lines)
    assert any("ip netns exec rt-client curl" in ln for ln in lines)


def test_without_a_venv_script_the_module_is_run_by_the_same_python(tmp_path: Path) -> None:
    python = tmp_path / "bin" / "python"
    lines = try_it_lines(**ARGS, sudo=False, python=python)  # type: ignore[arg-type]
    status = next(ln for ln in lines if ln.endswith("status"))
    assert f"{python} -m core.cli.main status" in status


def _program(line: str) -> list[str]:
    """The program part of a printed line: without ``sudo``, the ``VAR=value`` words and
    its arguments (the environment words come back as a dict)."""
    argv = shlex.split(line)
    if argv[0] == "sudo":
        argv = argv[1:]
    while "=" in argv[0] and not argv[0].startswith("/"):
        argv = argv[1:]
    return argv


def test_the_printed_rustronaut_runs_as_printed() -> None:
    """Run the program of the printed ``status`` line with ``--help``, from another
    directory (a second terminal is anywhere)."""
    import subprocess

    line = next(ln for ln in try_it_lines(**ARGS, sudo=True) if ln.endswith("status"))  # type: ignore[arg-type]
    argv = _program(line)
    assert argv[-1] == "status"
    out = subprocess.run(
        [*argv[:-1], "--help"], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert out.returncode == 0, out.stderr
    assert "status" in out.stdout


def test_the_module_fallback_runs_as_printed(tmp_path: Path) -> None:
    """Without a venv script the line names the module and sets ``PYTHONPATH`` to the
    checkout, so it runs from any directory (here with this test's own interpreter)."""
    import os
    import subprocess

    python = tmp_path / "bin" / "python"
    line = next(
        ln
        for ln in try_it_lines(**ARGS, sudo=False, python=python)
        if ln.endswith("status")  # type: ignore[arg-type]
    )
    words = shlex.split(line)
    env_words = [w for w in words if w.startswith(("PYTHONPATH=", "XDG_RUNTIME_DIR="))]
    argv = _program(line)
    assert argv[:3] == [str(python), "-m", "core.cli.main"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(dict(w.split("=", 1) for w in env_words))
    out = subprocess.run(
        [sys.executable, *argv[1:-1], "--help"],
        capture_output=True, text=True, timeout=60, cwd="/", env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "status" in out.stdout
