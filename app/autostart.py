"""Start at login, per desktop convention: XDG autostart, Windows Run key, macOS LaunchAgent.

One small interface, ``Autostart`` (``enabled()``, ``set_enabled(bool)``, both idempotent),
one class per platform, chosen by ``for_platform()``. The side effects go through
injected writers so each is tested on any OS: the XDG and LaunchAgent variants write a
file under a given directory; the Windows variant talks to an injected ``RunKey`` (the
real one wraps ``winreg``). Errors: ``OSError`` from the writer, unchanged. Any thread.
"""

from __future__ import annotations

import plistlib
import shlex
import shutil
import sys
from pathlib import Path
from typing import Protocol

from core.i18n import QT_TRANSLATE_NOOP, installed_language, translate

__all__ = [
    "APP_ID",
    "Autostart",
    "LaunchAgentAutostart",
    "RunKey",
    "WindowsAutostart",
    "XdgAutostart",
    "for_platform",
]

APP_ID = "com.rustronaut.Client"


class Autostart(Protocol):
    """Whether the tray starts when the user logs in."""

    def enabled(self) -> bool:
        """True if start at login is on."""
        ...

    def set_enabled(self, enabled: bool) -> None:
        """Turn it on or off. Idempotent; raises ``OSError`` if the system refuses."""
        ...


def default_command() -> list[str]:
    """The argv that starts the tray at login.

    A frozen build (PyInstaller) is its own launcher; otherwise the installed
    ``rustronaut-tray`` script if on PATH; else this interpreter with ``-m app.main``.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, "--autostart"]
    launcher = shutil.which("rustronaut-tray")
    if launcher:
        return [launcher, "--autostart"]
    return [sys.executable, "-m", "app.main", "--autostart"]


class XdgAutostart:
    """``$XDG_CONFIG_HOME/autostart/com.rustronaut.Client.desktop`` (freedesktop spec)."""

    def __init__(self, config_home: Path, command: list[str] | None = None) -> None:
        self.path = config_home / "autostart" / f"{APP_ID}.desktop"
        self._command = command or default_command()

    def enabled(self) -> bool:
        """True if our entry exists and is not hidden."""
        if not self.path.is_file():
            return False
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return "Hidden=true" not in lines and "X-GNOME-Autostart-enabled=false" not in lines

    def set_enabled(self, enabled: bool) -> None:
        """Write or remove the entry (atomic write)."""
        if not enabled:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = (
            "[Desktop Entry]\n"
            "Type=Application\n"
            "Name=Rustronaut\n"
            f"Comment={_COMMENT}\n"
            f"{_localized_comment()}"
            f"Exec={shlex.join(self._command)}\n"
            "Icon=com.rustronaut.Client\n"
            "Terminal=false\n"
            "X-GNOME-Autostart-enabled=true\n"
            "X-GNOME-Autostart-Delay=2\n"
        )
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(self.path)


#: The entry's comment (desktops show it in their list of programs started at login).
_COMMENT = QT_TRANSLATE_NOOP("app.autostart", "Zero-trust access to your work resources")


def _localized_comment() -> str:
    """A ``Comment[<lang>]=`` line in the installed language ("" in English or when
    untranslated): the desktop picks the one of the employee's locale."""
    lang = installed_language()
    words = " ".join(translate("app.autostart", _COMMENT).split())  # one line, always
    return f"Comment[{lang}]={words}\n" if lang != "en" and words != _COMMENT else ""


class RunKey(Protocol):
    """The value store under ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``."""

    def get(self, name: str) -> str | None:
        """The value, or None."""
        ...

    def set(self, name: str, value: str) -> None:
        """Create or replace the value."""
        ...

    def delete(self, name: str) -> None:
        """Remove the value; no error if absent."""
        ...


class WinRegRunKey:  # pragma: no cover - Windows only
    """``RunKey`` over ``winreg`` (HKCU, the current user only)."""

    _PATH = r"Software\Microsoft\Windows\CurrentVersion\Run"

    def get(self, name: str) -> str | None:
        """See ``RunKey.get``."""
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, self._PATH) as key:  # type: ignore[attr-defined]
                value, _ = winreg.QueryValueEx(key, name)  # type: ignore[attr-defined]
                return str(value)
        except FileNotFoundError:
            return None

    def set(self, name: str, value: str) -> None:
        """See ``RunKey.set``."""
        import winreg

        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, self._PATH) as key:  # type: ignore[attr-defined]
            winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)  # type: ignore[attr-defined]

    def delete(self, name: str) -> None:
        """See ``RunKey.delete``."""
        import winreg

        try:
            with winreg.OpenKey(  # type: ignore[attr-defined]
                winreg.HKEY_CURRENT_USER,  # type: ignore[attr-defined]
                self._PATH,
                0,
                winreg.KEY_SET_VALUE,  # type: ignore[attr-defined]
            ) as key:
                winreg.DeleteValue(key, name)  # type: ignore[attr-defined]
        except FileNotFoundError:
            pass


def _windows_quote(argv: list[str]) -> str:
    import subprocess

    return subprocess.list2cmdline(argv)


class WindowsAutostart:
    """A value named ``Rustronaut`` in the current user's Run key."""

    NAME = "Rustronaut"

    def __init__(self, run_key: RunKey, command: list[str] | None = None) -> None:
        self._key = run_key
        self._command = command or default_command()

    def enabled(self) -> bool:
        """True if the value exists."""
        return self._key.get(self.NAME) is not None

    def set_enabled(self, enabled: bool) -> None:
        """Set or delete the value."""
        if enabled:
            self._key.set(self.NAME, _windows_quote(self._command))
        else:
            self._key.delete(self.NAME)


class LaunchAgentAutostart:
    """``~/Library/LaunchAgents/com.rustronaut.Client.plist`` with ``RunAtLoad``."""

    def __init__(self, agents_dir: Path, command: list[str] | None = None) -> None:
        self.path = agents_dir / f"{APP_ID}.plist"
        self._command = command or default_command()

    def enabled(self) -> bool:
        """True if the agent plist exists and says RunAtLoad."""
        try:
            data = plistlib.loads(self.path.read_bytes())
        except (FileNotFoundError, plistlib.InvalidFileException):
            return False
        return bool(data.get("RunAtLoad"))

    def set_enabled(self, enabled: bool) -> None:
        """Write or remove the plist (launchd picks it up at next login)."""
        if not enabled:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "Label": APP_ID,
            "ProgramArguments": list(self._command),
            "RunAtLoad": True,
            "ProcessType": "Interactive",
            "LimitLoadToSessionType": "Aqua",
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(plistlib.dumps(data))
        tmp.replace(self.path)


def for_platform(platform: str | None = None) -> Autostart:
    """The ``Autostart`` for ``platform`` (default: this one)."""
    platform = platform or sys.platform
    if platform.startswith("win"):
        return WindowsAutostart(WinRegRunKey())
    if platform == "darwin":
        return LaunchAgentAutostart(Path.home() / "Library" / "LaunchAgents")
    import os

    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return XdgAutostart(Path(config))
