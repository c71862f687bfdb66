"""Benchmark: WireGuard over the mTLS relay against direct UDP WireGuard, side by side.

Run as root: ``bash scripts/bench.sh relay`` (or ``.venv/bin/python -m
tests.bench.bench_relay``; about 3 minutes, ``--quick`` about 1). Builds the namespace bed
with two relays (controller/demo/bed.py), runs the whole session (controller, relays,
helper, engine) and, in interleaved rounds (the order alternates every round), measures
the same tunnel two ways: ``udp`` (WireGuard straight to the gateway) and ``relay`` (the
client's UDP dropped by ``block_udp``, the helper bridging WireGuard over TLS to a relay,
which forwards to the gateway over UDP). Between the two the bed switches UDP off or on
and waits until the helper reports the transport (the helper runs with short fallback
timings, ``RUSTRONAUT_RELAY_TIMINGS`` below, so a round does not wait 15 s for UDP).

Measured from a worker in the client namespace against two servers beside the wiki
(10.243.0.10, ports inside its resource; the servers of ``bench_transparent``), on the
decider's own path (a socket with the decider's mark, bound to the tunnel interface: the
tunnel alone, no proxy in front; the SOCKS5 path when enforcement is off):

- connection setup: ``socket()`` to the server's first byte, p50/p99 of N connections;
- bulk: one ``--bulk-mb`` MB download over one TCP connection, Mbit/s;
- CPU: user+system seconds per GB of that download, from ``/proc/<pid>/stat`` before and
  after it, for the relay process in use, the helper (the bridge: TLS and the local UDP
  endpoint) and the client's wireguard-go.

Printed: median over rounds [min-max], the ratios relay/udp taken within each round
(the VM's speed drifts) and their median, the load average before and during the run.
Numbers only; nothing here gates a test. The worker is one Python process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from controller.demo.bed import Bed, make_bed, ns_pids
from tests.bench.bench_transparent import (
    _SERVERS,
    BULK_PORT,
    GREET_PORT,
    TARGET,
    _bulk,
    _pct,
    _setup,
    decider_mark,
)

ROOT = Path(__file__).resolve().parents[2]
MODES = ("udp", "relay")
#: udp_grace, udp_retry, probe_window (s): short, so each switch back to UDP is quick.
TIMINGS = "2,4,2"
TICK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------- worker (client ns)


def worker(args: argparse.Namespace) -> int:
    """One measurement (``setup`` or ``bulk``) on ``args.path``; JSON on stdout."""
    if args.worker == "setup":
        times, failures = _setup(args.path, args)
        print(json.dumps({"times": times, "failures": failures[:3], "failed": len(failures)}))
    else:
        t = time.perf_counter()
        mbps = _bulk(args.path, args)
        print(json.dumps({"mbps": mbps, "seconds": time.perf_counter() - t}))
    return 0


# --------------------------------------------------------------------- driver (host)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of ``pid`` so far (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15)


def wireguard_go_pid(bed: Bed) -> int | None:
    """The client's wireguard-go process (in the client namespace)."""
    for pid in ns_pids(bed.client_ns):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"wireguard-go" in cmd[0] and bed.client_if.encode() in cmd:
            return pid
    return None


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _run_worker(bed: Bed, what: str, extra: list[str]) -> dict[str, Any]:
    argv = [sys.executable, "-m", "tests.bench.bench_relay", "--worker", what, *extra]
    proc = subprocess.run(
        ["ip", "netns", "exec", bed.client_ns, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {what} failed: {proc.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


async def _measure(bed: Bed, args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    from controller.demo.harness import session  # the engine stack only for the driver

    server = bed.spawn(
        [sys.executable, "-I", "-c", _SERVERS, TARGET, str(GREET_PORT), str(BULK_PORT),
         str(args.bulk_mb << 20)],
        ns=bed.server_ns, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert server.stdout is not None
    await asyncio.to_thread(server.stdout.readline)  # "ready"
    keys = ("p50", "p99", "mbps", "failed", "relay_cpu_gb", "helper_cpu_gb", "wg_cpu_gb")
    out: dict[str, dict[str, list[float]]] = {m: {k: [] for k in keys} for m in MODES}
    async with session(bed, helper_env={"RUSTRONAUT_RELAY_TIMINGS": TIMINGS}) as s:
        await s.wait_state("connected", "degraded")
        await s.wait_transport("udp", within=20)
        try:
            mark, path = decider_mark(bed), "direct"
        except RuntimeError:
            mark, path = 0, "socks5"
        print(f"  path measured: {path}; load average before: {_loadavg()}")
        extra = ["--path", path, "--mark", str(mark), "--iface", bed.client_if,
                 "--proxy-port", str(s.proxy_port), "--connections", str(args.connections),
                 "--bulk-mb", str(args.bulk_mb)]  # fmt: skip
        wg_pid = wireguard_go_pid(bed)
        for r in range(args.rounds):
            order = MODES if r % 2 == 0 else MODES[::-1]
            for mode in order:
                t = time.monotonic()
                if mode == "relay":
                    await asyncio.to_thread(bed.block_udp)
                    transport = await s.wait_transport("relay", within=30)
                else:
                    await asyncio.to_thread(bed.allow_udp)
                    transport = await s.wait_transport("udp", within=60)
                switch = time.monotonic() - t
                relay_pid = None
                if transport.relay is not None and mode == "relay":
                    index = int(transport.relay.removeprefix("relay"))
                    relay_pid = bed.relay_pid(index)
                setup = await asyncio.to_thread(_run_worker, bed, "setup", extra)
                if not setup["times"]:
                    raise RuntimeError(f"{mode}: every connection failed: {setup['failures']}")
                pids = (relay_pid, s.helper.pid, wg_pid)
                before = [cpu_seconds(p) for p in pids]
                bulk = await asyncio.to_thread(_run_worker, bed, "bulk", extra)
                after = [cpu_seconds(p) for p in pids]
                gb = (args.bulk_mb << 20) / 1e9
                row = out[mode]
                row["p50"].append(_pct(setup["times"], 0.5))
                row["p99"].append(_pct(setup["times"], 0.99))
                row["failed"].append(setup["failed"])
                row["mbps"].append(bulk["mbps"])
                for key, b, a in zip(keys[4:], before, after, strict=True):
                    row[key].append((a - b) / gb)
                print(
                    f"  round {r + 1}/{args.rounds} {mode:<5} (switched in {switch:4.1f} s, "
                    f"{transport.relay or 'udp'}): setup p50 {row['p50'][-1] * 1000:6.2f} ms, "
                    f"bulk {bulk['mbps']:6.0f} Mbit/s, load {_loadavg()}",
                    flush=True,
                )
        print(f"  load average after: {_loadavg()}")
    return out


def _fmt(xs: list[float], scale: float, unit: str, width: int = 7) -> str:
    med = statistics.median(xs) * scale
    return f"{med:{width}.2f} {unit} [{min(xs) * scale:.2f}-{max(xs) * scale:.2f}]"


def report(res: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    """The table and the relay/udp ratios."""
    print(
        f"WireGuard over the relay vs direct UDP, same tunnel: {args.rounds} interleaved "
        f"rounds, {args.connections} connections and one {args.bulk_mb} MB download per "
        "transport per round; median over rounds [min-max]"
    )
    print(f"  {'transport':<10} {'setup p50':>24} {'setup p99':>24} {'bulk':>30}")
    for m in MODES:
        r = res[m]
        print(
            f"  {m:<10} {_fmt(r['p50'], 1000, 'ms'):>24} {_fmt(r['p99'], 1000, 'ms'):>24} "
            f"{_fmt(r['mbps'], 1, 'Mbit/s', 8):>30}"
        )
    total = args.rounds * args.connections
    print(
        "  failed connections: "
        + ", ".join(f"{m} {int(sum(res[m]['failed']))}/{total}" for m in MODES)
    )
    print("  CPU seconds per GB downloaded (user+system), median [min-max]:")
    for m in MODES:
        r = res[m]
        relay = _fmt(r["relay_cpu_gb"], 1, "s") if m == "relay" else "      -"
        print(
            f"  {m:<10} relay {relay}   helper (bridge) {_fmt(r['helper_cpu_gb'], 1, 's')}"
            f"   wireguard-go {_fmt(r['wg_cpu_gb'], 1, 's')}"
        )

    def ratio(key: str) -> str:
        xs = [a / b for a, b in zip(res["relay"][key], res["udp"][key], strict=True) if b]
        return _fmt(xs, 1, "x", 5) if xs else "n/a"

    print("  ratios relay / udp per round, median [min-max]:")
    print(f"  setup p50 {ratio('p50')}   setup p99 {ratio('p99')}   bulk {ratio('mbps')}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (root), or one worker measurement inside the client namespace."""
    p = argparse.ArgumentParser(prog="python -m tests.bench.bench_relay")
    p.add_argument("--worker", choices=("setup", "bulk"), help=argparse.SUPPRESS)
    p.add_argument("--path", default="direct", help=argparse.SUPPRESS)
    p.add_argument("--proxy-port", type=int, default=9080, help=argparse.SUPPRESS)
    p.add_argument("--mark", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--iface", default="", help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--connections", type=int, default=100, help="per transport per round")
    p.add_argument("--bulk-mb", type=int, default=48)
    p.add_argument("--quick", action="store_true", help="2 rounds, 20 connections, 8 MB")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.connections, args.bulk_mb = 2, 20, 8
    if args.worker:
        return worker(args)
    if os.geteuid() != 0:
        print("needs root (network namespaces and WireGuard): sudo bash scripts/bench.sh relay")
        return 2
    started = time.monotonic()
    with make_bed(relays=2) as bed:
        res = asyncio.run(_measure(bed, args))
    report(res, args)
    print(f"  (whole run {time.monotonic() - started:.0f} s, bed and session included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
