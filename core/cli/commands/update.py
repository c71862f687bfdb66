"""``rustronaut update [--check]``: check for a signed update now and install it.

Windows and macOS only (Linux is updated by apt or dnf: the command says so and exits
0). Uses the same settings, checks and helper as the scheduled check
(``core.update``): the signed manifest at ``update_url``, verified with ``update_keys``,
refused when older, stale or not the pinned version; a newer release is installed by
the privileged helper, which verifies everything again. ``--check`` only says whether
a newer release is available.

Exit status: 0 installed, up to date, available (``--check``) or updates off;
1 refused or failed (the reason and the next step on stderr).
"""

from __future__ import annotations

import argparse
import sys

from core.text import safe_line
from core.update import HelperInstaller, Outcome, SeenFloor, UpdateConfig, UpdateError, Updater
from core.update.errors import UpdateRejected
from core.update.floor import FLOOR_FILE_NAME
from core.update.schedule import applies
from core.update.words import outcome_words, refusal_words

__all__ = ["register"]


def _updater() -> Updater:
    """The updater for this computer's effective settings (a seam for tests)."""
    from core.paths import data_dir
    from core.settings import load

    return Updater(
        UpdateConfig.from_settings(load()),
        HelperInstaller.at(),
        SeenFloor(data_dir() / FLOOR_FILE_NAME),
    )


async def _run(args: argparse.Namespace) -> int:
    if not applies():
        _, next_step = refusal_words(UpdateRejected("update_platform", ""))
        print(next_step)
        return 0
    updater = _updater()
    try:
        outcome: Outcome
        if args.check:
            outcome, _ = await updater.check()
        else:
            outcome = await updater.run_once()
    except UpdateError as exc:
        headline, next_step = refusal_words(exc)
        print(f"{headline} ({safe_line(exc.message)})", file=sys.stderr)
        print(f"Next step: {next_step}", file=sys.stderr)
        return 1
    print(outcome_words(outcome, updater.installed))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``update``."""
    p = sub.add_parser("update", help="check for a signed update and install it (Windows, macOS)")
    p.add_argument(
        "--check", action="store_true", help="only say whether a newer release is available"
    )
    p.set_defaults(func=_run)
