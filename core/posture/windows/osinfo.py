"""Windows ``os.*`` from the registry (``reg query``), ``ver`` as fallback; serial via CIM.

``HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion`` holds the build, its update
revision (UBR), the edition and the major/minor numbers; ``ProductName`` is avoided
because it still says "Windows 10" on Windows 11. ``ver`` prints
``Microsoft Windows [Version 10.0.22631.3296]`` with "Version" localized.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import CommandError, ParseError
from core.posture.text import PLACEHOLDER_SERIALS, normalise_arch
from core.posture.windows.tools import powershell, reg_values

__all__ = ["COLLECTOR", "SERIAL", "parse_current_version", "parse_ver"]

REG_CURRENT_VERSION = ("reg", "query", r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion")
REG_ARCH = (
    "reg",
    "query",
    r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment",
    "/v",
    "PROCESSOR_ARCHITECTURE",
)
VER = ("cmd.exe", "/d", "/c", "ver")
SERIAL_PS = powershell("(Get-CimInstance -ClassName Win32_BIOS).SerialNumber")


def parse_current_version(text: str) -> dict[str, str]:
    """The CurrentVersion key → ``os.version``, ``os.build``, ``os.kernel``, ``os.distro``.

    Raises ``ParseError`` when the build number is missing.
    """
    values = reg_values(text)
    build = values.get("currentbuildnumber") or values.get("currentbuild")
    if not isinstance(build, str) or not build.isdigit():
        raise ParseError("CurrentVersion has no CurrentBuild")
    major, minor = values.get("currentmajorversionnumber"), values.get("currentminorversionnumber")
    if isinstance(major, int) and isinstance(minor, int):
        version = f"{major}.{minor}.{build}"
    else:  # Windows 7/8: "6.1"
        version = f"{values.get('currentversion', '6.1')}.{build}"
    ubr = values.get("ubr")
    out = {
        "os.version": version,
        "os.kernel": version,
        "os.build": f"{build}.{ubr}" if isinstance(ubr, int) else build,
    }
    edition = values.get("editionid")
    if isinstance(edition, str) and edition:
        out["os.distro"] = edition.lower()
    return out


_VER = re.compile(r"\[\s*\w+\s+(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?\s*\]")


def parse_ver(text: str) -> dict[str, str]:
    """``ver`` output (any language) → version/build/kernel; raises ``ParseError``."""
    m = _VER.search(text)
    if m is None:
        raise ParseError(f"ver: {text.strip()[:60]!r}")
    version = f"{m.group(1)}.{m.group(2)}.{m.group(3)}"
    build = f"{m.group(3)}.{m.group(4)}" if m.group(4) else m.group(3)
    return {"os.version": version, "os.kernel": version, "os.build": build}


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    answers: dict[str, Answer] = {"os.name": "windows"}
    try:
        answers.update(parse_current_version((await ctx.run(REG_CURRENT_VERSION)).stdout))
    except (CommandError, ParseError) as exc:
        answers["os.distro"] = Unknown(f"registry: {exc}")
        answers.update(parse_ver((await ctx.run(VER)).stdout))
    try:
        arch = reg_values((await ctx.run(REG_ARCH)).stdout).get("processor_architecture")
        answers["os.arch"] = (
            normalise_arch(arch) if isinstance(arch, str) and arch else Unknown("no arch")
        )
    except CommandError as exc:
        answers["os.arch"] = Unknown(f"reg: {exc}")
    return answers


async def _serial(ctx: CollectContext) -> Mapping[str, Answer]:
    serial = (await ctx.run(SERIAL_PS)).stdout.strip()
    if serial.lower() in PLACEHOLDER_SERIALS or "\n" in serial:
        return {"device.serial": Unknown("firmware reports no serial number")}
    return {"device.serial": serial}


COLLECTOR = Collector(
    "windows-os",
    ("os.name", "os.distro", "os.version", "os.build", "os.kernel", "os.arch"),
    _collect,
)
SERIAL = Collector("windows-serial", ("device.serial",), _serial)
