"""Linux ``secure_boot.enabled``: ``mokutil --sb-state``, else the EFI variable.

The ``SecureBoot`` EFI variable (global GUID) holds 4 attribute bytes and 1 data byte;
1 means on. A machine without ``/sys/firmware/efi`` booted through legacy BIOS, which
has no Secure Boot: that is a known false, not an unknown.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import ParseError, ToolMissingError

__all__ = ["COLLECTOR", "parse_efivar", "parse_mokutil"]

MOKUTIL = ("mokutil", "--sb-state")
EFIVAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


def parse_mokutil(text: str) -> bool:
    """``mokutil --sb-state`` stdout+stderr → bool; raises ``ParseError``."""
    low = text.lower()
    if "secureboot enabled" in low:
        return True
    if (
        "secureboot disabled" in low
        or "doesn't support secure boot" in low
        or "efi variables are not supported" in low
    ):
        return False
    raise ParseError(f"mokutil: {text.strip()[:60]!r}")


def parse_efivar(data: bytes) -> bool:
    """Raw efivarfs contents (attributes + value) → bool; raises ``ParseError``."""
    if len(data) != 5 or data[4] not in (0, 1):
        raise ParseError(f"SecureBoot EFI variable has {len(data)} bytes")
    return data[4] == 1


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    try:
        result = await ctx.run(MOKUTIL, ok_codes=range(256))
        return {"secure_boot.enabled": parse_mokutil(result.stdout + "\n" + result.stderr)}
    except ToolMissingError:
        pass
    if not ctx.path("/sys/firmware/efi").exists():
        return {"secure_boot.enabled": False}
    try:
        return {"secure_boot.enabled": parse_efivar(ctx.path(EFIVAR).read_bytes())}
    except FileNotFoundError:
        return {"secure_boot.enabled": Unknown("EFI variable SecureBoot not present")}
    except OSError as exc:
        return {"secure_boot.enabled": Unknown(f"cannot read EFI variable: {exc.strerror}")}


COLLECTOR = Collector("linux-secure-boot", ("secure_boot.enabled",), _collect)
