"""Entry point of the ``rustronaut`` CLI: discovers the command modules and runs one."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import pkgutil
import sys
from collections.abc import Sequence

from core import __version__
from core.cli import commands

__all__ = ["build_parser", "entry", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the full parser with every command module's subcommands registered."""
    parser = argparse.ArgumentParser(
        prog="rustronaut",
        description="Rustronaut zero-trust access client.",
    )
    parser.add_argument("--version", action="version", version=f"rustronaut {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (also used as the console script)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    result = func(args)
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return int(result or 0)


def entry() -> None:
    """The console script: log to the user's log dir (redacted), then run ``main``."""
    import os

    from core.logs import setup

    try:
        setup("cli", level=os.environ.get("RUSTRONAUT_LOG_LEVEL", "info"))
    except OSError as exc:  # an unwritable log dir must not stop the CLI
        print(f"rustronaut: logging to file disabled: {exc}", file=sys.stderr)
    sys.exit(main())


async def _await(awaitable: object) -> object:
    return await awaitable  # type: ignore[misc]


if __name__ == "__main__":
    entry()
