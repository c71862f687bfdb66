"""Windows ``firewall.enabled``: every profile (domain, private, public) on.

``netsh advfirewall show allprofiles state`` prints, per profile, a dashed rule and then
one ``State  ON`` line — label and value localized (``Status  EIN``, ``État  Actif``).
The parser takes the last word of the line after each dashed rule and reads it against
a table of on/off words; an unknown word falls back to ``Get-NetFirewallProfile``.
One profile off means off: the device may be on that profile's network right now.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector
from core.posture.errors import ParseError
from core.posture.text import fold
from core.posture.windows.tools import powershell, ps_json_objects

__all__ = ["COLLECTOR", "NETSH", "parse_net_firewall_profile", "parse_netsh_state"]

NETSH = ("netsh", "advfirewall", "show", "allprofiles", "state")
GET_PROFILE = powershell(
    "Get-NetFirewallProfile | Select-Object Name,"
    "@{n='Enabled';e={[string]$_.Enabled}} | ConvertTo-Json -Compress"
)

#: Folded state words per language (en, de, fr, es, it, nl, pt).
ON_WORDS = frozenset({"on", "ein", "actif", "active", "activo", "activado", "attivo", "aan"})
OFF_WORDS = frozenset(
    {"off", "aus", "inactif", "inactive", "inactivo", "desactivado", "disattivo", "uit"}
)
_RULE = re.compile(r"^-{20,}\s*$")


def parse_netsh_state(text: str) -> bool:
    """netsh's three profile states → all on? Raises ``ParseError`` on anything odd."""
    lines = [ln.rstrip() for ln in text.splitlines()]
    states: list[bool] = []
    for i, line in enumerate(lines):
        if not _RULE.match(line) or i + 1 >= len(lines):
            continue
        words = lines[i + 1].split()
        if len(words) < 2:
            raise ParseError(f"netsh: no state after a profile header: {lines[i + 1]!r}")
        word = fold(words[-1])
        if word in ON_WORDS:
            states.append(True)
        elif word in OFF_WORDS:
            states.append(False)
        else:
            raise ParseError(f"netsh: state word {words[-1]!r} not recognised")
    if len(states) != 3:
        raise ParseError(f"netsh: expected 3 profiles, found {len(states)}")
    return all(states)


def parse_net_firewall_profile(text: str) -> bool:
    """Our ``Get-NetFirewallProfile`` JSON → all profiles on? Raises ``ParseError``.

    ``NotConfigured`` means the default, which is on.
    """
    items = ps_json_objects(text)
    if not items:
        raise ParseError("Get-NetFirewallProfile returned no profiles")
    states = []
    for item in items:
        enabled = item.get("Enabled")
        if enabled not in ("True", "False", "NotConfigured"):
            raise ParseError(f"Get-NetFirewallProfile: Enabled={enabled!r}")
        states.append(enabled != "False")
    return all(states)


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    result = await ctx.run(NETSH)
    try:
        return {"firewall.enabled": parse_netsh_state(result.stdout)}
    except ParseError:
        pass
    ps = await ctx.run(GET_PROFILE)
    return {"firewall.enabled": parse_net_firewall_profile(ps.stdout)}


COLLECTOR = Collector("windows-firewall", ("firewall.enabled",), _collect, cheap=True)
