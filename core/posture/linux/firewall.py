"""Linux ``firewall.enabled``: does the kernel filter inbound traffic?

The kernel's nftables rule set is the truth (``nft -j list ruleset``; ufw and firewalld
write into it): filtering is on when a ``filter`` chain on the ``input`` hook has policy
drop, or reaches (directly or by jump/goto) a drop or reject verdict. Rules loaded with
iptables-legacy do not show in nft, so when nft finds none ``iptables -S`` is asked
too; ``ufw status`` and ``firewall-cmd --state`` are last resorts (no nft, no root).
The first probe that says "on" wins; "off" needs at least one probe that could look.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import CommandError, ParseError, ToolFailedError

__all__ = ["COLLECTOR", "iptables_filters_input", "nft_filters_input", "ufw_active"]

NFT = ("nft", "-j", "list", "ruleset")
IPTABLES = ("iptables", "-S")
UFW = ("ufw", "status")
FIREWALLD = ("firewall-cmd", "--state")

_BLOCKING_XT = {"DROP", "REJECT"}


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a nested JSON expression."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def nft_filters_input(text: str) -> bool:
    """``nft -j list ruleset`` → True when inbound traffic is filtered. Raises ParseError."""
    try:
        items = json.loads(text)["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"nft JSON: {exc}") from exc
    if not isinstance(items, list):
        raise ParseError("nft JSON: 'nftables' is not a list")
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[Any]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(chain := item.get("chain"), dict):
            key = (str(chain.get("family")), str(chain.get("table")), str(chain.get("name")))
            chains[key] = chain
        elif isinstance(rule := item.get("rule"), dict):
            key = (str(rule.get("family")), str(rule.get("table")), str(rule.get("chain")))
            rules.setdefault(key, []).append(rule.get("expr", []))

    def blocks(key: tuple[str, str, str], seen: set[tuple[str, str, str]]) -> bool:
        if key in seen:
            return False
        seen.add(key)
        for expr in rules.get(key, []):
            for k, v in _walk(expr):
                if k in ("drop", "reject"):
                    return True
                if k == "xt" and isinstance(v, dict) and str(v.get("name")) in _BLOCKING_XT:
                    return True
                if (
                    k in ("jump", "goto")
                    and isinstance(v, dict)
                    and "target" in v
                    and blocks((key[0], key[1], str(v["target"])), seen)
                ):
                    return True
        return False

    for key, chain in chains.items():
        if chain.get("hook") != "input" or chain.get("type", "filter") != "filter":
            continue
        if key[0] not in ("ip", "ip6", "inet"):
            continue
        if str(chain.get("policy", "accept")).lower() == "drop":
            return True
        if blocks(key, set()):
            return True
    return False


def iptables_filters_input(text: str) -> bool:
    """``iptables -S`` → True when INPUT's policy is DROP or any rule drops/rejects."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or not all(ln[0] in ("-P", "-N", "-A") for ln in lines):
        raise ParseError("iptables -S output has unexpected lines")
    for ln in lines:
        if ln[:3] == ["-P", "INPUT", "DROP"]:
            return True
        if ln[0] == "-A" and "-j" in ln:
            target = ln[ln.index("-j") + 1] if ln.index("-j") + 1 < len(ln) else ""
            if target in _BLOCKING_XT:
                return True
    return False


def ufw_active(text: str) -> bool:
    """``ufw status`` → active? Only the English first line is stable; raises ParseError."""
    first = text.strip().splitlines()[0].lower() if text.strip() else ""
    if first == "status: active":
        return True
    if first == "status: inactive":
        return False
    raise ParseError(f"ufw status: {first[:60]!r}")


async def _nft(ctx: CollectContext) -> bool:
    return nft_filters_input((await ctx.run(NFT)).stdout)


async def _iptables(ctx: CollectContext) -> bool:
    return iptables_filters_input((await ctx.run(IPTABLES)).stdout)


async def _ufw(ctx: CollectContext) -> bool:
    return ufw_active((await ctx.run(UFW)).stdout)


async def _firewalld(ctx: CollectContext) -> bool:
    # firewall-cmd --state: "running" (exit 0) or "not running" (exit 252).
    result = await ctx.run(FIREWALLD, ok_codes=(0, 252))
    state = result.stdout.strip() or result.stderr.strip()
    if state == "running":
        return True
    if state == "not running":
        return False
    raise ParseError(f"firewall-cmd --state: {state[:60]!r}")


_PROBES: tuple[Callable[[CollectContext], Awaitable[bool]], ...] = (
    _nft,
    _iptables,
    _ufw,
    _firewalld,
)


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    reasons: list[str] = []
    saw_off = False
    for probe in _PROBES:
        try:
            on = await probe(ctx)
        except ToolFailedError as exc:
            reasons.append(f"{exc.tool}: {exc}")
            continue
        except CommandError as exc:
            reasons.append(f"{exc.tool}: {exc}")
            continue
        except ParseError as exc:
            reasons.append(str(exc))
            continue
        if on:
            return {"firewall.enabled": True}
        saw_off = True
    if saw_off:
        return {"firewall.enabled": False}
    return {"firewall.enabled": Unknown("; ".join(reasons) or "no firewall tool answered")}


COLLECTOR = Collector("linux-firewall", ("firewall.enabled",), _collect, cheap=True)
