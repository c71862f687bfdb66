"""The helper's transparent listeners and the kill switch without redirect, in process.

A real helper server (in-memory backend, recording firewall) over its real Unix socket:
``enforce`` with a port opens and holds listening sockets on 127.0.0.1 / ::1 before the
rules point there (another free port, the same on both, when the wanted one is taken);
``listeners`` hands the owner uid duplicates with SCM_RIGHTS; release, down, the owner's
disconnect and stop close them (the port is free again); without a port there are no
listeners and no redirect. A hostile helper cannot make the client adopt anything but
listening loopback sockets.
"""

from __future__ import annotations

import errno
import socket
import struct
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.fakes.wait import wait_until
from tests.wg_backends.accounts import run_as, second_account
from tests.wg_backends.fakes import plain_asyncio
from tests.wg_backends.test_enforce import make_server, open_dir, spec
from wg_backends.errors import BackendError, HelperRefused, NoTunnelSockets, ProtocolError
from wg_backends.firewall import Enforcement, render_anchor, render_enforcement
from wg_backends.helper import protocol as p
from wg_backends.helper.client import HelperClient
from wg_backends.helper.redirect import HeldListeners, open_listeners
from wg_backends.helper.sockpool import MarkedSockets

pytestmark = [pytest.mark.integration, pytest.mark.root]
__all__ = ["make_server", "open_dir"]  # fixtures, used by name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bindable(port: int, host: str = "127.0.0.1") -> bool:
    """Whether anyone could bind ``host:port`` now (the squatter's question)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            return False
        return True


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# ----- protocol and rules --------------------------------------------------------------


def test_enforce_without_a_port_and_the_listeners_request_decode() -> None:
    req = p.decode_request(b'{"type":"enforce","id":1,"interface":"wg0"}')
    assert isinstance(req, p.Enforce)
    assert req.redirect_port is None
    req = p.decode_request(b'{"type":"enforce","id":1,"interface":"wg0","redirect_port":null}')
    assert isinstance(req, p.Enforce)
    assert req.redirect_port is None
    req = p.decode_request(b'{"type":"listeners","id":2,"interface":"wg0"}')
    assert req == p.Listeners(id=2, interface="wg0")
    assert p.decode_request(p.encode(req)[4:]) == req


@pytest.mark.parametrize(
    "body",
    [
        {"type": "listeners", "id": 1, "interface": "../x"},
        {"type": "listeners", "id": 1},
        {"type": "listeners", "id": 1, "interface": "wg0", "port": 80},
        {"type": "enforce", "id": 1, "interface": "wg0", "redirect_port": 0},
        {"type": "enforce", "id": 1, "interface": "wg0", "redirect_port": "9082"},
    ],
)
def test_bad_listeners_and_enforce_requests_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        p.decode_request(msgspec.json.encode(body))


def enf(port: int | None) -> Enforcement:
    return Enforcement.build(
        "rtw0", owner_uid=1000, redirect_port=port,
        allowed_ips=["10.233.0.0/24", "fd00::/64"], dns=["10.232.0.1"],
    )  # fmt: skip


def test_kill_switch_only_renders_no_divert_chain() -> None:
    with_redirect = render_enforcement(enf(9082))
    without = render_enforcement(enf(None))
    assert "chain divert" in with_redirect
    assert "redirect to :9082" in with_redirect
    assert "chain divert" not in without
    assert "redirect" not in without.replace("redirected", "")
    # The guard is the same: the owner's TCP to the ranges is rejected like the rest.
    guard = with_redirect[with_redirect.index("chain guard") :]
    assert without[without.index("chain guard") :] == guard
    anchor = render_anchor(enf(None), decider_gid=20)
    assert "rdr" not in anchor
    assert "route-to" not in anchor
    assert "block return out quick log from any to { 10.233.0.0/24 }" in anchor


# ----- the listeners themselves ---------------------------------------------------------


def test_open_listeners_takes_the_wanted_port_or_one_free_on_both() -> None:
    want = free_port()
    socks = open_listeners(want)
    try:
        assert {s.getsockname()[1] for s in socks} == {want}
        assert len(socks) == (2 if has_ipv6_loopback() else 1)
        assert not bindable(want)
        # The same port again (someone already listens): another port, one for both.
        other = open_listeners(want)
        try:
            ports = {s.getsockname()[1] for s in other}
            assert len(ports) == 1
            assert want not in ports
        finally:
            for s in other:
                s.close()
    finally:
        for s in socks:
            s.close()
    assert bindable(want)


def test_held_listeners_keep_their_port_on_a_second_hold() -> None:
    held = HeldListeners()
    want = free_port()
    assert held.hold("rtw0", want) == want
    assert held.hold("rtw0", free_port()) == want  # never lets go of a port in use
    dups = held.dups("rtw0")
    try:
        assert [d.getsockname()[1] for d in dups] == [want] * len(dups)
        held.close("rtw0")
        assert not bindable(want)  # the duplicates still hold it (the decider's copies)
    finally:
        for d in dups:
            d.close()
    assert bindable(want)
    assert held.port("rtw0") is None
    assert held.dups("rtw0") == []


# ----- through the helper ---------------------------------------------------------------


@plain_asyncio
async def test_enforce_holds_listeners_and_hands_duplicates_to_the_owner(
    make_server: Any,
) -> None:
    r, fw = make_server()
    want = free_port()
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        res = await c.enforce("rtw0", want)
        assert res["redirect_port"] == want
        assert fw.live["rtw0"].redirect_port == want
        assert not bindable(want)
        with MarkedSockets(r.socket, "rtw0") as pool:
            socks = pool.listeners()
        try:
            assert {s.getsockname()[0] for s in socks} <= {"127.0.0.1", "::1"}
            assert {s.getsockname()[1] for s in socks} == {want}
            # A connection to the port is accepted on the handed duplicate.
            with socket.create_connection(("127.0.0.1", want), timeout=5) as client:
                v4 = next(s for s in socks if s.family == socket.AF_INET)
                v4.settimeout(5)
                conn, _ = v4.accept()
                conn.sendall(b"hi")
                assert client.recv(10) == b"hi"
                conn.close()
        finally:
            for s in socks:
                s.close()
        assert not bindable(want)  # the helper's own copies keep it
        status = r.server._enforcement_status("rtw0")
        assert status is not None
        assert status["redirect_port"] == want
        await c.release("rtw0")
        assert bindable(want)


@plain_asyncio
async def test_a_taken_port_is_replaced_by_a_free_one(make_server: Any) -> None:
    r, fw = make_server()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    taken = squatter.getsockname()[1]
    try:
        async with HelperClient(r.socket) as c:
            await c.up(spec())
            port = (await c.enforce("rtw0", taken))["redirect_port"]
            assert isinstance(port, int)
            assert port != taken
            assert fw.live["rtw0"].redirect_port == port  # the rules point at ours
            assert r.server.state.get("rtw0").redirect_port == port
            assert not bindable(port)
            if has_ipv6_loopback():
                assert not bindable(port, "::1")
            # Asking again (the agent came back) keeps the port the rules point at.
            assert (await c.enforce("rtw0", taken))["redirect_port"] == port
    finally:
        squatter.close()


@plain_asyncio
async def test_no_port_means_the_kill_switch_only(make_server: Any) -> None:
    r, fw = make_server()
    want = free_port()
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        res = await c.enforce("rtw0", None)
        assert res["redirect_port"] is None
        assert res["ranges"] == ["10.233.0.0/24"]
        assert fw.live["rtw0"].redirect_port is None
        rec = r.server.state.get("rtw0")
        assert rec is not None
        assert rec.enforced
        assert rec.redirect_port == 0
        with MarkedSockets(r.socket, "rtw0") as pool, pytest.raises(NoTunnelSockets) as exc:
            pool.listeners()
        assert exc.value.helper_code == "not_up"
        status = r.server._enforcement_status("rtw0")
        assert status is not None
        assert status["redirect_port"] is None
        # On, then off again: the listeners follow, the rules never point at a free port.
        assert (await c.enforce("rtw0", want))["redirect_port"] == want
        assert not bindable(want)
        await c.enforce("rtw0", None)
        assert fw.live["rtw0"].redirect_port is None
        assert bindable(want)
        # A down removes kill-switch-only rules too.
        await c.down("rtw0")
        assert "rtw0" not in fw.live


@plain_asyncio
async def test_listeners_close_with_down_disconnect_and_stop(make_server: Any) -> None:
    r, _fw = make_server()
    want = free_port()
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        await c.enforce("rtw0", want)
        await c.down("rtw0")
        assert bindable(want)
    c = HelperClient(r.socket)
    await c.up(spec())
    await c.enforce("rtw0", want)
    await c.close()  # the owner left, no always-on
    wait_until(lambda: bindable(want), timeout=10, what="listeners closed after the owner left")
    # ... and the helper done with that tunnel (a request meanwhile is refused busy).
    wait_until(lambda: "rtw0" not in r.server._busy, timeout=10, what="the down finished")
    c = HelperClient(r.socket)
    await c.up(spec())
    await c.enforce("rtw0", want)
    assert not bindable(want)
    r.stop()
    await c.close()
    assert bindable(want)


@plain_asyncio
async def test_a_failed_enforce_leaves_no_listener_and_a_failed_reenforce_keeps_them(
    make_server: Any,
) -> None:
    r, fw = make_server()
    want = free_port()
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        fw.fail_apply = True
        with pytest.raises(HelperRefused):
            await c.enforce("rtw0", want)
        assert bindable(want)  # nothing held for rules that were never applied
        fw.fail_apply = False
        await c.enforce("rtw0", want)
        fw.fail_apply = True
        with pytest.raises(HelperRefused):
            await c.enforce("rtw0", None)
        assert not bindable(want)  # the old rules still point there: still held
        assert r.server.state.get("rtw0").redirect_port == want


@plain_asyncio
async def test_rules_that_cannot_be_removed_keep_their_port_held(make_server: Any) -> None:
    r, fw = make_server()
    want = free_port()
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        await c.enforce("rtw0", want)

        def refuse(interface: str) -> None:
            raise BackendError("nft refused")

        fw.remove = refuse
        with pytest.raises(HelperRefused):
            await c.release("rtw0")
        assert not bindable(want)


def test_another_account_gets_no_listeners(make_server: Any) -> None:
    with second_account() as acct:
        r, fw = make_server(allowed_uids=frozenset({acct.uid}))
        owner = socket.socket(socket.AF_UNIX)
        owner.connect(str(r.socket))
        for req in (p.Up(id=1, spec=spec()), p.Enforce(id=2, interface="rtw0",
                                                       redirect_port=free_port())):  # fmt: skip
            body = msgspec.json.encode(req)
            owner.sendall(struct.pack(">I", len(body)) + body)
        wait_until(lambda: "rtw0" in fw.live, what="enforced")
        answers = run_as(acct, r.socket, [{"type": "listeners", "id": 3, "interface": "rtw0"}])
        assert [a.get("code") for a in answers] == ["not_owner"], answers
        owner.close()


# ----- a hostile helper -------------------------------------------------------------------


def serve_plans(path: Path, plans: list[list[socket.socket]]) -> threading.Thread:
    """A fake helper on ``path``: answers each request ``ok`` with the next plan's
    sockets (SCM_RIGHTS), whatever was asked."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(1)

    def serve() -> None:
        with srv:
            conn, _ = srv.accept()
            with conn:
                for socks in plans:
                    if not conn.recv(65536):
                        return
                    port = socks[0].getsockname()[1]
                    body = msgspec.json.encode(
                        {"v": 1, "type": "ok", "id": 1,
                         "result": {"count": len(socks), "redirect_port": port}}
                    )  # fmt: skip
                    fds = struct.pack(f"{len(socks)}i", *(s.fileno() for s in socks))
                    conn.sendmsg(
                        [struct.pack(">I", len(body)) + body],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)],
                    )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_hostile_helper_cannot_hand_anything_but_loopback_listeners(tmp_path: Path) -> None:
    unbound = socket.socket()
    wildcard = socket.socket()
    wildcard.bind(("0.0.0.0", 0))
    wildcard.listen(1)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    not_listening = socket.socket()
    not_listening.bind(("127.0.0.1", 0))
    a, b = socket.socket(), socket.socket()  # two listeners on different ports
    for x in (a, b):
        x.bind(("127.0.0.1", 0))
        x.listen(1)
    good = socket.socket()
    good.bind(("127.0.0.1", 0))
    good.listen(1)
    made = [unbound, wildcard, udp, not_listening, a, b, good]
    plans = [[unbound], [wildcard], [udp], [not_listening], [a, b], [good]]
    thread = serve_plans(tmp_path / "fake.sock", plans)
    try:
        with MarkedSockets(tmp_path / "fake.sock", "rtw0", timeout=5) as pool:
            for _ in plans[:-1]:
                with pytest.raises(NoTunnelSockets):
                    pool.listeners()
            (got,) = pool.listeners()  # what a genuine answer looks like
            assert got.getsockname() == good.getsockname()
            got.close()
    finally:
        thread.join(5)
        for x in made:
            x.close()
