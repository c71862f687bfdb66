"""macOS ``updates.auto``: automatic checking on and security updates installed.

``softwareupdate --schedule`` says "Automatic checking for updates is turned on"
(older: "Automatic check is on"); ``CriticalUpdateInstall`` in
``/Library/Preferences/com.apple.SoftwareUpdate`` is on unless set to 0.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector
from core.posture.errors import ParseError

__all__ = ["COLLECTOR", "CRITICAL", "SCHEDULE", "parse_schedule"]

SCHEDULE = ("softwareupdate", "--schedule")
CRITICAL = (
    "defaults",
    "read",
    "/Library/Preferences/com.apple.SoftwareUpdate",
    "CriticalUpdateInstall",
)


def parse_schedule(text: str) -> bool:
    """``softwareupdate --schedule`` → automatic checking on? Raises ``ParseError``."""
    low = text.lower()
    if "turned on" in low or "automatic check is on" in low:
        return True
    if "turned off" in low or "automatic check is off" in low:
        return False
    raise ParseError(f"softwareupdate --schedule: {text.strip()[:60]!r}")


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    if not parse_schedule((await ctx.run(SCHEDULE)).stdout):
        return {"updates.auto": False}
    critical = await ctx.run(CRITICAL, ok_codes=(0, 1))
    return {"updates.auto": not (critical.ok and critical.stdout.strip() == "0")}


COLLECTOR = Collector("macos-updates", ("updates.auto",), _collect)
