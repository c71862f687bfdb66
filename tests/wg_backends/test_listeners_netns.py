"""The transparent port cannot be squatted (issue #15), as root on real parts: the real
helper in the bed's client namespace, a real wg-quick tunnel, real nftables rules, a
real second local account.

The nft ``redirect`` sends the owner's TCP to 127.0.0.1:<port>. If the decider bound that
port itself, any local account could bind it first (or while the agent restarts, or
after it crashed under always-on with the rules kept) and receive the owner's company
connections. The helper holds the listeners itself and hands the owner duplicates.
"""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.wait import wait_until
from tests.wg_backends.accounts import Account, second_account
from tests.wg_backends.fakes import plain_asyncio
from tests.wg_backends.helperproc import HelperProc, start_helper
from tests.wg_backends.test_enforce_netns import (
    REDIRECT_PORT,
    SERVER_PORT,
    accept_one,
    connect_as,
    our_tables,
    server,
)
from tests.wg_backends.testbed import TestBed, run
from wg_backends.errors import NoTunnelSockets
from wg_backends.firewall import table_name
from wg_backends.helper.client import HelperClient
from wg_backends.helper.sockpool import MarkedSockets

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns]
__all__ = ["server"]  # the fixture, used by name

# Binds 127.0.0.1 and [::1] at argv[1] (SO_REUSEADDR and SO_REUSEPORT: every trick a
# squatter has), prints "READY <n bound>" and, with --hold, reports every connection it
# ever receives as "STOLEN <peer>" until killed.
SQUAT = textwrap.dedent("""
    import select, socket, sys
    port, socks = int(sys.argv[1]), []
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = socket.socket(fam)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            s.bind((host, port)); s.listen(8); socks.append(s)
        except OSError as exc:
            print(f"BIND {host} errno {exc.errno}", flush=True)
    print(f"READY {len(socks)}", flush=True)
    while "--hold" in sys.argv and socks:
        for s in select.select(socks, [], [])[0]:
            c, peer = s.accept(); print(f"STOLEN {peer}", flush=True); c.close()
""")


def _as(acct: Account) -> list[str]:
    return ["setpriv", "--reuid", str(acct.uid), "--regid", str(acct.gid), "--init-groups"]


def squat(bed: TestBed, acct: Account, port: int, *, hold: bool) -> subprocess.Popen[str]:
    """The second account binding ``port`` on loopback in the client namespace."""
    argv = ["ip", "netns", "exec", bed.client_ns, *_as(acct), "/usr/bin/python3", "-I",
            "-c", SQUAT, str(port), *(["--hold"] if hold else [])]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd="/")


def squat_once(bed: TestBed, acct: Account, port: int) -> int:
    """How many of 127.0.0.1/[::1] at ``port`` the second account can bind right now."""
    proc = squat(bed, acct, port, hold=False)
    out, _ = proc.communicate(timeout=30)
    ready = [line for line in out.splitlines() if line.startswith("READY")]
    assert ready, out
    return int(ready[0].split()[1])


def redirected(bed: TestBed, socks: list) -> list[str]:  # type: ignore[type-arg]
    """The owner's plain connect to the server; the original destinations the decider
    (accepting on ``socks``) saw, or ["no answer: ..."]."""
    seen: list[str] = []
    thread = accept_one(socks, seen)
    answer = connect_as(bed, [], bed.server_ip, SERVER_PORT)
    thread.join(10)
    return seen if answer == "decider" else [f"no answer: {answer}"]


@pytest.fixture
def acct() -> Iterator[Account]:
    with second_account() as a:
        yield a


@plain_asyncio
async def test_a_squatted_port_never_gets_the_owners_connections(
    testbed: TestBed, helper: HelperProc, server: None, acct: Account
) -> None:
    bed, iface = testbed, testbed.client_if
    # Another local account binds the wanted port first (the decider is not up yet).
    squatter = squat(bed, acct, REDIRECT_PORT, hold=True)
    assert squatter.stdout is not None
    assert squatter.stdout.readline().startswith("READY ")
    try:
        async with HelperClient(helper.socket) as c:
            await c.up(bed.client_spec())
            res = await c.enforce(iface, REDIRECT_PORT)
            port = res["redirect_port"]
            assert isinstance(port, int)
            assert port != REDIRECT_PORT
            with MarkedSockets(helper.socket, iface) as pool:
                socks = pool.listeners()
            try:
                assert {s.getsockname()[1] for s in socks} == {port}
                # The owner's connection reaches the decider, with its real destination.
                assert redirected(bed, socks) == [f"{bed.server_ip}:{SERVER_PORT}"]
                # The port really used cannot be bound by the other account either.
                assert squat_once(bed, acct, port) == 0
            finally:
                for s in socks:
                    s.close()
            # The decider is gone (its copies closed): the helper still holds the port.
            assert squat_once(bed, acct, port) == 0
            await c.release(iface)
            assert our_tables(bed) == []
            # Released: the helper's copies are closed, the port is free again.
            wait_until(lambda: squat_once(bed, acct, port) >= 1, timeout=10, what="port freed")
    finally:
        squatter.kill()
        out, _ = squatter.communicate(timeout=10)
    assert "STOLEN" not in out


