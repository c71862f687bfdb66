"""Errors of ``core.settings`` (the tree is drawn in the package docstring)."""

from __future__ import annotations

__all__ = ["SettingLockedError", "SettingValueError", "SettingsError", "SettingsFileError"]


class SettingsError(Exception):
    """Base of every settings error. ``key`` names the setting when there is one."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class SettingValueError(SettingsError, ValueError):
    """A value (or a key name) is not valid for the model."""


class SettingLockedError(SettingsError):
    """The key is set by the organization (managed) and cannot be changed by the user."""


class SettingsFileError(SettingsError, OSError):
    """The user's settings file could not be written."""
