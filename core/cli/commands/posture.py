"""``rustronaut posture``: collect this device's posture now and show it.

A table of every fact with its status, value and — for a failed check or an unknown
fact — the fix (or why it is unknown); ``--json`` prints the same as a list of objects.
The status says ``pass``, ``fail`` or ``unknown``: the words of the posture window
(``core.engine.state.PostureItem.status``). Runs the real collectors of this OS with a
per-tool timeout; never fails on a fact.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

from core.posture import (
    CollectContext,
    PostureConfig,
    PostureConfigError,
    SubprocessRunner,
    collect,
)
from core.posture.factory import collectors_for, current_os
from core.posture.remediation import remediation
from core.text import safe_json, safe_line
from core.wire.posture import Fact, FactStatus

__all__ = ["register", "rows", "status_word"]

UNKNOWN = "unknown"


def status_word(fact: Fact) -> str:
    """``pass``, ``fail`` or ``unknown``: the rule of the posture window (a fact that
    could not be read is unknown; a false check fails; anything else known passes)."""
    if fact.status is not FactStatus.KNOWN:
        return UNKNOWN
    return "fail" if fact.value is False else "pass"


def _show(value: object) -> str:
    # Values and reasons come from the device (process names, tool output): text.
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ", ".join(safe_line(v) for v in value) if value else "(none)"
    return safe_line(value)


def rows(facts: Mapping[str, Fact], os_name: str) -> list[dict[str, object]]:
    """One row per fact (sorted): name, status (pass/fail/unknown), value, reason, fix.

    Pure. The fix is given for a failed check (an unknown fact says why instead).
    """
    out: list[dict[str, object]] = []
    for name in sorted(facts):
        fact = facts[name]
        status = status_word(fact)
        fix = remediation(name, os_name) if status == "fail" else ""
        value = list(fact.value) if isinstance(fact.value, tuple) else fact.value
        out.append(
            {
                "fact": name,
                "status": status,
                "value": value,
                "reason": fact.reason,
                "fix": fix,
                "collected_at": fact.collected_at,
            }
        )
    return out


def _table(table: list[dict[str, object]]) -> str:
    lines = []
    width = max((len(str(r["fact"])) for r in table), default=4)
    lines.append(f"{'FACT':<{width}}  {'STATUS':<7}  {'VALUE':<24}  FIX / REASON")
    for r in table:
        known = r["status"] != UNKNOWN
        value = _show(tuple(r["value"]) if isinstance(r["value"], list) else r["value"])
        shown = value if known else "?"
        if len(shown) > 24:
            shown = shown[:23] + "…"
        note = safe_line(r["fix"] if known else f"unknown: {r['reason']}")
        name, status = safe_line(r["fact"]), safe_line(r["status"])
        lines.append(f"{name:<{width}}  {status:<7}  {shown:<24}  {note}")
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> int:
    os_name = current_os()
    if not 0 < args.timeout <= 300:
        print("rustronaut posture: --timeout must be between 0 and 300 seconds", file=sys.stderr)
        return 2
    try:
        config = PostureConfig.create(processes=args.process, files=args.file)
    except PostureConfigError as exc:
        print(f"rustronaut posture: {safe_line(exc)}", file=sys.stderr)
        return 2
    ctx = CollectContext(runner=SubprocessRunner(), config=config, timeout_s=args.timeout)
    facts = await collect(collectors_for(os_name), ctx)
    table = rows(facts, os_name)
    if args.json:
        print(safe_json(json.dumps(table, indent=2, ensure_ascii=False)))
    else:
        print(_table(table))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``posture``."""
    p = sub.add_parser("posture", help="show this device's posture facts and how to fix them")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per OS tool (default 5)")
    p.add_argument(
        "--process", action="append", default=[], metavar="NAME", help="also check a process"
    )
    p.add_argument("--file", action="append", default=[], metavar="PATH", help="also check a file")
    p.set_defaults(func=_run)
