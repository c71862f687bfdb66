"""The highest update manifest version this client has seen (``update-floor.json``).

A manifest older than the floor is refused as a rollback before the helper is asked.
The file is the employee's own (0600 in the data dir), so it is an early refusal only:
the floor that counts is the helper's, in its root-only state directory
(:class:`wg_backends.helper.updates.UpdateFloor`), which no user can lower. Only ever
raised; an unreadable file refuses every update rather than being replaced.
Not thread-safe: one caller (the updater's task).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Final

from core.update.errors import UpdateRejected
from wg_backends.signed.update_manifest import parse_version

__all__ = ["FLOOR_FILE_NAME", "SeenFloor"]

FLOOR_FILE_NAME: Final = "update-floor.json"


class SeenFloor:
    """The floor kept at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> str | None:
        """The floor (None: nothing seen yet). Raises :class:`UpdateRejected`."""
        try:
            data = self.path.read_bytes()[:4096]
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UpdateRejected("update_rollback", f"update floor unreadable: {exc}") from None
        try:
            version = json.loads(data)["version"]
            parse_version(version)
        except (ValueError, KeyError, TypeError):
            raise UpdateRejected(
                "update_rollback", f"update floor {self.path} is unreadable; not replaced"
            ) from None
        return str(version)

    def advance(self, version: str) -> None:
        """Raise the floor to ``version`` (no-op when not higher). Atomic, 0600. Raises
        :class:`UpdateRejected`."""
        current = self.read()
        if current is not None and parse_version(version) <= parse_version(current):
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".update-floor-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w") as fh:
                    json.dump({"version": version}, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise UpdateRejected("update_rollback", f"update floor not written: {exc}") from None
