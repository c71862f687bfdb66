"""Project-wide test configuration.

- Qt runs offscreen unless a test asks for a real display; text is English
  (``RUSTRONAUT_LANG=en``) unless a test installs another language.
- Async tests marked ``ui`` run on a qasync loop, so Qt timers and signals work inside
  them; the others run on a plain asyncio loop.
- Markers ``root``, ``netns`` and ``display`` skip with a stated reason where the machine
  cannot run them; under ``CI=true`` such a skip is turned into a failure instead, so CI
  never passes by silently not running them.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# English unless a test asks for another language (a German developer's locale must not
# change what the tests read); subprocesses inherit it.
os.environ["RUSTRONAUT_LANG"] = "en"

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _netns_ok() -> tuple[bool, str]:
    if not _is_root():
        return False, "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return False, "needs iproute2 ('ip')"
    name = f"rtprobe{os.getpid()}"
    add = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if add.returncode != 0:
        return False, f"'ip netns add' failed: {add.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return True, ""


_NETNS: tuple[bool, str] | None = None


def _requirement(item: pytest.Item) -> str | None:
    """Why this item cannot run here, or None."""
    global _NETNS
    if item.get_closest_marker("root") and not _is_root():
        return "needs root"
    if item.get_closest_marker("netns"):
        if _NETNS is None:
            _NETNS = _netns_ok()
        if not _NETNS[0]:
            return _NETNS[1]
    if item.get_closest_marker("display") and not (
        os.environ.get("DISPLAY") or shutil.which("Xvfb")
    ):
        return "needs an X display or Xvfb"
    return None


# Test modules that import POSIX-only modules at the top (accounts, rlimits, peer
# credentials) or the second-account helpers cannot even be collected on Windows; the
# Windows CI job skips them there instead of failing collection.
_POSIX_ONLY = re.compile(
    r"^(?:import (?:pwd|grp|resource|fcntl|termios)\b"
    r"|from (?:pwd|grp|resource|fcntl|termios) import"
    r"|from tests\.wg_backends(?:\.accounts import| import accounts))",
    re.MULTILINE,
)


def posix_only(path: Path) -> bool:
    """True if the test module at ``path`` imports something only POSIX has."""
    try:
        return bool(_POSIX_ONLY.search(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if sys.platform == "win32" and collection_path.suffix == ".py":
        return True if posix_only(collection_path) else None
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = _requirement(item)
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI must run this test but the machine cannot: {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> object:
    """UI tests run on a qasync loop so Qt timers and signals fire (see MACHINE-NOTES);
    every other async test gets a plain asyncio loop, free of Qt's event processing."""
    if item.get_closest_marker("ui") is None:
        return {"asyncio": asyncio.new_event_loop}
    import qasync
    from PySide6.QtWidgets import QApplication

    class TestLoop(qasync.QEventLoop):  # type: ignore[misc]
        def close(self) -> None:
            # qasync never kills the Qt timer of a cancelled call_later handle; once the
            # loop's timer object is freed such a timer fires into freed memory and the
            # process segfaults (found with gdb). Kill them while the loop is alive.
            timer = getattr(self, "_timer", None)
            callbacks = getattr(timer, "_SimpleTimer__callbacks", None)
            if timer is not None and isinstance(callbacks, dict):
                for timer_id, handle in list(callbacks.items()):
                    if handle.cancelled():
                        timer.killTimer(timer_id)
                        del callbacks[timer_id]
            super().close()

    def factory() -> object:
        app = QApplication.instance() or QApplication([])
        return TestLoop(app)

    return {"qasync": factory}


@pytest.fixture
def tmp_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the client's config, data, cache and log dirs at a temporary tree."""
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
