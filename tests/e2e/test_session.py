"""The whole product on real parts: controller + dev OIDC, helper, wg-quick/wireguard-go,
the engine and its proxy, in network namespaces (root). See controller/demo/bed.py."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from controller.demo.bed import Bed, make_bed, ns_pids, run
from controller.demo.harness import Session, session
from core.wire.policy import AppMatch, Rule

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns, pytest.mark.timeout(240)]

WIKI = "http://wiki.corp.example/"
PAYROLL = "http://payroll.corp.example/"


@pytest.fixture
def bed() -> AsyncIterator[Bed]:
    with make_bed() as b:
        yield b  # type: ignore[misc]
    assert not [ns for ns in run(["ip", "netns", "list"]).stdout.split() if b.tag in ns]


def _ok(result: object) -> bool:
    return getattr(result, "returncode", 1) == 0 and getattr(result, "stdout", "").endswith("200")


def _decisions(s: Session, destination: str) -> list[dict[str, object]]:
    return [
        e for e in s.events if e.get("kind") == "decision" and e.get("destination") == destination
    ]


async def _until(predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not await asyncio.to_thread(predicate):
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not within {timeout} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - start


async def _admin(s: Session, method: str, path: str, body: object = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=s.controller.base_url) as http:
        r = await http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {s.controller.admin_token}"}
        )
    assert r.status_code < 300, r.text
    return r


async def test_allowed_and_refused_with_reasons(bed: Bed) -> None:
    deny_socat = Rule(
        id="no-socat-to-wiki",
        effect="deny",
        resources=("wiki",),
        priority=20,
        apps=(AppMatch(name="socat"),),
        description="socat may not reach the wiki",
    )
    async with session(bed, extra_rules=[deny_socat]) as s:
        snap = await s.wait_state("connected", "degraded")
        assert snap["user"] == "alice@example.com"
        assert snap["tunnel"]["interface"] == bed.client_if
        wiki = next(r for r in snap["resources"] if r["name"] == "Corp Wiki")
        assert wiki["reachable"]

        # allowed app, host and port: through SOCKS5 and through HTTP proxying
        socks = await asyncio.to_thread(s.curl, WIKI)
        assert _ok(socks), socks
        assert "through the Rustronaut tunnel" in socks.stdout
        http = await asyncio.to_thread(s.curl, WIKI, socks=False)
        assert _ok(http), http
        allowed = await s.wait_event(
            lambda e: e.get("kind") == "decision" and e.get("effect") == "allow"
        )
        assert allowed["rule"] == "engineering-wiki"
        assert allowed["app"].endswith("curl")

        # a host the user is not entitled to
        payroll = await asyncio.to_thread(s.curl, PAYROLL)
        assert not _ok(payroll)
        denied = await s.wait_event(
            lambda e: (
                e.get("kind") == "decision" and e.get("destination") == "payroll.corp.example:80"
            )
        )
        assert denied["effect"] == "deny"
        assert "payroll" in denied["message"].lower() or "group" in denied["message"].lower()

        # a port outside the resource
        port = await asyncio.to_thread(s.curl, "http://wiki.corp.example:22/")
        assert not _ok(port)
        assert (await s.wait_event(lambda e: e.get("destination") == "wiki.corp.example:22"))[
            "effect"
        ] == "deny"

        # a disallowed app: socat through HTTP CONNECT
        out = run(
            [
                "socat",
                "-T2",
                "-",
                f"PROXY:127.0.0.1:wiki.corp.example:80,proxyport={s.proxy_port}",
            ],
            ns=bed.client_ns,
            check=False,
            input="GET / HTTP/1.0\r\n\r\n",
        )
        assert "through the Rustronaut tunnel" not in out.stdout
        socat = await s.wait_event(
            lambda e: e.get("kind") == "decision" and str(e.get("app", "")).endswith("socat")
        )
        assert socat["effect"] == "deny"
        assert socat["rule"] == "no-socat-to-wiki"


async def test_posture_drift_withdraws_and_restores_access(bed: Bed) -> None:
    async with session(bed) as s:
        await s.wait_state("connected", "degraded")
        assert _ok(await asyncio.to_thread(s.curl, WIKI))
        bed.firewall(False)
        took = await _until(lambda: not _ok(s.curl(WIKI, timeout=2)), timeout=5)
        # Every resource alice may use needs the firewall: "connected, access blocked" with
        # the fix, never "connecting" (which it used to show for as long as it stayed off).
        snap = await s.wait_state("blocked", within=5)
        wiki = next(r for r in snap["resources"] if r["name"] == "Corp Wiki")
        assert not wiki["reachable"]
        assert "firewall" in wiki["fix"].lower()
        bed.firewall(True)
        await _until(lambda: _ok(s.curl(WIKI, timeout=2)), timeout=5)
        print(f"access withdrawn {took:.2f} s after the firewall went off")


async def test_revocation_takes_the_tunnel_down(bed: Bed) -> None:
    async with session(bed) as s:
        snap = await s.wait_state("connected", "degraded")
        assert s.tunnel_exists()
        await _admin(s, "POST", f"/v1/admin/devices/{snap['device_id']}/revoke")
        took = await _until(lambda: not s.tunnel_exists(), timeout=5)
        assert not _ok(await asyncio.to_thread(s.curl, WIKI, timeout=2))
        snap = await s.wait_state("error", within=5)
        assert snap["error"]["title"] == "Device revoked"
        gw_peers = run(["wg", "show", bed.gateway_if, "peers"], ns=bed.gateway_ns).stdout
        assert gw_peers.strip() == ""  # the controller removed the peer too
        print(f"tunnel down {took:.2f} s after revocation")


async def test_offline_keeps_the_cached_bundle_until_it_expires(bed: Bed) -> None:
    async with session(bed, bundle_ttl_s=60) as s:
        await s.wait_state("connected", "degraded")
        s.cut_controller()  # the controller becomes unreachable from the client
        snap = await s.wait_state("offline", within=20)
        expires = snap["policy_expires_at"]  # of the last bundle fetched before the cut
        assert _ok(await asyncio.to_thread(s.curl, WIKI))  # still working on the held bundle
        await _until(lambda: time.time() > expires, timeout=70)
        await _until(lambda: not _ok(s.curl(WIKI, timeout=2)), timeout=5)
        for _ in range(50):  # the snapshot follows the withdrawal within a health tick
            snap = await s.status()
            if snap["policy_version"] is None:
                break
            await asyncio.sleep(0.1)
        assert snap["policy_version"] is None
        assert snap["state"] not in ("connected", "degraded")
        assert not s.tunnel_exists()


async def test_killed_client_leaves_nothing_behind(bed: Bed) -> None:
    async with session(bed) as s:
        await s.wait_state("connected", "degraded")
        assert s.tunnel_exists()
        engine_pid = s.engine_pid()
        os.kill(engine_pid, signal.SIGKILL)
        await _until(lambda: not s.tunnel_exists(), timeout=10)
        assert not _ok(await asyncio.to_thread(s.curl, WIKI, timeout=2))
        assert engine_pid not in ns_pids(bed.client_ns)
        assert not any(
            p.name.startswith(bed.client_if) for p in (bed.workdir / "helper").rglob("*.conf")
        )
