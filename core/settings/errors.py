"""Errors of ``core.settings`` (the tree is drawn in the package docstring)."""

from __future__ import annotations

from core.errors import UserFacingError
from core.i18n import QT_TRANSLATE_NOOP

__all__ = ["SettingLockedError", "SettingValueError", "SettingsError", "SettingsFileError"]


class SettingsError(UserFacingError):
    """Base of every settings error. ``key`` names the setting when there is one."""

    title = QT_TRANSLATE_NOOP("core.settings.errors", "The setting could not be changed")
    next_step = QT_TRANSLATE_NOOP(
        "core.settings.errors",
        "Check the setting's name and value (rustronaut config show) and try again.",
    )
    code = "setting_invalid"

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class SettingValueError(SettingsError, ValueError):
    """A value (or a key name) is not valid for the model."""

    title = QT_TRANSLATE_NOOP("core.settings.errors", "Not a valid setting")


class SettingLockedError(SettingsError):
    """The key is set by the organization (managed) and cannot be changed by the user."""

    title = QT_TRANSLATE_NOOP(
        "core.settings.errors", "This setting is managed by your organization"
    )
    next_step = QT_TRANSLATE_NOOP("core.settings.errors", "Ask IT if it needs to be different.")
    code = "setting_locked"


class SettingsFileError(SettingsError, OSError):
    """The user's settings file could not be written."""

    title = QT_TRANSLATE_NOOP("core.settings.errors", "The settings file could not be saved")
    next_step = QT_TRANSLATE_NOOP(
        "core.settings.errors",
        "Check that your disk is not full and your settings folder is writable.",
    )
    code = "internal"
