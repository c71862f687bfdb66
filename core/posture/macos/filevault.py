"""macOS ``disk.encrypted``: FileVault (``fdesetup status``).

On only when "FileVault is On." and no conversion is running; "Encryption in
progress", "Decryption in progress" and deferred enablement ("will be enabled after
the next restart") are not yet encrypted.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector
from core.posture.errors import ParseError

__all__ = ["COLLECTOR", "FDESETUP", "parse_fdesetup"]

FDESETUP = ("fdesetup", "status")


def parse_fdesetup(text: str) -> bool:
    """``fdesetup status`` → fully encrypted? Raises ``ParseError``."""
    low = text.lower()
    if "filevault is off" in low:
        return False
    if "filevault is on" not in low:
        raise ParseError(f"fdesetup: {text.strip()[:60]!r}")
    return not ("in progress" in low or "will be enabled" in low)


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    return {"disk.encrypted": parse_fdesetup((await ctx.run(FDESETUP)).stdout)}


COLLECTOR = Collector("macos-filevault", ("disk.encrypted",), _collect, cheap=True)
