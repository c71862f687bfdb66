"""Split DNS past a rogue LAN route, for real (issue #15 item 3), in namespaces.

The bed: a client namespace with a "tunnel" link (a veth to a gateway namespace whose
DNS server, ``controller.demo.dns``, answers for corp.example at 10.20.0.53) and a LAN
link (a veth to a rogue namespace holding the same address with its own DNS server that
answers every name with the rogue's addresses), plus the rogue DHCP's more specific
route for 10.20.0.53 via the LAN. The resolver runs in the client namespace: with
sockets bound to the tunnel link (what the helper's marked sockets are) it gets the
company's answer over UDP and, for a large answer, over TCP, and not one query reaches
the rogue; with plain sockets (the control) the rogue route wins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.root, pytest.mark.netns]

ROOT = Path(__file__).resolve().parents[3]
DNS = "10.20.0.53"

RESOLVE = """
import asyncio, json, socket, sys
from core.dns import TunnelResolver

def bound(family, kind):
    sock = socket.socket(family, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"tun0")
    return sock

async def main():
    factory = bound if sys.argv[1] == "bound" else None
    resolver = TunnelResolver([sys.argv[2]], ["corp.example"], factory, timeout=1)
    out = {}
    for name in sys.argv[3:]:
        try:
            out[name] = await resolver.resolve(name, 443)
        except OSError as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))

asyncio.run(main())
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


@dataclass
class Bed:
    client: str
    gateway: str
    rogue: str
    rogue_log: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def resolve(self, mode: str, *names: str) -> dict[str, Any]:
        out = sh(
            "ip", "netns", "exec", self.client, sys.executable, "-c", RESOLVE, mode, DNS, *names
        )  # fmt: skip
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    def rogue_queries(self) -> list[str]:
        return self.rogue_log.read_text().splitlines()


def _dns_server(bed: Bed, ns: str, stderr: IO[str] | int, *args: str) -> None:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "controller.demo.dns",
         "--listen", f"{DNS}:53", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
    )  # fmt: skip
    bed.procs.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the server says when it listens (or exits: "")
    assert line.startswith("listening on"), f"DNS server in {ns} did not start: {line!r}"


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    tag = os.getpid() % 100000
    tmp = tempfile.TemporaryDirectory()
    b = Bed(f"rtdc{tag}", f"rtdg{tag}", f"rtdr{tag}", Path(tmp.name) / "rogue.log")
    try:
        for ns in (b.client, b.gateway, b.rogue):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        c, g, r = b.client, b.gateway, b.rogue
        sh("ip", "-n", c, "link", "add", "tun0", "type", "veth", "peer", "name", "gw0", "netns", g)
        sh("ip", "-n", c, "link", "add", "lan0", "type", "veth", "peer", "name", "rg0", "netns", r)
        for ns, dev, v4 in (
            (c, "tun0", "10.99.0.2/24"),
            (g, "gw0", "10.99.0.1/24"),
            (c, "lan0", "192.168.1.2/24"),
            (r, "rg0", "192.168.1.1/24"),
        ):
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "addr", "add", v4, "dev", dev)
        for ns in (g, r):  # both hold the DNS server's address: only the path differs
            sh("ip", "-n", ns, "addr", "add", f"{DNS}/32", "dev", "lo")
        sh("ip", "-n", c, "route", "add", "10.20.0.0/16", "via", "10.99.0.1", "dev", "tun0")
        sh("ip", "-n", c, "route", "add", f"{DNS}/32", "via", "192.168.1.1", "dev", "lan0")
        big = [f"--record=big.corp.example=10.20.1.{i}" for i in range(1, 101)]
        _dns_server(
            b, g, subprocess.DEVNULL,
            "--record", "wiki.corp.example=10.20.0.5", "--record", "wiki.corp.example=fd00:20::5",
            *big,
        )  # fmt: skip
        with b.rogue_log.open("w") as log:
            _dns_server(
                b, r, log, "--zone", ".", "--verbose",
                "--record", "wiki.corp.example=192.168.1.66",
                "--record", "big.corp.example=192.168.1.66",
            )  # fmt: skip
        yield b
    finally:
        for proc in b.procs:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        for ns in (b.client, b.gateway, b.rogue):
            sh("ip", "netns", "del", ns, check=False)
        tmp.cleanup()


def test_tunnel_bound_sockets_get_the_company_answer_past_a_rogue_route(bed: Bed) -> None:
    before = len(bed.rogue_queries())
    got = bed.resolve("bound", "wiki.corp.example", "big.corp.example", "nope.corp.example")
    assert got["wiki.corp.example"] == ["10.20.0.5", "fd00:20::5"]
    big = got["big.corp.example"]  # 100 records: truncated on UDP, then TCP on tun0
    assert len(big) == 32
    assert all(a.startswith("10.20.1.") for a in big)
    assert got["nope.corp.example"].startswith("NameNotFound")
    assert bed.rogue_queries()[before:] == []  # not one query reached the rogue


def test_control_plain_sockets_follow_the_rogue_route(bed: Bed) -> None:
    """The bed's rogue route is real: without the tunnel binding the rogue answers."""
    got = bed.resolve("plain", "wiki.corp.example")
    assert got["wiki.corp.example"] == ["192.168.1.66"]
    assert any("wiki.corp.example" in line for line in bed.rogue_queries())
