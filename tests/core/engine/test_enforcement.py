"""Issue 15 at the engine: the helper fences the tunnel and redirects to the decider,
policy changes apply in place, and a silent gateway is "reconnecting" within 15 s."""

from __future__ import annotations

import pytest

from core.engine.ports import ControlEvent
from core.engine.state import EventKind
from core.engine.state import SessionState as S

from .ports import _Peer
from .test_engine import Rig, make, until

pytestmark = pytest.mark.unit

GW1, GW2 = "gw1.corp:51820", "gw2.corp:51820"


def _states(rig: Rig) -> list[S]:
    seen: list[S] = []
    rig.engine.subscribe(lambda e: seen.append(e.snapshot.state))
    return seen


async def test_connect_has_the_helper_redirect_to_the_decider_and_fence_the_tunnel() -> None:
    rig = make(auto_connect=False, transparent_port=9182)
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    assert rig.tunnel.enforced == [9182]
    assert rig.proxy.transparent_port == 9182  # the decider listens where apps are sent
    path = rig.proxy.paths[-1]
    assert path is not None
    assert path.transparent
    access = rig.engine.snapshot.access
    assert access is not None
    assert (access.mode, access.fenced) == ("transparent", True)
    assert access.transparent_address == "127.0.0.1:9182"
    await rig.engine.disconnect()
    assert rig.engine.snapshot.access is None
    assert rig.proxy.paths[-1] is None  # no tunnel: the decider refuses, never the LAN
    await rig.engine.stop()


async def test_transparent_off_keeps_the_fence_but_apps_need_the_proxy() -> None:
    rig = make(auto_connect=False, transparent=False)
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    assert rig.tunnel.enforced == [None]
    assert rig.proxy.transparent_port is None
    access = rig.engine.snapshot.access
    assert access is not None
    assert (access.mode, access.fenced) == ("proxy", True)
    await rig.engine.stop()


async def test_a_helper_that_cannot_fence_says_proxy_mode_unfenced() -> None:
    rig = make(auto_connect=False)
    rig.tunnel.no_fence = True
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    access = rig.engine.snapshot.access
    assert access is not None
    assert (access.mode, access.fenced) == ("proxy", False)
    await rig.engine.stop()


async def test_a_policy_change_updates_the_tunnel_in_place_and_stays_connected() -> None:
    # It used to re-apply (wg-quick down + up): the handshake restarted and the state
    # showed "connecting" at every policy change.
    rig = make(auto_connect=False)
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    seen = _states(rig)
    ups = len(rig.tunnel.up_specs)
    rig.policy.gateways = ("gw-new.corp:51820",)  # same interface, other peers/routes
    rig.control.bundle = "bundle-v2"
    rig.control.queue.put_nowait(ControlEvent("policy_changed", {}))
    await until(lambda: len(rig.tunnel.updates) == 1)
    await rig.tick()
    assert rig.tunnel.updates[0].endpoint == "gw-new.corp:51820"
    assert len(rig.tunnel.up_specs) == ups + 1  # the update, no new `up`
    assert rig.tunnel.downs == []
    assert rig.tunnel.enforced[-1] is not None  # the fenced ranges follow the new routes
    assert S.CONNECTING not in seen
    assert S.RECONNECTING not in seen
    assert rig.engine.snapshot.state is S.CONNECTED
    await rig.engine.stop()


async def test_a_refused_in_place_update_replaces_the_tunnel() -> None:
    from wg_backends.errors import HelperRefused

    rig = make(auto_connect=False)
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)

    async def refuse(spec: object, signed: object = None, **_: object) -> None:
        raise HelperRefused("bad_request", "unknown request type 'update'")

    rig.tunnel.update = refuse  # type: ignore[method-assign]
    rig.policy.gateways = ("gw-new.corp:51820",)
    rig.control.queue.put_nowait(ControlEvent("policy_changed", {}))
    await until(lambda: rig.tunnel.endpoint == "gw-new.corp:51820")
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    await rig.engine.stop()


