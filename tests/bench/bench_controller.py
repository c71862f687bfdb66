"""Benchmark of the reference controller: medians of its API calls next to their floors.

Run: ``.venv/bin/python -m tests.bench.bench_controller``. Compared side by side in the
same run: discovery vs a bare Starlette/uvicorn endpoint answering the same bytes (the
HTTP stack's floor), bundle issuing (build + validate + sign) vs a raw Ed25519 signature
of the same payload (the crypto floor), and the full posture round trip. Prints medians
and ratios; timings never gate anything.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from controller.testing import listen_socket, login, run_controller, serve_app
from core.controlplane import BearerAuth, ControlPlaneClient
from tests.controller.conftest import new_device

N = 150
RULES = 100


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


async def _time(n: int, fn) -> float:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t0)
    return _median_us(out)


async def main() -> None:
    async with run_controller(sensitive_rate_per_min=100_000) as rc:
        async with httpx.AsyncClient(
            base_url=rc.base_url, headers={"Authorization": f"Bearer {rc.admin_token}"}
        ) as admin:
            for i in range(RULES):
                await admin.put(
                    f"/v1/admin/resources/r{i}",
                    json={
                        "id": f"r{i}",
                        "name": f"R{i}",
                        "cidrs": [f"10.{i}.0.0/16"],
                        "ports": [443],
                    },
                )
                await admin.put(
                    f"/v1/admin/rules/rule{i}",
                    json={
                        "id": f"rule{i}",
                        "effect": "allow",
                        "resources": [f"r{i}"],
                        "priority": i,
                        "conditions": {
                            "kind": "fact",
                            "fact": "posture.disk.encrypted",
                            "op": "eq",
                            "value": True,
                        },
                    },
                )
        tokens = await login(rc, "alice", "alice-password")
        keys = new_device()
        async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as c:
            dev = (await c.enroll(keys.enroll_request())).device_id
            async with httpx.AsyncClient() as h:
                raw_disc = (await h.get(f"{rc.base_url}/.well-known/rustronaut")).content

            async def posture() -> None:
                n = await c.posture_nonce(dev)
                await c.submit_posture(dev, keys.report(dev, n.nonce))

            await posture()
            disc = await _time(N, c.discovery)
            bundle = await _time(N // 3, lambda: c.fetch_bundle(dev))
            post = await _time(N // 3, posture)

        # Floor: a bare endpoint answering the same bytes through the same stack.
        async def bare(request):  # type: ignore[no-untyped-def]
            return Response(raw_disc, media_type="application/json")

        sock = listen_socket("127.0.0.1", 0)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        async with serve_app(Starlette(routes=[Route("/", bare)]), sock), httpx.AsyncClient() as h:
            floor = await _time(N, lambda: h.get(url))
        sock.close()

        # Crypto: issuing a bundle in-process vs signing its payload with raw Ed25519.
        from core.wire.policy import encode_bundle

        svc = rc.service
        from controller.tokens import Identity

        ident = Identity(
            rc.issuer, "alice", "alice@example.com", "alice@example.com", ("engineering",), None
        )
        t = []
        for _ in range(N // 3):
            t0 = time.perf_counter()
            svc.bundle(ident, dev)
            t.append(time.perf_counter() - t0)
        issue = _median_us(t)
        from core.wire.policy import PolicyBundle, UserInfo

        payload = encode_bundle(
            PolicyBundle(
                version=1,
                device_id=dev,
                issued_at=1,
                expires_at=2,
                user=UserInfo(subject="a"),
                resources=tuple(svc.resources()),
                rules=tuple(svc.rules()),
            )
        )
        _, key = svc.keys.current
        t = []
        for _ in range(N):
            t0 = time.perf_counter()
            key.sign(payload)
            t.append(time.perf_counter() - t0)
        raw_sign = _median_us(t)

    print(f"controller bench ({RULES} resources + rules, bundle {len(payload)} bytes payload)")
    print(
        f"  GET discovery            {disc:9.0f} us   bare endpoint {floor:7.0f} us"
        f"   ratio {disc / floor:5.2f}x"
    )
    print(f"  GET bundle (HTTP)        {bundle:9.0f} us")
    print(
        f"  issue bundle in-process  {issue:9.0f} us   raw Ed25519 sign {raw_sign:7.0f} us"
        f"   ratio {issue / raw_sign:5.1f}x"
    )
    print(f"  posture nonce+submit     {post:9.0f} us   (two requests, verify + evaluate)")


if __name__ == "__main__":
    asyncio.run(main())
