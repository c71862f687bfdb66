"""``rustronaut config``: show and change settings (``show``, ``set``, ``unset``, ``path``).

Exit codes: 0 done; 2 unknown key or invalid value; 3 the key is locked by the
organization; 4 the user's settings file cannot be written.
"""

from __future__ import annotations

import argparse
import json
import sys

from core import paths, settings
from core.settings.managed import default_sources
from core.text import safe_json, safe_line

EXIT_INVALID = 2
EXIT_LOCKED = 3
EXIT_WRITE = 4


def _render(value: object) -> str:
    # Values come from settings files (the user's, the organization's): shown as text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join(safe_line(v) for v in value) if value else "(none)"
    if value == "":
        return "(not set)"
    return safe_line(value)


def _show(args: argparse.Namespace) -> int:
    current = settings.load()
    if args.json:
        print(safe_json(json.dumps(settings.as_json(current), indent=2)))
        return 0
    rows = [
        (
            safe_line(item.key),
            _render(item.value),
            safe_line(item.source) + (" (locked)" if item.locked else ""),
        )
        for item in current.items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    print(f"{'KEY':<{widths[0]}}  {'VALUE':<{widths[1]}}  SOURCE")
    for key, value, source in rows:
        print(f"{key:<{widths[0]}}  {value:<{widths[1]}}  {source}")
    if current.managed_rejected is not None:
        print(f"\nManaged configuration rejected: {safe_line(current.managed_rejected)}")
    if current.problems:
        print("\nProblems (these values were ignored):")
        for problem in current.problems:
            print(f"  - {safe_line(problem)}")
    return 0


def _change(args: argparse.Namespace) -> int:
    try:
        if args.action == "set":
            new = settings.set_user(args.key, args.value)
        else:
            new = settings.unset_user(args.key)
    except settings.SettingLockedError as exc:
        print(f"rustronaut: {safe_line(exc)}.", file=sys.stderr)
        return EXIT_LOCKED
    except settings.SettingValueError as exc:
        print(f"rustronaut: {safe_line(exc)}", file=sys.stderr)
        return EXIT_INVALID
    except settings.SettingsFileError as exc:
        print(f"rustronaut: {safe_line(exc)}", file=sys.stderr)
        return EXIT_WRITE
    key = settings.spec_for(args.key).key
    item = new.item(key)
    note = " (set by your organization; your value applies if that is removed)"
    print(f"{key} = {_render(item.value)} ({safe_line(item.source)}){note if item.locked else ''}")
    return 0


def _path(args: argparse.Namespace) -> int:
    print(f"user settings:     {safe_line(paths.user_settings_file())}")
    for source in default_sources():
        print(f"managed settings:  {safe_line(source.describe())}")
    print(f"logs:              {safe_line(paths.log_dir())}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``config`` with its ``show``, ``set``, ``unset`` and ``path`` subcommands."""
    p = sub.add_parser("config", help="show or change settings")
    p.set_defaults(func=_show, json=False)
    actions = p.add_subparsers(dest="action", metavar="ACTION")

    show = actions.add_parser("show", help="effective settings with source and lock")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_show)

    set_ = actions.add_parser("set", help="set a user setting (refused for managed keys)")
    set_.add_argument("key", metavar="KEY")
    set_.add_argument(
        "value",
        metavar="VALUE",
        help="true/false for switches; comma-separated or a JSON array for lists",
    )
    set_.set_defaults(func=_change)

    unset = actions.add_parser("unset", help="remove a user setting (back to the default)")
    unset.add_argument("key", metavar="KEY")
    unset.set_defaults(func=_change)

    path = actions.add_parser("path", help="where settings and logs live")
    path.set_defaults(func=_path)
