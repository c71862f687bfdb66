"""Windows ``domain.joined`` (``dsregcmd /status``) and ``mdm.enrolled`` (registry).

``dsregcmd`` labels are not localized: ``DomainJoined : YES`` (Active Directory) or
``AzureAdJoined : YES`` (Entra ID) mean joined. MDM enrollment shows as an
``Enrollments\\<guid>`` key whose ``ProviderID`` is ``MS DM Server`` (Intune and every
MDM speaking the Windows MDM protocol).
"""

from __future__ import annotations

from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector
from core.posture.errors import ParseError
from core.posture.text import key_values
from core.posture.windows.tools import parse_reg_query

__all__ = ["COLLECTOR", "DSREGCMD", "MDM", "REG_ENROLLMENTS", "mdm_enrolled", "parse_dsregcmd"]

DSREGCMD = ("dsregcmd", "/status")
REG_ENROLLMENTS = ("reg", "query", r"HKLM\SOFTWARE\Microsoft\Enrollments", "/s", "/v", "ProviderID")


def parse_dsregcmd(text: str) -> bool:
    """``dsregcmd /status`` → joined to AD or Entra ID? Raises ``ParseError``."""
    kv = {k.strip(): v.strip().upper() for k, v in key_values(text).items()}
    if "DomainJoined" not in kv and "AzureAdJoined" not in kv:
        raise ParseError("dsregcmd: no DomainJoined/AzureAdJoined")
    return kv.get("DomainJoined") == "YES" or kv.get("AzureAdJoined") == "YES"


def mdm_enrolled(text: str) -> bool:
    """``reg query …\\Enrollments /s /v ProviderID`` → an MDM enrollment exists?"""
    for values in parse_reg_query(text).values():
        for name, value in values.items():
            if name.lower() == "providerid" and value == "MS DM Server":
                return True
    return False


async def _domain(ctx: CollectContext) -> Mapping[str, Answer]:
    return {"domain.joined": parse_dsregcmd((await ctx.run(DSREGCMD)).stdout)}


async def _mdm(ctx: CollectContext) -> Mapping[str, Answer]:
    # reg query /s exits 1 when no value matched: not enrolled.
    enroll = await ctx.run(REG_ENROLLMENTS, ok_codes=(0, 1))
    return {"mdm.enrolled": enroll.ok and mdm_enrolled(enroll.stdout)}


COLLECTOR = Collector("windows-domain", ("domain.joined",), _domain)
MDM = Collector("windows-mdm", ("mdm.enrolled",), _mdm)
