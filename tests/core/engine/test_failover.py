"""Several gateways and network changes, driven through the in-memory ports."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from core.engine.netwatch import Fingerprint, NetworkWatch, fingerprint
from core.engine.state import EventKind
from core.engine.state import SessionState as S

from .test_engine import Rig, make, until

pytestmark = pytest.mark.unit

GW1, GW2, GW3 = "gw1.corp:51820", "gw2.corp:51820", "gw3.corp:51820"


def _rig(*gateways: str) -> Rig:
    rig = make(first_handshake_grace_s=10.0, handshake_stale_s=60.0)
    rig.policy.gateways = gateways
    return rig


def _notices(rig: Rig) -> list[str]:
    return [e.message for e in rig.events if e.kind is EventKind.NOTICE]


def _ups(rig: Rig) -> list[str]:
    return [spec.endpoint for spec in rig.tunnel.up_specs]


async def test_uses_the_first_gateway_while_it_answers() -> None:
    rig = _rig(GW1, GW2)
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    rig.clock.now += 30
    for _ in range(5):
        await rig.tick()
    assert _ups(rig) == [GW1]
    assert rig.tunnel.up_specs[0].private_key == "PRIVATE"
    await rig.engine.stop()


async def test_stale_handshake_fails_over_with_a_notice_and_never_shows_connected() -> None:
    rig = _rig(GW1, GW2)
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    rig.tunnel.kill(GW1)
    rig.clock.now += 61  # the last handshake with gateway 1 is now past the stale limit
    await until(lambda: rig.engine.snapshot.state is S.CONNECTING)
    # the engine first re-applies gateway 1 to force a handshake; none comes
    await until(lambda: _ups(rig) == [GW1, GW1])
    seen: list[S] = []
    rig.engine.subscribe(lambda e: seen.append(e.snapshot.state))
    rig.clock.now += 11  # past the first-handshake grace
    await until(lambda: _ups(rig) == [GW1, GW1, GW2])
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    assert rig.engine.snapshot.tunnel is not None
    assert rig.engine.snapshot.tunnel.gateway == GW2
    assert f"Gateway {GW1} is not answering: switching to {GW2}" in _notices(rig)
    # connected only once gateway 2 handshook, never over gateway 1's dead handshake
    assert S.CONNECTED not in seen[: seen.index(S.CONNECTED)]
    await rig.engine.stop()


async def test_dead_first_gateway_is_skipped_at_connect() -> None:
    rig = _rig(GW1, GW2, GW3)
    rig.tunnel.dead |= {GW1, GW2}
    await rig.engine.connect()
    rig.clock.now += 11
    await until(lambda: _ups(rig)[-1:] == [GW2])
    assert rig.engine.snapshot.state is S.CONNECTING  # waiting on an unproven gateway
    rig.clock.now += 11
    await until(lambda: _ups(rig)[-1:] == [GW3])
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    assert _ups(rig) == [GW1, GW2, GW3]
    await rig.engine.stop()


async def test_all_gateways_dead_keeps_trying_and_never_connects() -> None:
    rig = _rig(GW1, GW2)
    rig.tunnel.dead |= {GW1, GW2}
    await rig.engine.connect()
    for _ in range(4):
        rig.clock.now += 11
        count = len(_ups(rig))
        await until(lambda c=count: len(_ups(rig)) > c)
        assert rig.engine.snapshot.state is S.CONNECTING
    assert _ups(rig) == [GW1, GW2, GW1, GW2, GW1]
    rig.tunnel.dead.clear()  # gateway 1 comes back
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    await rig.engine.stop()


async def test_a_network_change_re_establishes_the_session() -> None:
    current: dict[str, list[str]] = {"wlan0": ["192.168.1.20"]}

    calls: list[list[str]] = []

    def read(ignore: Collection[str]) -> Fingerprint:
        calls.append(sorted(ignore))
        return fingerprint(current, [("wlan0", "0101A8C0")], ignore=ignore)

    rig = make(network=NetworkWatch(read))
    await rig.engine.connect()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    bundles_before = len(rig.control.reports)
    current["rt0"] = ["100.64.0.2"]  # the tunnel's own interface: not a network change
    rig.clock.now += 1
    for _ in range(3):
        await rig.tick()
    assert len(rig.tunnel.up_specs) == 1
    await until(lambda: len(calls) >= 2)  # the health loop primed and polled
    current.pop("wlan0")
    current["eth0"] = ["10.9.8.7"]  # docked: a new network
    await until(lambda: len(rig.tunnel.up_specs) == 2)
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    assert "Network changed: reconnecting" in _notices(rig)
    assert len(rig.control.reports) > bundles_before  # posture and bundle fetched again
    await rig.engine.stop()


async def test_a_gateway_that_cannot_be_brought_up_is_an_error_with_a_next_step() -> None:
    rig = _rig(GW1, GW2)
    await rig.engine.connect()
    rig.tunnel.kill(GW1)
    rig.clock.now += 61
    await until(lambda: _ups(rig) == [GW1, GW1])  # re-probed
    rig.tunnel.fail_up = RuntimeError("helper refused the config")
    rig.clock.now += 11
    await until(lambda: rig.engine.snapshot.state is S.ERROR)
    assert rig.engine.snapshot.error is not None
    assert rig.engine.snapshot.error.next_step
    assert rig.engine.snapshot.tunnel is None
    await rig.engine.stop()


async def test_a_policy_update_re_applies_the_gateway_in_use() -> None:
    rig = _rig(GW1, GW2)
    rig.tunnel.dead.add(GW1)
    await rig.engine.connect()
    rig.clock.now += 11
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    assert _ups(rig) == [GW1, GW2]
    rig.policy.gateways = (GW1, "gw2-new.corp:51820")  # the bundle moved gateway 2
    rig.control.bundle = "bundle-v2"
    await rig.engine._try_refresh()
    assert _ups(rig) == [GW1, GW2, "gw2-new.corp:51820"]  # stays on the second gateway
    await rig.engine.stop()


async def test_after_a_network_change_the_first_gateway_is_tried_again() -> None:
    current: dict[str, list[str]] = {"wlan0": ["192.168.1.20"]}
    calls: list[int] = []

    def read(ignore: Collection[str]) -> Fingerprint:
        calls.append(1)
        return fingerprint(current, [], ignore=ignore)

    rig = make(network=NetworkWatch(read), first_handshake_grace_s=10.0, handshake_stale_s=60.0)
    rig.policy.gateways = (GW1, GW2)
    rig.tunnel.dead.add(GW1)
    await rig.engine.connect()
    rig.clock.now += 11
    await until(lambda: _ups(rig) == [GW1, GW2])
    await until(lambda: len(calls) >= 2)
    rig.tunnel.dead.clear()  # on the new network gateway 1 answers
    current["eth0"] = ["10.9.8.7"]
    await until(lambda: _ups(rig) == [GW1, GW2, GW1])
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    await rig.engine.stop()
