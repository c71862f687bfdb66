"""Benchmark: tunnel up/down through the helper vs bare wg-quick, throughput vs bare veth.

Run as root: ``.venv/bin/python -m tests.bench.bench_tunnel`` (≈ 40 s). Builds the
namespace test bed (tests/wg_backends/testbed.py), runs a real helper in the client
namespace, and prints medians and ratios. Numbers only; nothing here gates a test.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.wg_backends.helperproc import start_helper
from tests.wg_backends.testbed import TestBed, make_testbed, run
from wg_backends.helper.client import HelperClient
from wg_backends.render import write_config

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 8
IPERF_SECONDS = 4


def median_ms(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:7.1f} ms"


async def helper_cycles(bed: TestBed, socket: Path) -> tuple[list[float], list[float]]:
    ups, downs = [], []
    async with HelperClient(socket) as client:
        for i in range(ROUNDS):
            spec = bed.client_spec(interface=f"rtwb{bed.tag}{i}")
            t = time.perf_counter()
            await client.up(spec)
            ups.append(time.perf_counter() - t)
            t = time.perf_counter()
            await client.down(spec.interface)
            downs.append(time.perf_counter() - t)
    return ups, downs


def wg_quick_cycles(bed: TestBed) -> tuple[list[float], list[float]]:
    ups, downs = [], []
    conf_dir = bed.workdir / "direct"
    for i in range(ROUNDS):
        path = write_config(bed.client_spec(interface=f"rtwd{bed.tag}{i}"), conf_dir)
        t = time.perf_counter()
        run(["wg-quick", "up", str(path)], ns=bed.client_ns)
        ups.append(time.perf_counter() - t)
        t = time.perf_counter()
        run(["wg-quick", "down", str(path)], ns=bed.client_ns)
        downs.append(time.perf_counter() - t)
    return ups, downs


def iperf(bed: TestBed, target: str) -> float:
    """Client → gateway TCP throughput in Mbit/s (iperf3 server in the gateway namespace)."""
    out = run(["iperf3", "-c", target, "-t", str(IPERF_SECONDS), "-J"], ns=bed.client_ns,
              timeout=IPERF_SECONDS + 30).stdout  # fmt: skip
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e6


def main() -> int:
    with make_testbed() as bed:
        hp = start_helper(bed.workdir / "helper", netns=bed.client_ns)
        try:
            h_up, h_down = asyncio.run(helper_cycles(bed, hp.socket))
            w_up, w_down = wg_quick_cycles(bed)
            print(f"tunnel up/down, {ROUNDS} rounds each (median)")
            print(
                f"  up   via helper     {median_ms(h_up)}   bare wg-quick {median_ms(w_up)}"
                f"   ratio {statistics.median(h_up) / statistics.median(w_up):.2f}x"
            )
            print(
                f"  down via helper     {median_ms(h_down)}   bare wg-quick {median_ms(w_down)}"
                f"   ratio {statistics.median(h_down) / statistics.median(w_down):.2f}x"
            )

            server = subprocess.Popen(
                ["ip", "netns", "exec", bed.gateway_ns, "iperf3", "-s"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(0.5)
                veth = iperf(bed, "10.231.0.1")

                async def through_tunnel() -> float:
                    async with HelperClient(hp.socket) as client:
                        await client.up(bed.client_spec())
                        try:
                            return await asyncio.to_thread(iperf, bed, "10.232.0.1")
                        finally:
                            await client.down(bed.client_if)

                tunnel = asyncio.run(through_tunnel())
            finally:
                server.terminate()
                server.wait(5)
            print(f"throughput, iperf3 TCP {IPERF_SECONDS} s client → gateway")
            print(f"  bare veth          {veth:9.0f} Mbit/s")
            print(f"  wireguard-go tunnel {tunnel:8.0f} Mbit/s   ratio {tunnel / veth:.3f}")
        finally:
            hp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
