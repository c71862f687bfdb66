"""Who may speak for the organization: test builds, trusted owners and safe modes.

A managed file is the organization's word only if nobody but an administrator could
have written it: it must be owned by root (uid 0 — on macOS too, where ``admin`` is a
group ordinary employees are often in, so a group-writable file is refused there as
well) and writable by neither group nor others, and so must the directories holding it.

**Test builds.** ``RUSTRONAUT_MANAGED_DIR`` moves the Linux managed directory, and in a
test build files owned by the account running the tests count as administrator-owned
too. A test build is a source tree: the code is not frozen (a PyInstaller bundle, which
every installer ships, never is one) *and* the marker file ``.rustronaut-test-build``
sits at the root of the tree holding the ``core`` package, owned by the owner of that
package's directory. The marker is committed to the repository and never packaged (the
wheel and the bundle carry packages, not the repository's root). An environment variable
alone never makes a test build: whoever can create the marker beside the code can
already rewrite the code.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import sys
from pathlib import Path

__all__ = [
    "MARKER",
    "check_dir",
    "check_file_stat",
    "env_override",
    "is_test_build",
    "trusted_owners",
]

_log = logging.getLogger(__name__)

MARKER = ".rustronaut-test-build"
_PACKAGE_DIR = Path(os.path.abspath(__file__)).parents[2]  # …/core, as imported


def _marker_present(package_dir: Path) -> bool:
    try:
        marker = (package_dir.parent / MARKER).stat()
        package = package_dir.stat()
    except OSError:
        return False
    return stat.S_ISREG(marker.st_mode) and marker.st_uid == package.st_uid


@functools.cache
def is_test_build() -> bool:
    """True only when running from a source tree that carries the test-build marker.

    Cached: the answer cannot change while the process runs. Never true for a frozen
    (PyInstaller) build, whatever the environment says.
    """
    if getattr(sys, "frozen", False):
        return False
    return _marker_present(_PACKAGE_DIR)


def env_override(name: str) -> str | None:
    """The value of environment variable ``name`` if this is a test build, else ``None``.

    Outside a test build a set variable is ignored with a warning in the log (it is how
    a user would try to move the organization's settings out of the way).
    """
    value = os.environ.get(name)
    if not value:
        return None
    if is_test_build():
        return value
    _log.warning("%s is set but ignored: only test builds honour it", name)
    return None


def trusted_owners() -> frozenset[int]:
    """The uids whose files may speak for the organization: root, plus (test builds
    only) the account running the tests."""
    if is_test_build() and hasattr(os, "getuid"):
        return frozenset({0, os.getuid()})
    return frozenset({0})


def _owner_name(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def check_file_stat(path: Path, st: os.stat_result, owners: frozenset[int]) -> str | None:
    """Why ``st`` (of a managed file or directory at ``path``) cannot be trusted, or None.

    Only meaningful on POSIX systems (Windows reads the registry, whose policy key only
    administrators can write).
    """
    if os.name != "posix":
        return None
    if st.st_uid not in owners:
        return f"{path}: owned by {_owner_name(st.st_uid)}, not root — rejected (chown root)"
    if st.st_mode & stat.S_IWOTH:
        return f"{path}: writable by everyone — rejected (chmod go-w)"
    if st.st_mode & stat.S_IWGRP:
        return f"{path}: writable by its group — rejected (chmod go-w)"
    return None


def check_dir(path: Path, owners: frozenset[int]) -> str | None:
    """Why the directory ``path`` cannot hold managed files, or None (also when absent)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path}: not a directory — rejected"
    return check_file_stat(path, st, owners)
