"""Reading small managed files safely (shared by the Linux and macOS readers)."""

from __future__ import annotations

import os
import stat
from collections.abc import Hashable
from pathlib import Path

MAX_FILE_BYTES = 1 << 20  # managed files are tiny; refuse anything absurd


def read_managed_file(path: Path) -> tuple[bytes | None, str | None]:
    """Return ``(data, None)``, ``(None, problem)``, or ``(None, None)`` if absent.

    A file writable by everyone is refused: anyone could have changed it, so it cannot
    speak for the organization.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{path}: cannot read: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return None, f"{path}: not a regular file — ignored"
    if os.name == "posix" and st.st_mode & stat.S_IWOTH:
        return None, f"{path}: writable by everyone — ignored (chmod o-w)"
    if st.st_size > MAX_FILE_BYTES:
        return None, f"{path}: larger than {MAX_FILE_BYTES} bytes — ignored"
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return None, f"{path}: cannot read: {exc.strerror or exc}"
    if len(data) > MAX_FILE_BYTES:
        return None, f"{path}: larger than {MAX_FILE_BYTES} bytes — ignored"
    return data, None


def stat_token(paths: list[Path]) -> Hashable:
    """Identity of the files' current versions (inode, size, mtime) for change detection."""
    out: list[tuple[str, int, int, int]] = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(path), st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)
