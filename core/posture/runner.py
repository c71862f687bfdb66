"""The command-runner seam: every OS tool is run through a ``CommandRunner``.

Argv is data (no shell). ``SubprocessRunner`` runs the real tool with a per-call timeout
(killing it on expiry) and may put a ``prefix`` in front of every argv — tests use
``("ip", "netns", "exec", "rtp…")`` to run a collector's command inside a network
namespace they made — and extra ``env`` variables. Tests for other OSes inject a runner
that answers from committed captured outputs and asserts the exact argv.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from core.posture.errors import ToolMissingError, ToolTimeoutError

__all__ = ["CommandResult", "CommandRunner", "SubprocessRunner", "default_encoding"]

_MAX_OUTPUT = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished tool produced (decoded text; undecodable bytes replaced)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str = ""

    @property
    def ok(self) -> bool:
        """True when the tool exited 0."""
        return self.returncode == 0


class CommandRunner(Protocol):
    """Runs one OS tool. Implementations must be safe to call concurrently on one loop."""

    async def run(self, argv: Sequence[str], *, timeout_s: float) -> CommandResult:
        """Run ``argv`` and return its result whatever the exit code.

        Raises ``ToolMissingError`` when ``argv[0]`` is not installed and
        ``ToolTimeoutError`` when it does not finish within ``timeout_s``.
        """
        ...


def default_encoding() -> str:
    """The encoding console tools write in: the OEM code page on Windows, else UTF-8."""
    return "oem" if sys.platform == "win32" else "utf-8"


class SubprocessRunner:
    """Runs tools as child processes (no shell) on the running asyncio loop.

    ``prefix`` is prepended to every argv (e.g. ``ip netns exec NAME``); ``env`` adds
    variables to the inherited environment. On Linux and macOS tools run with
    ``LC_ALL=C`` so their messages are the English the parsers know (``ufw`` and
    ``mokutil`` are translated); Windows tools keep the user's language, which their
    parsers handle. A tool that times out is killed and reaped.
    Output beyond 4 MiB per stream is cut. Call from the loop's thread.

    ``threaded`` runs each tool with ``subprocess.run`` in a worker thread instead of
    asyncio's subprocess support, for event loops without it (qasync on Windows); the
    default is threaded on Windows only. There, tools start with ``CREATE_NO_WINDOW`` so
    no console window flashes over the user's desktop every few seconds.
    """

    def __init__(
        self,
        *,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        encoding: str | None = None,
        threaded: bool | None = None,
    ) -> None:
        self._threaded = sys.platform == "win32" if threaded is None else threaded
        self._flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        self._prefix = tuple(prefix)
        base = dict(os.environ)
        if sys.platform != "win32":
            base.update({"LC_ALL": "C", "LANGUAGE": ""})
        self._env = {**base, **(env or {})}
        self._encoding = encoding or default_encoding()

    async def run(self, argv: Sequence[str], *, timeout_s: float) -> CommandResult:
        """See ``CommandRunner.run``."""
        argv = tuple(argv)
        if not argv:
            raise ValueError("empty argv")
        full = self._prefix + argv
        path = self._env.get("PATH")
        # Resolve before spawning so "not installed" is told apart from a failure; with a
        # prefix (ip netns exec …) the prefix's own tool must exist and argv[0] too.
        if shutil.which(full[0], path=path) is None or shutil.which(argv[0], path=path) is None:
            raise ToolMissingError(argv)
        if self._threaded:
            return await self._run_in_thread(argv, full, timeout_s)
        try:
            proc = await asyncio.create_subprocess_exec(
                *full,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
                creationflags=self._flags,
            )
        except FileNotFoundError as exc:
            raise ToolMissingError(argv) from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            # Reap it so no zombie and no open pipes remain.
            with contextlib.suppress(Exception):
                await proc.communicate()
            raise ToolTimeoutError(argv, timeout_s) from None
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
            raise
        rc = proc.returncode if proc.returncode is not None else -1
        return self._result(argv, rc, out, err)

    def _result(self, argv: tuple[str, ...], rc: int, out: bytes, err: bytes) -> CommandResult:
        return CommandResult(
            argv=argv,
            returncode=rc,
            stdout=out[:_MAX_OUTPUT].decode(self._encoding, errors="replace"),
            stderr=err[:_MAX_OUTPUT].decode(self._encoding, errors="replace"),
        )

    async def _run_in_thread(
        self, argv: tuple[str, ...], full: tuple[str, ...], timeout_s: float
    ) -> CommandResult:
        # subprocess.run kills the child itself on timeout; a cancelled caller leaves the
        # thread to finish within that same bound.
        def work() -> subprocess.CompletedProcess[bytes] | None:
            try:
                return subprocess.run(
                    full,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    env=self._env,
                    timeout=timeout_s,
                    check=False,
                    creationflags=self._flags,
                )
            except subprocess.TimeoutExpired:
                return None

        try:
            done = await asyncio.to_thread(work)
        except FileNotFoundError as exc:
            raise ToolMissingError(argv) from exc
        if done is None:
            raise ToolTimeoutError(argv, timeout_s)
        return self._result(argv, done.returncode, done.stdout, done.stderr)
