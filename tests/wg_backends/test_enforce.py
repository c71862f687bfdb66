"""The helper's enforcement verbs with an in-memory backend and a recording firewall.

``enforce``/``release``/``update``/``sockets`` over the real Unix socket: ranges come
from the helper's record, never the caller; only the owner (or root) may enforce; only
the owner uid gets marked sockets (passed with SCM_RIGHTS, carrying the mark and bound to
the interface); rules go with release, down, the owner's disconnect and clean-ups; the
always-on block stays when an enforced tunnel goes away without a break-glass down.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.fakes.wait import wait_until
from tests.wg_backends.accounts import hold_as, run_as, second_account
from tests.wg_backends.fakes import FakeBackend, plain_asyncio
from tests.wg_backends.inproc import Running, serve_in_thread
from tests.wg_backends.keys import PRIV, PUB
from wg_backends.errors import BackendError, HelperRefused, NoTunnelSockets, ProtocolError
from wg_backends.firewall import Enforcement, mark_for
from wg_backends.helper import managed
from wg_backends.helper import protocol as p
from wg_backends.helper import server as server_mod
from wg_backends.helper.client import HelperClient
from wg_backends.helper.sockpool import MarkedSockets
from wg_backends.spec import PeerSpec, RelaySpec, TunnelSpec
from wg_backends.status import TunnelStatus

pytestmark = [pytest.mark.integration, pytest.mark.root]


def spec(name: str = "rtw0", nets: tuple[str, ...] = ("10.233.0.0/24",)) -> TunnelSpec:
    return TunnelSpec(
        interface=name,
        addresses=("10.232.0.2/32",),
        peers=(PeerSpec(public_key=PUB, endpoint="10.231.0.1:51820", allowed_ips=nets),),
        private_key=PRIV,
        dns=("10.232.0.1",),
    )


@dataclass
class RecordingFirewall:
    """A firewall that remembers what it was told (the helper's side of the seam)."""

    name: str = "recording"
    applied: list[Enforcement] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    blocked: list[tuple[str, ...]] = field(default_factory=list)
    block_passes: list[tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    unblocks: int = 0
    fail_apply: bool = False
    live: dict[str, Enforcement] = field(default_factory=dict)

    def apply(self, enf: Enforcement) -> None:
        if self.fail_apply:
            raise BackendError("nft refused")
        self.applied.append(enf)
        self.live[enf.interface] = enf

    def remove(self, interface: str) -> None:
        self.removed.append(interface)
        self.live.pop(interface, None)

    def block(
        self,
        ranges: Sequence[str],
        *,
        endpoints: Sequence[str] = (),
        relay_endpoints: Sequence[str] = (),
    ) -> None:
        self.blocked.append(tuple(ranges))
        self.block_passes.append((tuple(endpoints), tuple(relay_endpoints)))

    def unblock(self) -> None:
        self.unblocks += 1

    def reconcile(self, live: Sequence[str], *, keep_block: bool) -> list[str]:
        return []


@dataclass
class UpdatingBackend(FakeBackend):
    """FakeBackend with the in-place ``update`` of the Backend protocol."""

    updates: list[TunnelSpec] = field(default_factory=list)
    fail_update: bool = False
    order: list[str] | None = None

    def update(self, spec: TunnelSpec) -> TunnelStatus:
        if self.order is not None:
            self.order.append("backend.update")
        if self.fail_update:
            raise BackendError("wg syncconf failed")
        self.updates.append(spec)
        self.up_ifaces[spec.interface] = spec
        return self.status(spec.interface)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="rtw-e-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_server(tmp_path: Path, open_dir: Path) -> Iterator[Any]:
    running: list[Running] = []

    def make(backend: FakeBackend | None = None, **kw: Any) -> tuple[Running, RecordingFirewall]:
        kw.setdefault("sock_dir", open_dir / "run")
        r = serve_in_thread(tmp_path, backend or UpdatingBackend(), **kw)
        fw = RecordingFirewall()
        r.server.firewall = fw
        r.server.local_networks = lambda: ()
        running.append(r)
        return r, fw

    yield make
    for r in running:
        r.stop()


# ----- protocol ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"type": "enforce", "id": 1, "interface": "wg0", "redirect_port": 0},
        {"type": "enforce", "id": 1, "interface": "wg0", "redirect_port": True},
        {"type": "enforce", "id": 1, "interface": "wg0", "redirect_port": 1, "ranges": ["0/0"]},
        {"type": "enforce", "id": 1, "interface": "wg0", "redirect_port": 1, "mark": 5},
        # The relays that pass come from the helper's record of the spec, never the caller.
        {
            "type": "enforce",
            "id": 1,
            "interface": "wg0",
            "redirect_port": 1,
            "relay_endpoints": ["10.9.9.9:22"],
        },
        {"type": "release", "id": 1, "interface": "wg0;"},
        {"type": "sockets", "id": 1, "interface": "wg0", "family": 5},
        {"type": "sockets", "id": 1, "interface": "wg0", "family": 4, "count": 65},
        {"type": "sockets", "id": 1, "interface": "wg0", "family": 4, "count": 0},
        {"type": "sockets", "id": 1, "interface": "wg0", "family": 4, "kind": "icmp"},
        {"type": "update", "id": 1, "spec": {"interface": "wg0"}},
    ],
)
def test_bad_enforcement_requests_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        p.decode_request(json.dumps(body).encode())


