"""The engine as one actor: one writer of the session, states that are true, every exit
under always-on accounted for. Driven through the in-memory ports and manual time."""

from __future__ import annotations

import asyncio

import pytest

from core.auth.errors import ReauthRequired
from core.engine.errors import AlwaysOnError, ReasonTooShortError
from core.engine.ports import ControlEvent
from core.engine.state import EventKind
from core.engine.state import SessionState as S

from .test_engine import make, until

pytestmark = pytest.mark.unit


async def test_a_posture_reaction_never_re_applies_the_tunnel_after_a_disconnect() -> None:
    # The reaction to drift used to run outside the engine's lock: it fetched the new
    # bundle and re-applied the changed tunnel after the disconnect had taken it down.
    rig = make(auto_connect=False)
    await rig.engine.connect()
    rig.control.bundle = "bundle-v2"
    rig.policy.gateways = ("gw-narrowed.example:51820",)
    rig.posture.drift(**{"firewall.enabled": False})  # posted, not yet handled
    await rig.engine.disconnect()
    await rig.settle()
    assert rig.engine.snapshot.state is S.DISCONNECTED
    assert not rig.tunnel.is_up
    assert not rig.proxy.running


async def test_two_front_ends_connecting_at_once_bring_one_tunnel_up() -> None:
    rig = make(auto_connect=False)
    await asyncio.gather(rig.engine.connect(), rig.engine.connect())
    assert len(rig.tunnel.up_specs) == 1
    assert rig.engine.snapshot.state is S.CONNECTED


async def test_every_resource_blocked_is_its_own_state_with_the_fix() -> None:
    rig = make()
    await rig.engine.connect()
    rig.posture.drift(**{"firewall.enabled": False})  # the only resource the user has needs it
    await rig.settle()
    snap = rig.engine.snapshot
    assert snap.state is S.BLOCKED
    assert snap.resources[0].fix == "sudo ufw enable"
    rig.tunnel.handshake_age = None  # the gateway may stop answering meanwhile: still BLOCKED
    await rig.advance(1.0)
    assert rig.engine.snapshot.state is S.BLOCKED
    rig.tunnel.handshake_age = 1.0
    rig.posture.drift(**{"firewall.enabled": True})
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)
    await rig.engine.stop()


async def test_a_resource_is_reachable_only_while_connected() -> None:
    rig = make(auto_connect=False)
    await rig.engine.connect()
    assert rig.engine.snapshot.resources[0].reachable
    await rig.engine.disconnect()
    snap = rig.engine.snapshot
    assert snap.state is S.DISCONNECTED
    assert snap.resources  # still listed from the held policy
    assert not any(r.reachable for r in snap.resources)
    assert snap.resources[0].reason == "Not connected"


async def test_a_killed_helper_is_an_error_with_a_next_step_within_one_tick() -> None:
    rig = make(auto_connect=False, health_interval_s=2.0)
    await rig.engine.connect()
    assert rig.engine.snapshot.state is S.CONNECTED
    rig.tunnel.helper_gone = True
    await rig.advance(2.0)
    snap = rig.engine.snapshot
    assert snap.state is S.ERROR
    assert snap.error is not None
    assert snap.error.code == "helper_unavailable"
    assert "helper" in snap.error.next_step.lower()
    assert "HelperUnavailable" not in snap.error.detail
    errors = [e for e in rig.events if e.kind is EventKind.ERROR]
    assert len(errors) == 1  # one notification
    assert not rig.proxy.running  # nothing relayed around a tunnel nobody watches
    await rig.advance(4.0)
    assert len([e for e in rig.events if e.kind is EventKind.ERROR]) == 1  # not repeated
    rig.tunnel.helper_restarted()
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED, timeout=5.0)
    assert rig.tunnel.is_up
    assert rig.proxy.running
    await rig.engine.stop()


async def test_a_restarted_helper_gets_the_tunnel_back_at_the_next_tick() -> None:
    rig = make(auto_connect=False, health_interval_s=2.0)
    await rig.engine.connect()
    rig.tunnel.helper_restarted()  # it came back empty
    await rig.advance(2.0)
    assert rig.tunnel.is_up
    assert len(rig.tunnel.up_specs) == 2
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED)


