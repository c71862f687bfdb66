"""Posture benchmark: a full Linux collection and one watcher tick, on this machine.

Prints medians. Peers in the same run: the same OS tools run one after another with
``subprocess.run`` (what a naïve sequential collector costs), and a watcher tick vs the
full collection. Also the parse time of the captured Windows/macOS outputs.
Run: ``.venv/bin/python -m tests.bench.bench_posture`` (about 20 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.posture.collector import CollectContext, collect
from core.posture.factory import collectors_for
from core.posture.linux import disk, firewall, screen_lock, secure_boot, updates
from core.posture.monitor import PostureMonitor
from core.posture.runner import SubprocessRunner
from core.posture.windows import bitlocker
from core.posture.windows import firewall as win_firewall

DATA = Path(__file__).resolve().parents[1] / "data" / "posture"
ROUNDS = 15


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def _time(fn: Callable[[], Awaitable[object]], rounds: int = ROUNDS) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t0)
    return out


def _sequential_tools() -> None:
    """The peer: the tools a full Linux collection runs, one after another."""
    argvs = [
        disk.FINDMNT,
        ("lsblk", "-J", "-s", "-o", "NAME,TYPE,FSTYPE", "/"),
        firewall.NFT,
        screen_lock.LOCK_ENABLED,
        screen_lock.IDLE_DELAY,
        screen_lock.LOCK_DELAY,
        updates.APT_CONFIG,
        secure_boot.MOKUTIL,
        ("realm", "list"),
    ]
    for argv in argvs:
        with contextlib.suppress(FileNotFoundError):
            subprocess.run(argv, capture_output=True, timeout=10, check=False)


async def main() -> None:
    ctx = CollectContext(runner=SubprocessRunner(), timeout_s=10)
    every = collectors_for("linux")
    monitor = PostureMonitor(
        every, full_interval_s=3600, watch_interval_s=3600, on_change=lambda c: None, context=ctx
    )
    await monitor.refresh()  # warm caches
    full = await _time(lambda: collect(every, ctx))
    tick = await _time(monitor.tick)
    seq = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        await asyncio.to_thread(_sequential_tools)
        seq.append(time.perf_counter() - t0)

    facts = len(await collect(every, ctx))
    cheap = sum(1 for c in every if c.cheap)
    print(f"posture bench ({ROUNDS} rounds, medians)")
    print(f"  full collection ({len(every)} collectors, {facts} facts): {_median_ms(full):8.1f} ms")
    print(f"  watcher tick    ({cheap} cheap collectors):             {_median_ms(tick):8.1f} ms")
    print(f"  peer: same tools run sequentially (subprocess.run): {_median_ms(seq):8.1f} ms")
    print(f"  ratio full / sequential peer: {statistics.median(full) / statistics.median(seq):.2f}")
    print(
        f"  ratio tick / full:            {statistics.median(tick) / statistics.median(full):.2f}"
    )

    samples = {
        "manage-bde (de)": (
            bitlocker.parse_manage_bde,
            (DATA / "windows/manage-bde-status-de-encrypted.txt").read_text(),
        ),
        "netsh (fr)": (
            win_firewall.parse_netsh_state,
            (DATA / "windows/netsh-advfirewall-allprofiles-state-fr-off.txt").read_text(),
        ),
        "nft -j (firewalld)": (
            firewall.nft_filters_input,
            (DATA / "linux/nft-firewalld.json").read_text(),
        ),
    }
    for label, (parse, text) in samples.items():
        n = 2000
        t0 = time.perf_counter()
        for _ in range(n):
            parse(text)
        print(f"  parse {label:<20} {(time.perf_counter() - t0) / n * 1e6:8.1f} µs")


if __name__ == "__main__":
    asyncio.run(main())
