"""Enforcement end to end, as root: the real helper in the bed's client namespace, a real
wg-quick tunnel, the real nftables rules, real traffic.

The test's own process is root, so root (uid 0) is the tunnel's owner whose TCP to the
ranges is redirected; a throwaway second account is "another local user". A rogue, more
specific LAN route (a veth link) must carry nothing.
"""

from __future__ import annotations

import json
import select
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import msgspec
import pytest

from tests.fakes.wait import wait_until
from tests.wg_backends.accounts import second_account
from tests.wg_backends.fakes import plain_asyncio
from tests.wg_backends.helperproc import HelperProc, start_helper
from tests.wg_backends.testbed import TestBed, run
from wg_backends.errors import NoTunnelSockets
from wg_backends.firewall import mark_for, table_name
from wg_backends.helper.client import HelperClient
from wg_backends.helper.sockpool import MarkedSockets
from wg_backends.spec import PeerSpec

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns]

REDIRECT_PORT = 9181
SERVER_PORT = 8181

# A server behind the gateway: answers every connection with "server".
SERVER = textwrap.dedent("""
    import socket, sys
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
    print("READY", flush=True)
    while True:
        c, _ = s.accept(); c.sendall(b"server"); c.close()
""")
CONNECT = textwrap.dedent("""
    import socket, sys
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
        print(c.recv(100).decode() or "EMPTY")
    except OSError as exc:
        print(f"ERR {type(exc).__name__}")
""")