def test_new_requests_round_trip() -> None:
    for msg in (
        p.Enforce(id=1, interface="wg0", redirect_port=9081),
        p.Enforce(id=2, interface="wg0", redirect_port=9081, block_when_down=True),
        p.Release(id=3, interface="wg0"),
        p.Sockets(id=4, interface="wg0", family=6, kind="udp", count=64),
        p.Update(id=5, spec=spec()),
    ):
        assert p.decode_request(p.encode(msg)[4:]) == msg


# ----- enforce / release ---------------------------------------------------------------


@plain_asyncio
async def test_enforce_takes_ranges_from_the_record(make_server: Any) -> None:
    r, fw = make_server()
    async with HelperClient(r.socket) as c:
        with pytest.raises(HelperRefused) as exc:
            await c.enforce("rtw0", 9081)
        assert exc.value.helper_code == "not_up"
        await c.up(spec(nets=("10.233.0.0/24", "fd00::/64")))
        res = await c.enforce("rtw0", 9081)
        port = res.pop("redirect_port")  # 9081, or another free port if that one is taken
        assert res == {"mark": mark_for("rtw0"), "ranges": ["10.233.0.0/24", "fd00::/64"]}
        (enf,) = fw.applied
        assert (enf.owner_uid, enf.redirect_port, enf.dns4) == (0, port, ("10.232.0.1",))
        assert enf.endpoints == (("10.231.0.1", 51820),)
        assert r.server.state.get("rtw0").redirect_port == port  # type: ignore[union-attr]
        await c.release("rtw0")
        assert fw.removed == ["rtw0"]
        assert not fw.live
        assert r.server.state.get("rtw0").redirect_port == 0  # type: ignore[union-attr]


@plain_asyncio
async def test_rules_go_with_down_and_with_the_owners_disconnect(make_server: Any) -> None:
    r, fw = make_server()
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        await c.enforce("rtw0", 9081)
        await c.down("rtw0")
        assert fw.removed == ["rtw0"]
    c = HelperClient(r.socket)
    await c.up(spec())
    await c.enforce("rtw0", 9081)
    await c.close()  # the owner's connection ends: tunnel and rules go
    wait_until(lambda: r.server.state.get("rtw0") is None, what="owner-lost clean-up")
    assert fw.removed == ["rtw0", "rtw0"]
    assert "rtw0" not in r.backend.up_ifaces


