"""Isolation for settings tests: private config dirs and an empty managed directory.

Every test here runs with the XDG dirs and ``RUSTRONAUT_MANAGED_DIR`` pointing into its
own temporary tree, so nothing reads the machine's real ``/etc/rustronaut`` (another
test may install a package that creates it) or the user's real settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    managed = tmp_path / "etc-rustronaut"
    managed.mkdir()
    monkeypatch.setenv("RUSTRONAUT_MANAGED_DIR", str(managed))
    return tmp_path


@pytest.fixture
def managed_dir(isolated: Path) -> Path:
    return isolated / "etc-rustronaut"


@pytest.fixture
def user_file(isolated: Path) -> Path:
    return isolated / "xdg_config_home" / "rustronaut" / "settings.json"


@pytest.fixture
def write_json() -> Callable[[Path, object], Path]:
    def write(path: Path, doc: object) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    return write
