"""macOS ``os.*`` (``sw_vers``, ``uname``) and ``device.serial`` (``ioreg``)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import ParseError
from core.posture.text import PLACEHOLDER_SERIALS, key_values, normalise_arch

__all__ = ["COLLECTOR", "IOREG", "SERIAL", "SW_VERS", "parse_ioreg_serial", "parse_sw_vers"]

SW_VERS = ("sw_vers",)
UNAME = ("uname", "-rm")
IOREG = ("ioreg", "-c", "IOPlatformExpertDevice", "-d", "2")


def parse_sw_vers(text: str) -> dict[str, str]:
    """``sw_vers`` → ``os.version``/``os.build``/``os.distro``; raises ``ParseError``."""
    kv = key_values(text)
    version, build = kv.get("ProductVersion"), kv.get("BuildVersion")
    if not version or not re.fullmatch(r"\d+(\.\d+)*", version) or not build:
        raise ParseError("sw_vers: no ProductVersion/BuildVersion")
    extra = kv.get("ProductVersionExtra")  # Rapid Security Response, e.g. "(a)"
    return {
        "os.version": version,
        "os.build": f"{build} {extra}" if extra else build,
        "os.distro": kv.get("ProductName", "macOS").lower().replace(" ", ""),
    }


def parse_ioreg_serial(text: str) -> Answer:
    """``ioreg`` → ``IOPlatformSerialNumber`` or unknown; raises ``ParseError``."""
    m = re.search(r'"IOPlatformSerialNumber"\s*=\s*"([^"]*)"', text)
    if m is None:
        raise ParseError("ioreg: no IOPlatformSerialNumber")
    serial = m.group(1).strip()
    if serial.lower() in PLACEHOLDER_SERIALS:
        return Unknown("firmware reports no serial number")
    return serial


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    answers: dict[str, Answer] = {"os.name": "macos"}
    answers.update(parse_sw_vers((await ctx.run(SW_VERS)).stdout))
    words = (await ctx.run(UNAME)).stdout.split()
    if len(words) == 2:
        answers["os.kernel"], answers["os.arch"] = words[0], normalise_arch(words[1])
    return answers


async def _serial(ctx: CollectContext) -> Mapping[str, Answer]:
    return {"device.serial": parse_ioreg_serial((await ctx.run(IOREG)).stdout)}


COLLECTOR = Collector(
    "macos-os", ("os.name", "os.distro", "os.version", "os.build", "os.kernel", "os.arch"), _collect
)
SERIAL = Collector("macos-serial", ("device.serial",), _serial)
