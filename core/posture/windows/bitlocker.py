"""Windows ``disk.encrypted``: BitLocker on the system drive.

``manage-bde -status C:`` first. Its labels and values are localized, so the parser
takes the percentage from the one value shaped like a number with ``%`` (``100.0%``,
``100,0 %``) and reads the protection status against a table of known phrasings; an
unrecognised language falls back to ``Get-BitLockerVolume``, whose enum names our script
prints as text. Encrypted means: 100 % encrypted *and* protection on (a suspended
BitLocker leaves the key in the clear, so it counts as not encrypted).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector
from core.posture.errors import ParseError
from core.posture.text import fold
from core.posture.windows.tools import powershell, ps_json_objects

__all__ = ["COLLECTOR", "manage_bde_argv", "parse_bitlocker_volume", "parse_manage_bde"]

#: Folded fragments of the "Protection Status" value, per language.
PROTECTION_ON = (
    "protection on",  # en
    "schutz ist aktiviert",  # de
    "protection activee",  # fr
    "proteccion activada",  # es
    "protezione attivata",  # it
)
PROTECTION_OFF = (
    "protection off",
    "schutz ist deaktiviert",
    "protection desactivee",
    "proteccion desactivada",
    "protezione disattivata",
)

_PERCENT = re.compile(r"^\s*[^:]+:\s*(\d{1,3}(?:[.,]\d+)?)\s*%\s*$")


def system_drive() -> str:
    """The Windows system drive (``C:`` when the variable is unset, e.g. in tests)."""
    drive = os.environ.get("SYSTEMDRIVE", "C:")  # case-insensitive on Windows
    return drive if re.fullmatch(r"[A-Za-z]:", drive) else "C:"


def manage_bde_argv(drive: str) -> tuple[str, ...]:
    """``manage-bde -status <drive>``."""
    return ("manage-bde", "-status", drive)


def get_bitlocker_argv(drive: str) -> tuple[str, ...]:
    """``Get-BitLockerVolume`` with enum names as text (language-neutral JSON)."""
    return powershell(
        f"Get-BitLockerVolume -MountPoint '{drive}' | Select-Object "
        "@{n='VolumeStatus';e={[string]$_.VolumeStatus}},"
        "@{n='ProtectionStatus';e={[string]$_.ProtectionStatus}},"
        "EncryptionPercentage | ConvertTo-Json -Compress"
    )


def parse_manage_bde(text: str) -> bool:
    """``manage-bde -status`` for one volume → encrypted and protected?

    Raises ``ParseError`` when the percentage or the protection status cannot be read
    (unknown language, an error message, a truncated output).
    """
    percent: float | None = None
    protection: bool | None = None
    for line in text.splitlines():
        m = _PERCENT.match(line)
        if m and percent is None:
            percent = float(m.group(1).replace(",", "."))
            continue
        if ":" not in line:
            continue
        value = fold(line.split(":", 1)[1])
        if protection is None and any(p in value for p in PROTECTION_ON):
            protection = True
        elif protection is None and any(p in value for p in PROTECTION_OFF):
            protection = False
    if percent is None:
        raise ParseError("manage-bde: no encryption percentage")
    if protection is None:
        raise ParseError("manage-bde: protection status not recognised")
    return protection and percent >= 100.0


_VOLUME_ENCRYPTED = {"FullyEncrypted"}
_VOLUME_KNOWN = {
    "FullyDecrypted",
    "FullyEncrypted",
    "EncryptionInProgress",
    "DecryptionInProgress",
    "EncryptionPaused",
    "DecryptionPaused",
}


def parse_bitlocker_volume(text: str) -> bool:
    """Our ``Get-BitLockerVolume`` JSON → encrypted and protected; raises ``ParseError``."""
    items = ps_json_objects(text)
    if len(items) != 1:
        raise ParseError(f"Get-BitLockerVolume returned {len(items)} volumes")
    status, protection = items[0].get("VolumeStatus"), items[0].get("ProtectionStatus")
    if status not in _VOLUME_KNOWN or protection not in ("On", "Off", "Unknown"):
        raise ParseError(f"Get-BitLockerVolume: {status!r}/{protection!r}")
    if protection == "Unknown":
        # The volume is locked or the status is unreadable: not provably protected.
        raise ParseError("Get-BitLockerVolume: protection status Unknown")
    return status in _VOLUME_ENCRYPTED and protection == "On"


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    drive = system_drive()
    result = await ctx.run(manage_bde_argv(drive))
    try:
        return {"disk.encrypted": parse_manage_bde(result.stdout)}
    except ParseError:
        pass  # an unlisted language: ask PowerShell for the enum names
    ps = await ctx.run(get_bitlocker_argv(drive))
    return {"disk.encrypted": parse_bitlocker_volume(ps.stdout)}


COLLECTOR = Collector("windows-bitlocker", ("disk.encrypted",), _collect, cheap=True)
