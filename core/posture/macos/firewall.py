"""macOS ``firewall.enabled``: the application firewall's global state.

``socketfilterfw --getglobalstate`` ends its line with ``(State = N)``: 0 off, 1 on,
2 on and blocking all incoming connections. Newer releases print only "Firewall is
enabled." / "Firewall is disabled.", so both forms are read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector
from core.posture.errors import ParseError

__all__ = ["COLLECTOR", "SOCKETFILTERFW", "parse_socketfilterfw"]

SOCKETFILTERFW = ("/usr/libexec/ApplicationFirewall/socketfilterfw", "--getglobalstate")


def parse_socketfilterfw(text: str) -> bool:
    """``--getglobalstate`` → on? Raises ``ParseError``."""
    m = re.search(r"\(State = (\d)\)", text)
    if m is not None:
        if m.group(1) in ("1", "2"):
            return True
        if m.group(1) == "0":
            return False
    low = text.lower()
    if "firewall is enabled" in low or "blocking all" in low:
        return True
    if "firewall is disabled" in low:
        return False
    raise ParseError(f"socketfilterfw: {text.strip()[:60]!r}")


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    return {"firewall.enabled": parse_socketfilterfw((await ctx.run(SOCKETFILTERFW)).stdout)}


COLLECTOR = Collector("macos-firewall", ("firewall.enabled",), _collect, cheap=True)
