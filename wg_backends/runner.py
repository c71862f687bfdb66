"""The injected command runner: every OS tool is called through it, argv as data.

Backends never call ``subprocess`` themselves; they get a :class:`CommandRunner` so tests
can compare the exact command lines with a transcript and feed back real captured outputs.
The default :class:`SubprocessRunner` runs without a shell, with a timeout and a small,
fixed environment, and maps failures to :class:`~wg_backends.errors.CommandError`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from wg_backends.errors import CommandError

__all__ = ["CommandResult", "CommandRunner", "SubprocessRunner"]

# A fixed PATH: the helper runs as root and must not pick tools from a caller's PATH.
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished command produced."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    """Runs one command. ``check=True`` raises :class:`CommandError` on a non-zero exit."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> CommandResult: ...


class SubprocessRunner:
    """Runs commands with ``subprocess.run`` (no shell). Blocking; call from a worker thread.

    ``env`` entries are added to a minimal environment (``PATH``=:data:`SAFE_PATH`,
    ``LC_ALL=C`` so outputs are parseable). A missing binary or a timeout raises
    :class:`CommandError` with exit code -1.
    """

    def __init__(self, path: str = SAFE_PATH) -> None:
        self._path = path

    def __call__(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        full_env = {"PATH": self._path, "LC_ALL": "C"}
        # The one inherited variable: the service unit may pick the userspace WireGuard.
        userspace = os.environ.get("WG_QUICK_USERSPACE_IMPLEMENTATION")
        if userspace:
            full_env["WG_QUICK_USERSPACE_IMPLEMENTATION"] = userspace
        full_env.update(env or {})
        try:
            proc = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                env=full_env,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            raise CommandError(argv, -1, f"not found: {exc.filename}") from None
        except subprocess.TimeoutExpired:
            raise CommandError(argv, -1, f"timed out after {timeout:g} s") from None
        result = CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise CommandError(argv, proc.returncode, proc.stderr)
        return result
