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
