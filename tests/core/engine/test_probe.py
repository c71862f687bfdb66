"""A tunnel without a keepalive promise is probed through the tunnel (a DNS query to its
server over a marked socket); an unanswered probe is a silent gateway (issue 15)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import dns.message
import pytest

from core.engine.config import EngineConfig
from core.engine.gateways import PROBE_AFTER_S, PROBE_WAIT_S, Gateways
from core.engine.health import Health
from core.engine.ports import TunnelPath
from core.engine.state import TunnelView
from wg_backends.spec import PeerSpec, TunnelSpec

pytestmark = pytest.mark.root  # the tunnel's DNS server listens on port 53

SERVER = "127.53.0.7"
KEY = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
PRIVATE = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="


class _Stubs:
    def __init__(self, spec: TunnelSpec) -> None:
        self.spec = spec
        self.now = 1000.0

    # policy
    def tunnel_specs(self) -> tuple[TunnelSpec, ...]:
        return (self.spec,)

    def tunnel_spec(self) -> TunnelSpec:
        return self.spec

    def signed(self) -> None:
        return None

    # device
    def wg_private_key(self) -> str:
        return PRIVATE

    def enrollment(self) -> None:
        return None

    # tunnel
    async def up(
        self, spec: TunnelSpec, signed: Any = None, *, relay_cert: str | None = None
    ) -> None:
        pass

    async def enforce(self, redirect_port: int | None) -> TunnelPath:
        def take(family: int, kind: str) -> socket.socket:
            return socket.socket(family, socket.SOCK_DGRAM)

        return TunnelPath(
            interface="rtw0",
            ranges=(ipaddress.ip_network("10.243.0.0/24"),),
            take=take,
            transparent=False,
        )

    # proxy
    def set_path(self, path: object, spec: object) -> None:
        pass


def _gateways(keepalive: int | None) -> tuple[Gateways, _Stubs]:
    peer = PeerSpec(
        public_key=KEY,
        endpoint="192.0.2.1:51820",
        allowed_ips=("10.243.0.0/24",),
        persistent_keepalive=keepalive,
    )
    spec = TunnelSpec(
        interface="rtw0",
        addresses=("10.242.0.2/32",),
        peers=(peer,),
        dns=(SERVER,),
        dns_suffixes=("corp.example",),
    )
    stubs = _Stubs(spec)
    gw = Gateways(
        tunnel=stubs,  # type: ignore[arg-type]
        policy=stubs,  # type: ignore[arg-type]
        device=stubs,  # type: ignore[arg-type]
        proxy=stubs,  # type: ignore[arg-type]
        config=lambda: EngineConfig(),
        clock=lambda: stubs.now,
    )
    return gw, stubs


def _view(rx: int) -> TunnelView:
    return TunnelView("rtw0", "192.0.2.1:51820", 1.0, rx, 10)


@pytest.fixture
def dns_server() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((SERVER, 53))
    sock.settimeout(2)
    yield sock
    sock.close()


async def test_an_unanswered_probe_is_silence(dns_server: socket.socket) -> None:
    gw, t = _gateways(keepalive=25)  # 25 s promises nothing quick
    await gw.apply(t.spec)
    assert gw.health(_view(100)) is Health.FRESH
    t.now += PROBE_AFTER_S
    assert gw.health(_view(100)) is Health.FRESH  # quiet: a probe goes out
    query = dns.message.from_wire(dns_server.recv(512))
    assert str(query.question[0].name) == "corp.example."
    t.now += PROBE_WAIT_S - 1
    assert gw.health(_view(100)) is Health.FRESH  # still waiting for its answer
    t.now += 1
    assert gw.health(_view(100)) is Health.SILENT  # no byte came back


async def test_an_answered_probe_keeps_an_idle_tunnel_fresh(dns_server: socket.socket) -> None:
    gw, t = _gateways(keepalive=None)
    await gw.apply(t.spec)
    gw.health(_view(100))
    t.now += PROBE_AFTER_S
    gw.health(_view(100))
    dns_server.recv(512)
    t.now += 1
    assert gw.health(_view(180)) is Health.FRESH  # the answer arrived
    t.now += PROBE_WAIT_S + 1
    assert gw.health(_view(180)) is Health.FRESH  # idle, not silent: probed again later


async def test_a_keepalive_promise_needs_no_probe(dns_server: socket.socket) -> None:
    gw, t = _gateways(keepalive=5)
    await gw.apply(t.spec)
    gw.health(_view(100))
    t.now += 8
    assert gw.health(_view(100)) is Health.FRESH
    dns_server.settimeout(0.2)
    with pytest.raises(TimeoutError):
        dns_server.recv(512)
    t.now += 3
    assert gw.health(_view(100)) is Health.SILENT  # 11 s: two keepalives missed
