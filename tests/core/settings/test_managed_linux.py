"""Linux managed files: managed.json, then managed.d/*.json in name order."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from core import settings
from core.settings.managed import default_sources
from core.settings.managed.linux import DEFAULT_DIR, LinuxManagedSource

pytestmark = pytest.mark.unit

WriteJson = Callable[[Path, object], Path]


def test_env_overrides_the_directory(managed_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert LinuxManagedSource().directory == managed_dir
    monkeypatch.delenv("RUSTRONAUT_MANAGED_DIR")
    assert LinuxManagedSource().directory == DEFAULT_DIR == Path("/etc/rustronaut")
    assert [type(s).__name__ for s in default_sources()] == ["LinuxManagedSource"]


def test_dropins_override_in_sorted_order(managed_dir: Path, write_json: WriteJson) -> None:
    write_json(managed_dir / "managed.json", {"proxy_port": 9001, "log_level": "error"})
    write_json(managed_dir / "managed.d" / "20-b.json", {"proxy_port": 9020})
    write_json(managed_dir / "managed.d" / "10-a.json", {"proxy_port": 9010, "always_on": True})
    write_json(managed_dir / "managed.d" / "30-ignored.txt", {"proxy_port": 1})
    src = LinuxManagedSource()
    assert [p.name for p in src.files()] == ["managed.json", "10-a.json", "20-b.json"]
    s = settings.load()
    assert (s.proxy_port, s.origin("proxy_port")) == (
        9020,
        str(managed_dir / "managed.d/20-b.json"),
    )
    assert (s.always_on, s.source("always_on")) == (True, "managed")
    assert (s.log_level, s.origin("log_level")) == ("error", str(managed_dir / "managed.json"))
    assert s.problems == ()


def test_dropins_without_base_file(managed_dir: Path, write_json: WriteJson) -> None:
    write_json(managed_dir / "managed.d" / "only.json", {"support_url": "https://help.example.com"})
    assert settings.load().support_url == "https://help.example.com"


def test_fingerprint_follows_changes(managed_dir: Path, write_json: WriteJson) -> None:
    src = LinuxManagedSource()
    empty = src.fingerprint()
    path = write_json(managed_dir / "managed.json", {"proxy_port": 9001})
    first = src.fingerprint()
    assert first != empty
    tmp = managed_dir / "new.tmp"
    tmp.write_text('{"proxy_port": 9002}')
    os.replace(tmp, path)  # how configuration tools replace files: a new inode
    assert src.fingerprint() != first
    write_json(managed_dir / "managed.d" / "x.json", {})
    assert len(src.fingerprint()) == 4  # type: ignore[arg-type]  # 2 folders, 2 files


def test_missing_directory_is_simply_empty(tmp_path: Path) -> None:
    src = LinuxManagedSource(tmp_path / "absent")
    assert src.read() == []
    assert "absent/managed.json" in src.describe()
