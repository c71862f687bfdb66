"""Real wireguard-go in network namespaces (root): UDP from the client to the gateway is
dropped by nftables, the supervisor carries the handshake over an in-test TLS relay
through the bridge; then UDP is allowed again and the supervisor moves back to UDP with a
TCP connection through the tunnel still working (issue 21).

The test thread enters the client namespace (``setns``) for the sockets the supervisor,
the bridge and the relay open (they must share WireGuard's loopback); ``wg`` commands run
there through ``ip netns exec``. The relay's own UDP to the gateway carries mark 0x77,
the one kind of UDP to the gateway the nftables rule lets through.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from tests.fakes.wait import wait_until
from tests.wg_backends.relay.test_client_bridge import MiniRelay, Pki, pki  # noqa: F401
from tests.wg_backends.test_update_netns import NsRunner
from tests.wg_backends.testbed import SERVER_IP, WG_PORT, TestBed, run
from wg_backends.backends.wgquick import WgQuickBackend
from wg_backends.relay.client import relay_context
from wg_backends.relay.supervisor import Supervisor, Timings
from wg_backends.spec import RelaySpec

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns]

CLONE_NEWNET = 0x40000000
RELAY_MARK = 0x77
ECHO_PORT = 7007


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@pytest.fixture
def in_client_ns(testbed: TestBed) -> Iterator[None]:
    """This thread in the client namespace for the test's duration."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{testbed.client_ns}", os.O_RDONLY)
    try:
        _setns(target)
        yield
    finally:
        _setns(home)
        os.close(home)
        os.close(target)


@pytest.fixture
def echo_server(testbed: TestBed) -> Iterator[None]:
    """A TCP echo server behind the gateway (server namespace)."""
    code = (
        "import socket,threading\n"
        f"s=socket.create_server(('{SERVER_IP}',{ECHO_PORT}))\n"
        "def h(c):\n"
        "  while (d:=c.recv(4096)): c.sendall(d)\n"
        "while True:\n"
        "  c,_=s.accept(); threading.Thread(target=h,args=(c,),daemon=True).start()\n"
    )
    proc = subprocess.Popen(
        ["ip", "netns", "exec", testbed.server_ns, sys.executable, "-c", code],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(
            lambda: str(ECHO_PORT) in run(["ss", "-ltn"], ns=testbed.server_ns).stdout,
            10,
            what="the echo server",
        )
        yield
    finally:
        proc.terminate()
        proc.wait(5)


def _block_udp(bed: TestBed) -> None:
    rules = (
        "table inet rtw_relay_test {\n"
        " chain out {\n  type filter hook output priority 0; policy accept;\n"
        f"  ip daddr 10.231.0.1 udp dport {WG_PORT} meta mark != {RELAY_MARK:#x} drop\n"
        " }\n}\n"
    )
    subprocess.run(
        ["ip", "netns", "exec", bed.client_ns, "nft", "-f", "-"], input=rules, text=True, check=True
    )


def _allow_udp(bed: TestBed) -> None:
    run(["nft", "delete", "table", "inet", "rtw_relay_test"], ns=bed.client_ns)


async def _echo(conn: socket.socket, data: bytes) -> bytes:
    """Send ``data`` on the connection and read it back (on the loop: the sockets of the
    bridge and the relay live on it, in this thread's namespace)."""
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(conn, data)
    got = b""
    async with asyncio.timeout(10):
        while len(got) < len(data):
            chunk = await loop.sock_recv(conn, 4096)
            if not chunk:
                break
            got += chunk
    return got


@pytest.mark.usefixtures("echo_server")
async def test_blocked_udp_goes_over_the_relay_and_comes_back_without_breaking_tcp(
    testbed: TestBed,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    in_client_ns: None,
) -> None:
    runner = NsRunner(testbed.client_ns)
    backend = WgQuickBackend(runner, config_dir=tmp_path / "tunnels")
    relay = MiniRelay(pki.server_context(), udp_mark=RELAY_MARK)
    await relay.start()  # listening inside the client namespace
    base = testbed.client_spec()
    peer = msgspec.structs.replace(base.peers[0], persistent_keepalive=2)
    spec = msgspec.structs.replace(
        base,
        peers=(peer,),
        relays=(RelaySpec(name="r1", endpoint=f"127.0.0.1:{relay.port}", server_name="r1.test"),),
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    ctx = relay_context(pki.client_cert, pki.client_key)
    _block_udp(testbed)
    backend.up(spec)
    sup = Supervisor(
        spec, runner, device=spec.interface, context=ctx, workdir=tmp_path,
        timings=Timings(2.0, 4.0, 3.0),
    )  # fmt: skip
    sup.start()
    loop = asyncio.get_running_loop()
    conn: socket.socket | None = None
    try:
        # UDP is dropped: no handshake in 2 s, then the relay carries it.
        async def until(pred: object, seconds: float) -> None:
            for _ in range(int(seconds * 10)):
                if pred():  # type: ignore[operator]
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(f"timed out; transport {sup.status()}")

        await until(lambda: sup.status().kind == "relay", 10)
        status = backend.status(spec.interface)
        assert status.endpoint == f"127.0.0.1:{sup.bridge.port if sup.bridge else 0}"
        await until(lambda: backend.status(spec.interface).handshake_age is not None, 8)
        # A probe measured it first, then the device's stream to the spec's gateway.
        assert relay.hellos[-1] == {"v": 1, "gateway": f"10.231.0.1:{WG_PORT}"}
        # A TCP connection through the tunnel (over the relay).
        conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # in the client namespace
        conn.setblocking(False)
        async with asyncio.timeout(10):
            await loop.sock_connect(conn, (SERVER_IP, ECHO_PORT))
        assert await _echo(conn, b"over the relay") == b"over the relay"
        # UDP allowed again: the supervisor goes back within udp_retry + probe_window.
        _allow_udp(testbed)
        await until(lambda: sup.status().kind == "udp", 15)
        st = sup.status()
        assert (st.state, st.reason) == ("direct", "udp_back")
        assert backend.status(spec.interface).endpoint == f"10.231.0.1:{WG_PORT}"
        # The same TCP connection still works, now over UDP.
        assert await _echo(conn, b"over udp") == b"over udp"
        await asyncio.sleep(3.5)  # past the drain: the relay is no longer involved
        assert await _echo(conn, b"still") == b"still"
        assert backend.status(spec.interface).endpoint == f"10.231.0.1:{WG_PORT}"
    finally:
        if conn is not None:
            conn.close()
        await sup.close()
        await relay.stop()
        backend.down(spec.interface)