async def test_a_refused_refresh_token_signs_out_and_asks_to_sign_in_without_retrying() -> None:
    rig = make(auto_connect=False)
    await rig.engine.connect()
    await rig.engine.disconnect()

    async def refused() -> str:
        raise ReauthRequired("Your sign-in has expired.")

    rig.control.posture_nonce = refused  # type: ignore[method-assign]
    await rig.engine.connect()
    await rig.settle()
    snap = rig.engine.snapshot
    assert snap.state is S.SIGNED_OUT
    assert snap.user is None
    prompts = [e for e in rig.events if e.details.get("action") == "sign_in"]
    assert len(prompts) == 1
    reports = len(rig.control.reports)
    await rig.advance(10.0)  # no retry loop
    assert len(rig.control.reports) == reports
    assert rig.engine.snapshot.state is S.SIGNED_OUT


@pytest.mark.parametrize("leave", ["disconnect", "sign_out"])
async def test_always_on_every_exit_needs_a_reason_of_the_minimum_length(leave: str) -> None:
    rig = make(always_on=True, auto_connect=False)
    await rig.engine.connect()
    method = getattr(rig.engine, leave)
    with pytest.raises(AlwaysOnError):
        await method()
    with pytest.raises(ReasonTooShortError, match="at least 10"):
        await method(break_glass_reason=" too short ")
    assert rig.tunnel.is_up
    assert rig.engine.snapshot.user == "alice@example.com"
    await method(break_glass_reason="hotel wifi blocks WireGuard")
    assert rig.control.break_glass == ["hotel wifi blocks WireGuard"]
    assert not rig.tunnel.is_up


async def test_always_on_without_break_glass_refuses_every_exit() -> None:
    rig = make(always_on=True, allow_break_glass=False, auto_connect=False)
    await rig.engine.connect()
    for leave in (rig.engine.disconnect, rig.engine.sign_out):
        with pytest.raises(AlwaysOnError):
            await leave(break_glass_reason="a very good reason indeed")
    assert rig.tunnel.is_up
    assert rig.control.break_glass == []


async def test_the_browser_opens_where_the_sign_in_was_asked_for() -> None:
    rig = make(user=False)
    await rig.engine.start()
    opened: list[str] = []
    await rig.engine.sign_in(open_url=opened.append)
    assert opened == ["https://idp.example/authorize?state=1"]
    assert rig.engine.snapshot.state is S.CONNECTED


async def test_signing_out_during_a_sign_in_abandons_it() -> None:
    rig = make(user=False)
    await rig.engine.start()
    release = asyncio.Event()
    real = rig.auth.sign_in

    async def slow(**kwargs: object) -> object:
        await release.wait()
        return await real(**kwargs)  # type: ignore[arg-type]

    rig.auth.sign_in = slow  # type: ignore[method-assign]
    signing_in = asyncio.ensure_future(rig.engine.sign_in())
    await rig.settle()
    assert rig.engine.snapshot.state is S.SIGNING_IN
    await rig.engine.disconnect()  # other requests are handled meanwhile
    await rig.engine.sign_out()
    await asyncio.wait_for(signing_in, 1)
    release.set()
    await rig.settle()
    assert rig.engine.snapshot.state is S.SIGNED_OUT
    assert not rig.tunnel.up_specs


async def test_under_always_on_a_first_sign_in_can_be_cancelled_without_a_reason() -> None:
    # The sign-in window's Cancel: always-on keeps nothing up before anyone signed in,
    # so abandoning the first sign-in asks for no break-glass reason.
    rig = make(user=False, always_on=True)
    await rig.engine.start()
    release = asyncio.Event()
    real = rig.auth.sign_in

    async def slow(**kwargs: object) -> object:
        await release.wait()
        return await real(**kwargs)  # type: ignore[arg-type]

    rig.auth.sign_in = slow  # type: ignore[method-assign]
    signing_in = asyncio.ensure_future(rig.engine.sign_in())
    await rig.settle()
    assert rig.engine.snapshot.state is S.SIGNING_IN
    await rig.engine.sign_out()  # no reason needed
    await asyncio.wait_for(signing_in, 1)
    release.set()
    await rig.settle()
    assert rig.engine.snapshot.state is S.SIGNED_OUT
    assert rig.control.break_glass == []
    assert not rig.tunnel.up_specs


async def test_a_settings_change_is_announced_to_every_front_end() -> None:
    rig = make(auto_connect=False)
    await rig.engine.start()
    from dataclasses import replace

    rig.engine.reconfigure(replace(rig.engine.config, proxy_port=9200))
    await rig.settle()
    assert [e for e in rig.events if e.kind is EventKind.SETTINGS]