@plain_asyncio
async def test_the_port_stays_held_while_the_agent_is_gone_under_always_on(
    testbed: TestBed, server: None, acct: Account, tmp_path: Path
) -> None:
    bed, iface = testbed, testbed.client_if
    managed = tmp_path / "managed"
    managed.mkdir()
    managed.chmod(0o755)
    (managed / "managed.json").write_text('{"always_on": true}')
    hp = start_helper(
        bed.workdir / "helper-ao", netns=bed.client_ns,
        extra=["--backend", "wg-quick", "--managed-dir", str(managed)],
    )  # fmt: skip
    try:
        c = HelperClient(hp.socket)
        await c.up(bed.client_spec())
        port = (await c.enforce(iface, REDIRECT_PORT))["redirect_port"]
        assert port == REDIRECT_PORT
        await c.close()  # the agent dies; always-on keeps the tunnel and its rules
        wait_until(lambda: "kept up (managed always_on)" in hp.log_text(), timeout=10,
                   what="the helper kept the tunnel")  # fmt: skip
        assert our_tables(bed) == [table_name(iface)]
        assert squat_once(bed, acct, port) == 0  # nobody can take the port meanwhile
        # The agent comes back: the same port, and the listeners serve it again.
        async with HelperClient(hp.socket) as c2:
            res = await c2.enforce(iface, REDIRECT_PORT)
            assert res["redirect_port"] == port
            with MarkedSockets(hp.socket, iface) as pool:
                socks = pool.listeners()
            try:
                assert redirected(bed, socks) == [f"{bed.server_ip}:{SERVER_PORT}"]
            finally:
                for s in socks:
                    s.close()
            await c2.down(iface, break_glass_reason="test over")
        assert squat_once(bed, acct, port) >= 1
    finally:
        hp.stop()


@plain_asyncio
async def test_kill_switch_only_has_no_listeners_and_no_divert(
    testbed: TestBed, helper: HelperProc, server: None, acct: Account
) -> None:
    bed, iface = testbed, testbed.client_if
    async with HelperClient(helper.socket) as c:
        await c.up(bed.client_spec())
        res = await c.enforce(iface, None)
        assert res["redirect_port"] is None
        ruleset = run(["nft", "list", "table", "inet", table_name(iface)], ns=bed.client_ns)
        assert "chain guard" in ruleset.stdout
        assert "chain divert" not in ruleset.stdout
        assert "redirect to" not in ruleset.stdout
        with MarkedSockets(helper.socket, iface) as pool:
            with pytest.raises(NoTunnelSockets) as exc:
                pool.listeners()
            assert exc.value.helper_code == "not_up"
            s = pool.take(4)  # the kill switch's marked sockets still work
            s.settimeout(5)
            s.connect((bed.server_ip, SERVER_PORT))
            assert s.recv(100) == b"server"
            s.close()
        # The owner's own plain connect is rejected, not redirected.
        assert connect_as(bed, [], bed.server_ip, SERVER_PORT).startswith("ERR")
        assert squat_once(bed, acct, REDIRECT_PORT) >= 1  # the helper holds nothing
        # Switching transparent mode on later opens the listeners; off again closes them.
        res = await c.enforce(iface, REDIRECT_PORT)
        assert res["redirect_port"] == REDIRECT_PORT
        assert squat_once(bed, acct, REDIRECT_PORT) == 0
        res = await c.enforce(iface, None)
        assert res["redirect_port"] is None
        wait_until(lambda: squat_once(bed, acct, REDIRECT_PORT) >= 1, timeout=10,
                   what="listeners closed when the redirect is switched off")  # fmt: skip
