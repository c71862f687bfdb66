"""Fixtures for posture tests: a scripted command runner, captured outputs, a netns."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.posture.collector import CollectContext, PostureConfig
from core.posture.errors import ToolMissingError, ToolTimeoutError
from core.posture.runner import CommandResult

DATA = Path(__file__).resolve().parents[2] / "data" / "posture"


def _data(rel: str) -> str:
    return (DATA / rel).read_bytes().decode("utf-8")


@pytest.fixture
def data() -> Callable[[str], str]:
    """Reads a committed captured output (UTF-8, line endings kept) by relative path."""
    return _data


@dataclass
class Script:
    """The scripted answer for one argv."""

    stdout: str = ""
    returncode: int = 0
    stderr: str = ""
    hang: bool = False


@dataclass
class ScriptedRunner:
    """Answers exact argv from a table; anything else is "not installed".

    So a collector that builds a different command line than the test expects ends up
    with an unknown fact, and the test fails on the value.
    """

    table: dict[tuple[str, ...], Script] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def add(self, argv: Sequence[str], stdout: str = "", rc: int = 0, stderr: str = "") -> None:
        self.table[tuple(argv)] = Script(stdout, rc, stderr)

    def hang(self, argv: Sequence[str]) -> None:
        self.table[tuple(argv)] = Script(hang=True)

    async def run(self, argv: Sequence[str], *, timeout_s: float) -> CommandResult:
        argv = tuple(argv)
        self.calls.append(argv)
        script = self.table.get(argv)
        if script is None:
            raise ToolMissingError(argv)
        if script.hang:
            try:
                await asyncio.wait_for(asyncio.Event().wait(), timeout_s)
            except TimeoutError:
                raise ToolTimeoutError(argv, timeout_s) from None
        return CommandResult(argv, script.returncode, script.stdout, script.stderr)


@pytest.fixture
def runner() -> ScriptedRunner:
    return ScriptedRunner()


@pytest.fixture
def ctx(runner: ScriptedRunner) -> CollectContext:
    return CollectContext(runner=runner, config=PostureConfig(), timeout_s=0.5, clock=lambda: 1.0)


def _sh(*argv: str, stdin: str | None = None) -> str:
    out = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True)
    return out.stdout


@pytest.fixture
def sh() -> Callable[..., str]:
    """Runs a command (check=True) and returns its stdout; ``stdin=`` feeds input."""
    return _sh


def _remove_stale_namespaces() -> None:
    """Delete ``rtp<pid>x…`` namespaces left by a test process that died (e.g. killed).

    Only ours (the name carries the creating pid) and only when that process is gone
    and nothing runs inside.
    """
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    for line in listing.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(r"rtp(\d+)x[0-9a-f]{4}", name)
        if m is None or Path(f"/proc/{m.group(1)}").exists():
            continue
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        if not pids.stdout.strip():
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh network namespace (prefix ``rtp``), deleted afterwards."""
    _remove_stale_namespaces()
    name = f"rtp{os.getpid()}x{os.urandom(2).hex()}"
    _sh("ip", "netns", "add", name)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