async def test_controller_events_are_handled_in_order_with_requests() -> None:
    rig = make(auto_connect=False)
    await rig.engine.connect()
    rig.control.queue.put_nowait(ControlEvent("device_revoked", {}))
    await rig.settle()
    assert rig.engine.snapshot.state is S.ERROR
    assert rig.engine.snapshot.error is not None
    assert rig.engine.snapshot.error.code == "device_revoked"
    assert not rig.tunnel.is_up


async def test_a_session_the_provider_ends_while_connected_takes_access_down_once() -> None:
    rig = make(auto_connect=False)
    await rig.engine.connect()
    assert rig.tunnel.is_up

    async def refused() -> str:
        raise ReauthRequired("Your sign-in has expired.")

    rig.control.fetch_bundle = refused  # type: ignore[method-assign]
    rig.control.queue.put_nowait(ControlEvent("policy_changed", {}))
    await rig.settle()
    await rig.advance(5.0)
    snap = rig.engine.snapshot
    assert snap.state is S.SIGNED_OUT
    assert not rig.tunnel.is_up
    assert not rig.proxy.running
    assert snap.resources == ()
    prompts = [e for e in rig.events if e.details.get("action") == "sign_in"]
    assert len(prompts) == 1


async def test_a_quiet_device_renews_its_policy_before_it_expires() -> None:
    # It used to keep the bundle until it expired, withdraw access, and fetch a new one
    # about a second later: every quiet device dropped its connections once an hour.
    rig = make(auto_connect=False)
    await rig.engine.connect()
    assert rig.engine.snapshot.policy_version == 1
    rig.control.bundle = "bundle-v2"
    rig.clock.now += 1800  # half-way: nothing yet
    await rig.tick()
    assert rig.engine.snapshot.policy_version == 1
    rig.clock.now += 800  # past two thirds (2,400 s of 3,600 at most)
    await rig.tick()
    assert rig.engine.snapshot.policy_version == 2
    rig.clock.now += 1200  # the first bundle's expiry passes unnoticed
    await rig.tick()
    assert rig.engine.snapshot.state is S.CONNECTED
    assert not [e for e in rig.events if e.message.startswith("Access withdrawn")]


async def test_an_outage_keeps_the_policy_and_names_its_cause() -> None:
    from core.controlplane.errors import ServerError
    from core.controlplane.models import Problem

    rig = make(auto_connect=False)
    await rig.engine.connect()

    async def down() -> str:
        raise ServerError(503, Problem(title="Service Unavailable", status=503))

    rig.control.fetch_bundle = down  # type: ignore[method-assign]
    rig.control.queue.put_nowait(ControlEvent("policy_changed", {}))
    await rig.settle()
    snap = rig.engine.snapshot
    assert snap.policy_version == 1  # the last good policy stays in force
    assert rig.tunnel.is_up
    assert snap.controller_problem is not None
    assert "Service Unavailable" in snap.controller_problem.detail
    # An outage is not announced as a refused policy.
    assert not [e for e in rig.events if e.message == "A policy update was refused"]


async def test_every_captive_portal_of_a_session_is_explained() -> None:
    from core.controlplane.errors import CaptivePortalError

    rig = make(auto_connect=False)
    await rig.engine.connect()
    real_nonce = rig.control.posture_nonce

    async def portal() -> str:
        raise CaptivePortalError("HTML answer", portal_url="http://login.hotel.example/")

    for _ in range(2):  # two hotels in one session
        rig.control.posture_nonce = portal  # type: ignore[method-assign]
        await rig.engine.recheck_posture()
        rig.control.posture_nonce = real_nonce  # type: ignore[method-assign]
        await rig.engine.recheck_posture()  # signed in to the Wi-Fi: the controller answers
    told = [e for e in rig.events if e.details.get("captive_portal")]
    assert len(told) == 2


