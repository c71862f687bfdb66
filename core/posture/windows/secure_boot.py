"""Windows ``secure_boot.enabled`` via ``Confirm-SecureBootUEFI``.

The cmdlet's errors are localized, so our script catches them by exception type and
prints one of ``on``, ``off``, ``unsupported`` (legacy BIOS: no Secure Boot, a known
false), ``denied`` (needs administrator) or ``error <type>``.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import ParseError
from core.posture.windows.tools import powershell

__all__ = ["COLLECTOR", "CONFIRM", "parse_confirm"]

CONFIRM = powershell(
    "try { if (Confirm-SecureBootUEFI -ErrorAction Stop) { 'on' } else { 'off' } }"
    " catch [System.PlatformNotSupportedException] { 'unsupported' }"
    " catch [System.UnauthorizedAccessException] { 'denied' }"
    " catch { 'error ' + $_.Exception.GetType().FullName }"
)


def parse_confirm(text: str) -> Answer:
    """Our script's one word → bool or Unknown; raises ``ParseError`` otherwise."""
    word = text.strip().splitlines()[-1].strip() if text.strip() else ""
    if word in ("on", "off", "unsupported"):
        return word == "on"
    if word == "denied":
        return Unknown("reading Secure Boot state needs administrator rights")
    if word.startswith("error "):
        return Unknown(f"Confirm-SecureBootUEFI failed: {word[6:80]}")
    raise ParseError(f"Confirm-SecureBootUEFI: {word[:60]!r}")


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    return {"secure_boot.enabled": parse_confirm((await ctx.run(CONFIRM)).stdout)}


COLLECTOR = Collector("windows-secure-boot", ("secure_boot.enabled",), _collect)
