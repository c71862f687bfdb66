"""Platform directories follow the XDG variables (how tests redirect them)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from core import paths

pytestmark = pytest.mark.unit


def test_dirs_follow_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var))
    assert paths.config_dir() == tmp_path / "XDG_CONFIG_HOME" / "rustronaut"
    assert paths.data_dir() == tmp_path / "XDG_DATA_HOME" / "rustronaut"
    assert paths.cache_dir() == tmp_path / "XDG_CACHE_HOME" / "rustronaut"
    assert paths.log_dir() == tmp_path / "XDG_STATE_HOME" / "rustronaut" / "log"
    assert (
        paths.user_settings_file() == tmp_path / "XDG_CONFIG_HOME" / "rustronaut" / "settings.json"
    )
    assert paths.system_log_dir() == Path("/var/log/rustronaut")
    assert not (tmp_path / "XDG_CONFIG_HOME").exists()  # computing a path creates nothing


def test_ensure_private_dir(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    assert paths.ensure_private_dir(target) == target
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    target.chmod(0o755)
    paths.ensure_private_dir(target)  # idempotent, and tightens an existing directory
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