@pytest.mark.parametrize("skew", [None, 86_400.0])
async def test_a_policy_refused_for_its_time_while_the_clock_is_off_blames_the_clock(
    skew: float | None,
) -> None:
    from core.policy.errors import BundleNotYetValidError

    rig = make(auto_connect=False)
    rig.control.skew = skew

    def not_yet(token: str, *, device_id: str) -> object:
        raise BundleNotYetValidError("the policy is not valid yet")

    rig.policy.accept = not_yet  # type: ignore[method-assign]
    await rig.engine.connect()
    snap = rig.engine.snapshot
    assert snap.state is S.ERROR  # not "connecting" for as long as the clock stays wrong
    assert snap.error is not None
    assert snap.error.code == "clock_skew"
    assert "date and time" in snap.error.next_step
    # The clock gets fixed: connected again with no new sign-in and no click.
    del rig.policy.accept
    rig.control.skew = 0.0
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED, timeout=5.0)
    assert rig.auth.sign_ins == 0


async def test_the_sign_in_end_is_read_on_the_controllers_clock() -> None:
    rig = make(auto_connect=False)
    rig.control.skew = 3 * 3600.0  # this computer is three hours ahead
    rig.auth.expires_at = rig.clock.now + 600  # ten minutes by this computer's clock...
    await rig.engine.connect()
    await rig.advance(0.2)
    # ...but three hours and ten minutes by the provider's: no warning yet.
    assert not [e for e in rig.events if e.details.get("action") == "extend_session"]


async def test_a_rejected_managed_configuration_is_shown_and_announced() -> None:
    from dataclasses import replace

    rig = make(auto_connect=False)
    await rig.engine.start()
    reason = "/etc/rustronaut/managed.json: always_on must be true or false, not 'yes'"
    rig.engine.reconfigure(replace(rig.engine.config, managed_rejected=reason))
    await rig.settle()
    assert rig.engine.snapshot.managed_rejected == reason
    told = [e for e in rig.events if e.details.get("action") == "managed_rejected"]
    assert len(told) == 1
    assert reason in told[0].message


async def test_keys_trusted_on_first_use_are_said_once_and_kept_in_the_snapshot() -> None:
    rig = make(auto_connect=False)
    rig.policy.trust_notice = "Policy keys trusted on first use: no trust anchors configured"
    await rig.engine.connect()
    await rig.advance(0.5)
    assert rig.engine.snapshot.policy_trust_notice == rig.policy.trust_notice
    told = [e for e in rig.events if e.details.get("action") == "policy_trust_on_first_use"]
    assert len(told) == 1


async def test_the_break_glass_reason_reaches_the_helper_that_enforces_always_on() -> None:
    rig = make(always_on=True, auto_connect=False)
    rig.tunnel.always_on = True  # the helper reads the managed settings itself
    await rig.engine.connect()
    await rig.engine.disconnect(break_glass_reason="hotel wifi blocks WireGuard")
    assert rig.tunnel.downs == ["hotel wifi blocks WireGuard"]
    assert not rig.tunnel.is_up


async def test_a_gateway_switch_under_always_on_replaces_the_tunnel_without_a_down() -> None:
    rig = make(always_on=True, auto_connect=False, first_handshake_grace_s=10.0)
    rig.tunnel.always_on = True
    rig.policy.gateways = ("gw1.corp:51820", "gw2.corp:51820")
    await rig.engine.connect()
    rig.tunnel.kill("gw1.corp:51820")
    rig.clock.now += 400
    await until(lambda: rig.tunnel.endpoint == "gw2.corp:51820", timeout=30.0)
    await until(lambda: rig.engine.snapshot.state is S.CONNECTED, timeout=5.0)
    assert rig.tunnel.downs == []  # nobody asked for a down: none was tried


async def test_a_rejected_managed_configuration_reaches_it_in_the_signed_report() -> None:
    from dataclasses import replace

    rig = make(auto_connect=False)
    await rig.engine.connect()
    first = rig.device.signed[-1]["client.managed_rejected"]
    assert first.value == ""  # accepted
    reason = "managed.json: unknown key 'always_onn' (the whole payload is rejected)"
    rig.engine.reconfigure(replace(rig.engine.config, managed_rejected=reason))
    await rig.settle()
    # Reported at once, not at the next drift.
    assert rig.device.signed[-1]["client.managed_rejected"].value == reason
    assert len(rig.control.reports) == 2


def test_the_client_stated_fact_is_a_known_posture_fact() -> None:
    import time

    from core.wire.posture import Fact, FactStatus, fact_spec

    spec = fact_spec("client.managed_rejected")
    assert spec is not None
    assert spec.kind == "str"
    Fact(  # the wire format (and so the controller) accepts it
        name="client.managed_rejected",
        status=FactStatus.KNOWN,
        collected_at=time.time(),
        value="bad key",
    )
