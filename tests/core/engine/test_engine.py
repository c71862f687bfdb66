"""The engine's session rules, driven through in-memory ports (real parts: tests/e2e)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from core.engine.engine import Engine, EngineConfig
from core.engine.errors import AlwaysOnError
from core.engine.inbox import HealthTick
from core.engine.netwatch import NetworkWatch
from core.engine.ports import ControlEvent
from core.engine.state import Event, EventKind
from core.engine.state import SessionState as S
from wg_backends.errors import HelperUnavailable

from .ports import ALICE, Auth, Control, Device, ManualTicks, Policy, Posture, Proxy, Tunnel

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    engine: Engine
    auth: Auth
    device: Device
    control: Control
    posture: Posture
    policy: Policy
    tunnel: Tunnel
    proxy: Proxy
    clock: Clock
    ticks: ManualTicks
    events: list[Event] = field(default_factory=list)

    def states(self) -> list[S]:
        out: list[S] = []
        for e in self.events:
            if e.kind is EventKind.STATE and (not out or out[-1] is not e.snapshot.state):
                out.append(e.snapshot.state)
        return out

    async def settle(self) -> None:
        """Let every task run until the engine's inbox is empty (no wall-clock wait)."""
        for _ in range(3):
            for _ in range(10):
                await asyncio.sleep(0)
            await self.engine.settled()

    async def tick(self) -> None:
        """One health tick, handled."""
        self.engine._post(HealthTick())
        await self.settle()

    async def advance(self, seconds: float) -> None:
        """Move the engine's time forward (its ticks fire in order)."""
        await self.ticks.advance(seconds, self.settle)


_CURRENT: list[Rig] = []


def make(user: bool = True, network: NetworkWatch | None = None, **config: object) -> Rig:
    clock = Clock()
    options: dict[str, object] = {
        "health_interval_s": 0.05,
        "backoff_initial_s": 0.02,
        "backoff_max_s": 0.1,
        **config,
    }
    cfg = EngineConfig(**options)  # type: ignore[arg-type]
    rig = Rig(
        engine=None,  # type: ignore[arg-type]
        auth=Auth(ALICE if user else None),
        device=Device(),
        control=Control(),
        posture=Posture(),
        policy=Policy(clock),
        tunnel=Tunnel(clock),
        proxy=Proxy(),
        clock=clock,
        ticks=ManualTicks(clock),
    )
    rig.engine = Engine(
        auth=rig.auth,
        device=rig.device,
        control=rig.control,
        posture=rig.posture,
        policy=rig.policy,
        tunnel=rig.tunnel,
        proxy=rig.proxy,
        config=cfg,
        ticks=rig.ticks,
        network=network,
    )
    rig.engine.subscribe(rig.events.append)
    _CURRENT[:] = [rig]
    return rig


