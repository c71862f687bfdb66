"""The posture exception tree (drawn in ``core.posture``'s docstring)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.errors import UserFacingError
from core.i18n import QT_TRANSLATE_NOOP

__all__ = [
    "CommandError",
    "ParseError",
    "PostureConfigError",
    "PostureError",
    "ToolFailedError",
    "ToolMissingError",
    "ToolTimeoutError",
]


class PostureError(UserFacingError, ValueError):
    """Base of every posture error."""

    title = QT_TRANSLATE_NOOP("core.posture.errors", "This device's security checks could not run")


class CommandError(PostureError):
    """An OS tool gave no usable answer. Carries the argv (never secrets: argv is ours)."""

    def __init__(self, argv: Sequence[str], message: str) -> None:
        self.argv = tuple(argv)
        self.tool = argv[0].rsplit("/", 1)[-1].rsplit("\\", 1)[-1] if argv else "?"
        super().__init__(message)


class ToolMissingError(CommandError):
    """The tool is not installed; the fact's reason reads "<tool>: not installed"."""

    next_step = QT_TRANSLATE_NOOP(
        "core.posture.errors", "Ask IT which system tool the security checks need on this device."
    )

    def __init__(self, argv: Sequence[str]) -> None:
        super().__init__(argv, "not installed")


class ToolTimeoutError(CommandError):
    """The tool ran longer than its timeout and was killed."""

    def __init__(self, argv: Sequence[str], timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(argv, f"timed out after {timeout_s:g}s")


_TELLING = re.compile(r"error|denied|fehler|erreur|not permitted|permission", re.IGNORECASE)


def _telling_line(text: str) -> str:
    """The line of a tool's complaint that says what is wrong (else its first line)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines:
        if _TELLING.search(line):
            return line
    return lines[0] if lines else ""


class ToolFailedError(CommandError):
    """The tool exited non-zero; ``returncode`` and a short ``stderr`` are kept."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str, hint: str = "") -> None:
        self.returncode = returncode
        self.stderr = stderr.strip()[:2000]
        detail = (hint or _telling_line(self.stderr))[:200]
        super().__init__(argv, f"exited {returncode}" + (f": {detail}" if detail else ""))


class ParseError(PostureError):
    """The output is not in a format the parser knows (so the fact stays unknown)."""


class PostureConfigError(PostureError):
    """IT's posture configuration (process/file checks, intervals) is invalid."""

    title = QT_TRANSLATE_NOOP("core.posture.errors", "The security check settings are not valid")
    next_step = QT_TRANSLATE_NOOP(
        "core.posture.errors", "Contact IT: the organization's posture configuration needs fixing."
    )
    code = "setting_invalid"
