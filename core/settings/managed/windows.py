"""Windows managed settings: ``HKLM\\SOFTWARE\\Policies\\Rustronaut\\Client``.

Group Policy and Intune (through the generated ADMX) write one value per key: booleans
and numbers as ``REG_DWORD``, text and choices as ``REG_SZ``, lists as ``REG_MULTI_SZ``.
The registry is reached through an injected :class:`RegistryAccessor`; the real one
(:class:`WinregAccessor`) imports ``winreg`` only when used, so this module loads and is
tested on any OS with registry-shaped data. The policy key is writable only by
administrators (its default ACL, like all of ``HKLM\\SOFTWARE\\Policies``), so no owner
check is made here; a value of an unsupported type rejects the managed configuration as
a whole, like any invalid value (``core.settings.loader``).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Protocol

from core.settings.managed import ManagedLayer

__all__ = [
    "POLICY_KEY",
    "REG_BINARY",
    "REG_DWORD",
    "REG_EXPAND_SZ",
    "REG_MULTI_SZ",
    "REG_QWORD",
    "REG_SZ",
    "RegistryAccessor",
    "WindowsManagedSource",
    "WinregAccessor",
]

POLICY_KEY = r"SOFTWARE\Policies\Rustronaut\Client"

# winreg's constants, repeated so the module works without winreg.
REG_SZ = 1
REG_EXPAND_SZ = 2
REG_BINARY = 3
REG_DWORD = 4
REG_MULTI_SZ = 7
REG_QWORD = 11
_TYPE_NAMES = {
    REG_SZ: "REG_SZ",
    REG_EXPAND_SZ: "REG_EXPAND_SZ",
    REG_BINARY: "REG_BINARY",
    REG_DWORD: "REG_DWORD",
    REG_MULTI_SZ: "REG_MULTI_SZ",
    REG_QWORD: "REG_QWORD",
}

RegistryValues = Mapping[str, tuple[object, int]]


class RegistryAccessor(Protocol):
    """Reads the values of one key under ``HKEY_LOCAL_MACHINE``."""

    def read_values(self, key_path: str) -> RegistryValues | None:
        """Map value name → ``(data, REG_* type)``; ``None`` if the key does not exist.

        Raises ``OSError`` when the key exists but cannot be read.
        """
        ...


class WinregAccessor:
    """The real registry (64-bit view), through ``winreg``. Windows only."""

    def read_values(self, key_path: str) -> RegistryValues | None:
        """See :meth:`RegistryAccessor.read_values`."""
        # Through importlib so type checking on other OSes sees an untyped module.
        winreg: Any = importlib.import_module("winreg")
        access = winreg.KEY_READ | getattr(winreg, "KEY_WOW64_64KEY", 0)
        try:
            key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key_path, 0, access)
        except FileNotFoundError:
            return None
        out: dict[str, tuple[object, int]] = {}
        with key:
            index = 0
            while True:
                try:
                    name, data, kind = winreg.EnumValue(key, index)
                except OSError:  # ERROR_NO_MORE_ITEMS ends the enumeration
                    break
                out[str(name)] = (data, int(kind))
                index += 1
        return out


class WindowsManagedSource:
    """Reads the policy key through ``accessor`` (default: the real registry)."""

    def __init__(self, accessor: RegistryAccessor | None = None) -> None:
        self._accessor = accessor or WinregAccessor()

    def describe(self) -> str:
        """The registry key read."""
        return f"HKLM\\{POLICY_KEY}"

    def _read(self) -> tuple[RegistryValues | None, str | None]:
        try:
            return self._accessor.read_values(POLICY_KEY), None
        except OSError as exc:
            return None, f"{self.describe()}: cannot read: {exc.strerror or exc}"

    def read(self) -> Sequence[ManagedLayer]:
        """One layer (or none when the key is absent)."""
        raw, problem = self._read()
        origin = self.describe()
        if problem is not None:
            return [ManagedLayer(origin=origin, problems=(problem,))]
        if raw is None:
            return []
        values: dict[str, object] = {}
        notes: dict[str, str] = {}
        problems: list[str] = []
        for name, (data, kind) in raw.items():
            if name == "":
                continue  # the key's unnamed default value carries no setting
            type_name = _TYPE_NAMES.get(kind, f"registry type {kind}")
            notes[name] = f"registry type {type_name}"
            if (kind in (REG_DWORD, REG_QWORD) and isinstance(data, int)) or (
                kind in (REG_SZ, REG_EXPAND_SZ) and isinstance(data, str)
            ):
                values[name] = data
            elif kind == REG_MULTI_SZ and isinstance(data, list):
                # winreg may hand back a trailing empty string for the list terminator.
                items = [str(item) for item in data]
                while items and items[-1] == "":
                    items.pop()
                values[name] = items
            else:
                shown = json.dumps(name)[1:-1]  # escapes control characters: shown, not run
                problems.append(
                    f"{origin}\\{shown}: unsupported {type_name} — use REG_DWORD for "
                    "booleans and numbers, REG_SZ for text, REG_MULTI_SZ for lists; rejected"
                )
        return [
            ManagedLayer(
                origin=origin,
                values=values,
                problems=tuple(problems),
                notes=notes,
                int_bools=True,
            )
        ]

    def fingerprint(self) -> Hashable:
        """The key's values themselves (a registry read is as cheap as a stat)."""
        raw, problem = self._read()
        if raw is None:
            return problem
        return tuple(sorted((name, repr(data), kind) for name, (data, kind) in raw.items()))
