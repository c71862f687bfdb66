"""Linux ``updates.auto``: unattended-upgrades (Debian/Ubuntu) or dnf-automatic (Fedora).

On apt systems ``apt-config dump`` gives the merged configuration; automatic updates
are on when ``APT::Periodic::Unattended-Upgrade`` is non-zero and the
``unattended-upgrade`` program is installed. Elsewhere ``systemctl is-enabled
dnf-automatic-install.timer`` decides; anything else is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import ToolMissingError

__all__ = ["COLLECTOR", "apt_periodic"]

APT_CONFIG = ("apt-config", "dump")
DNF_TIMER = ("systemctl", "is-enabled", "dnf-automatic-install.timer")

_LINE = re.compile(r'^(APT::Periodic::[\w-]+)\s+"([^"]*)";$')


def apt_periodic(text: str) -> dict[str, str]:
    """``apt-config dump`` → the ``APT::Periodic::*`` settings (last value wins)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _on(value: str | None) -> bool:
    # APT accepts "1", "true", "yes" (and intervals like "7" for days) as enabled.
    if value is None:
        return False
    v = value.strip().lower()
    return v in ("true", "yes", "on") or (v.isdigit() and int(v) > 0)


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    try:
        result = await ctx.run(APT_CONFIG)
    except ToolMissingError:
        try:
            timer = await ctx.run(DNF_TIMER, ok_codes=range(256))
        except ToolMissingError:
            return {"updates.auto": Unknown("neither apt nor systemd found")}
        state = timer.stdout.strip()
        if state in ("enabled", "disabled", "not-found", "masked", "static"):
            return {"updates.auto": state == "enabled"}
        return {"updates.auto": Unknown(f"systemctl is-enabled: {state[:40]!r}")}
    periodic = apt_periodic(result.stdout)
    installed = ctx.path("/usr/bin/unattended-upgrade").exists()
    return {"updates.auto": installed and _on(periodic.get("APT::Periodic::Unattended-Upgrade"))}


COLLECTOR = Collector("linux-updates", ("updates.auto",), _collect)
