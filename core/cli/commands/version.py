"""``rustronaut version``: the client's version and its main components'."""

from __future__ import annotations

import argparse
import json

from core.text import safe_line
from core.versions import versions

__all__ = ["register", "versions"]


def _run(args: argparse.Namespace) -> int:
    info = versions()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {safe_line(value)}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``version``."""
    p = sub.add_parser("version", help="show versions")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_run)
