"""Linux ``screen_lock.*`` from GNOME settings (``gsettings``).

Locked on idle when ``org.gnome.desktop.screensaver lock-enabled`` is true and
``org.gnome.desktop.session idle-delay`` is above 0 (0 = never blank); the lock then
comes ``lock-delay`` seconds after blanking. Without the GNOME schemas (KDE, servers)
the facts are unknown.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import ParseError, ToolFailedError

__all__ = ["COLLECTOR", "parse_gsettings_bool", "parse_gsettings_uint"]

LOCK_ENABLED = ("gsettings", "get", "org.gnome.desktop.screensaver", "lock-enabled")
IDLE_DELAY = ("gsettings", "get", "org.gnome.desktop.session", "idle-delay")
LOCK_DELAY = ("gsettings", "get", "org.gnome.desktop.screensaver", "lock-delay")


def parse_gsettings_bool(text: str) -> bool:
    """``true``/``false`` → bool; raises ``ParseError``."""
    value = text.strip()
    if value in ("true", "false"):
        return value == "true"
    raise ParseError(f"gsettings boolean: {value[:40]!r}")


def parse_gsettings_uint(text: str) -> int:
    """``uint32 300`` (or ``300``) → 300; raises ``ParseError``."""
    m = re.fullmatch(r"(?:u?int(?:32|64)\s+)?(\d+)", text.strip())
    if m is None:
        raise ParseError(f"gsettings integer: {text.strip()[:40]!r}")
    return int(m.group(1))


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    # Three independent reads: run them together (this collector is a watcher).
    try:
        results = await asyncio.gather(
            ctx.run(LOCK_ENABLED), ctx.run(IDLE_DELAY), ctx.run(LOCK_DELAY)
        )
    except ToolFailedError as exc:
        if "schema" in exc.stderr.lower():
            reason = Unknown("GNOME screen-lock settings not installed")
            return {"screen_lock.enabled": reason, "screen_lock.timeout_s": reason}
        raise
    enabled = parse_gsettings_bool(results[0].stdout)
    idle = parse_gsettings_uint(results[1].stdout)
    lock_delay = parse_gsettings_uint(results[2].stdout)
    on = enabled and idle > 0
    return {
        "screen_lock.enabled": on,
        "screen_lock.timeout_s": idle + lock_delay if on else Unknown("screen lock is off"),
    }


COLLECTOR = Collector(
    "linux-screen-lock", ("screen_lock.enabled", "screen_lock.timeout_s"), _collect, cheap=True
)
