"""Settings: one typed model, the user's file, and managed (MDM) settings on top.

``model.Settings`` declares every key once (type, default, limits, description); the
loader reads defaults < the user's ``settings.json`` < the organization's managed
settings (Linux JSON files, the Windows policy registry key, macOS managed preferences,
one reader per OS in ``core.settings.managed``) into an immutable
:class:`EffectiveSettings` that knows each value's source and lock. Bad input never
crashes and is never half-applied: a bad key of the user's file becomes a readable
problem and keeps its lower-precedence value; the managed configuration is accepted as a
whole or rejected as a whole (``EffectiveSettings.managed_rejected``), the last good one
staying in force. Managed places must be root-owned and not writable by others, and only
test builds let ``RUSTRONAUT_MANAGED_DIR`` move them (``core.settings.managed._trust``).
:class:`SettingsWatcher` reloads on change; ``templates``
generates the JSON Schema, ADMX/ADML, ``.mobileconfig`` and the admin guide's table
from the model. Imports only the standard library, ``core.paths`` and ``core.aio``
(``templates`` documents the CLI from a parser its caller passes in: never ``core.cli``).

Errors::

    SettingsError
     ├── SettingValueError (also ValueError)  unknown key or invalid value
     ├── SettingLockedError                   the organization manages this key
     └── SettingsFileError (also OSError)     the user's file cannot be written
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from core.settings.errors import (
        SettingLockedError,
        SettingsError,
        SettingsFileError,
        SettingValueError,
    )
    from core.settings.loader import (
        EffectiveSettings,
        ManagedPayload,
        SettingItem,
        Source,
        as_json,
        load,
        set_user,
        spec_for,
        unset_user,
    )
    from core.settings.managed import ManagedLayer, ManagedSource, default_sources
    from core.settings.model import SPECS, Kind, Settings, SettingSpec
    from core.settings.watcher import SettingsWatcher

__all__ = [
    "SPECS",
    "EffectiveSettings",
    "Kind",
    "ManagedLayer",
    "ManagedPayload",
    "ManagedSource",
    "SettingItem",
    "SettingLockedError",
    "SettingSpec",
    "SettingValueError",
    "Settings",
    "SettingsError",
    "SettingsFileError",
    "SettingsWatcher",
    "Source",
    "as_json",
    "default_sources",
    "load",
    "set_user",
    "spec_for",
    "unset_user",
]

# Exports load on first use (PEP 562): importing one submodule (``core.settings.errors``…)
# or the package does not pull in every submodule and its third-party dependencies.
_LAZY: dict[str, str] = {
    "EffectiveSettings": "core.settings.loader",
    "Kind": "core.settings.model",
    "ManagedLayer": "core.settings.managed",
    "ManagedPayload": "core.settings.loader",
    "ManagedSource": "core.settings.managed",
    "SPECS": "core.settings.model",
    "SettingItem": "core.settings.loader",
    "SettingLockedError": "core.settings.errors",
    "SettingSpec": "core.settings.model",
    "SettingValueError": "core.settings.errors",
    "Settings": "core.settings.model",
    "SettingsError": "core.settings.errors",
    "SettingsFileError": "core.settings.errors",
    "SettingsWatcher": "core.settings.watcher",
    "Source": "core.settings.loader",
    "as_json": "core.settings.loader",
    "default_sources": "core.settings.managed",
    "load": "core.settings.loader",
    "set_user": "core.settings.loader",
    "spec_for": "core.settings.loader",
    "unset_user": "core.settings.loader",
}


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)
