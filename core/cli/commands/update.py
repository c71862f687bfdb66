"""``rustronaut update [--check]``: check for a signed update now and install it.

Windows and macOS only (Linux is updated by apt or dnf: the command says so and exits
0). Uses the same settings, checks and helper as the scheduled check
(``core.update``): the signed manifest at ``update_url``, verified with ``update_keys``,
refused when older, stale or not the pinned version; a newer release is installed by
the privileged helper, which verifies everything again and starts the installer
("Installing update 1.4.2…"; the installer restarts Rustronaut, and the agent then says
"Updated to 1.4.2", or that it did not install). ``--check`` only says whether a newer
release is available.

Exit status: 0 installing, up to date, available (``--check``) or updates off;
1 refused or failed: the error goes up to the CLI's ``fail`` (``core.cli.main``), which
prints its title, detail and next step on stderr (``update_*`` codes exit 1).
"""

from __future__ import annotations

import argparse

from core.update import HelperInstaller, Outcome, SeenFloor, UpdateConfig, Updater
from core.update.errors import UpdateRejected
from core.update.floor import FLOOR_FILE_NAME
from core.update.pending import PENDING_FILE_NAME, PendingUpdate
from core.update.schedule import applies
from core.update.words import outcome_words, refusal_words

__all__ = ["register"]

_EPILOG = """\
exit status:
  0  installing (the installer restarts Rustronaut), up to date, available (--check),
     or automatic updates off
  1  refused or failed (the reason and the next step on stderr)
"""


def _updater() -> Updater:
    """The updater for this computer's effective settings (a seam for tests)."""
    from core.paths import data_dir
    from core.settings import load

    return Updater(
        UpdateConfig.from_settings(load()),
        HelperInstaller.at(),
        SeenFloor(data_dir() / FLOOR_FILE_NAME),
    )


def _pending() -> PendingUpdate:
    """The pending-update record the agent settles (a seam for tests)."""
    from core.paths import data_dir

    return PendingUpdate(data_dir() / PENDING_FILE_NAME)


async def _run(args: argparse.Namespace) -> int:
    if not applies():
        _, next_step = refusal_words(UpdateRejected("update_platform", ""))
        print(next_step)
        return 0
    updater = _updater()
    # An UpdateError goes up to the CLI's fail(): title, detail, next step; exit 1.
    outcome: Outcome
    if args.check:
        outcome, _ = await updater.check()
    else:
        outcome = await updater.run_once(record=_pending())
    print(outcome_words(outcome, updater.installed))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``update``."""
    p = sub.add_parser(
        "update",
        help="check for a signed update and install it (Windows, macOS)",
        description="Check for a signed update now and have the Rustronaut helper install it.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--check", action="store_true", help="only say whether a newer release is available"
    )
    p.set_defaults(func=_run)