@plain_asyncio
async def test_a_re_up_keeps_the_rules_and_listeners(make_server: Any) -> None:
    # A reconnect re-ups the same interface: the rules must never be removed in between
    # (the OS's routes would send the ranges to the LAN), and move to the new ranges
    # before the new routes exist.
    order: list[str] = []
    backend = UpdatingBackend(order=order)
    r, fw = make_server(backend)
    orig_apply, orig_up, orig_down = fw.apply, backend.up, backend.down

    def apply(enf: Enforcement) -> None:
        order.append(f"firewall.apply {','.join(enf.ranges)}")
        orig_apply(enf)

    def up(s: TunnelSpec) -> TunnelStatus:
        order.append("backend.up")
        return orig_up(s)

    def down(name: str) -> None:
        order.append("backend.down")
        orig_down(name)

    fw.apply, backend.up, backend.down = apply, up, down  # type: ignore[method-assign]
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        port = (await c.enforce("rtw0", 9081, block_when_down=True))["redirect_port"]
        held = r.server._held.port("rtw0")
        order.clear()
        await c.up(spec(nets=("10.233.0.0/24", "10.234.0.0/24")))
        assert order == [
            "backend.down",
            "firewall.apply 10.233.0.0/24,10.234.0.0/24",
            "backend.up",
        ]
        assert fw.removed == []
        assert fw.live["rtw0"].redirect_port == port
        assert r.server._held.port("rtw0") == held == port  # the same listeners, kept
        rec = r.server.state.get("rtw0")
        assert rec is not None
        assert (rec.enforced, rec.redirect_port, rec.block_when_down) == (True, port, True)
        assert rec.allowed_ips == ("10.233.0.0/24", "10.234.0.0/24")
        # The engine's enforce that follows a re-up keeps the same port.
        assert (await c.enforce("rtw0", 9081))["redirect_port"] == port
        # A deliberate down still removes them.
        await c.down("rtw0")
        assert fw.removed == ["rtw0"]
        assert r.server._held.port("rtw0") is None


@plain_asyncio
async def test_a_failed_re_up_blocks_the_ranges_it_asked_to_keep_blocked(
    make_server: Any,
) -> None:
    backend = UpdatingBackend()
    r, fw = make_server(backend)
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        await c.enforce("rtw0", 9081, block_when_down=True)
        backend.fail_up = True
        with pytest.raises(HelperRefused):
            await c.up(spec())
        assert fw.blocked == [("10.233.0.0/24",)]  # the ranges stay blocked
        assert fw.block_passes == [(("10.231.0.1:51820",), ())]  # its gateway passes
        assert fw.removed == ["rtw0"]
        assert r.server.state.get("rtw0") is None
        assert r.server._held.port("rtw0") is None


@plain_asyncio
async def test_a_failed_firewall_leaves_nothing_recorded(make_server: Any) -> None:
    r, fw = make_server()
    fw.fail_apply = True
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        with pytest.raises(HelperRefused) as exc:
            await c.enforce("rtw0", 9081)
        assert exc.value.helper_code == "backend"
        assert r.server.state.get("rtw0").redirect_port == 0  # type: ignore[union-attr]


@plain_asyncio
async def test_enforce_is_unsupported_without_a_firewall(make_server: Any) -> None:
    r, _ = make_server()
    r.server.firewall = None
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        with pytest.raises(HelperRefused) as exc:
            await c.enforce("rtw0", 9081)
        assert exc.value.helper_code == "unsupported"


