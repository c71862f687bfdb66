"""End to end, as root: the real helper, wg-quick + wireguard-go, namespaces, traffic.

The helper runs inside the test bed's client namespace; the client library brings the
tunnel up, HTTP traffic reaches the server behind the gateway through it, and after
``down`` / ``kill -9`` of the owning client / helper restart nothing is left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.wait import wait_until
from tests.wg_backends.fakes import plain_asyncio
from tests.wg_backends.helperproc import HelperProc, start_helper
from tests.wg_backends.testbed import TestBed, run
from wg_backends.errors import HelperRefused
from wg_backends.helper.client import HelperClient

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(testbed: TestBed) -> Iterator[None]:
    """A tiny HTTP server in the server namespace, behind the gateway."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", testbed.server_ns, sys.executable, "-m", "http.server",
         "--bind", testbed.server_ip, "8080"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while "8080" not in run(["ss", "-ltn"], ns=testbed.server_ns).stdout:
        assert time.monotonic() < deadline, "http server did not start"
        time.sleep(0.05)
    yield
    proc.terminate()
    proc.wait(5)


def fetch(bed: TestBed) -> subprocess.CompletedProcess[str]:
    return run(
        ["curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
         f"http://{bed.server_ip}:8080/"],
        ns=bed.client_ns, check=False,
    )  # fmt: skip


def wg_go_procs(interface: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"wireguard-go {interface}$"], capture_output=True,
                         text=True).stdout  # fmt: skip
    return [int(p) for p in out.split()]


def assert_nothing_left(bed: TestBed, hp: HelperProc) -> None:
    """No interface, route, config file, state entry, control socket or wireguard-go left."""
    links = run(["ip", "-o", "link"], ns=bed.client_ns).stdout
    assert bed.client_if not in links
    assert bed.client_if not in run(["ip", "route"], ns=bed.client_ns).stdout
    assert "10.233.0.0" not in run(["ip", "route"], ns=bed.client_ns).stdout
    assert list(hp.config_dir.glob("*")) == [] if hp.config_dir.exists() else True
    state = hp.state_dir / "state.json"
    assert not state.exists() or json.loads(state.read_text())["tunnels"] == []
    deadline = time.monotonic() + 5  # wireguard-go exits ~1 s after its interface goes
    while (wg_go_procs(bed.client_if) or Path(f"/var/run/wireguard/{bed.client_if}.sock")
           .exists()) and time.monotonic() < deadline:  # fmt: skip
        time.sleep(0.1)
    assert wg_go_procs(bed.client_if) == []
    assert not Path(f"/var/run/wireguard/{bed.client_if}.sock").exists()


@plain_asyncio
async def test_up_traffic_down_nothing_left(
    testbed: TestBed, helper: HelperProc, server: None
) -> None:
    assert fetch(testbed).stdout != "200"  # no route to the resource without the tunnel
    async with HelperClient(helper.socket) as client:
        hello = await client.hello()
        assert hello["protocol"] == 1
        assert hello["backend"] == "wg-quick"
        status = await client.up(testbed.client_spec())
        assert status.up
        assert status.endpoint == "10.231.0.1:51820"
        assert (await asyncio.to_thread(fetch, testbed)).stdout == "200"
        status = await client.status(testbed.client_if)
        assert status.rx_bytes > 0
        assert status.tx_bytes > 0
        assert status.handshake_age is not None
        assert stat_mode(helper.config_dir / f"{testbed.client_if}.conf") == 0o600
        # a second client may not take the tunnel over while its owner is connected
        async with HelperClient(helper.socket) as other:
            with pytest.raises(HelperRefused) as err:
                await other.up(testbed.client_spec())
            assert err.value.helper_code == "busy"
        await client.down(testbed.client_if)
        assert not (await client.status(testbed.client_if)).up
        with pytest.raises(HelperRefused) as err:
            await client.down(testbed.client_if)
        assert err.value.helper_code == "not_up"
    assert fetch(testbed).stdout != "200"
    assert_nothing_left(testbed, helper)


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


