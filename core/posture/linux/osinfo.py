"""Linux ``os.*`` from ``/etc/os-release`` and ``uname``; ``device.serial`` from DMI."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import ParseError
from core.posture.text import PLACEHOLDER_SERIALS, normalise_arch

__all__ = ["COLLECTOR", "SERIAL", "parse_os_release", "serial_from_dmi"]


def parse_os_release(text: str) -> dict[str, str]:
    """Parse os-release(5): ``KEY=value`` lines with shell quoting; raises ``ParseError``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError:
            continue
        out[key.strip()] = parts[0] if parts else ""
    if "ID" not in out and "NAME" not in out:
        raise ParseError("os-release has neither ID nor NAME")
    return out


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    answers: dict[str, Answer] = {"os.name": "linux"}
    uname = os.uname()
    answers["os.kernel"] = uname.release
    answers["os.build"] = uname.version
    answers["os.arch"] = normalise_arch(uname.machine)
    text = None
    for candidate in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = ctx.path(candidate).read_text(encoding="utf-8", errors="replace")
            break
        except OSError:
            continue
    if text is None:
        reason = Unknown("no /etc/os-release")
        answers.update({"os.distro": reason, "os.version": reason})
        return answers
    try:
        info = parse_os_release(text)
    except ParseError as exc:
        answers.update({"os.distro": Unknown(str(exc)), "os.version": Unknown(str(exc))})
        return answers
    answers["os.distro"] = info.get("ID", info.get("NAME", "")).lower() or Unknown("no ID")
    # Rolling releases (Arch) have no VERSION_ID; BUILD_ID is their closest.
    version = info.get("VERSION_ID") or info.get("BUILD_ID")
    answers["os.version"] = version if version else Unknown("os-release has no VERSION_ID")
    return answers


def serial_from_dmi(text: str) -> Answer:
    """The DMI ``product_serial`` contents → serial, or unknown for placeholders."""
    serial = text.strip()
    if serial.lower() in PLACEHOLDER_SERIALS:
        return Unknown("firmware reports no serial number")
    return serial


async def _serial(ctx: CollectContext) -> Mapping[str, Answer]:
    dmi = ctx.path("/sys/class/dmi/id")
    for name in ("product_serial", "board_serial", "chassis_serial"):
        try:
            answer = serial_from_dmi((dmi / name).read_text(errors="replace"))
        except PermissionError:
            return {"device.serial": Unknown("DMI serial is readable by root only")}
        except OSError:
            continue
        if not isinstance(answer, Unknown):
            return {"device.serial": answer}
    if not dmi.exists():
        return {"device.serial": Unknown("no DMI data (/sys/class/dmi/id)")}
    return {"device.serial": Unknown("firmware reports no serial number")}


COLLECTOR = Collector(
    "linux-os", ("os.name", "os.distro", "os.version", "os.build", "os.kernel", "os.arch"), _collect
)
SERIAL = Collector("linux-serial", ("device.serial",), _serial)