def test_another_account_cannot_enforce_release_update_or_get_sockets(make_server: Any) -> None:
    with second_account() as acct:
        r, fw = make_server(allowed_uids=frozenset({acct.uid}))
        owner = socket.socket(socket.AF_UNIX)
        owner.connect(str(r.socket))
        body = msgspec.json.encode(p.Up(id=1, spec=spec()))
        owner.sendall(struct.pack(">I", len(body)) + body)
        wait_until(lambda: r.server.state.get("rtw0") is not None)
        reqs = [
            {"type": "enforce", "id": 2, "interface": "rtw0", "redirect_port": 9081},
            {"type": "release", "id": 3, "interface": "rtw0"},
            {"type": "update", "id": 4, "spec": msgspec.to_builtins(spec(nets=("10.9.0.0/16",)))},
            {"type": "sockets", "id": 5, "interface": "rtw0", "family": 4, "count": 4},
        ]
        answers = run_as(acct, r.socket, reqs)
        assert [a.get("code") for a in answers] == ["not_owner"] * 4, answers
        assert fw.applied == []
        assert fw.removed == []
        assert r.backend.updates == []  # type: ignore[attr-defined]
        assert "refused sockets of rtw0 to uid" in _log_lines(r)
        owner.close()


def test_root_may_enforce_an_accounts_tunnel_but_not_take_its_sockets(make_server: Any) -> None:
    with second_account() as acct:
        r, fw = make_server(allowed_uids=frozenset({acct.uid}))
        up = {"type": "up", "id": 1, "spec": msgspec.to_builtins(spec())}
        proc, answers = hold_as(acct, r.socket, [up])
        try:
            assert answers[0]["type"] == "ok", answers
            with MarkedSockets(r.socket, "rtw0") as pool, pytest.raises(NoTunnelSockets) as exc:
                pool.take(4)
            assert exc.value.helper_code == "not_owner"
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(r.socket))
                body = msgspec.json.encode(p.Enforce(id=2, interface="rtw0", redirect_port=9))
                s.sendall(struct.pack(">I", len(body)) + body)
                assert b'"ok"' in s.recv(65536)
            (enf,) = fw.applied
            assert enf.owner_uid == acct.uid  # the tunnel owner's traffic, not root's
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(10)


def _log_lines(r: Running) -> str:
    return "\n".join(_CAPTURED)


_CAPTURED: list[str] = []