async def until(predicate, timeout: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    """Move the latest rig's time in health ticks until ``predicate()`` holds (at most
    ``timeout`` seconds of engine time; the wall clock is never waited on)."""
    rig = _CURRENT[0]
    await rig.settle()
    step = rig.engine.config.health_interval_s
    waited = 0.0
    while not predicate():
        if waited >= timeout:
            raise TimeoutError(f"not true after {timeout} s of engine time")
        await rig.advance(step)
        waited += step


async def test_connect_walks_every_state_and_brings_everything_up() -> None:
    rig = make(auto_connect=False)
    await rig.engine.start()
    await rig.engine.connect()
    # Forwards only, no flicker (it used to show CONNECTING → ENROLLING → ... → CONNECTING).
    assert rig.states() == [
        S.DISCONNECTED,
        S.ENROLLING,
        S.CHECKING_POSTURE,
        S.CONNECTING,
        S.CONNECTED,
    ]
    order = list(S)
    walk = [order.index(state) for state in rig.states()[1:]]
    assert walk == sorted(walk)
    assert rig.tunnel.up_specs[0].private_key == "PRIVATE"  # key added on the device
    assert rig.proxy.running
    assert rig.proxy.pac == ("wiki.corp",)
    assert rig.control.reports == ["signed:nonce-1:dev-1:[('firewall.enabled', True)]"]
    snap = rig.engine.snapshot
    assert snap.user == "alice@example.com"
    assert snap.device_id == "dev-1"
    assert snap.proxy_address == "127.0.0.1:9080"
    assert snap.resources[0].reachable
    await rig.engine.stop()
    assert not rig.tunnel.is_up


async def test_not_signed_in_asks_to_sign_in() -> None:
    rig = make(user=False)
    await rig.engine.start()
    await rig.engine.connect()
    snap = rig.engine.snapshot
    assert snap.state is S.SIGNED_OUT
    prompt = [e for e in rig.events if e.details.get("action") == "sign_in"]
    assert prompt
    assert "Sign in" in prompt[-1].details["next"]
    assert not rig.tunnel.up_specs


async def test_sign_in_with_device_code_prompts_then_connects() -> None:
    rig = make(user=False)
    await rig.engine.start()
    await rig.engine.sign_in(device_code=True)
    notices = [e for e in rig.events if e.kind is EventKind.NOTICE]
    assert notices[0].details["user_code"] == "ABCD-EFGH"
    # The page to type the code on is named; the one with the code filled in is a link only
    # (naming it would show the code twice).
    assert notices[0].details["verification_uri"] == "https://idp.example/device"
    assert notices[0].details["verification_uri_complete"].endswith("?user_code=ABCD-EFGH")
    assert notices[0].message == "Open https://idp.example/device and enter the code ABCD-EFGH"
    assert rig.engine.snapshot.state is S.CONNECTED
    await rig.engine.sign_out()
    assert rig.engine.snapshot.state is S.SIGNED_OUT
    assert not rig.tunnel.is_up
    assert rig.policy.held() is None


async def test_helper_failure_is_explained_and_nothing_is_left_up() -> None:
    rig = make()
    rig.tunnel.fail_up = HelperUnavailable("no helper at /run/rustronaut/helper.sock")
    await rig.engine.connect()
    snap = rig.engine.snapshot
    assert snap.state is S.ERROR
    assert snap.error is not None
    assert "helper" in snap.error.title.lower()
    assert not rig.proxy.running


async def test_bad_bundle_is_an_error_and_no_tunnel() -> None:
    rig = make()
    rig.control.bundle = "forged"
    await rig.engine.connect()
    assert rig.engine.snapshot.state is S.ERROR
    assert not rig.tunnel.up_specs


async def test_revocation_withdraws_access_at_once() -> None:
    rig = make()
    await rig.engine.connect()
    reevals = rig.proxy.reevaluations
    rig.control.queue.put_nowait(ControlEvent("device_revoked", {}))
    await until(lambda: rig.engine.snapshot.state is S.ERROR)
    assert not rig.tunnel.is_up
    assert not rig.proxy.running
    assert rig.proxy.reevaluations > reevals
    assert rig.policy.held() is None
    assert rig.device.enrollment() is None
    assert rig.engine.snapshot.error is not None
    assert rig.engine.snapshot.error.title == "Device revoked"
    await rig.engine.stop()


async def test_posture_drift_degrades_and_recovers() -> None:
    rig = make()
    rig.policy.open_resource = True
    await rig.engine.connect()
    assert rig.engine.snapshot.state is S.CONNECTED
    rig.posture.drift(**{"firewall.enabled": False})
    await until(lambda: rig.engine.snapshot.state is S.DEGRADED)
    assert rig.engine.snapshot.resources[1].fix == "sudo ufw enable"
    assert any(e.kind is EventKind.POSTURE for e in rig.events)
    rig.posture.drift(**{"firewall.enabled": True})
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    await rig.engine.stop()


async def test_offline_keeps_cached_bundle_then_expiry_removes_access() -> None:
    rig = make()
    await rig.engine.connect()
    rig.control.reachable = False
    rig.control.queue.put_nowait(ControlEvent("policy_changed", {}))
    await until(lambda: rig.engine.snapshot.state is S.OFFLINE)
    assert rig.tunnel.is_up  # still working on the held bundle
    rig.clock.now += 3601  # the bundle expires
    await until(lambda: not rig.tunnel.is_up)
    assert rig.engine.snapshot.state not in (S.CONNECTED, S.DEGRADED)
    assert rig.engine.snapshot.policy_version is None
    assert not rig.proxy.running
    rig.control.reachable = True
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED, timeout=5)
    await rig.engine.stop()


async def test_offline_at_start_uses_cached_bundle() -> None:
    rig = make()
    await rig.engine.connect()
    await rig.engine.disconnect()
    rig.control.reachable = False
    await rig.engine.connect()
    assert rig.tunnel.is_up
    assert rig.engine.snapshot.state is S.OFFLINE
    await rig.engine.stop()


