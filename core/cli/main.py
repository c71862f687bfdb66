"""Entry point of the ``rustronaut`` CLI: discovers the command modules and runs one.

Whatever a command raises is caught here and shown in words, never as a traceback: the
title and detail, then "Next step: ..." (from ``core.engine.errors.explain``), on
stderr. ``rustronaut --debug COMMAND`` also prints the traceback; either way it goes to
the CLI's log file, so ``rustronaut diag`` carries it to IT.

Exit codes (also in docs/reference.md):

====  =================================================================================
0     done
1     failed (the message says why and what to do next)
2     usage: an unknown command or option, a missing or malformed argument
3     refused: always-on (or a break-glass reason that is too short), a setting your
      organization manages, another Rustronaut already running
4     Rustronaut is not running (no engine to ask)
130   interrupted (Ctrl-C)
141   the reader of the output went away (``rustronaut whoami | head -1``): ends quietly
====  =================================================================================

``rustronaut config`` and ``rustronaut policy`` keep their own tables (their ``--help``).
A command that catches an error to choose its exit status shows it with :func:`fail`,
so ``--debug`` and the words are the same everywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import pkgutil
import sys
import traceback
from collections.abc import Mapping, Sequence

from core import __version__
from core.cli import commands

__all__ = ["EXIT_CODES", "build_parser", "entry", "exit_code", "fail", "main"]

_log = logging.getLogger(__name__)

#: The exit status for an error's ``code`` (``core.errors.CODES``); anything else is 1.
EXIT_CODES: Mapping[str, int] = {
    "always_on": 3,
    "reason_too_short": 3,
    "setting_locked": 3,
    "engine_already_running": 3,
    "engine_not_running": 4,
}
_INTERRUPTED = 130
_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command killed by it
#: ``--debug`` of the running invocation (read by :func:`fail`).
_debug = False


def build_parser() -> argparse.ArgumentParser:
    """Return the full parser with every command module's subcommands registered."""
    parser = argparse.ArgumentParser(
        prog="rustronaut",
        description="Rustronaut zero-trust access client.",
    )
    parser.add_argument("--version", action="version", version=f"rustronaut {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on failure, also print the traceback (for IT and developers)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def exit_code(code: str) -> int:
    """The exit status for an error ``code`` (see the module docstring)."""
    return EXIT_CODES.get(code, 1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (also used as the console script).

    Never lets an exception out (``SystemExit`` from argparse aside): it is printed in
    words and becomes the exit code of the table above.
    """
    global _debug
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Known before parsing, so that a failure while building the parser is shown too.
    _debug = "--debug" in args_list[: _command_index(args_list)]
    command = "rustronaut"
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help()
            return 2
        command = f"rustronaut {args.command}"
        result = func(args)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        # Inside the guard: buffered output meeting a closed pipe fails here, not at exit.
        sys.stdout.flush()
        return int(result or 0)
    except BrokenPipeError:
        # The reader went away (``| head``): nothing more to say, and no traceback.
        _silence_stdout()
        return _BROKEN_PIPE
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return _INTERRUPTED
    except Exception as exc:
        return fail(exc, command=command)


def _silence_stdout() -> None:
    """Point stdout at the null device, so the interpreter's final flush of the text
    still buffered for the closed pipe cannot fail again at exit."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (embedded use): nothing to silence
        pass


def _command_index(args: Sequence[str]) -> int:
    """Where the command starts (global options come before it)."""
    return next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))


def fail(exc: BaseException, *, command: str = "rustronaut") -> int:
    """Show ``exc`` on stderr in words and return its exit status (the table above).

    Prints "title: detail" and "Next step: ..." (``core.engine.errors.explain``); with
    ``--debug`` the traceback first. The traceback always goes to the log file (for
    ``rustronaut diag``). For commands that catch an error to choose their exit status.
    """
    from core.engine.errors import explain

    # Below the console handler's level (WARNING): the trace goes to the file, not stderr.
    _log.info("%s failed", command, exc_info=exc)
    info = explain(exc, during=f"running {command}")
    if _debug:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"{_plain(info.title)}: {_plain(info.detail)}", file=sys.stderr)
    print(f"Next step: {_plain(info.next_step)}", file=sys.stderr)
    return exit_code(info.code)


def _plain(text: str) -> str:
    """``text`` with control characters escaped: words from the network stay words."""
    from core.text import safe_text

    return safe_text(text, keep_newlines=True)


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
