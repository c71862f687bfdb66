"""Windows ``updates.auto``: Windows Update not disabled by policy or service.

Automatic updates are Windows' default; they are off when the policy key
``…\\WindowsUpdate\\AU`` has ``NoAutoUpdate`` = 1 or ``AUOptions`` = 2 ("notify
only"), or when the ``wuauserv`` service is disabled (``sc qc``: ``START_TYPE : 4``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector
from core.posture.errors import ParseError
from core.posture.windows.tools import reg_values

__all__ = ["COLLECTOR", "REG_AU", "SC_QC", "au_policy_allows", "parse_sc_start_type"]

REG_AU = ("reg", "query", r"HKLM\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU")
SC_QC = ("sc.exe", "qc", "wuauserv")

_START = re.compile(r"^\s*START_TYPE\s*:\s*(\d+)", re.MULTILINE)


def au_policy_allows(text: str) -> bool:
    """The AU policy key's values → automatic updates allowed?"""
    values = reg_values(text)
    if values.get("noautoupdate") == 1:
        return False
    return values.get("auoptions") != 2


def parse_sc_start_type(text: str) -> int:
    """``sc qc`` → START_TYPE (2 auto, 3 demand, 4 disabled); raises ``ParseError``."""
    m = _START.search(text)
    if m is None:
        raise ParseError("sc qc: no START_TYPE")
    return int(m.group(1))


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    policy = await ctx.run(REG_AU, ok_codes=(0, 1))
    if policy.ok and not au_policy_allows(policy.stdout):
        return {"updates.auto": False}
    start = parse_sc_start_type((await ctx.run(SC_QC)).stdout)
    return {"updates.auto": start != 4}


COLLECTOR = Collector("windows-updates", ("updates.auto",), _collect)