@pytest.fixture(autouse=True)
def _capture_helper_log() -> Iterator[None]:
    import logging

    class H(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            _CAPTURED.append(record.getMessage())

    h = H()
    log = logging.getLogger("rustronaut.helper")
    log.addHandler(h)
    old = log.level
    log.setLevel(logging.INFO)
    _CAPTURED.clear()
    yield
    log.removeHandler(h)
    log.setLevel(old)


# ----- always-on block -------------------------------------------------------------------


@plain_asyncio
async def test_always_on_keeps_a_block_until_break_glass(make_server: Any) -> None:
    r, fw = make_server()
    r.server.read_managed = lambda: managed.HelperManaged(always_on=True)
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        await c.enforce("rtw0", 9081)
    # The owner left: always-on keeps the tunnel and its rules (the decider is gone, so
    # redirected connections are refused: blocked, not leaked).
    wait_until(lambda: not r.server._owners)
    assert fw.removed == []
    assert "rtw0" in fw.live
    # The helper stops (or a crash clean-up runs): the ranges stay blocked.
    await_cleanup(r)
    assert fw.blocked == [("10.233.0.0/24",)]
    assert fw.removed == ["rtw0"]
    # A break-glass down ends the block.
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        await c.down("rtw0", break_glass_reason="on a plane")
    assert fw.unblocks == 1


@plain_asyncio
async def test_block_when_down_without_management(make_server: Any) -> None:
    r, fw = make_server()
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        await c.enforce("rtw0", 9081, block_when_down=True)
        await_cleanup(r)
        assert fw.blocked == [("10.233.0.0/24",)]


# ----- issue 21: the relays pass a full tunnel's kill switch ---------------------------


def with_relays(base: TunnelSpec, *relays: RelaySpec) -> TunnelSpec:
    return msgspec.structs.replace(base, relays=relays)


FULL = ("0.0.0.0/0", "::/0")


@plain_asyncio
async def test_enforcement_lets_the_recorded_relays_through_resolved_once(
    make_server: Any,
) -> None:
    r, fw = make_server()
    resolved: list[str] = []

    def resolve(s: TunnelSpec) -> tuple[str, ...]:
        resolved.append(s.interface)
        return server_mod.resolve_relays(s)

    r.server.resolve_relays = resolve
    full = with_relays(
        spec(nets=FULL),
        RelaySpec(name="r1", endpoint="localhost:8443"),
        RelaySpec(name="r2", endpoint="relay.invalid:443"),  # does not resolve: skipped
    )
    async with HelperClient(r.socket) as c:
        await c.up(full)
        rec = r.server.state.get("rtw0")
        assert rec is not None
        assert "127.0.0.1:8443" in rec.relay_endpoints
        assert all(ep.endswith(":8443") for ep in rec.relay_endpoints)
        await c.enforce("rtw0", 9081)
        (enf,) = fw.applied
        assert ("127.0.0.1", 8443) in enf.relay_endpoints
        assert {port for _, port in enf.relay_endpoints} == {8443}
        assert enf.endpoints == (("10.231.0.1", 51820),)
        assert resolved == ["rtw0"]  # resolved when the routes were checked, not again
        # An update moves the relays: the rules follow, from the new record.
        split = with_relays(
            spec(),
            RelaySpec(name="r1", endpoint="198.51.100.7:4443", server_name="relay.example"),
        )
        await c.update(split)
        assert fw.applied[-1].relay_endpoints == (("198.51.100.7", 4443),)
        assert r.server.state.get("rtw0").relay_endpoints == ("198.51.100.7:4443",)  # type: ignore[union-attr]
        # A spec without relays: none pass any more.
        await c.update(spec())
        assert fw.applied[-1].relay_endpoints == ()
        assert resolved == ["rtw0"] * 3


@plain_asyncio
async def test_block_when_down_lets_the_gateway_and_relays_through(make_server: Any) -> None:
    r, fw = make_server()
    relayed = with_relays(
        spec(), RelaySpec(name="r1", endpoint="198.51.100.7:443", server_name="relay.example")
    )
    async with HelperClient(r.socket) as c:
        await c.up(relayed)
        await c.enforce("rtw0", 9081, block_when_down=True)
        await_cleanup(r)
        assert fw.blocked == [("10.233.0.0/24",)]
        assert fw.block_passes == [(("10.231.0.1:51820",), ("198.51.100.7:443",))]


def test_resolve_relays_literal_named_and_unresolvable() -> None:
    s = with_relays(
        spec(),
        RelaySpec(name="a", endpoint="198.51.100.7:443", server_name="relay.example"),
        RelaySpec(name="b", endpoint="[2001:db8::7]:8443", server_name="relay.example"),
        RelaySpec(name="c", endpoint="localhost:9443"),
        RelaySpec(name="d", endpoint="relay.invalid:443"),
        RelaySpec(name="e", endpoint="198.51.100.7:443", server_name="other.example"),
    )
    got = server_mod.resolve_relays(s)
    assert got[:2] == ("198.51.100.7:443", "[2001:db8::7]:8443")  # the spec's order, once
    assert "127.0.0.1:9443" in got[2:]
    assert all(ep.endswith(":9443") for ep in got[2:])
    assert server_mod.resolve_relays(spec()) == ()


def await_cleanup(r: Running) -> None:
    done = threading.Event()

    def cleanup() -> None:
        r.server.cleanup_stale()
        done.set()

    r.loop.call_soon_threadsafe(cleanup)
    assert done.wait(10)


# ----- update ------------------------------------------------------------------------


@plain_asyncio
async def test_update_is_hitless_and_rules_follow_first(make_server: Any) -> None:
    order: list[str] = []
    backend = UpdatingBackend(order=order)
    r, fw = make_server(backend)
    orig_apply = fw.apply

    def apply(enf: Enforcement) -> None:
        order.append("firewall.apply")
        orig_apply(enf)

    fw.apply = apply  # type: ignore[method-assign]
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        port = (await c.enforce("rtw0", 9081))["redirect_port"]
        order.clear()
        status = await c.update(spec(nets=("10.233.0.0/24", "10.234.0.0/24")))
        assert status.up
        assert order == ["firewall.apply", "backend.update"]
        assert backend.downs == []  # never taken down
        assert fw.live["rtw0"].ranges == ("10.233.0.0/24", "10.234.0.0/24")
        rec = r.server.state.get("rtw0")
        assert rec is not None
        assert rec.allowed_ips == ("10.233.0.0/24", "10.234.0.0/24")
        assert rec.redirect_port == port  # the listeners are kept
        assert rec.owner_uid == 0


@plain_asyncio
async def test_a_failed_update_restores_the_old_rules_and_record(make_server: Any) -> None:
    backend = UpdatingBackend(fail_update=True)
    r, fw = make_server(backend)
    async with HelperClient(r.socket) as c:
        await c.up(spec())
        await c.enforce("rtw0", 9081)
        with pytest.raises(HelperRefused) as exc:
            await c.update(spec(nets=("10.99.0.0/16",)))
        assert exc.value.helper_code == "backend"
        assert fw.live["rtw0"].ranges == ("10.233.0.0/24",)
        assert r.server.state.get("rtw0").allowed_ips == ("10.233.0.0/24",)  # type: ignore[union-attr]


@plain_asyncio
async def test_update_refusals(make_server: Any) -> None:
    r, _ = make_server()
    r.server.local_networks = lambda: ("192.168.1.0/24",)
    async with HelperClient(r.socket) as c:
        with pytest.raises(HelperRefused) as exc:
            await c.update(spec())
        assert exc.value.helper_code == "not_up"
        await c.up(spec())
        with pytest.raises(HelperRefused) as exc:
            await c.update(spec(nets=("192.168.1.0/25",)))  # inside the LAN
        assert exc.value.helper_code == "bad_spec"
        assert r.backend.updates == []  # type: ignore[attr-defined]
    r2, _ = make_server(FakeBackend(), sock_dir=r.socket.parent.parent / "run2")
    async with HelperClient(r2.socket) as c:
        await c.up(spec())
        with pytest.raises(HelperRefused) as exc:
            await c.update(spec(nets=("10.9.0.0/16",)))
        assert exc.value.helper_code == "unsupported"


# ----- sockets ---------------------------------------------------------------------------


@plain_asyncio
async def test_marked_sockets_carry_the_mark_and_the_interface(make_server: Any) -> None:
    r, _ = make_server()
    async with HelperClient(r.socket) as c:
        await c.up(spec("lo"))  # a real interface the fake backend "owns"
        with MarkedSockets(r.socket, "lo", batch=8, low=4) as pool:
            s = pool.take(4)
            u = pool.take(socket.AF_INET6, "udp")
            try:
                assert (s.family, s.type) == (socket.AF_INET, socket.SOCK_STREAM)
                assert (u.family, u.type) == (socket.AF_INET6, socket.SOCK_DGRAM)
                for x in (s, u):
                    assert x.getsockopt(socket.SOL_SOCKET, socket.SO_MARK) == mark_for("lo")
                    dev = x.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16)
                    assert dev.rstrip(b"\0") == b"lo"
            finally:
                s.close()
                u.close()
            taken = [pool.take(4) for _ in range(12)]  # crosses low: refilled behind
            wait_until(lambda: len(pool._pools[(4, "tcp")]) >= 4, what="background refill")
            for t in taken:
                t.close()
            pool.flush()
            assert not pool._pools


