"""Settings: one typed model, the user's file, and managed (MDM) settings on top.

``model.Settings`` declares every key once (type, default, limits, description); the
loader reads defaults < the user's ``settings.json`` < the organization's managed
settings (Linux JSON files, the Windows policy registry key, macOS managed preferences,
one reader per OS in ``core.settings.managed``) into an immutable
:class:`EffectiveSettings` that knows each value's source and lock. Bad input never
crashes and is never half-applied: it becomes a readable problem and the key keeps its
lower-precedence value. :class:`SettingsWatcher` reloads on change; ``templates``
generates the JSON Schema, ADMX/ADML, ``.mobileconfig`` and the admin guide's table
from the model. Imports only the standard library, ``core.paths`` and ``core.aio``
(``templates`` also imports ``core.cli`` lazily, to document the commands).

Errors::

    SettingsError
     ├── SettingValueError (also ValueError)  unknown key or invalid value
     ├── SettingLockedError                   the organization manages this key
     └── SettingsFileError (also OSError)     the user's file cannot be written
"""

from core.settings.errors import (
    SettingLockedError,
    SettingsError,
    SettingsFileError,
    SettingValueError,
)
from core.settings.loader import (
    EffectiveSettings,
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
