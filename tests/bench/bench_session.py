"""Session benchmark on the real test bed (root): connect → first byte, and withdrawal.

- connect: from the engine's ``connect()`` (asked over its control socket, already
  signed in and enrolled, so no browser) to the first HTTP byte from the wiki through the
  proxy and the WireGuard tunnel. Target ≤ 1.5 s.
- withdraw: from the admin's revoke call to the proxy refusing the wiki. Target ≤ 2 s.
- peer: a bare ``wg-quick up`` of the same kind of tunnel on the same bed, the floor any
  client pays for bringing WireGuard up here.

Prints medians; timings never gate tests. Run: sudo .venv/bin/python -m tests.bench.bench_session
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time

import httpx

from controller.demo.bed import make_bed, run
from controller.demo.harness import Session, session
from core.engine.localapi.client import RemoteEngine

ROUNDS = 5
WIKI = "http://wiki.corp.example/"


def _ok(s: Session) -> bool:
    r = s.curl(WIKI, timeout=2)
    return r.returncode == 0 and r.stdout.endswith("200")


async def _until(predicate, within: float = 10) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    while not await asyncio.to_thread(predicate):
        if time.perf_counter() - start > within:
            raise TimeoutError("not within the limit")
        await asyncio.sleep(0.02)
    return time.perf_counter() - start


async def connect_rounds() -> tuple[list[float], float]:
    times: list[float] = []
    with make_bed() as bed:
        async with session(bed) as s:
            await s.wait_state("connected", "degraded")
            client = await RemoteEngine.attach(s.control_socket, client="bench")
            for _ in range(ROUNDS):
                await client.disconnect()
                start = time.perf_counter()
                await client.connect()
                await _until(lambda: _ok(s))
                times.append(time.perf_counter() - start)
            await client.disconnect()
            await client.stop()
            # The floor: the same tunnel brought up by plain wg-quick (no helper, no policy).
            conf = bed.workdir / "bare.conf"
            priv = run(["wg", "genkey"]).stdout.strip()
            conf.write_text(
                f"[Interface]\nPrivateKey = {priv}\nAddress = 10.242.0.200/32\n\n"
                f"[Peer]\nPublicKey = {bed.gw_public}\nEndpoint = {bed.gateway_endpoint}\n"
                "AllowedIPs = 10.243.0.0/24\n"
            )
            os.chmod(conf, 0o600)
            start = time.perf_counter()
            run(["wg-quick", "up", str(conf)], ns=bed.client_ns)
            bare = time.perf_counter() - start
            run(["wg-quick", "down", str(conf)], ns=bed.client_ns)
    return times, bare


async def withdraw_once() -> float:
    with make_bed() as bed:
        async with session(bed) as s:
            snap = await s.wait_state("connected", "degraded")
            await _until(lambda: _ok(s))
            async with httpx.AsyncClient(base_url=s.controller.base_url) as http:
                start = time.perf_counter()
                await http.post(
                    f"/v1/admin/devices/{snap['device_id']}/revoke",
                    headers={"Authorization": f"Bearer {s.controller.admin_token}"},
                )
                await _until(lambda: not _ok(s))
                return time.perf_counter() - start


async def main() -> int:
    if os.geteuid() != 0:
        print("bench_session needs root (network namespaces)")
        return 0
    connects, bare = await connect_rounds()
    withdraws = [await withdraw_once() for _ in range(3)]
    c, w = statistics.median(connects), statistics.median(withdraws)
    print(
        f"connect → first byte: median {c * 1000:.0f} ms over {ROUNDS} rounds "
        f"(min {min(connects) * 1000:.0f}, max {max(connects) * 1000:.0f}); target ≤ 1500 ms"
    )
    print(
        f"bare wg-quick up on the same bed: {bare * 1000:.0f} ms "
        f"(connect is {c / bare:.1f}× the bare tunnel)"
    )
    print(
        f"revoke → access withdrawn: median {w * 1000:.0f} ms over 3 beds "
        f"(max {max(withdraws) * 1000:.0f}); target ≤ 2000 ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
