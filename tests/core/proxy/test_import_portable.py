"""The proxy package imports where POSIX-only modules are missing (Windows).

A module-level ``import fcntl`` or ``socket.MSG_DONTWAIT`` once made ``core.proxy``
unimportable on Windows, so the agent could not start there. This runs a fresh
interpreter with those names taken away, as on Windows, and imports every module of
the package.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]

_SCRIPT = """
import importlib, pkgutil, socket, sys
for name in ("fcntl", "termios", "pwd", "grp", "resource"):
    sys.modules[name] = None  # 'import fcntl' now raises ImportError, as on Windows
for attr in ("MSG_DONTWAIT", "SO_PEERCRED", "SO_MARK", "IP_TRANSPARENT"):
    if hasattr(socket, attr):
        delattr(socket, attr)
import core.proxy
failed = []
for info in pkgutil.walk_packages(core.proxy.__path__, "core.proxy."):
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed) or "OK")
"""


def test_core_proxy_imports_without_posix_only_modules() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "OK", proc.stdout
