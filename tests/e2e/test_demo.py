"""The README's first command runs this demo: it must pass and leave nothing behind.

"Nothing behind" is checked for what the demo made (its namespaces, named in its output,
and their /etc/netns directories), never as "no namespace at all": other tests running
at the same time have beds of their own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _created(out: str) -> set[str]:
    """The namespaces the demo reports making (``namespaces rte-cl-T, rte-gw-T, rte-sv-T``)."""
    match = re.search(r"namespaces ((?:rte-[a-z0-9]+-\w+(?:, )?)+)", out)
    assert match, "the demo names the namespaces it made"
    return set(match.group(1).split(", "))


@pytest.mark.unit
def test_created_parses_the_demo_line() -> None:
    line = "  ✔ namespaces rte-cl-1a2, rte-gw-1a2, rte-sv-1a2\n  · gateway WireGuard …"
    assert _created(line) == {"rte-cl-1a2", "rte-gw-1a2", "rte-sv-1a2"}


@pytest.mark.e2e
@pytest.mark.root
@pytest.mark.netns
@pytest.mark.timeout(240)
def test_demo_passes_and_cleans_up() -> None:
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
    made = _created(out)
    assert len(made) == 3
    tag = next(iter(made)).rsplit("-", 1)[1]
    ours = {ns for ns in _netns() if re.fullmatch(rf"rte-[a-z0-9]+-{re.escape(tag)}", ns)}
    assert ours == set(), f"the demo left its namespaces behind: {sorted(ours)}"
    assert not [ns for ns in made if (Path("/etc/netns") / ns).exists()]
