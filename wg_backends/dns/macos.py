"""macOS: one ``/etc/resolver/<suffix>`` file per suffix (the system resolver's
per-domain configuration, see ``man 5 resolver``).

Each file starts with :data:`MARKER` and the tunnel's interface name, so that our files
are told apart from anyone else's: a file of that name that is not ours (another VPN, IT's
own) is never overwritten or removed — the suffix is reported as skipped instead. Files
are written 0644 (every process reads them), atomically, never through a symlink.
Removing the tunnel's files needs only the interface name (:func:`remove_resolver_files`
scans the directory for our marker), so a crash leaves nothing that cannot be cleaned.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

__all__ = [
    "MARKER",
    "RESOLVER_DIR",
    "owner_of",
    "remove_resolver_files",
    "resolver_text",
    "write_resolver_files",
]

RESOLVER_DIR = Path("/etc/resolver")
MARKER = "# rustronaut split DNS, interface "
_MAX_READ = 4096


def resolver_text(interface: str, servers: tuple[str, ...]) -> str:
    """The content of one resolver file (values already validated)."""
    lines = [f"{MARKER}{interface}", "# written by the Rustronaut helper; removed on disconnect"]
    lines += [f"nameserver {s}" for s in servers]
    return "\n".join(lines) + "\n"


def owner_of(path: Path) -> str | None:
    """The interface named by our marker in ``path``; ``None`` if it is not ours.

    A symlink, a non-regular file or an unreadable one is never ours. Never raises.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = os.read(fd, _MAX_READ).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    finally:
        os.close(fd)
    if not head or not head[0].startswith(MARKER):
        return None
    return head[0][len(MARKER) :].strip() or None


def write_resolver_files(
    interface: str,
    servers: tuple[str, ...],
    suffixes: tuple[str, ...],
    directory: Path = RESOLVER_DIR,
) -> tuple[list[str], list[str]]:
    """Write a file per suffix; returns (written, skipped) suffix lists.

    A suffix whose file exists and is not this interface's (per :func:`owner_of`) is
    skipped. Raises ``OSError`` if the directory cannot be made or a write fails; the
    files already written by this call are then removed.
    """
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    written: list[str] = []
    skipped: list[str] = []
    text = resolver_text(interface, servers).encode("ascii")
    try:
        for suffix in suffixes:
            path = directory / suffix
            if os.path.lexists(path) and owner_of(path) != interface:
                skipped.append(suffix)
                continue
            tmp = directory / f".{suffix}.rustronaut.{os.getpid()}.tmp"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(tmp, flags, 0o644)
            try:
                os.write(fd, text)
                os.fchmod(fd, 0o644)  # whatever the umask: every resolver must read it
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            written.append(suffix)
    except OSError:
        for suffix in written:
            with contextlib.suppress(OSError):
                (directory / suffix).unlink()
        raise
    return written, skipped


def remove_resolver_files(
    interface: str, suffixes: tuple[str, ...] | None = None, directory: Path = RESOLVER_DIR
) -> list[str]:
    """Remove this interface's resolver files; returns the suffixes removed.

    ``suffixes`` limits it to those names (from a record); ``None`` scans the directory.
    Only files carrying our marker for ``interface`` are touched. Never raises.
    """
    removed: list[str] = []
    if suffixes is None:
        try:
            names = sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
        except OSError:
            return removed
    else:
        names = list(suffixes)
    for name in names:
        if not name or "/" in name or name.startswith("."):
            continue  # never a path outside the directory, whatever a record says
        path = directory / name
        if owner_of(path) == interface:
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(name)
    return removed
