"""macOS ``mdm.enrolled`` (``profiles status -type enrollment``) and ``domain.joined``
(``dsconfigad -show``: empty when not bound to Active Directory)."""

from __future__ import annotations

from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector
from core.posture.errors import ParseError
from core.posture.text import key_values

__all__ = ["COLLECTOR", "DOMAIN", "DSCONFIGAD", "PROFILES", "parse_dsconfigad", "parse_profiles"]

PROFILES = ("profiles", "status", "-type", "enrollment")
DSCONFIGAD = ("dsconfigad", "-show")


def parse_profiles(text: str) -> bool:
    """``MDM enrollment: Yes (User Approved)`` → True, ``No`` → False; else ParseError."""
    value = key_values(text).get("MDM enrollment")
    if value is None:
        raise ParseError("profiles: no 'MDM enrollment' line")
    if value.lower().startswith("yes"):
        return True
    if value.lower().startswith("no"):
        return False
    raise ParseError(f"profiles: MDM enrollment {value[:30]!r}")


def parse_dsconfigad(text: str) -> bool:
    """``dsconfigad -show`` → bound to an AD domain?"""
    return any(
        k.strip() == "Active Directory Domain" and v.strip()
        for k, v in key_values(text, "=").items()
    )


async def _mdm(ctx: CollectContext) -> Mapping[str, Answer]:
    return {"mdm.enrolled": parse_profiles((await ctx.run(PROFILES)).stdout)}


async def _domain(ctx: CollectContext) -> Mapping[str, Answer]:
    return {"domain.joined": parse_dsconfigad((await ctx.run(DSCONFIGAD)).stdout)}


COLLECTOR = Collector("macos-mdm", ("mdm.enrolled",), _mdm)
DOMAIN = Collector("macos-domain", ("domain.joined",), _domain)