async def test_a_silent_gateway_shows_reconnecting_within_15_s_and_fails_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With WireGuard's 3-minute stale limit a gateway that stopped answering stayed
    # "connected" for about 3 minutes. The controller has each gateway keep alive every
    # 5 s (the keepalive the device's spec carries), so 11 s without a byte is silence.
    monkeypatch.setattr(_Peer, "persistent_keepalive", 5)
    rig = make(auto_connect=False, health_interval_s=2.0, handshake_stale_s=180.0)
    rig.policy.gateways = (GW1, GW2)
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED, timeout=10)
    seen = _states(rig)
    rig.tunnel.silent = True  # the handshake stays "fresh"; nothing comes back
    silenced = rig.clock.now
    await until(lambda: rig.engine.snapshot.state is S.RECONNECTING, timeout=20)
    assert rig.clock.now - silenced <= 15
    assert seen[0] is not S.RECONNECTING  # it was connected when the gateway went quiet
    notices = [e.message for e in rig.events if e.kind is EventKind.NOTICE]
    assert any("stopped answering" in n for n in notices)
    assert rig.tunnel.endpoint == GW2  # failed over at once
    rig.tunnel.silent = False
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED, timeout=20)
    assert rig.engine.snapshot.tunnel is not None
    assert rig.engine.snapshot.tunnel.gateway == GW2
    await rig.engine.stop()


async def test_an_idle_tunnel_without_a_keepalive_promise_is_not_called_silent() -> None:
    rig = make(auto_connect=False, health_interval_s=2.0, handshake_stale_s=180.0)
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED, timeout=10)
    rig.tunnel.silent = True  # nothing received, but no keepalive was promised
    for _ in range(30):
        rig.clock.now += 2
        await rig.tick()
    assert rig.engine.snapshot.state is S.CONNECTED
    assert len(rig.tunnel.up_specs) == 1
    await rig.engine.stop()


async def test_a_rogue_more_specific_route_is_overridden_and_said_so() -> None:
    import ipaddress

    from core.engine.netwatch import NetworkWatch

    rogue: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    watch = NetworkWatch(lambda ignore: frozenset(), routes=lambda: list(rogue))
    rig = make(auto_connect=False, network=watch)
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    rogue.append((ipaddress.ip_network("10.243.0.0/25"), "eth0"))  # DHCP option 121
    await rig.tick()
    await rig.tick()
    access = rig.engine.snapshot.access
    assert access is not None
    assert access.overridden_routes == ("10.243.0.0/25 via eth0",)
    notices = [e.message for e in rig.events if e.kind is EventKind.NOTICE]
    assert sum("10.243.0.0/25 via eth0" in n and "overridden" in n for n in notices) == 1
    assert rig.engine.snapshot.state is S.CONNECTED  # the fence holds: nothing to reconnect
    rogue.clear()
    await rig.tick()
    access = rig.engine.snapshot.access
    assert access is not None
    assert access.overridden_routes == ()
    await rig.engine.stop()


async def test_a_verifying_helper_gets_the_signed_bundle_and_the_gateways_profile() -> None:
    # Issue 16: the helper takes only tunnels from a bundle it verifies itself.
    rig = make(auto_connect=False, first_handshake_grace_s=10.0, handshake_stale_s=60.0)
    rig.policy.gateways = (GW1, GW2)
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    signed = rig.tunnel.signed[-1]
    assert signed is not None
    assert (signed.token, signed.endorsements) == ("bundle-v1", ("endorsement",))
    assert signed.profile == "tunnel"
    assert signed.device_id == rig.device.enrollment().device_id
    rig.tunnel.kill(GW1)
    rig.clock.now += 61  # stale: re-probed, no answer
    await until(lambda: len(rig.tunnel.up_specs) == 2)
    rig.clock.now += 11  # past the grace: the next gateway
    await until(lambda: rig.tunnel.endpoint == GW2)
    assert rig.tunnel.signed[-1].profile == "gateway:0"  # the first failover gateway
    await rig.engine.stop()


async def test_a_device_key_now_kept_by_the_helper_enrolls_the_device_again() -> None:
    # IT managed the trust anchors after this device enrolled: the helper now adds its
    # own key, which the controller does not know yet.
    rig = make(auto_connect=False)
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    assert rig.device.enrolls == 1
    await rig.engine.disconnect()
    rig.device.key_was_changed = True
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    assert rig.device.enrolls == 2
    await rig.engine.stop()