CLIENT = textwrap.dedent(
    """
    import asyncio, sys, msgspec
    from wg_backends.helper.client import HelperClient
    from wg_backends.spec import TunnelSpec
    async def main():
        c = HelperClient(sys.argv[1]); await c.connect()
        await c.up(msgspec.json.decode(sys.argv[2], type=TunnelSpec))
        print("UP", flush=True)
        await asyncio.sleep(3600)  # the owner stays connected until the test kills it
    asyncio.run(main())
    """
)


def start_owner(hp: HelperProc, bed: TestBed) -> subprocess.Popen[str]:
    import msgspec

    spec = msgspec.json.encode(bed.client_spec()).decode()
    proc = subprocess.Popen([sys.executable, "-c", CLIENT, str(hp.socket), spec],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "UP"
    return proc


def test_kill_9_of_the_client_brings_the_tunnel_down(
    testbed: TestBed, helper: HelperProc, server: None
) -> None:
    owner = start_owner(helper, testbed)
    assert fetch(testbed).stdout == "200"
    owner.send_signal(signal.SIGKILL)
    owner.wait()

    def taken_down() -> bool:  # the interface goes first, then the helper's config files
        links = run(["ip", "-o", "link"], ns=testbed.client_ns).stdout
        configs = list(helper.config_dir.glob("*")) if helper.config_dir.exists() else []
        return testbed.client_if not in links and not configs

    wait_until(taken_down, 10, what="the interface and its config removed")
    assert_nothing_left(testbed, helper)
    assert helper.proc.poll() is None  # still serving


def test_always_on_keeps_tunnel_after_kill_and_restart_cleans_up(
    testbed: TestBed, server: None, tmp_path: Path
) -> None:
    managed = tmp_path / "managed"
    (managed / "managed.d").mkdir(parents=True)
    (managed / "managed.json").write_text('{"always_on": false}')
    (managed / "managed.d" / "10-vpn.json").write_text('{"always_on": true}')
    hp = start_helper(testbed.workdir / "helper-ao", netns=testbed.client_ns,
                      extra=["--backend", "wg-quick", "--managed-dir", str(managed)])  # fmt: skip
    try:
        owner = start_owner(hp, testbed)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        wait_until(lambda: "kept up (managed always_on)" in hp.log_text(), 10,
                   what="the helper to see its owner leave")  # fmt: skip
        assert fetch(testbed).stdout == "200"  # always-on: still up
        # the helper itself dies hard; the next start removes what the record lists
        hp.stop(signal.SIGKILL)
        assert testbed.client_if in run(["ip", "-o", "link"], ns=testbed.client_ns).stdout
        hp = start_helper(
            testbed.workdir / "helper-ao",
            netns=testbed.client_ns,
            extra=["--backend", "wg-quick", "--managed-dir", str(managed)],
        )
        assert_nothing_left(testbed, hp)
        assert "removed stale tunnel" in hp.log_text()
    finally:
        hp.stop()


def resolvconf_records(interface: str) -> list[str]:
    """openresolv's records for ``interface`` (wg-quick may prefix ``tun.``)."""
    names = (interface, f"tun.{interface}")
    return [n for n in names if os.path.exists(f"/run/resolvconf/interfaces/{n}")]


@plain_asyncio
async def test_dns_is_set_and_restored(testbed: TestBed, helper: HelperProc) -> None:
    """DNS through resolvconf (openresolv), only inside the bed's namespace."""
    import msgspec

    spec = msgspec.structs.replace(testbed.client_spec(), dns=("10.233.0.2",))
    async with HelperClient(helper.socket) as client:
        await client.up(spec)
        inside = run(["cat", "/etc/resolv.conf"], ns=testbed.client_ns).stdout
        assert "nameserver 10.233.0.2" in inside
        assert resolvconf_records(testbed.client_if) != []
        await client.down(testbed.client_if)
    assert run(["cat", "/etc/resolv.conf"], ns=testbed.client_ns).stdout == "nameserver 127.0.0.1\n"
    assert resolvconf_records(testbed.client_if) == []
    assert_nothing_left(testbed, helper)


def routing_state(bed: TestBed) -> dict[str, str]:
    """Everything wg-quick touches for a full tunnel: rules, routes, nftables."""
    cmds = {
        "rule4": ["ip", "-4", "rule"],
        "rule6": ["ip", "-6", "rule"],
        "route4": ["ip", "-4", "route", "show", "table", "all"],
        "route6": ["ip", "-6", "route", "show", "table", "all"],
        "nft": ["nft", "list", "ruleset"],
    }
    return {k: run(argv, ns=bed.client_ns).stdout for k, argv in cmds.items()}


@plain_asyncio
async def test_full_tunnel_policy_routing_is_undone(
    testbed: TestBed, helper: HelperProc, server: None
) -> None:
    import msgspec

    base = testbed.client_spec()
    peer = msgspec.structs.replace(base.peers[0], allowed_ips=("0.0.0.0/0", "::/0"))
    spec = msgspec.structs.replace(base, peers=(peer,))
    before = await asyncio.to_thread(routing_state, testbed)
    async with HelperClient(helper.socket) as client:
        await client.up(spec)
        during = await asyncio.to_thread(routing_state, testbed)
        assert "fwmark" in during["rule4"]  # wg-quick's policy routing keeps the endpoint out
        assert "table 51820" in during["route4"]
        assert "table 51820" in during["route6"]
        assert f"wg-quick-{testbed.client_if}" in during["nft"]
        assert (await asyncio.to_thread(fetch, testbed)).stdout == "200"
        await client.down(testbed.client_if)
    after = await asyncio.to_thread(routing_state, testbed)
    for key in ("rule4", "rule6", "nft"):
        assert after[key] == before[key]
    for key in ("route4", "route6"):  # the veth's own link-local routes may appear meanwhile
        assert testbed.client_if not in after[key]
        assert "table 51820" not in after[key]
    assert_nothing_left(testbed, helper)


@plain_asyncio
async def test_helper_killed_and_config_gone_restart_removes_everything(
    testbed: TestBed, server: None
) -> None:
    """Issue 16: cleanup after a crash from the state record alone. A full tunnel with DNS
    is up; the helper dies with ``kill -9`` and its config directory goes (systemd removes
    the runtime directory); the next start must still remove the resolvconf record, the
    fwmark rules, the nft tables and the interface."""
    import shutil

    import msgspec

    workdir = testbed.workdir / "helper-crash"
    hp = start_helper(workdir, netns=testbed.client_ns, extra=["--backend", "wg-quick"])
    try:
        before = await asyncio.to_thread(routing_state, testbed)
        base = testbed.client_spec()
        peer = msgspec.structs.replace(base.peers[0], allowed_ips=("0.0.0.0/0", "::/0"))
        spec = msgspec.structs.replace(base, peers=(peer,), dns=("10.233.0.2",))
        client = HelperClient(hp.socket)
        await client.up(spec)
        during = await asyncio.to_thread(routing_state, testbed)
        assert "fwmark" in during["rule4"]
        assert f"wg-quick-{testbed.client_if}" in during["nft"]
        assert resolvconf_records(testbed.client_if) != []
        record = json.loads((hp.state_dir / "state.json").read_text())["tunnels"][0]
        assert record["table"] == 51820  # what the clean-up needs, kept with the record
        hp.stop(signal.SIGKILL)
        await client.close()
        shutil.rmtree(hp.config_dir)  # gone with the runtime directory
        hp = start_helper(workdir, netns=testbed.client_ns, extra=["--backend", "wg-quick"])
        after = await asyncio.to_thread(routing_state, testbed)
        for key in ("rule4", "rule6", "nft"):
            assert after[key] == before[key], key
        assert resolvconf_records(testbed.client_if) == []
        resolv = run(["cat", "/etc/resolv.conf"], ns=testbed.client_ns).stdout
        assert resolv == "nameserver 127.0.0.1\n"
        assert "removed stale tunnel" in hp.log_text()
        assert_nothing_left(testbed, hp)
    finally:
        hp.stop()
