"""``rustronaut version``: the client's version and its main components'."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib import metadata

from core import __version__

_COMPONENTS = ("PySide6-Essentials", "qasync", "httpx", "cryptography", "keyring", "msgspec")


def versions() -> dict[str, str]:
    """Versions of the client, Python, the OS and the main libraries (for diagnostics)."""
    out = {
        "rustronaut": __version__,
        "python": sys.version.split()[0],
        "os": f"{platform.system()} {platform.release()}",
    }
    for dist in _COMPONENTS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _run(args: argparse.Namespace) -> int:
    info = versions()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``version``."""
    p = sub.add_parser("version", help="show versions")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_run)
