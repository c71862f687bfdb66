"""Hitless update on the real test bed (root): wg-quick + wireguard-go in namespaces.

A tunnel with a real gateway peer and a second (silent) peer is brought up by the
wg-quick backend inside the bed's client namespace and hands-shakes with the gateway.
``update`` then adds an allowed IP to the gateway peer, removes the second peer and adds a
third: the gateway peer's latest handshake is unchanged (the session survived — a peer
that had been re-created would show no handshake at all), the listen port is the same,
the new range is routed and reachable, the removed peer's route is gone.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import msgspec
import pytest

from tests.fakes.wait import wait_until
from tests.wg_backends.testbed import SERVER_IP, TestBed, run
from wg_backends.backends.wgquick import WgQuickBackend
from wg_backends.errors import SpecError, TunnelStateError
from wg_backends.runner import CommandResult, SubprocessRunner
from wg_backends.spec import PeerSpec, TunnelSpec

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns]

# Keys of peers that never answer: only their routes and presence matter.
SILENT_A = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
SILENT_B = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX8="


class NsRunner:
    """The real runner, every command inside one network namespace."""

    def __init__(self, ns: str) -> None:
        self._ns = ns
        self._inner = SubprocessRunner()
        self.calls: list[tuple[str, ...]] = []

    def __call__(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        self.calls.append(tuple(argv))
        return self._inner(
            ["ip", "netns", "exec", self._ns, *argv], check=check, env=env, timeout=timeout
        )


@pytest.fixture
def backend(testbed: TestBed, tmp_path: Path) -> Iterator[tuple[WgQuickBackend, NsRunner]]:
    runner = NsRunner(testbed.client_ns)
    b = WgQuickBackend(runner, config_dir=tmp_path / "tunnels")
    try:
        yield b, runner
    finally:
        b.down(testbed.client_if)


def first_spec(bed: TestBed) -> TunnelSpec:
    spec = bed.client_spec()
    gw = msgspec.structs.replace(spec.peers[0], allowed_ips=("10.232.0.0/24",))
    silent = PeerSpec(
        public_key=SILENT_A, endpoint="10.231.0.77:51820", allowed_ips=("10.240.0.0/24",)
    )
    return msgspec.structs.replace(spec, peers=(gw, silent))


def second_spec(bed: TestBed) -> TunnelSpec:
    spec = bed.client_spec()  # gateway peer: 10.232.0.0/24 and 10.233.0.0/24 (the server)
    other = PeerSpec(
        public_key=SILENT_B, endpoint="10.231.0.78:51820", allowed_ips=("10.241.0.0/24",)
    )
    return msgspec.structs.replace(spec, peers=(spec.peers[0], other))


def routes(bed: TestBed) -> str:
    return run(["ip", "-4", "route", "show", "dev", bed.client_if], ns=bed.client_ns).stdout


@pytest.fixture
def server(testbed: TestBed) -> Iterator[None]:
    """A tiny HTTP server in the server namespace, behind the gateway."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", testbed.server_ns, sys.executable, "-m", "http.server",
         "--bind", SERVER_IP, "8080"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(
            lambda: "8080" in run(["ss", "-ltn"], ns=testbed.server_ns).stdout,
            10,
            what="the http server",
        )
        yield
    finally:
        proc.terminate()
        proc.wait(5)


def reaches_server(bed: TestBed) -> bool:
    res = run(
        ["curl", "-sS", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}",
         f"http://{SERVER_IP}:8080/"],
        ns=bed.client_ns, check=False,
    )  # fmt: skip
    return res.stdout == "200"


def handshake(b: WgQuickBackend, bed: TestBed) -> int | None:
    status = b.status(bed.client_if)
    return next(p.latest_handshake for p in status.peers if p.public_key == bed.gw_public)


def poke_gateway(b: WgQuickBackend, bed: TestBed) -> int:
    """Send one UDP datagram into the tunnel and wait for the handshake it triggers."""
    run(
        [sys.executable, "-c",
         "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
         ".sendto(b'x', ('10.232.0.1', 9))"],
        ns=bed.client_ns,
    )  # fmt: skip
    wait_until(lambda: handshake(b, bed), 10, what="the first handshake")
    hs = handshake(b, bed)
    assert hs is not None
    return hs


