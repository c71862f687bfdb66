"""The real ``rustronaut`` CLI in a subprocess, in a throw-away per-user environment."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

__all__ = ["ROOT", "isolated_env", "run_cli"]

#: The repository root (the CLI runs from the source tree).
ROOT = Path(__file__).resolve().parents[2]


def isolated_env(home: Path) -> dict[str, str]:
    """This process's environment with every per-user directory moved under ``home``."""
    env = dict(os.environ)
    env.update(
        XDG_RUNTIME_DIR=str(home / "run"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        HOME=str(home),
        PYTHONPATH=str(ROOT),
    )
    return env


async def run_cli(
    env: dict[str, str], *args: str, timeout: float = 30, no_traceback: bool = True
) -> tuple[int, str, str]:
    """Run ``python -m core.cli.main *args``; its exit code, stdout and stderr.

    ``no_traceback``: also assert that neither stream shows a Python traceback.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "core.cli.main",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    if no_traceback:
        assert "Traceback" not in out.decode() + err.decode()
    return proc.returncode, out.decode(), err.decode()
