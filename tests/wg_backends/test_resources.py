"""Service definitions in resources/helper: isolated Python, valid flags, valid syntax."""

from __future__ import annotations

import plistlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wg_backends.helper.__main__ import build_parser

pytestmark = pytest.mark.unit

RES = Path(__file__).resolve().parents[2] / "resources" / "helper"


def _exec_start() -> list[str]:
    for line in (RES / "rustronaut-helper.service").read_text().splitlines():
        if line.startswith("ExecStart="):
            return shlex.split(line.removeprefix("ExecStart="))
    raise AssertionError("no ExecStart")


def test_systemd_unit_runs_isolated_python_with_valid_flags() -> None:
    argv = _exec_start()
    assert argv[1:4] == ["-I", "-m", "wg_backends.helper"]
    args = build_parser().parse_args(argv[4:])
    assert args.group == "rustronaut"
    assert str(args.socket) == "/run/rustronaut/helper.sock"


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    text = (RES / "rustronaut-helper.service").read_text()
    unit = tmp_path / "rustronaut-helper.service"
    unit.write_text(text.replace("/opt/rustronaut/venv/bin/python", sys.executable))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True)  # fmt: skip
    assert out.stderr.strip() == ""
    assert out.returncode == 0


def test_launchd_plist_is_valid_and_isolated() -> None:
    with (RES / "com.rustronaut.helper.plist").open("rb") as fh:
        plist = plistlib.load(fh)
    assert plist["Label"] == "com.rustronaut.helper"
    assert plist["UserName"] == "root"
    argv = plist["ProgramArguments"]
    assert argv[1:4] == ["-I", "-m", "wg_backends.helper"]
    args = build_parser().parse_args(argv[4:])
    assert args.backend == "macos"
    assert plist["Umask"] == 0o077


def test_windows_script_runs_isolated_helper() -> None:
    text = (RES / "register-helper-service.ps1").read_text()
    assert "-I -m wg_backends.helper --backend windows" in text
