"""Where the client keeps its files on each OS (config, data, cache, logs).

A thin layer over ``platformdirs`` so every module agrees on one application name and
one set of directories. Paths are computed on each call (never cached at import), so
tests redirect them with the XDG variables (``XDG_CONFIG_HOME``, ``XDG_DATA_HOME``,
``XDG_CACHE_HOME``, ``XDG_STATE_HOME``) on Linux. Nothing here creates a directory
except :func:`ensure_private_dir`.

=========  ==========================================  ==================================
kind       Linux                                       Windows / macOS
=========  ==========================================  ==================================
config     ``$XDG_CONFIG_HOME/rustronaut``             ``%LOCALAPPDATA%\\Rustronaut`` /
                                                       ``~/Library/Application Support/…``
data       ``$XDG_DATA_HOME/rustronaut``               as platformdirs decides
cache      ``$XDG_CACHE_HOME/rustronaut``              as platformdirs decides
log        ``$XDG_STATE_HOME/rustronaut/log``          ``…\\Logs`` / ``~/Library/Logs/…``
system log ``/var/log/rustronaut`` (the helper's)      ``%ProgramData%…`` / ``/Library/Logs``
=========  ==========================================  ==================================
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

__all__ = [
    "APP_NAME",
    "cache_dir",
    "config_dir",
    "data_dir",
    "ensure_private_dir",
    "log_dir",
    "system_log_dir",
    "user_settings_file",
]

# Lower-case on Linux (XDG convention), capitalised where the OS shows folder names.
APP_NAME = "rustronaut" if sys.platform.startswith("linux") else "Rustronaut"


def config_dir() -> Path:
    """The user's configuration directory (holds ``settings.json``). Not created."""
    return platformdirs.user_config_path(APP_NAME, appauthor=False, roaming=False)


def data_dir() -> Path:
    """The user's data directory (cached policy bundle, device state). Not created."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


def cache_dir() -> Path:
    """The user's cache directory (disposable). Not created."""
    return platformdirs.user_cache_path(APP_NAME, appauthor=False)


def log_dir() -> Path:
    """The user's log directory (tray app and CLI logs). Not created."""
    return platformdirs.user_log_path(APP_NAME, appauthor=False)


def system_log_dir() -> Path:
    """The machine-wide log directory the privileged helper writes to. Not created."""
    return platformdirs.site_log_path(APP_NAME, appauthor=False)


def user_settings_file() -> Path:
    """The user's settings file (``settings.json`` in :func:`config_dir`)."""
    return config_dir() / "settings.json"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing; the leaf gets mode 0700 on POSIX.

    Idempotent. An existing directory's mode is tightened to 0700 because the files it
    holds (settings, logs) are the user's alone. Raises ``OSError`` if it cannot.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix":
        os.chmod(path, 0o700)
    return path
