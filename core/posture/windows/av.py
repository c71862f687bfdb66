"""Windows ``av.running``/``av.products`` from Security Center (``root/SecurityCenter2``).

Each ``AntiVirusProduct`` has a ``productState`` bit field; bit 0x1000 (the "10"/"11" in
the middle byte of its hex form) means real-time protection is on. Windows Server has
no Security Center: then the generic named-process check answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector
from core.posture.common.processes import AV_PROCESSES, running_process_names
from core.posture.errors import CommandError, ParseError
from core.posture.windows.tools import powershell, ps_json_objects

__all__ = ["COLLECTOR", "SECURITY_CENTER", "parse_security_center"]

SECURITY_CENTER = powershell(
    "Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct"
    " | Select-Object displayName,productState | ConvertTo-Json -Compress"
)

_ENABLED_BIT = 0x1000


def parse_security_center(text: str) -> list[str]:
    """Security Center JSON → names of the products with real-time protection on.

    Raises ``ParseError`` on malformed entries.
    """
    enabled: list[str] = []
    for item in ps_json_objects(text):
        name, state = item.get("displayName"), item.get("productState")
        if not isinstance(name, str) or not isinstance(state, int) or isinstance(state, bool):
            raise ParseError(f"AntiVirusProduct entry: {item!r}"[:120])
        if state & _ENABLED_BIT:
            enabled.append(name)
    return sorted(set(enabled))


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    try:
        products = parse_security_center((await ctx.run(SECURITY_CENTER)).stdout)
    except CommandError:
        running = await asyncio.to_thread(running_process_names)
        known = AV_PROCESSES["windows"]
        extra = {p.lower(): p for p in ctx.config.av_processes}
        products = sorted({prod for n, prod in {**known, **extra}.items() if n in running})
    return {"av.running": bool(products), "av.products": products}


COLLECTOR = Collector("windows-av", ("av.running", "av.products"), _collect)
