"""Named-process checks: IT's ``process.<name>.running`` and the generic AV/EDR check.

Process names come from psutil (the executable's base name; on Windows with ``.exe``)
and are compared case-insensitively. The AV check looks for well-known agent process
names per OS plus the ones IT adds; ``av.products`` lists the products found running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import psutil

from core.posture.collector import Answer, CollectContext, Collector, PostureConfig, Unknown
from core.wire.posture import process_fact

__all__ = ["AV_PROCESSES", "av_collector", "process_collector", "running_process_names"]

#: Well-known AV/EDR agent process names → product, per OS (lower-case names).
AV_PROCESSES: Mapping[str, Mapping[str, str]] = {
    "linux": {
        "clamd": "ClamAV",
        "falcon-sensor": "CrowdStrike Falcon",
        "wdavdaemon": "Microsoft Defender for Endpoint",
        "sentinel-agent": "SentinelOne",
        "cbagentd": "VMware Carbon Black",
        "savd": "Sophos Anti-Virus",
        "esets_daemon": "ESET",
    },
    "macos": {
        "falcond": "CrowdStrike Falcon",
        "wdavdaemon": "Microsoft Defender for Endpoint",
        "sentinelagent": "SentinelOne",
        "sophosscand": "Sophos",
        "esets_daemon": "ESET",
    },
    "windows": {
        "msmpeng.exe": "Microsoft Defender Antivirus",
        "csfalconservice.exe": "CrowdStrike Falcon",
        "sentinelagent.exe": "SentinelOne",
        "savservice.exe": "Sophos",
        "ekrn.exe": "ESET",
    },
}


def running_process_names() -> frozenset[str]:
    """Lower-cased names of all processes visible to this user (blocking; psutil)."""
    names: set[str] = set()
    for proc in psutil.process_iter(["name"]):
        name = proc.info.get("name")
        if isinstance(name, str) and name:
            names.add(name.lower())
    return frozenset(names)


def _process_facts(config: PostureConfig) -> tuple[str, ...]:
    return tuple(process_fact(p) for p in config.processes)


async def _processes(ctx: CollectContext) -> Mapping[str, Answer]:
    if not ctx.config.processes:
        return {}  # nothing configured: skip the process scan
    running = await asyncio.to_thread(running_process_names)
    if not running:
        return {n: Unknown("cannot list processes") for n in _process_facts(ctx.config)}
    return {process_fact(p): p.lower() in running for p in ctx.config.processes}


def process_collector() -> Collector:
    """IT's ``process.<name>.running`` checks (names from ``PostureConfig.processes``)."""
    return Collector("processes", (), _processes, cheap=False, facts_of=_process_facts)


def av_collector(os_name: str) -> Collector:
    """The generic AV/EDR check by known agent process names for ``os_name``."""
    known = AV_PROCESSES.get(os_name, {})

    def table(config: PostureConfig) -> dict[str, str]:
        extra = {p.lower(): p for p in config.av_processes}
        return {**known, **extra}

    async def _av(ctx: CollectContext) -> Mapping[str, Answer]:
        running = await asyncio.to_thread(running_process_names)
        if not running:
            return {"av.running": Unknown("cannot list processes")}
        products = sorted(
            {product for name, product in table(ctx.config).items() if name in running}
        )
        return {"av.running": bool(products), "av.products": products}

    return Collector("av-processes", ("av.running", "av.products"), _av)