def _popen_ready(argv: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    return proc


@pytest.fixture
def server(testbed: TestBed) -> Iterator[None]:
    proc = _popen_ready(
        ["ip", "netns", "exec", testbed.server_ns, sys.executable, "-I", "-c", SERVER,
         testbed.server_ip, str(SERVER_PORT)]
    )  # fmt: skip
    yield
    proc.kill()
    proc.wait(5)


def connect_as(bed: TestBed, prefix: list[str], host: str, port: int) -> str:
    out = run([*prefix, "/usr/bin/python3", "-I", "-c", CONNECT, host, str(port)], ns=bed.client_ns)
    return out.stdout.strip()


def counters(bed: TestBed) -> dict[str, int]:
    out = run(
        ["nft", "-j", "list", "counters", "table", "inet", table_name(bed.client_if)],
        ns=bed.client_ns, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        return {}
    items = json.loads(out.stdout)["nftables"]
    return {i["counter"]["name"]: i["counter"]["packets"] for i in items if "counter" in i}


def our_tables(bed: TestBed) -> list[str]:
    out = run(["nft", "list", "tables", "inet"], ns=bed.client_ns).stdout
    return [line.split()[2] for line in out.splitlines() if "rustronaut_" in line]


def rogue_packets(bed: TestBed) -> int:
    out = run(["nft", "-j", "list", "table", "inet", "rtwtest"], ns=bed.client_ns).stdout
    for item in json.loads(out)["nftables"]:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                return int(expr["counter"]["packets"])
    raise AssertionError("no counter")


def send_udp(bed: TestBed) -> None:
    code = (
        "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
        f".sendto(b'x', ('{bed.server_ip}', 9999))"
    )
    run([sys.executable, "-I", "-c", code], ns=bed.client_ns, check=False)


def accept_one(socks: list[socket.socket], result: list[str]) -> threading.Thread:
    """A thread that accepts one connection on any of ``socks`` (the decider's adopted
    listeners), appends its SO_ORIGINAL_DST as "ip:port" to ``result`` and answers
    "decider"."""

    def run_() -> None:
        ready, _, _ = select.select(socks, [], [], 10)
        if not ready:
            return
        conn, _ = ready[0].accept()
        with conn:
            conn.setblocking(True)
            if conn.family == socket.AF_INET:
                raw = conn.getsockopt(socket.SOL_IP, 80, 16)  # SO_ORIGINAL_DST
                port, addr = struct.unpack_from("!2xH4s", raw)
                result.append(f"{socket.inet_ntoa(addr)}:{port}")
            else:
                raw = conn.getsockopt(socket.IPPROTO_IPV6, 80, 28)
                port, addr = struct.unpack_from("!2xH4x16s", raw)
                result.append(f"[{socket.inet_ntop(socket.AF_INET6, addr)}]:{port}")
            conn.sendall(b"decider")

    thread = threading.Thread(target=run_, daemon=True)
    thread.start()
    return thread


def redirected_to_decider(bed: TestBed, helper: HelperProc) -> bool:
    """A plain connect as the owner to the server; True when the decider — serving the
    helper's own listeners — got it with the server's address as SO_ORIGINAL_DST."""
    with MarkedSockets(helper.socket, bed.client_if) as pool:
        socks = pool.listeners()
    original: list[str] = []
    try:
        thread = accept_one(socks, original)
        answer = connect_as(bed, [], bed.server_ip, SERVER_PORT)
        thread.join(10)
        return answer == "decider" and original == [f"{bed.server_ip}:{SERVER_PORT}"]
    finally:
        for sock in socks:
            sock.close()


def marked_exchange(pool: MarkedSockets, host: str, port: int) -> bytes:
    s = pool.take(4)
    try:
        s.settimeout(5)
        s.connect((host, port))
        return s.recv(100)
    finally:
        s.close()


@plain_asyncio
async def test_redirect_marked_sockets_kill_switch_and_rogue_route(
    testbed: TestBed, helper: HelperProc, server: None
) -> None:
    bed, iface = testbed, testbed.client_if
    async with HelperClient(helper.socket) as c:
        await c.up(bed.client_spec())
        res = await c.enforce(iface, REDIRECT_PORT)
        assert res == {
            "mark": mark_for(iface),
            "ranges": ["10.232.0.0/24", "10.233.0.0/24"],
            "redirect_port": REDIRECT_PORT,  # free in the bed's fresh namespace
        }
        assert our_tables(bed) == [table_name(iface)]

        # 1. The owner's plain connect lands on the decider with the original destination
        # (the tunnel's own route first, then with a rogue more specific LAN route).
        assert redirected_to_decider(bed, helper)
        assert counters(bed)["redirected"] == 1
        rogue, peer = f"rtwra{bed.tag}", f"rtwrb{bed.tag}"  # a LAN link (no dummy module)
        run(["ip", "link", "add", rogue, "type", "veth", "peer", "name", peer], ns=bed.client_ns)
        run(["ip", "addr", "add", "10.250.0.1/24", "dev", rogue], ns=bed.client_ns)
        run(["ip", "link", "set", peer, "up"], ns=bed.client_ns)
        run(["ip", "link", "set", rogue, "up"], ns=bed.client_ns)
        # What a rogue DHCP server's option 121 does: a more specific route over the LAN.
        run(["ip", "route", "add", "10.233.0.0/28", "dev", rogue], ns=bed.client_ns)
        # Count what really leaves on the rogue link towards the ranges (postrouting runs
        # after every output verdict).
        run(["nft", "-f", "-"], ns=bed.client_ns, input=(
            "table inet rtwtest {\n chain post {\n type filter hook postrouting priority 100;"
            f' policy accept;\n oifname "{rogue}" ip daddr 10.233.0.0/24 counter\n }}\n}}\n'
        ))  # fmt: skip
        assert redirected_to_decider(bed, helper)
        assert counters(bed)["redirected"] == 2

        # 2. A marked socket is not redirected and reaches the server through the tunnel.
        with MarkedSockets(helper.socket, iface, batch=4, low=1) as pool:
            assert marked_exchange(pool, bed.server_ip, SERVER_PORT) == b"server"
            assert marked_exchange(pool, bed.server_ip, SERVER_PORT) == b"server"
        assert counters(bed)["redirected"] == 2

        # 3. Another local account cannot reach the ranges around the decider.
        with second_account() as acct:
            who = ["setpriv", "--reuid", str(acct.uid), "--regid", str(acct.gid),
                   "--init-groups"]  # fmt: skip
            assert connect_as(bed, who, bed.server_ip, SERVER_PORT).startswith("ERR")
        rejected = counters(bed)["rejected_ranges"]
        assert rejected >= 1

        # 4. UDP (and anything not TCP) from the owner to a range is rejected.
        send_udp(bed)
        assert counters(bed)["rejected_ranges"] == rejected + 1

        # 5. The kill switch: an unmarked socket bound to the tunnel (not to a range) is
        # rejected too.
        out = run([sys.executable, "-I", "-c", textwrap.dedent(f"""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"{iface}")
            s.sendto(b"x", ("198.51.100.7", 9))
        """)], ns=bed.client_ns, check=False)  # fmt: skip
        assert counters(bed)["rejected_tunnel"] >= 1, out.stderr

        # The rogue route carried nothing at all.
        assert rogue_packets(bed) == 0

        # status reports the enforcement and its counters (the helper reads them itself).
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(str(helper.socket))
            body = msgspec.json.encode({"v": 1, "type": "status", "id": 9, "interface": iface})
            raw.sendall(len(body).to_bytes(4, "big") + body)
            reply = json.loads(raw.recv(65536)[4:])
        enforcement = reply["result"]["enforcement"]
        assert enforcement["redirect_port"] == REDIRECT_PORT
        assert enforcement["counters"]["rejected_ranges"] == rejected + 1

        # 6. Release: rules gone, the tunnel stays.
        await c.release(iface)
        assert our_tables(bed) == []
        assert (await c.status(iface)).up
        send_udp(bed)
        assert rogue_packets(bed) == 1  # without enforcement the rogue route does carry it


@plain_asyncio
async def test_a_reconnect_never_opens_the_fence(testbed: TestBed, helper: HelperProc) -> None:
    # A reconnect re-ups the same interface. Between the old interface going and the new
    # one coming, the OS's routes would carry the ranges to the LAN: the rules must stay.
    bed, iface = testbed, testbed.client_if
    rogue, peer = f"rtwra{bed.tag}", f"rtwrb{bed.tag}"
    run(["ip", "link", "add", rogue, "type", "veth", "peer", "name", peer], ns=bed.client_ns)
    run(["ip", "addr", "add", "10.250.0.1/24", "dev", rogue], ns=bed.client_ns)
    run(["ip", "link", "set", peer, "up"], ns=bed.client_ns)
    run(["ip", "link", "set", rogue, "up"], ns=bed.client_ns)
    run(["ip", "route", "add", "10.233.0.0/28", "dev", rogue], ns=bed.client_ns)
    run(["nft", "-f", "-"], ns=bed.client_ns, input=(
        "table inet rtwtest {\n chain post {\n type filter hook postrouting priority 100;"
        f' policy accept;\n oifname "{rogue}" ip daddr 10.233.0.0/24 counter\n }}\n}}\n'
    ))  # fmt: skip
    # The owner's app keeps sending to a range the whole time.
    sender = _popen_ready(
        ["ip", "netns", "exec", bed.client_ns, sys.executable, "-I", "-c", textwrap.dedent("""
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            print("READY", flush=True)
            while True:
                try:
                    s.sendto(b"x", ("10.233.0.5", 9))
                except OSError:
                    pass
                time.sleep(0.002)
        """)],
    )  # fmt: skip
    try:
        async with HelperClient(helper.socket) as c:
            await c.up(bed.client_spec())
            await c.enforce(iface, REDIRECT_PORT)
            before = rogue_packets(bed)
            await c.up(bed.client_spec())  # the reconnect
            assert our_tables(bed) == [table_name(iface)]
            assert redirected_to_decider(bed, helper)  # the listeners are still held
            assert (await c.enforce(iface, REDIRECT_PORT))["redirect_port"] == REDIRECT_PORT
            leaked = rogue_packets(bed) - before
            assert leaked == 0, f"{leaked} packets took the LAN route during the reconnect"
            await c.down(iface)
    finally:
        sender.kill()
        sender.wait(5)


@plain_asyncio
async def test_rules_go_with_down_owner_disconnect_and_a_crashed_helper(
    testbed: TestBed, helper: HelperProc
) -> None:
    bed, iface = testbed, testbed.client_if
    async with HelperClient(helper.socket) as c:
        await c.up(bed.client_spec())
        await c.enforce(iface, REDIRECT_PORT)
        assert our_tables(bed) == [table_name(iface)]
        await c.down(iface)
        assert our_tables(bed) == []
    c = HelperClient(helper.socket)
    await c.up(bed.client_spec())
    await c.enforce(iface, REDIRECT_PORT)
    await c.close()
    wait_until(lambda: our_tables(bed) == [], timeout=20, what="rules removed after the owner left")
    wait_until(lambda: recorded(helper) == [], timeout=20, what="tunnel down after the owner left")
    # A helper killed with its rules in place: the next start removes them.
    c = HelperClient(helper.socket)
    await c.up(bed.client_spec())
    await c.enforce(iface, REDIRECT_PORT)
    helper.stop(signal.SIGKILL)
    await c.close()
    assert our_tables(bed) == [table_name(iface)]
    # ... plus a table no record backs at all (a crash between nft and the record).
    run(["nft", "add", "table", "inet", table_name("rtwghost")], ns=bed.client_ns)
    hp2 = start_helper(
        bed.workdir / "helper2", netns=bed.client_ns, extra=["--backend", "wg-quick",
        "--state-dir", str(helper.state_dir)]
    )  # fmt: skip
    try:
        assert our_tables(bed) == []
        with MarkedSockets(hp2.socket, iface) as pool, pytest.raises(NoTunnelSockets):
            pool.take(4)  # no tunnel: no sockets, no fallback
    finally:
        hp2.stop()


def recorded(hp: HelperProc) -> list[str]:
    path = hp.state_dir / "state.json"
    if not path.exists():
        return []
    return [t["interface"] for t in json.loads(path.read_text())["tunnels"]]


def latest_handshake(bed: TestBed) -> int:
    out = run(["wg", "show", bed.client_if, "latest-handshakes"], ns=bed.client_ns).stdout
    return int(out.split()[1])


@plain_asyncio
async def test_update_keeps_the_handshake_and_moves_the_rules(
    testbed: TestBed, helper: HelperProc, server: None
) -> None:
    bed, iface = testbed, testbed.client_if
    async with HelperClient(helper.socket) as c:
        await c.up(bed.client_spec())
        await c.enforce(iface, REDIRECT_PORT)
        with MarkedSockets(helper.socket, iface, batch=2, low=0) as pool:
            assert marked_exchange(pool, bed.server_ip, SERVER_PORT) == b"server"
        wait_until(lambda: latest_handshake(bed) > 0, what="a handshake")
        hs = latest_handshake(bed)
        spec = bed.client_spec()
        peer = spec.peers[0]
        wider = msgspec.structs.replace(
            spec,
            peers=(PeerSpec(public_key=peer.public_key, endpoint=peer.endpoint,
                            allowed_ips=(*peer.allowed_ips, "10.234.0.0/24"),
                            persistent_keepalive=peer.persistent_keepalive),),
        )  # fmt: skip
        status = await c.update(wider)
        assert status.up
        assert latest_handshake(bed) == hs
        listing = run(["nft", "list", "table", "inet", table_name(iface)], ns=bed.client_ns)
        assert "10.234.0.0/24" in listing.stdout
        assert "10.234.0.0/24" in run(["ip", "route"], ns=bed.client_ns).stdout
        with MarkedSockets(helper.socket, iface, batch=2, low=0) as pool:
            assert marked_exchange(pool, bed.server_ip, SERVER_PORT) == b"server"
        assert recorded(helper) == [iface]
        state = msgspec.json.decode((helper.state_dir / "state.json").read_bytes())
        assert "10.234.0.0/24" in state["tunnels"][0]["allowed_ips"]