@plain_asyncio
async def test_no_tunnel_no_sockets_and_no_helper_no_sockets(make_server: Any) -> None:
    r, _ = make_server()
    with MarkedSockets(r.socket, "rtw9") as pool:
        with pytest.raises(NoTunnelSockets) as exc:
            pool.take(4)
        assert exc.value.helper_code == "not_up"
        with pytest.raises(ValueError):
            pool.take(5)
    r.stop()
    with MarkedSockets(r.socket, "rtw9") as pool, pytest.raises(NoTunnelSockets):
        pool.take(4)


@plain_asyncio
async def test_sockets_have_a_per_uid_budget(
    make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_mod, "SOCKET_BURST", 100)
    monkeypatch.setattr(server_mod, "SOCKET_RATE", 0.001)
    r, _ = make_server()
    async with HelperClient(r.socket) as c:
        await c.up(spec("lo"))
        with MarkedSockets(r.socket, "lo", batch=64, low=0) as pool:
            pool.take(4).close()  # 64 spent
            with pytest.raises(NoTunnelSockets) as exc:
                pool._fetch((4, "tcp"))
            assert exc.value.helper_code == "rate_limited"


@plain_asyncio
async def test_sockets_refused_where_fds_are_not_handed_out(make_server: Any) -> None:
    r, _ = make_server()
    r.server.sockets_supported = False
    async with HelperClient(r.socket) as c:
        await c.up(spec("lo"))
        with MarkedSockets(r.socket, "lo") as pool, pytest.raises(NoTunnelSockets) as exc:
            pool.take(4)
        assert exc.value.helper_code == "unsupported"


