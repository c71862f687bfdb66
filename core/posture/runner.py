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
    """

    def __init__(
        self,
        *,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        encoding: str | None = None,
    ) -> None:
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
        try:
            proc = await asyncio.create_subprocess_exec(
                *full,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
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
        return CommandResult(
            argv=argv,
            returncode=proc.returncode if proc.returncode is not None else -1,
            stdout=out[:_MAX_OUTPUT].decode(self._encoding, errors="replace"),
            stderr=err[:_MAX_OUTPUT].decode(self._encoding, errors="replace"),
        )
