"""The controller drives a real wireguard-go interface in a network namespace (prefix rtc)."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from controller.config import GatewayConfig
from controller.gateway import CommandResult, Gateway, parse_allowed_ips, subprocess_runner
from controller.testing import login, run_controller
from core.controlplane import BearerAuth, ControlPlaneClient
from tests.controller.conftest import DeviceKeys, new_device
from tests.fakes.wait import async_wait_until, wait_until

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
        if not name.startswith(("rtcgw", "rtcgc", "rtcgr")) or not name[5:].isdigit():
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

    in_ns = _in(ns)

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
            # No rule allows anything: posture leaves nothing reachable. The gateway's
            # filter grants nothing; the peer stays (access that returns needs no new
            # handshake). Without a filter the peer itself is the fence: it goes.
            nonce = await c.posture_nonce(enrolled.device_id)
            await c.submit_posture(enrolled.device_id, keys.report(enrolled.device_id, nonce.nonce))
            assert peers() == {keys.wg_public: ["10.77.0.2/32"]}
            rc.service.config = msgspec.structs.replace(
                rc.service.config, gateway=msgspec.structs.replace(gateway, filter=False)
            )
            rc.service.reconcile_gateway()
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

    in_ns = _in(ns)

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


# --- the per-device filter on a real gateway (issue 15 items 4 and 5) -----------------


def _in(ns: str) -> Callable[..., CommandResult]:
    def runner(argv: Sequence[str], *, input: str | None = None) -> CommandResult:
        return subprocess_runner(["ip", "netns", "exec", ns, *argv], input=input)

    return runner


def _counter(ns: str, table: str, needle: str) -> int:
    """Packets counted by the rule of ``table`` whose text contains ``needle``."""
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "list", "table", "inet", table],
        capture_output=True, text=True, check=True, timeout=20,
    ).stdout  # fmt: skip
    line = next(x for x in out.splitlines() if needle in x and "counter packets" in x)
    return int(line.split("counter packets")[1].split()[0])


_CONNECT = (
    "import socket,sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], 8080), timeout=0.5).close()\n"
    "except OSError:\n"
    "    sys.exit(1)\n"
)


def _reaches(ns: str, address: str) -> bool:
    """A TCP connection from namespace ``ns`` to ``address``:8080 completes (0.5 s)."""
    argv = ["ip", "netns", "exec", ns, sys.executable, "-I", "-c", _CONNECT, address]
    return subprocess.run(argv, capture_output=True, timeout=20).returncode == 0


@dataclass
class FilterBed:
    gw_ns: str
    gw_if: str
    gw_pub: str
    client_ns: str
    client_if: str
    resource_ns: str
    endpoint: str


@pytest.fixture
def filter_bed(wg_namespace: tuple[str, str, str], tmp_path: Path) -> Iterator[FilterBed]:
    """gateway ns (wireguard-go, forwarding) ─veth─ client ns; gateway ─veth─ resource ns
    (10.50.0.2 "wiki" and 10.60.0.2 "payroll", a TCP listener on :8080 and counters)."""
    gw_ns, gw_if, gw_pub = wg_namespace
    pid = os.getpid()
    cns, rns = f"rtcgc{pid}", f"rtcgr{pid}"
    cif = f"rtcc{pid}"
    listener: subprocess.Popen[bytes] | None = None
    for ns in (cns, rns):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        _run("ip", "netns", "add", ns)
    try:
        gx = lambda *a: _run("ip", "netns", "exec", gw_ns, *a)  # noqa: E731
        cx = lambda *a: _run("ip", "netns", "exec", cns, *a)  # noqa: E731
        rx = lambda *a: _run("ip", "netns", "exec", rns, *a)  # noqa: E731
        _run("ip", "link", "add", f"rtcu{pid}", "netns", gw_ns, "type", "veth",
             "peer", "name", f"rtcv{pid}", "netns", cns)  # fmt: skip
        _run("ip", "link", "add", f"rtcr{pid}", "netns", gw_ns, "type", "veth",
             "peer", "name", f"rtcs{pid}", "netns", rns)  # fmt: skip
        gx("ip", "addr", "add", "10.99.7.1/24", "dev", f"rtcu{pid}")
        gx("ip", "addr", "add", "10.50.0.1/24", "dev", f"rtcr{pid}")
        gx("ip", "addr", "add", "10.60.0.1/24", "dev", f"rtcr{pid}")
        gx("ip", "addr", "add", "10.77.0.1/24", "dev", gw_if)
        for link in (f"rtcu{pid}", f"rtcr{pid}", gw_if, "lo"):
            gx("ip", "link", "set", link, "up")
        gx("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        cx("ip", "addr", "add", "10.99.7.2/24", "dev", f"rtcv{pid}")
        cx("ip", "link", "set", f"rtcv{pid}", "up")
        cx("ip", "link", "set", "lo", "up")
        rx("ip", "addr", "add", "10.50.0.2/24", "dev", f"rtcs{pid}")
        rx("ip", "addr", "add", "10.60.0.2/24", "dev", f"rtcs{pid}")
        rx("ip", "link", "set", f"rtcs{pid}", "up")
        rx("ip", "link", "set", "lo", "up")
        rx("ip", "route", "add", "10.77.0.0/24", "via", "10.50.0.1")
        counters = (
            "table inet rtc_res {\n chain in {\n  type filter hook input priority 0;\n"
            "  ip saddr 10.77.0.0/24 ip daddr 10.50.0.2 counter\n"
            "  ip saddr 10.77.0.0/24 ip daddr 10.60.0.2 counter\n }\n}\n"
        )
        subprocess.run(["ip", "netns", "exec", rns, "nft", "-f", "-"], input=counters.encode(),
                       check=True, capture_output=True, timeout=20)  # fmt: skip
        listener = subprocess.Popen(
            ["ip", "netns", "exec", rns, sys.executable, "-I", "-m", "http.server",
             "--bind", "0.0.0.0", "8080"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: _reaches(rns, "10.50.0.2"), timeout=15, what="resource listener")
        port = subprocess.run(
            ["ip", "netns", "exec", gw_ns, "wg", "show", gw_if, "listen-port"],
            capture_output=True, text=True, check=True, timeout=20,
        ).stdout.strip()  # fmt: skip
        cx("wireguard-go", cif)
        yield FilterBed(gw_ns, gw_if, gw_pub, cns, cif, rns, f"10.99.7.1:{port}")
    finally:
        if listener is not None:
            listener.kill()
            listener.wait(timeout=20)
        subprocess.run(["ip", "netns", "exec", cns, "ip", "link", "del", cif],
                       capture_output=True, timeout=20)  # fmt: skip
        for ns in (cns, rns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def _client_tunnel(bed: FilterBed, keys: DeviceKeys, address: str, key_file: Path) -> None:
    """The device's side: its key, the gateway peer, routes for both resources."""
    key_file.write_text(
        base64.b64encode(
            keys.wg_private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        ).decode()
    )
    key_file.chmod(0o600)
    cx = lambda *a: _run("ip", "netns", "exec", bed.client_ns, *a)  # noqa: E731
    routed = "10.50.0.0/24,10.60.0.0/24,10.77.0.1/32"
    cx("wg", "set", bed.client_if, "private-key", str(key_file), "peer", bed.gw_pub,
       "endpoint", bed.endpoint, "allowed-ips", routed)  # fmt: skip
    cx("ip", "addr", "add", address, "dev", bed.client_if)
    cx("ip", "link", "set", bed.client_if, "up")
    for net in ("10.50.0.0/24", "10.60.0.0/24", "10.77.0.1/32"):
        cx("ip", "route", "add", net, "dev", bed.client_if)


