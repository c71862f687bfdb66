"""Transparent mode for real (issue #15 items 1 and 2, decider side), in namespaces.

The bed: a client namespace with a "tunnel" link (a veth to a gateway namespace that
holds the resource 10.20.0.5 / fd00:20::5) and a LAN link (a veth to a rogue namespace
that holds the same addresses, with a more specific LAN route for them on the client:
what a rogue DHCP server's option 121 does). In the client namespace an nftables
``redirect`` rule (the one the helper installs) sends TCP to the resources' ranges to
the proxy's transparent port, except sockets carrying the decider's mark. The proxy
runs in the client namespace (``transparent_child``) with a socket source that marks
its sockets and binds them to the tunnel link, as the helper does.

Plain ``curl`` with no proxy settings is decided (the event names curl and the path
"transparent") and answered by the gateway; the rogue host's counters stay at zero; a
direct connection to the transparent port and another account's connection are
refused; ``reevaluate`` closes a transparent relay whose access was withdrawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.wait import async_wait_until, wait_until
from tests.wg_backends.accounts import second_account

pytestmark = [pytest.mark.integration, pytest.mark.root, pytest.mark.netns]

ROOT = Path(__file__).resolve().parents[3]
TPORT = 15001
MARK = 0x1234
WIKI4, WIKI6 = "10.20.0.5", "fd00:20::5"
CURL = os.path.realpath(shutil.which("curl") or "curl")


def sh(
    *argv: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, input=input)


def nsx(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *argv, check=check)


@dataclass
class Bed:
    client: str
    gateway: str
    rogue: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def rogue_packets(self) -> int:
        """Packets the rogue host received for the resource's ports (its own counter)."""
        out = nsx(self.rogue, "nft", "list", "chain", "inet", "count", "in").stdout
        return sum(int(n) for n in re.findall(r"packets (\d+)", out))

    def curl(self, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return nsx(self.client, *extra, "curl", "-sS", "--max-time", "5", url, check=False)


def _listening(ns: str, port: int) -> bool:
    return bool(nsx(ns, "ss", "-Hltn", f"sport = :{port}").stdout.strip())


def _serve_http(bed: Bed, ns: str, address: str, body: str, root: Path) -> None:
    site = root / f"{ns}-{address.replace(':', '_')}"
    site.mkdir()
    (site / "index.html").write_text(body)
    bed.procs.append(
        subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                sys.executable,
                "-m",
                "http.server",
                "8080",
                "--bind",
                address,
                "--directory",
                str(site),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    tag = os.getpid() % 100000
    b = Bed(f"rtxc{tag}", f"rtxg{tag}", f"rtxr{tag}")
    tmp = tempfile.TemporaryDirectory()
    try:
        for ns in (b.client, b.gateway, b.rogue):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        c, g, r = b.client, b.gateway, b.rogue
        sh("ip", "-n", c, "link", "add", "tun0", "type", "veth", "peer", "name", "gw0", "netns", g)
        sh("ip", "-n", c, "link", "add", "lan0", "type", "veth", "peer", "name", "rg0", "netns", r)
        for ns, dev, v4, v6 in (
            (c, "tun0", "10.99.0.2/24", "fd00:99::2/64"),
            (g, "gw0", "10.99.0.1/24", "fd00:99::1/64"),
            (c, "lan0", "192.168.1.2/24", "fd00:1::2/64"),
            (r, "rg0", "192.168.1.1/24", "fd00:1::1/64"),
        ):
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "addr", "add", v4, "dev", dev)
            sh("ip", "-n", ns, "-6", "addr", "add", v6, "dev", dev, "nodad")
        for ns in (g, r):  # both hold the resource's addresses: only the path differs
            sh("ip", "-n", ns, "addr", "add", f"{WIKI4}/32", "dev", "lo")
            sh("ip", "-n", ns, "-6", "addr", "add", f"{WIKI6}/128", "dev", "lo", "nodad")
        # The tunnel's routes, and the rogue LAN's more specific ones beside them.
        sh("ip", "-n", c, "route", "add", "10.20.0.0/16", "via", "10.99.0.1", "dev", "tun0")
        sh("ip", "-n", c, "route", "add", "10.20.0.0/24", "via", "192.168.1.1", "dev", "lan0")
        sh("ip", "-n", c, "-6", "route", "add", "fd00:20::/48", "via", "fd00:99::1", "dev", "tun0")
        sh("ip", "-n", c, "-6", "route", "add", "fd00:20::/64", "via", "fd00:1::1", "dev", "lan0")
        sh("ip", "netns", "exec", c, "nft", "-f", "-", input=(
            "table inet rtxredirect {\n"
            "  chain out {\n"
            "    type nat hook output priority -100;\n"
            f"    meta mark {MARK} return\n"
            f"    ip daddr 10.20.0.0/16 meta l4proto tcp redirect to :{TPORT}\n"
            f"    ip6 daddr fd00:20::/48 meta l4proto tcp redirect to :{TPORT}\n"
            "  }\n"
            "}\n"
        ))  # fmt: skip
        sh("ip", "netns", "exec", r, "nft", "-f", "-", input=(
            "table inet count {\n"
            "  chain in {\n"
            "    type filter hook input priority 0;\n"
            "    tcp dport { 8080, 9000 } counter\n"
            "  }\n"
            "}\n"
        ))  # fmt: skip
        root = Path(tmp.name)
        _serve_http(b, g, WIKI4, "tunnel\n", root)
        _serve_http(b, g, WIKI6, "tunnel6\n", root)
        _serve_http(b, r, WIKI4, "rogue\n", root)
        _serve_http(b, r, WIKI6, "rogue6\n", root)
        b.procs.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    g,
                    "socat",
                    f"TCP-LISTEN:9000,bind={WIKI4},fork,reuseaddr",
                    "EXEC:cat",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_until(lambda: _listening(g, 9000) and _listening(g, 8080), what="gateway servers")
        wait_until(lambda: _listening(r, 8080), what="rogue servers")
        yield b
    finally:
        for proc in b.procs:
            proc.terminate()
        for proc in b.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        for ns in (b.client, b.gateway, b.rogue):
            sh("ip", "netns", "del", ns, check=False)
        tmp.cleanup()


@dataclass
class Proxy:
    proc: asyncio.subprocess.Process
    ports: dict[str, int]
    events: list[dict[str, Any]]
    answers: asyncio.Queue[dict[str, Any]]

    async def command(self, line: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())
        await self.proc.stdin.drain()
        return await asyncio.wait_for(self.answers.get(), 10)

    async def event(self, pred: Any, what: str) -> dict[str, Any]:
        await async_wait_until(lambda: any(pred(e) for e in self.events), what=what)
        return next(e for e in self.events if pred(e))


@contextlib.asynccontextmanager
async def running_proxy(bed: Bed, **overrides: Any) -> AsyncIterator[Proxy]:
    """The proxy child in the client namespace (config as in ``transparent_child``)."""
    config = {
        "rules": [["wiki", [], [f"{WIKI4}/32", f"{WIKI6}/128"], []]],
        "transparent_port": TPORT,
        "mark": MARK,
        "device": "tun0",
        "reverse": {WIKI4: "wiki.corp.example"},
        **overrides,
    }
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", bed.client, sys.executable, "-m",
        "tests.core.proxy.transparent_child", json.dumps(config),
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
    events: list[dict[str, Any]] = []
    answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def read() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            msg = json.loads(line)
            if "event" in msg:
                events.append(msg["event"])
            else:
                answers.put_nowait(msg)

    reader = asyncio.ensure_future(read())
    try:
        yield Proxy(proc, first, events, answers)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await reader


@pytest.fixture
async def proxy(bed: Bed) -> AsyncIterator[Proxy]:
    async with running_proxy(bed) as p:
        yield p


async def test_plain_curl_is_decided_and_sent_through_the_tunnel(bed: Bed, proxy: Proxy) -> None:
    assert proxy.ports["transparent"] == TPORT
    before = bed.rogue_packets()
    out = await asyncio.to_thread(bed.curl, f"http://{WIKI4}:8080/")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "tunnel\n"  # the gateway answered, not the rogue LAN host
    ev = await proxy.event(lambda e: e["kind"] == "decision", "the decision")
    assert ev["effect"] == "allow"
    assert ev["protocol"] == "transparent"
    assert ev["app"] == "curl"  # identified from the original connection
    assert ev["exe"] == CURL
    assert ev["uid"] == 0
    assert ev["destination"] == "wiki.corp.example:8080"  # the reverse-looked-up name
    # IPv6, no name known: decided for the address
    out6 = await asyncio.to_thread(bed.curl, f"http://[{WIKI6}]:8080/")
    assert out6.returncode == 0, out6.stderr
    assert out6.stdout == "tunnel6\n"
    ev6 = await proxy.event(lambda e: e["destination"] == f"[{WIKI6}]:8080", "the v6 decision")
    assert ev6["effect"] == "allow"
    assert ev6["app"] == "curl"
    assert bed.rogue_packets() == before  # not one packet to the rogue host


async def test_a_destination_outside_the_policy_is_denied(bed: Bed, proxy: Proxy) -> None:
    before = bed.rogue_packets()
    out = await asyncio.to_thread(bed.curl, "http://10.20.0.6:8080/")
    assert out.returncode in (52, 56)  # closed without an answer: nothing was dialled
    ev = await proxy.event(lambda e: e["kind"] == "decision", "the decision")
    assert ev["effect"] == "deny"
    assert ev["destination"] == "10.20.0.6:8080"
    assert ev["protocol"] == "transparent"
    assert ev["app"] == "curl"
    assert bed.rogue_packets() == before


async def test_a_direct_connection_to_the_transparent_port_is_refused(
    bed: Bed, proxy: Proxy
) -> None:
    out = await asyncio.to_thread(bed.curl, f"http://127.0.0.1:{TPORT}/")
    assert out.returncode in (52, 56)
    ev = await proxy.event(lambda e: e["kind"] == "refused", "the refusal")
    assert "not a redirected connection" in ev["reason"]
    assert ev["app"] == "curl"
    assert not any(e["kind"] == "decision" for e in proxy.events)


async def test_another_accounts_connection_is_refused(bed: Bed, proxy: Proxy) -> None:
    with second_account() as other:
        out = await asyncio.to_thread(
            bed.curl,
            f"http://{WIKI4}:8080/",
            "setpriv", f"--reuid={other.uid}", f"--regid={other.gid}", "--clear-groups",
        )  # fmt: skip
        assert out.returncode in (52, 56), out
        ev = await proxy.event(lambda e: e["kind"] == "refused", "the refusal")
        assert f"uid {other.uid}" in ev["reason"]
        assert ev["uid"] == other.uid
        assert ev["app"] == "curl"
        assert ev["protocol"] == "transparent" or ev["protocol"] == ""
    assert not any(e["kind"] == "decision" for e in proxy.events)


_HOLDER = f"""
import socket, sys
s = socket.create_connection(("{WIKI4}", 9000), timeout=5)
s.sendall(b"ping")
assert s.recv(4) == b"ping"
print("up", flush=True)
s.settimeout(15)
print("closed" if s.recv(10) == b"" else "data", flush=True)
"""


async def test_reevaluate_closes_a_transparent_relay(bed: Bed, proxy: Proxy) -> None:
    client = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", bed.client, sys.executable, "-c", _HOLDER,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert client.stdout is not None
    try:
        assert await asyncio.wait_for(client.stdout.readline(), 10) == b"up\n"
        assert await proxy.command("deny") == {"closed": 1}
        assert await asyncio.wait_for(client.stdout.readline(), 5) == b"closed\n"
        ev = await proxy.event(lambda e: e["kind"] == "revoked", "the revocation")
        assert ev["protocol"] == "transparent"
        assert ev["destination"] == "wiki.corp.example:9000"
    finally:
        with contextlib.suppress(ProcessLookupError):
            client.kill()
        await client.wait()


async def test_the_rogue_route_is_real(bed: Bed) -> None:
    """Control: a marked socket NOT bound to the tunnel follows the rogue LAN route —
    what the proxy's dial did before it took its sockets from the helper."""
    before = bed.rogue_packets()
    script = (
        "import socket\n"
        "s = socket.socket()\n"
        f"s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, {MARK})\n"
        f"s.settimeout(5); s.connect(('{WIKI4}', 8080))\n"
        "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
        "data = b''\n"
        "while chunk := s.recv(4096):\n"
        "    data += chunk\n"
        "print(data.decode().splitlines()[-1])\n"
    )
    out = nsx(bed.client, sys.executable, "-c", script)
    assert out.stdout.strip() == "rogue"
    assert bed.rogue_packets() > before


async def test_an_unfenced_dial_redirected_back_is_refused_not_looped(bed: Bed) -> None:
    """A socket source that does not mark: the proxy's own dial is redirected to its
    transparent port again; it is recognised and refused instead of looping."""
    async with running_proxy(bed, device=None) as proxy:
        out = await asyncio.to_thread(bed.curl, f"http://{WIKI4}:8080/")
        assert out.returncode in (52, 56)
        ev = await proxy.event(lambda e: e["kind"] == "refused", "the loop refusal")
        assert "redirected back" in ev["reason"]
        assert ev["protocol"] == "transparent"
        decisions = [e for e in proxy.events if e["kind"] == "decision"]
        assert len(decisions) == 1  # curl's, once: no loop
        assert decisions[0]["app"] == "curl"
