"""Linux ``domain.joined`` (realmd/SSSD) and ``mdm.enrolled`` (no standard on Linux).

``realm list`` prints one block per configured realm (``domain-name: …``) and nothing
when the machine is not joined.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import ToolMissingError

__all__ = ["COLLECTOR", "realm_joined"]

REALM = ("realm", "list")


def realm_joined(text: str) -> bool:
    """``realm list`` → True when a realm is configured."""
    return any(line.strip().startswith("domain-name:") for line in text.splitlines())


def _sssd(ctx: CollectContext) -> Answer:
    """Without realmd, an SSSD domain with the AD or IPA provider shows a join."""
    try:
        conf = ctx.path("/etc/sssd/sssd.conf").read_text(errors="replace")
    except FileNotFoundError:
        return Unknown("realm: not installed; no SSSD configuration")
    except OSError as exc:
        return Unknown(f"realm: not installed; sssd.conf: {exc.strerror}")
    if re.search(r"(?m)^\s*id_provider\s*=\s*(ad|ipa)\s*$", conf):
        return True
    return Unknown("realm: not installed; SSSD has no AD/IPA domain")


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    mdm = Unknown("Linux has no standard MDM enrollment to read")
    try:
        result = await ctx.run(REALM)
    except ToolMissingError:
        return {"domain.joined": _sssd(ctx), "mdm.enrolled": mdm}
    return {"domain.joined": realm_joined(result.stdout), "mdm.enrolled": mdm}


COLLECTOR = Collector("linux-domain", ("domain.joined", "mdm.enrolled"), _collect)