@pytest.mark.usefixtures("server")
def test_update_keeps_the_handshake_and_diffs_routes_and_peers(
    testbed: TestBed, backend: tuple[WgQuickBackend, NsRunner]
) -> None:
    b, runner = backend
    b.up(first_spec(testbed))
    hs = poke_gateway(b, testbed)
    before = b.status(testbed.client_if)
    assert "10.240.0.0/24" in routes(testbed)
    assert "10.233.0.0/24" not in routes(testbed)
    assert not reaches_server(testbed)  # not routed into the tunnel yet
    # A new handshake in the same second would look unchanged: let the clock move on.
    wait_until(lambda: time.time() >= hs + 1.5, 5, what="a new second")

    runner.calls.clear()
    after = b.update(second_spec(testbed))

    # Before any new traffic: a re-created peer would show no handshake at all.
    assert handshake(b, testbed) == hs
    assert after.listen_port == before.listen_port
    assert {p.public_key for p in after.peers} == {testbed.gw_public, SILENT_B}
    assert ("wg-quick", "down") not in {c[:2] for c in runner.calls}
    table = routes(testbed)
    assert "10.233.0.0/24" in table
    assert "10.241.0.0/24" in table
    assert "10.240.0.0/24" not in table
    assert reaches_server(testbed)  # traffic to the new range passes, same session
    assert handshake(b, testbed) == hs
    # `down` undoes the new state: the config on disk is the updated one.
    conf = (b.config_dir / f"{testbed.client_if}.conf").read_text()
    assert SILENT_B in conf
    assert SILENT_A not in conf
    assert not list(b.config_dir.glob(".*sync*"))  # the temporary syncconf file is gone


def test_update_addresses_and_mtu_in_place(
    testbed: TestBed, backend: tuple[WgQuickBackend, NsRunner]
) -> None:
    b, _ = backend
    b.up(testbed.client_spec())
    spec = msgspec.structs.replace(
        testbed.client_spec(), addresses=("10.232.0.2/32", "10.232.0.9/32"), mtu=1380
    )
    b.update(spec)
    addrs = run(["ip", "-o", "addr", "show", "dev", testbed.client_if], ns=testbed.client_ns)
    assert "10.232.0.9/32" in addrs.stdout
    link = run(["ip", "-o", "link", "show", "dev", testbed.client_if], ns=testbed.client_ns)
    assert " mtu 1380 " in link.stdout
    b.update(testbed.client_spec())
    addrs = run(["ip", "-o", "addr", "show", "dev", testbed.client_if], ns=testbed.client_ns)
    assert "10.232.0.9" not in addrs.stdout
    assert "10.232.0.2/32" in addrs.stdout


def test_update_refuses_a_tunnel_that_is_not_up_and_bad_specs(
    testbed: TestBed, backend: tuple[WgQuickBackend, NsRunner]
) -> None:
    b, runner = backend
    with pytest.raises(TunnelStateError, match="bring it up"):
        b.update(testbed.client_spec())
    with pytest.raises(SpecError, match="private_key"):
        b.update(testbed.client_spec(with_key=False))
    assert all(c[0] != "wg" or c[1] != "syncconf" for c in runner.calls)


def test_full_tunnel_update_keeps_fwmark_and_split_to_full_restarts(
    testbed: TestBed, backend: tuple[WgQuickBackend, NsRunner]
) -> None:
    b, runner = backend
    spec = testbed.client_spec()
    full_gw = msgspec.structs.replace(spec.peers[0], allowed_ips=("0.0.0.0/0", "::/0"))
    full = msgspec.structs.replace(spec, peers=(full_gw,))
    b.up(full)
    table = b.routing_table(testbed.client_if)
    assert table is not None
    hs = poke_gateway(b, testbed)
    extra = PeerSpec(
        public_key=SILENT_B, endpoint="10.231.0.78:51820", allowed_ips=("10.241.0.0/24",)
    )
    b.update(msgspec.structs.replace(full, peers=(full_gw, extra)))
    assert b.routing_table(testbed.client_if) == table  # syncconf kept wg-quick's fwmark
    assert handshake(b, testbed) == hs
    rules = run(["ip", "-4", "rule", "show"], ns=testbed.client_ns).stdout
    assert f"lookup {table}" in rules
    # Full -> split cannot be made in place: a documented down + up (new session).
    runner.calls.clear()
    b.update(testbed.client_spec())
    assert ("wg-quick", "down") in {c[:2] for c in runner.calls}
    assert b.routing_table(testbed.client_if) is None
    assert f"lookup {table}" not in run(["ip", "-4", "rule", "show"], ns=testbed.client_ns).stdout
    assert "10.233.0.0/24" in routes(testbed)
