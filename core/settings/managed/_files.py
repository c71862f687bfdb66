"""Reading small managed files safely (shared by the Linux and macOS readers)."""

from __future__ import annotations

import os
import stat
from collections.abc import Hashable
from pathlib import Path

from core.settings.managed._trust import check_file_stat, trusted_owners

MAX_FILE_BYTES = 1 << 20  # managed files are tiny; refuse anything absurd


def read_managed_file(
    path: Path, owners: frozenset[int] | None = None
) -> tuple[bytes | None, str | None]:
    """Return ``(data, None)``, ``(None, problem)``, or ``(None, None)`` if absent.

    The file is opened first and its identity checked on the open descriptor (no window
    between the check and the read): it must be a regular file owned by one of
    ``owners`` (default :func:`~core.settings.managed._trust.trusted_owners`) and
    writable by neither group nor others — anyone else could have changed it, so it
    cannot speak for the organization. A refused file is never read, not even in part.
    """
    owners = trusted_owners() if owners is None else owners
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: a FIFO planted here must not hang us
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{path}: cannot read: {exc.strerror or exc}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, f"{path}: not a regular file — rejected"
        problem = check_file_stat(path, st, owners)
        if problem is not None:
            return None, problem
        if st.st_size > MAX_FILE_BYTES:
            return None, f"{path}: larger than {MAX_FILE_BYTES} bytes — rejected"
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        return None, f"{path}: cannot read: {exc.strerror or exc}"
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        return None, f"{path}: larger than {MAX_FILE_BYTES} bytes — rejected"
    return b"".join(chunks), None


def stat_token(paths: list[Path]) -> Hashable:
    """Identity of the files' current versions for change detection.

    Owner and mode are part of it, so a ``chmod``/``chown`` that makes a file acceptable
    (or not) is noticed like an edit.
    """
    out: list[tuple[str, int, int, int, int, int]] = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_uid, st.st_mode))
    return tuple(out)
