"""The decider adopts the helper's transparent listeners, on real parts (root, netns):
the real helper in the bed's client namespace with a real wg-quick tunnel and its real
nftables redirect; a real ``ProxyServer`` serving the listeners the helper handed over
(``MarkedSockets.listeners()`` → ``adopt_transparent``) and dialling through the
helper's marked sockets. The owner's plain connect to the server behind the gateway is
redirected to the adopted listener, decided for its real ``SO_ORIGINAL_DST`` and relayed
through the tunnel.

The peer lookup is the one stand-in: the proxy runs in the test's namespace while the
connection lives in the client namespace, so it answers for the original connection
(peer → original destination) only — which is also what proves the original destination
was read from the kernel.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from core.policy.api import Effect
from core.proxy import EventKind, ProxyEvent, ProxyServer
from core.proxy.dial import tunnel_connector
from core.proxy.peer import PeerInfo
from tests.core.proxy.helpers import TableDecider
from tests.fakes.wait import async_wait_until
from tests.wg_backends.conftest import helper, testbed
from tests.wg_backends.helperproc import HelperProc
from tests.wg_backends.test_enforce_netns import REDIRECT_PORT, SERVER_PORT, connect_as, server
from tests.wg_backends.testbed import TestBed
from wg_backends.helper.client import HelperClient
from wg_backends.helper.sockpool import MarkedSockets

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns]
__all__ = ["helper", "server", "testbed"]  # fixtures, used by name


@dataclass
class OriginalOnly:
    """Identifies the owner's app only when asked about the ORIGINAL connection."""

    original: tuple[str, int]
    asked: list[tuple[tuple[str, int], tuple[str, int]]] = field(default_factory=list)

    def lookup(self, peer: tuple[str, int], local: tuple[str, int]) -> PeerInfo | None:
        self.asked.append((peer, local))
        if local != self.original:
            return None
        return PeerInfo(uid=0, pid=None, exe="/usr/bin/python3")


async def test_the_adopted_listener_gets_the_redirected_connection(
    testbed: TestBed, helper: HelperProc, server: None
) -> None:
    bed, iface = testbed, testbed.client_if
    original = (bed.server_ip, SERVER_PORT)
    events: list[ProxyEvent] = []
    async with HelperClient(helper.socket) as c:
        await c.up(bed.client_spec())
        port = (await c.enforce(iface, REDIRECT_PORT))["redirect_port"]
        with MarkedSockets(helper.socket, iface, batch=4, low=1) as pool:
            proxy = ProxyServer(
                TableDecider([("srv", (), (f"{bed.server_ip}/32",), ())]),
                host_uid=0,
                peer_lookup=OriginalOnly(original),
                connector=tunnel_connector(pool.take, offload=True),
                on_event=events.append,
            )
            await proxy.start(0)
            try:
                socks = await asyncio.to_thread(pool.listeners)
                assert proxy.adopt_transparent(socks) == port
                answer = await asyncio.to_thread(connect_as, bed, [], *map(str, original))
                assert answer == "server"  # relayed from the real server, through the tunnel
                await async_wait_until(lambda: events, what="the decision")
                ev = events[0]
                assert (ev.kind, ev.effect, ev.protocol) == (
                    EventKind.DECISION, Effect.ALLOW, "transparent",
                )  # fmt: skip
                assert ev.destination == f"{bed.server_ip}:{SERVER_PORT}"
                assert ev.resource == "srv"
                # Dropped: the decider no longer serves it; the helper still holds the port.
                proxy.drop_transparent()
                assert proxy.transparent_port == 0
            finally:
                await proxy.stop()
