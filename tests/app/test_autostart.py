"""Start at login: XDG autostart file, Windows Run key (fake store), macOS LaunchAgent."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest

from app.autostart import (
    LaunchAgentAutostart,
    WindowsAutostart,
    XdgAutostart,
    for_platform,
)

pytestmark = pytest.mark.unit

CMD = ["/opt/Rustronaut/rustronaut-tray", "--autostart"]


def test_xdg_autostart_writes_a_valid_entry_and_removes_it(tmp_path: Path) -> None:
    a = XdgAutostart(tmp_path, CMD)
    assert not a.enabled()
    a.set_enabled(True)
    a.set_enabled(True)  # idempotent
    path = tmp_path / "autostart" / "com.rustronaut.Client.desktop"
    lines = path.read_text().splitlines()
    assert lines[0] == "[Desktop Entry]"
    assert "Exec=/opt/Rustronaut/rustronaut-tray --autostart" in lines
    assert "Type=Application" in lines
    assert "Icon=com.rustronaut.Client" in lines
    assert a.enabled()
    a.set_enabled(False)
    a.set_enabled(False)
    assert not path.exists()
    assert not a.enabled()


def test_xdg_entry_hidden_by_the_user_counts_as_off(tmp_path: Path) -> None:
    a = XdgAutostart(tmp_path, CMD)
    a.set_enabled(True)
    a.path.write_text(a.path.read_text() + "Hidden=true\n")
    assert not a.enabled()


def test_xdg_exec_quotes_paths_with_spaces(tmp_path: Path) -> None:
    a = XdgAutostart(tmp_path, ["/opt/My Apps/rustronaut-tray"])
    a.set_enabled(True)
    assert "Exec='/opt/My Apps/rustronaut-tray'" in a.path.read_text().splitlines()


class FakeRunKey:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


def test_windows_run_key_value() -> None:
    key = FakeRunKey()
    a = WindowsAutostart(key, [r"C:\Program Files\Rustronaut\rustronaut-tray.exe", "--autostart"])
    a.set_enabled(True)
    assert key.values == {
        "Rustronaut": r'"C:\Program Files\Rustronaut\rustronaut-tray.exe" --autostart'
    }
    assert a.enabled()
    a.set_enabled(False)
    a.set_enabled(False)
    assert key.values == {}
    assert not a.enabled()


def test_launch_agent_plist(tmp_path: Path) -> None:
    a = LaunchAgentAutostart(tmp_path / "LaunchAgents", CMD)
    a.set_enabled(True)
    data = plistlib.loads((tmp_path / "LaunchAgents" / "com.rustronaut.Client.plist").read_bytes())
    assert data["Label"] == "com.rustronaut.Client"
    assert data["ProgramArguments"] == CMD
    assert data["RunAtLoad"] is True
    assert a.enabled()
    a.set_enabled(False)
    assert not a.enabled()
    a.path.write_bytes(b"not a plist")
    assert not a.enabled()


def test_for_platform_picks_by_os(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    linux = for_platform("linux")
    assert isinstance(linux, XdgAutostart)
    assert linux.path.parent == tmp_path / "autostart"
    assert isinstance(for_platform("darwin"), LaunchAgentAutostart)
    assert isinstance(for_platform("win32"), WindowsAutostart)


def test_default_command_prefers_frozen_then_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    import sys

    from app.autostart import default_command

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert default_command() == [sys.executable, "-m", "app.main", "--autostart"]
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    assert default_command() == ["/usr/bin/rustronaut-tray", "--autostart"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert default_command() == [sys.executable, "--autostart"]
