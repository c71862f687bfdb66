"""The versions of the client and its main parts, for ``rustronaut version`` and diagnostics.

Standard library only (plus ``core.__version__``): any layer may ask, including the
diagnostics written when nothing else works.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from core import __version__

__all__ = ["COMPONENTS", "versions"]

#: The distributions whose versions IT asks about.
COMPONENTS = ("PySide6-Essentials", "qasync", "httpx", "cryptography", "keyring", "msgspec")


def versions() -> dict[str, str]:
    """Versions of the client, Python, the OS and the main libraries (for diagnostics)."""
    out = {
        "rustronaut": __version__,
        "python": sys.version.split()[0],
        "os": f"{platform.system()} {platform.release()}",
    }
    for dist in COMPONENTS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