# ----- the engine's facade (core.tunnel) -------------------------------------------------


@plain_asyncio
async def test_tunnel_client_enforce_update_release_and_sockets(make_server: Any) -> None:
    from core.tunnel import Enforcement as CoreEnforcement
    from core.tunnel import TunnelClient
    from wg_backends.errors import TunnelStateError

    r, fw = make_server()
    t = TunnelClient(r.socket)
    with pytest.raises(TunnelStateError):
        await t.enforce(9081)
    with pytest.raises(TunnelStateError):
        t.marked_sockets()
    await t.up(spec("lo"))
    enf = await t.enforce(9081, block_when_down=True)
    assert isinstance(enf.redirect_port, int)  # 9081, or another port if that one is taken
    assert enf == CoreEnforcement(
        mark=mark_for("lo"), ranges=("10.233.0.0/24",), redirect_port=enf.redirect_port
    )
    assert r.server.state.get("lo").block_when_down  # type: ignore[union-attr]
    with pytest.raises(TunnelStateError):
        await t.update(spec("rtw1"))  # not the owned interface
    status = await t.update(spec("lo", nets=("10.233.0.0/24", "10.235.0.0/24")))
    assert status.up
    assert fw.live["lo"].ranges == ("10.233.0.0/24", "10.235.0.0/24")
    with t.marked_sockets(batch=2, low=0) as pool:
        s = pool.take(socket.AF_INET)
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_MARK) == enf.mark
        s.close()
    await t.release()
    assert "lo" not in fw.live
    await t.close()


def test_default_firewall_per_platform() -> None:
    from tests.wg_backends.fakes import ScriptedRunner
    from wg_backends.firewall import NftFirewall, PfFirewall
    from wg_backends.helper.__main__ import build_parser, config_from_args

    run = ScriptedRunner()
    assert isinstance(server_mod.default_firewall(run, None, "linux"), NftFirewall)
    assert isinstance(server_mod.default_firewall(run, None, "darwin", decider_gid=600), PfFirewall)
    assert server_mod.default_firewall(run, None, "darwin") is None  # no decider group
    assert server_mod.default_firewall(run, None, "win32") is None
    args = build_parser("darwin").parse_args(["--decider-group", "_rustronaut"])
    assert config_from_args(args).decider_group == "_rustronaut"
