"""The controller drives a real wireguard-go interface in a network namespace (prefix rtc)."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Iterator, Sequence

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from controller.config import GatewayConfig
from controller.gateway import CommandResult, Gateway, parse_allowed_ips, subprocess_runner
from controller.testing import login, run_controller
from core.controlplane import BearerAuth, ControlPlaneClient
from tests.controller.conftest import new_device
from tests.fakes.wait import async_wait_until

pytestmark = [pytest.mark.e2e]


def test_argv_and_parsing_with_a_recording_runner() -> None:
    calls: list[tuple[str, ...]] = []

    def runner(argv: Sequence[str]) -> CommandResult:
        calls.append(tuple(argv))
        out = "KEYA=\t10.77.0.2/32\nKEYB=\t(none)\n" if "show" in argv else ""
        return CommandResult(tuple(argv), 0, out, "")

    gw = Gateway("rtcg0", runner)
    gw.set_peer("KEYA=", ["10.77.0.2/32", "fd00::2/128"])
    gw.remove_peer("KEYA=")
    assert gw.peers() == {"KEYA=": ["10.77.0.2/32"], "KEYB=": []}
    assert calls == [
        ("wg", "set", "rtcg0", "peer", "KEYA=", "allowed-ips", "10.77.0.2/32,fd00::2/128"),
        ("wg", "set", "rtcg0", "peer", "KEYA=", "remove"),
        ("wg", "show", "rtcg0", "allowed-ips"),
    ]
    assert parse_allowed_ips("") == {}


def _run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, timeout=20)


def _reap_stale_namespaces() -> None:
    """Remove rtcgw<pid> namespaces (and their interface) of test runs that died."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith("rtcgw") or not name[5:].isdigit():
            continue
        try:
            os.kill(int(name[5:]), 0)
            continue  # that run is alive
        except ProcessLookupError:
            pass
        except OSError:
            continue
        subprocess.run(
            ["ip", "netns", "exec", name, "ip", "link", "del", f"rtcg{name[5:]}"],
            capture_output=True,
            timeout=20,
        )
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


@pytest.fixture
def wg_namespace(tmp_path) -> Iterator[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    _reap_stale_namespaces()
    ns = f"rtcgw{os.getpid()}"
    ifname = f"rtcg{os.getpid()}"  # at most 11 characters (IFNAMSIZ 15)
    key = X25519PrivateKey.generate()
    priv = base64.b64encode(
        key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    ).decode()
    pub = base64.b64encode(
        key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()
    keyfile = tmp_path / "gw.key"
    keyfile.write_text(priv)
    keyfile.chmod(0o600)
    _run("ip", "netns", "add", ns)
    try:
        _run("ip", "netns", "exec", ns, "wireguard-go", ifname)
        _run(
            "ip",
            "netns",
            "exec",
            ns,
            "wg",
            "set",
            ifname,
            "private-key",
            str(keyfile),
            "listen-port",
            "0",
        )
        yield ns, ifname, pub
    finally:
        subprocess.run(
            ["ip", "netns", "exec", ns, "ip", "link", "del", ifname],
            capture_output=True,
            timeout=20,
        )
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


@pytest.mark.root
@pytest.mark.netns
async def test_peers_follow_enroll_posture_and_revoke(wg_namespace: tuple[str, str, str]) -> None:
    ns, ifname, gw_pub = wg_namespace

    def in_ns(argv: Sequence[str]) -> CommandResult:
        return subprocess_runner(["ip", "netns", "exec", ns, *argv])

    gateway = GatewayConfig(public_key=gw_pub, endpoint="10.99.0.1:51820", interface=ifname)
    peers = Gateway(ifname, in_ns).peers
    async with run_controller(gateway=gateway, gateway_runner=in_ns) as rc:
        tokens = await login(rc, "alice", "alice-password")
        keys = new_device()
        async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as c:
            enrolled = await c.enroll(keys.enroll_request())
            assert enrolled.gateway is not None
            assert enrolled.gateway.public_key == gw_pub
            assert peers() == {keys.wg_public: ["10.77.0.2/32"]}
            # A stray peer is removed and a lost one restored when a controller starts.
            stray = new_device().wg_public
            Gateway(ifname, in_ns).set_peer(stray, ["10.77.0.99/32"])
            Gateway(ifname, in_ns).remove_peer(keys.wg_public)
            rc.service.reconcile_gateway()
            assert peers() == {keys.wg_public: ["10.77.0.2/32"]}
            # No rule allows anything: posture leaves nothing reachable → peer removed.
            nonce = await c.posture_nonce(enrolled.device_id)
            await c.submit_posture(enrolled.device_id, keys.report(enrolled.device_id, nonce.nonce))
            assert peers() == {}
            # A policy that opens a resource brings the peer back on the next report.
            import httpx

            async with httpx.AsyncClient(
                base_url=rc.base_url, headers={"Authorization": f"Bearer {rc.admin_token}"}
            ) as a:
                await a.put(
                    "/v1/admin/resources/db",
                    json={"id": "db", "name": "DB", "cidrs": ["10.50.0.0/24"]},
                )
                await a.put(
                    "/v1/admin/rules/all",
                    json={"id": "all", "effect": "allow", "resources": ["db"]},
                )
                nonce = await c.posture_nonce(enrolled.device_id)
                await c.submit_posture(
                    enrolled.device_id, keys.report(enrolled.device_id, nonce.nonce)
                )
                assert peers() == {keys.wg_public: ["10.77.0.2/32"]}
                bundle = await c.fetch_bundle(enrolled.device_id)
                assert bundle.version == 1
                resp = await a.post(f"/v1/admin/devices/{enrolled.device_id}/revoke")
                assert resp.status_code == 200
            assert peers() == {}


@pytest.mark.root
@pytest.mark.netns
async def test_a_real_gateway_drops_an_expired_device_and_takes_it_back(
    wg_namespace: tuple[str, str, str],
) -> None:
    ns, ifname, gw_pub = wg_namespace

    def in_ns(argv: Sequence[str]) -> CommandResult:
        return subprocess_runner(["ip", "netns", "exec", ns, *argv])

    gateway = GatewayConfig(public_key=gw_pub, endpoint="10.99.0.1:51820", interface=ifname)
    peers = Gateway(ifname, in_ns).peers
    now = [float(int(time.time()))]
    async with run_controller(
        gateway=gateway, gateway_runner=in_ns, clock=lambda: now[0], expiry_interval_s=0.1
    ) as rc:
        tokens = await login(rc, "alice", "alice-password")
        keys = new_device()
        async with ControlPlaneClient(
            rc.base_url, auth=BearerAuth(tokens["access_token"]), proxy=None
        ) as c:
            enrolled = await c.enroll(keys.enroll_request())
            answer = await c.fetch_bundle(enrolled.device_id)
            assert peers() == {keys.wg_public: ["10.77.0.2/32"]}
            now[0] = answer.expires_at  # expired on the controller's clock; no refresh
            await async_wait_until(lambda: peers() == {}, what="wg to drop the expired peer")
            await c.fetch_bundle(enrolled.device_id)
            assert peers() == {keys.wg_public: ["10.77.0.2/32"]}
