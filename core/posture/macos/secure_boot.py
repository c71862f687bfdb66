"""macOS ``secure_boot.enabled``: T2 Macs expose the policy in NVRAM.

``nvram 94b73556-…:AppleSecureBootPolicy`` prints ``%02`` (full), ``%01`` (medium) or
``%00`` (none). Apple silicon has no such variable and its policy needs ``bputil``
as admin, so it stays unknown; Intel Macs without T2 have no Secure Boot (false).
"""

from __future__ import annotations

from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import ParseError

__all__ = ["COLLECTOR", "NVRAM", "parse_nvram_policy"]

NVRAM = ("nvram", "94b73556-2197-4702-82a8-3e1337dafbfb:AppleSecureBootPolicy")
UNAME_M = ("uname", "-m")


def parse_nvram_policy(text: str) -> bool:
    """The NVRAM line → Secure Boot on (full or medium)? Raises ``ParseError``."""
    value = text.strip().split()[-1] if text.strip() else ""
    if value in ("%02", "%01"):
        return True
    if value == "%00":
        return False
    raise ParseError(f"AppleSecureBootPolicy: {value[:20]!r}")


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    result = await ctx.run(NVRAM, ok_codes=(0, 1))
    if result.ok:
        return {"secure_boot.enabled": parse_nvram_policy(result.stdout)}
    arch = (await ctx.run(UNAME_M)).stdout.strip()
    if arch == "arm64":
        return {"secure_boot.enabled": Unknown("Apple silicon boot policy needs bputil as admin")}
    # Intel without a T2 chip: the variable does not exist and there is no Secure Boot.
    return {"secure_boot.enabled": False}


COLLECTOR = Collector("macos-secure-boot", ("secure_boot.enabled",), _collect)
