"""Errors of ``core.update`` (the tree is drawn in :mod:`core.update`).

Every error has a stable ``code``: ``update_fetch`` for :class:`UpdateFetchError`, the
helper's or the manifest check's ``update_*`` code for :class:`UpdateRejected`
(``update_signature``, ``update_stale``, ``update_rollback``, ``update_pinned``,
``update_size``, ``update_hash``, ...). Messages are for logs and diagnostics.
"""

from __future__ import annotations

__all__ = ["UpdateError", "UpdateFetchError", "UpdateRejected"]


class UpdateError(Exception):
    """Anything raised by ``core.update``; ``code`` is stable, ``message`` for logs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UpdateFetchError(UpdateError):
    """The manifest could not be fetched (network, HTTP status, oversized answer)."""

    def __init__(self, message: str) -> None:
        super().__init__("update_fetch", message)


class UpdateRejected(UpdateError):
    """The manifest (here or in the helper) or the install was refused."""
