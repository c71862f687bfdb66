"""macOS ``screen_lock.*``: ``sysadminctl -screenLock status`` and the idle time.

``sysadminctl`` logs (on stderr, with a timestamp prefix) "screenLock is off",
"screenLock delay is immediate" or "screenLock delay is N seconds". The idle time
before the screen saver starts is ``defaults -currentHost read com.apple.screensaver
idleTime`` (seconds, 0 = never; unset means the system default of 1200 s).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import ParseError

__all__ = ["COLLECTOR", "IDLE_TIME", "SYSADMINCTL", "parse_idle_time", "parse_screen_lock"]

SYSADMINCTL = ("sysadminctl", "-screenLock", "status")
IDLE_TIME = ("defaults", "-currentHost", "read", "com.apple.screensaver", "idleTime")
DEFAULT_IDLE_S = 1200


def parse_screen_lock(text: str) -> int | None:
    """sysadminctl's line → lock delay in seconds (0 immediate) or None when off."""
    if re.search(r"screenLock is off", text):
        return None
    if re.search(r"screenLock delay is immediate", text):
        return 0
    m = re.search(r"screenLock delay is (\d+) seconds?", text)
    if m is None:
        raise ParseError(f"sysadminctl: {text.strip()[-60:]!r}")
    return int(m.group(1))


def parse_idle_time(text: str, returncode: int) -> int:
    """``defaults read … idleTime`` → seconds (unset → the 1200 s default)."""
    if returncode != 0:
        return DEFAULT_IDLE_S  # "The domain/default pair … does not exist"
    value = text.strip()
    if not value.isdigit():
        raise ParseError(f"idleTime: {value[:40]!r}")
    return int(value)


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    status = await ctx.run(SYSADMINCTL)
    delay = parse_screen_lock(status.stderr + "\n" + status.stdout)
    idle = await ctx.run(IDLE_TIME, ok_codes=(0, 1))
    idle_s = parse_idle_time(idle.stdout, idle.returncode)
    on = delay is not None and idle_s > 0
    return {
        "screen_lock.enabled": on,
        "screen_lock.timeout_s": idle_s + (delay or 0) if on else Unknown("screen lock is off"),
    }


COLLECTOR = Collector(
    "macos-screen-lock", ("screen_lock.enabled", "screen_lock.timeout_s"), _collect, cheap=True
)
