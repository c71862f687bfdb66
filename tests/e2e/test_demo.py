"""The README's first command runs this demo: it must pass and leave nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def test_demo_passes_and_cleans_up() -> None:
    before = _netns()
    env = {**os.environ, "CI": "true"}  # never waits for Enter
    result = subprocess.run(
        [sys.executable, "-m", "controller.demo"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-2000:]
    assert "Demo passed" in out
    assert "✘ http://wiki" not in out
    assert "→ refused:" in out  # the payroll request was refused with its reason
    assert "State:     connected" in out
    assert _netns() == before
