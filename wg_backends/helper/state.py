"""The helper's crash-safe record of what it made, and its reading of managed settings.

The state file (``<state_dir>/state.json``, 0600 in a root-owned 0700 directory) lists
the interfaces the helper brought up and with which backend. It is written atomically
*before* a backend is asked to bring a tunnel up, so that after a crash or power loss the
next start can remove whatever a dead helper left behind. The helper reads ``always_on``
itself from the managed settings (``/etc/rustronaut/managed.json`` then
``managed.d/*.json`` in name order, later files win), because ``wg_backends`` must not
import ``core`` and must never take such a setting from an IPC caller.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from wg_backends.render import check_private_dir

__all__ = [
    "DEFAULT_MANAGED_DIR",
    "POLICY_KEY",
    "StateFile",
    "TunnelRecord",
    "read_always_on",
    "read_always_on_registry",
]

_log = logging.getLogger(__name__)
DEFAULT_MANAGED_DIR = Path("/etc/rustronaut")
# Windows: Group Policy / Intune write managed settings here (installers/mdm/windows/*.admx).
POLICY_KEY = r"SOFTWARE\Policies\Rustronaut\Client"
_MAX_MANAGED = 256 * 1024


class TunnelRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One tunnel this helper made."""

    interface: str
    backend: str


class _State(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tunnels: tuple[TunnelRecord, ...] = ()


class StateFile:
    """Load and atomically rewrite the state file. Call from one thread at a time."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.path = state_dir / "state.json"

    def load(self) -> tuple[TunnelRecord, ...]:
        """The recorded tunnels; an unreadable or corrupt file counts as empty (logged)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return ()
        try:
            return msgspec.json.decode(data, type=_State).tunnels
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            _log.warning("ignoring corrupt state file %s: %s", self.path, exc)
            return ()

    def save(self, tunnels: tuple[TunnelRecord, ...]) -> None:
        """Replace the record atomically (temp file, fsync, rename). Raises ``OSError``."""
        check_private_dir(self.dir)
        tmp = self.dir / f".state.json.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(msgspec.json.encode(_State(tunnels=tunnels)))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def add(self, record: TunnelRecord) -> None:
        """Record ``record`` (replacing one of the same interface). Idempotent."""
        rest = tuple(t for t in self.load() if t.interface != record.interface)
        self.save((*rest, record))

    def remove(self, interface: str) -> None:
        """Forget ``interface``. Idempotent."""
        self.save(tuple(t for t in self.load() if t.interface != interface))


def read_always_on(managed_dir: Path | None = None) -> bool:
    """Whether managed settings force always-on. Never raises: bad files are logged, skipped.

    ``managed_dir`` defaults to ``$RUSTRONAUT_MANAGED_DIR`` or ``/etc/rustronaut``; on
    Windows, without either, the policy registry key is read instead
    (:func:`read_always_on_registry`).
    """
    if managed_dir is None:
        env = os.environ.get("RUSTRONAUT_MANAGED_DIR")
        if not env and sys.platform == "win32":
            return read_always_on_registry()
        managed_dir = Path(env) if env else DEFAULT_MANAGED_DIR
    files = [managed_dir / "managed.json"]
    with contextlib.suppress(OSError):
        files += sorted((managed_dir / "managed.d").glob("*.json"))
    value = False
    for path in files:
        try:
            if path.stat().st_size > _MAX_MANAGED:
                _log.warning("managed file %s too large, ignored", path)
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            _log.warning("managed file %s unreadable, ignored: %s", path, exc)
            continue
        if isinstance(data, dict) and "always_on" in data:
            if isinstance(data["always_on"], bool):
                value = data["always_on"]
            else:
                _log.warning("managed always_on in %s is not a boolean, ignored", path)
    return value


RegistryQuery = Callable[[str, str], object]


def read_always_on_registry(query: RegistryQuery | None = None) -> bool:
    """``always_on`` from ``HKLM\\SOFTWARE\\Policies\\Rustronaut\\Client`` (REG_DWORD 0/1).

    ``query(key_path, value_name)`` returns the value's data, ``None`` when the key or
    value is missing, or a non-int for another registry type; it defaults to ``winreg``
    (imported only then, so Windows only). Never raises: anything but 0/1 is logged and
    counts as ``False``.
    """
    try:
        value = (query or _winreg_query)(POLICY_KEY, "always_on")
    except (OSError, ImportError) as exc:
        _log.warning("managed always_on unreadable, ignored: %s", exc)
        return False
    if value is None:
        return False
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return value == 1
    _log.warning("managed always_on in the registry is not a DWORD 0/1, ignored: %r", value)
    return False


def _winreg_query(key_path: str, name: str) -> object:  # pragma: no cover - Windows only
    winreg: Any = importlib.import_module("winreg")
    access = winreg.KEY_READ | getattr(winreg, "KEY_WOW64_64KEY", 0)
    try:
        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key_path, 0, access)
    except FileNotFoundError:
        return None
    with key:
        try:
            data, kind = winreg.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
    return data if kind == winreg.REG_DWORD else f"<registry type {kind}>"