async def test_dead_handshake_is_never_shown_as_connected() -> None:
    rig = make()
    await rig.engine.connect()
    rig.clock.now += 400  # a tunnel up for 400 s whose last handshake is 400 s old
    rig.tunnel.handshake_age = 400.0
    await until(lambda: rig.engine.snapshot.state is S.CONNECTING)
    rig.tunnel.handshake_age = 2.0
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    await rig.engine.stop()


async def test_always_on_requires_a_break_glass_reason() -> None:
    rig = make(always_on=True)
    await rig.engine.connect()
    with pytest.raises(AlwaysOnError):
        await rig.engine.disconnect()
    assert rig.tunnel.is_up
    await rig.engine.disconnect(break_glass_reason="  flight wifi blocks WireGuard ")
    assert rig.control.break_glass == ["flight wifi blocks WireGuard"]
    assert rig.engine.snapshot.state is S.DISCONNECTED
    assert not rig.tunnel.is_up


async def test_session_expiry_warns_once() -> None:
    rig = make()
    rig.auth.expires_at = rig.clock.now + 600
    await rig.engine.connect()
    await rig.advance(0.2)
    warnings = [e for e in rig.events if e.details.get("action") == "extend_session"]
    assert len(warnings) == 1
    await rig.engine.stop()


async def test_refused_policy_update_keeps_the_held_bundle() -> None:
    rig = make()
    await rig.engine.connect()
    rig.control.bundle = "tampered"
    rig.control.queue.put_nowait(ControlEvent("policy_changed", {}))
    await until(lambda: any(e.message == "A policy update was refused" for e in rig.events))
    assert rig.policy.held() is not None
    assert rig.engine.snapshot.policy_version == 1
    assert rig.engine.snapshot.state is S.CONNECTED
    await rig.engine.stop()


async def test_changed_settings_apply_without_restart() -> None:
    from dataclasses import replace

    rig = make()
    await rig.engine.connect()
    assert not rig.engine.snapshot.always_on
    rig.engine.reconfigure(
        replace(rig.engine.config, always_on=True, organization="ACME", proxy_port=9191)
    )
    await rig.settle()
    assert rig.engine.snapshot.always_on
    assert rig.engine.snapshot.organization == "ACME"
    assert any(e.message == "Settings changed by your organization" for e in rig.events)
    await until(lambda: rig.engine.snapshot.proxy_address == "127.0.0.1:9191")
    assert rig.proxy.running
    with pytest.raises(AlwaysOnError):
        await rig.engine.disconnect()
    await rig.engine.stop()


async def test_captive_portal_is_explained_once_and_never_fails_open() -> None:
    from core.controlplane.client import CaptivePortalError

    rig = make(auto_connect=False)
    await rig.engine.start()

    async def portal() -> str:
        try:
            raise CaptivePortalError("HTML answer", portal_url="http://login.hotel.example/")
        except CaptivePortalError as exc:  # wiring turns it into a ConnectionError
            raise ConnectionError(str(exc)) from exc

    rig.control.posture_nonce = portal  # type: ignore[method-assign]
    rig.control.fetch_bundle = portal  # type: ignore[method-assign]
    await rig.engine.connect()
    assert rig.engine.snapshot.state is S.OFFLINE
    assert not rig.tunnel.up_specs  # nothing valid to connect with: no access at all
    errors = [e for e in rig.events if e.details.get("captive_portal")]
    assert len(errors) == 1
    assert "login.hotel.example" in errors[0].details["detail"]
    await rig.advance(2.0)  # retries keep hitting the portal; no flood of messages
    assert len([e for e in rig.events if e.details.get("captive_portal")]) == 1
    await rig.engine.stop()


async def test_a_bundle_without_a_gateway_is_explained() -> None:
    rig = make()
    rig.policy.tunnel_spec = lambda: None  # type: ignore[method-assign]
    rig.policy.tunnel_specs = lambda: [None]  # type: ignore[attr-defined]
    await rig.engine.connect()
    snap = rig.engine.snapshot
    assert snap.state is S.ERROR
    assert snap.error is not None
    assert snap.error.title == "No gateway for this device"
    assert not rig.tunnel.up_specs