@pytest.mark.root
@pytest.mark.netns
async def test_a_real_gateway_forwards_grants_and_drops_a_withdrawal_within_2s(
    filter_bed: FilterBed, tmp_path: Path
) -> None:
    bed = filter_bed
    gateway = GatewayConfig(public_key=bed.gw_pub, endpoint=bed.endpoint, interface=bed.gw_if)
    table = f"rtc_gw_{bed.gw_if}"
    payroll = {"id": "payroll", "name": "Payroll", "cidrs": ["10.60.0.0/24"]}
    rule = {"id": "payroll", "effect": "allow", "resources": ["payroll"]}
    async with run_controller(gateway=gateway, gateway_runner=_in(bed.gw_ns)) as rc:
        import httpx

        admin = httpx.AsyncClient(
            base_url=rc.base_url, headers={"Authorization": f"Bearer {rc.admin_token}"}
        )
        async with admin:
            wiki = {"id": "wiki", "name": "Wiki", "cidrs": ["10.50.0.0/24"]}
            assert (await admin.put("/v1/admin/resources/wiki", json=wiki)).status_code == 200
            assert (await admin.put("/v1/admin/resources/payroll", json=payroll)).status_code == 200
            everyone = {"id": "wiki", "effect": "allow", "resources": ["wiki"]}
            assert (await admin.put("/v1/admin/rules/wiki", json=everyone)).status_code == 200
            assert (await admin.put("/v1/admin/rules/payroll", json=rule)).status_code == 200
            tokens = await login(rc, "alice", "alice-password")
            keys = new_device()
            async with ControlPlaneClient(
                rc.base_url, auth=BearerAuth(tokens["access_token"]), proxy=None
            ) as c:
                dev = await c.enroll(keys.enroll_request())
                # Before its first posture report: a peer, but nothing granted.
                await asyncio.to_thread(
                    _client_tunnel, bed, keys, dev.address, tmp_path / "dev.key"
                )
                assert not await asyncio.to_thread(_reaches, bed.client_ns, "10.50.0.2")
                nonce = await c.posture_nonce(dev.device_id)
                await c.submit_posture(dev.device_id, keys.report(dev.device_id, nonce.nonce))
            # Granted: forwarded. The gateway keeps the peer alive from its side (5 s).
            assert await asyncio.to_thread(_reaches, bed.client_ns, "10.50.0.2")
            assert await asyncio.to_thread(_reaches, bed.client_ns, "10.60.0.2")
            ka = _in(bed.gw_ns)(["wg", "show", bed.gw_if, "persistent-keepalive"]).stdout
            assert ka.split() == [keys.wg_public, "5"]
            # The gateway itself is closed to the tunnel except its tunnel address.
            assert not await asyncio.to_thread(_reaches, bed.client_ns, "10.50.0.1")
            dropped = _counter(bed.gw_ns, table, "drop")
            at_payroll = _counter(bed.resource_ns, "rtc_res", "10.60.0.2")

            # Withdrawal: measured from the admin call to the first refused connection;
            # the gateway is updated before the call returns, so the first attempt fails.
            t0 = time.monotonic()
            assert (await admin.delete("/v1/admin/rules/payroll")).status_code == 204
            admin_s = time.monotonic() - t0
            attempts = 1
            while await asyncio.to_thread(_reaches, bed.client_ns, "10.60.0.2"):
                attempts += 1
                assert time.monotonic() - t0 < 2.0, "payroll still reachable 2 s after"
            withdrawn_s = time.monotonic() - t0
            assert attempts == 1
            for _ in range(3):  # by no path: not one more packet reaches payroll
                assert not await asyncio.to_thread(_reaches, bed.client_ns, "10.60.0.2")
            assert _counter(bed.resource_ns, "rtc_res", "10.60.0.2") == at_payroll
            assert _counter(bed.gw_ns, table, "drop") > dropped
            assert await asyncio.to_thread(_reaches, bed.client_ns, "10.50.0.2")  # wiki kept

            # A grant works at once: the first connection after the admin call succeeds.
            t0 = time.monotonic()
            assert (await admin.put("/v1/admin/rules/payroll", json=rule)).status_code == 200
            assert await asyncio.to_thread(_reaches, bed.client_ns, "10.60.0.2")
            granted_s = time.monotonic() - t0
            assert granted_s < 1.0
            print(
                f"withdrawal: admin call {admin_s:.3f} s, first refused connection observed"
                f" at {withdrawn_s:.3f} s (0.5 s connect timeout); grant: connected at"
                f" {granted_s:.3f} s"
            )

            # A hostile admin input is refused and leaves the gateway's rules as they were.
            before = _in(bed.gw_ns)(["nft", "list", "set", "inet", table, "grants4"]).stdout
            bad = {**payroll, "cidrs": ["10.60.0.0/8"]}
            assert (await admin.put("/v1/admin/resources/payroll", json=bad)).status_code == 400
            after = _in(bed.gw_ns)(["nft", "list", "set", "inet", table, "grants4"]).stdout
            assert after == before
            assert "10.60.0.0/24" in after
