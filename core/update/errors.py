"""Errors of ``core.update`` (the tree is drawn in :mod:`core.update`).

Every error is a :class:`core.errors.UserFacingError`: a stable ``code`` (one of
:data:`UPDATE_CODES`, registered in :data:`core.errors.CODES`), a ``title`` ("Update
refused: <why>") and a ``next_step`` in the installed language, chosen by the code
(:func:`core.update.words.code_words`), and the message as ``detail`` (one line, at
most :data:`MAX_DETAIL` characters: it may quote the update server or the helper).
``update_fetch`` is :class:`UpdateFetchError`; the helper's or the manifest check's
``update_*`` code is :class:`UpdateRejected` (``update_signature``, ``update_stale``,
``update_rollback``, ``update_pinned``, ``update_size``, ``update_hash``, ...). A code
that is not an update code (a helper answering something unexpected) becomes
``update_failed``, the original code kept at the start of the message.
``core.engine.errors.explain`` and the CLI's ``fail`` show them like any other error.
"""

from __future__ import annotations

from typing import Final

from core.errors import UserFacingError
from core.i18n import QT_TRANSLATE_NOOP
from core.text import safe_line
from core.update.words import UPDATE_CODES, code_words

__all__ = ["MAX_DETAIL", "UPDATE_CODES", "UpdateError", "UpdateFetchError", "UpdateRejected"]

MAX_DETAIL: Final = 300
"""Characters of the message shown as ``detail`` (the log keeps the whole message)."""


class UpdateError(UserFacingError):
    """Anything raised by ``core.update``; ``code`` is stable, ``message`` for logs,
    ``title`` and ``next_step`` the employee's words for the code."""

    title = QT_TRANSLATE_NOOP("core.update.errors", "The update was not installed")
    code = "update_failed"

    def __init__(self, code: str, message: str) -> None:
        if code not in UPDATE_CODES:
            code, message = "update_failed", f"{code}: {message}"
        super().__init__(message)
        self.code = code
        self.message = message
        self.title, self.next_step = code_words(code)

    @property
    def detail(self) -> str:
        """The message on one line (control characters escaped), shortened."""
        line = safe_line(self.message)
        return line if len(line) <= MAX_DETAIL else f"{line[: MAX_DETAIL - 1]}…"


class UpdateFetchError(UpdateError):
    """The manifest could not be fetched (network, HTTP status, oversized answer)."""

    code = "update_fetch"

    def __init__(self, message: str) -> None:
        super().__init__("update_fetch", message)


class UpdateRejected(UpdateError):
    """The manifest (here or in the helper) or the install was refused."""
