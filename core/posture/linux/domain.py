"""Linux ``domain.joined`` (realmd/SSSD) and ``mdm.enrolled`` (no standard on Linux).

``realm list`` prints one block per configured realm (``domain-name: …``) and nothing
when the machine is not joined.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import ToolMissingError

__all__ = ["COLLECTOR", "realm_joined"]

REALM = ("realm", "list")


def realm_joined(text: str) -> bool:
    """``realm list`` → True when a realm is configured."""
    return any(line.strip().startswith("domain-name:") for line in text.splitlines())


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    mdm = Unknown("Linux has no standard MDM enrollment to read")
    try:
        result = await ctx.run(REALM)
    except ToolMissingError:
        # No realmd: an SSSD configuration still shows a domain join.
        if ctx.path("/etc/sssd/sssd.conf").exists():
            return {"domain.joined": True, "mdm.enrolled": mdm}
        return {"domain.joined": Unknown("realm: not installed"), "mdm.enrolled": mdm}
    return {"domain.joined": realm_joined(result.stdout), "mdm.enrolled": mdm}


COLLECTOR = Collector("linux-domain", ("domain.joined", "mdm.enrolled"), _collect)
