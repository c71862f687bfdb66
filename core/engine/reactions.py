"""The engine's handlers of what the world reports, and the steps they share with requests.

``Reactions`` is the part of ``core.engine.engine.Engine`` that turns facts into state
(``_update``, ``_fail``), walks a connect (enroll, posture, policy, tunnel, proxy) and
reacts to what the live sources post: posture drift, controller events and
reachability, health ticks (bundle expiry, tunnel health and gateway failover, a lost
or restarted helper, a network change), proxy decisions. Every method here runs inside
the engine's actor, one message at a time, so none of them needs a lock and none may
wait for the inbox.

Imports: the ports and the engine's own modules; never ``core.engine.engine``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import replace
from types import EllipsisType
from typing import TYPE_CHECKING, Any

from core.clock import SKEW_SHOWN_S, skew_words
from core.engine.config import EngineConfig
from core.engine.errors import NoGatewayError, SignInRequiredError, explain
from core.engine.gateways import Gateways
from core.engine.health import Action, Health, Step
from core.engine.inbox import Message, ProxyDecision, SessionEnded
from core.engine.machine import LIVE_STATES, SessionFacts, blocked, derive, usable
from core.engine.netwatch import NetworkWatch
from core.engine.ports import (
    AuthPort,
    ControlPort,
    DevicePort,
    PolicyPort,
    PostureFacts,
    PosturePort,
    ProxyPort,
    TunnelPort,
    UserInfo,
)
from core.engine.reach import Reachability
from core.engine.state import (
    AccessView,
    ErrorInfo,
    Event,
    EventKind,
    ResourceView,
    SessionState,
    Snapshot,
    TunnelView,
)
from core.engine.ticks import Ticks
from core.engine.transport import transport_notice
from core.i18n import translate
from core.policy.api import Decision, Effect
from core.policy.errors import BundleExpiredError, BundleNotYetValidError
from core.wire.posture import Fact, FactStatus

if TYPE_CHECKING:
    import collections

    from core.engine.live import Live

__all__ = ["Reactions"]

_log = logging.getLogger(__name__)

#: ErrorInfo codes that mean the helper cannot be reached at all.
_HELPER_LOST = "helper_unavailable"


class Reactions:
    """Facts, connect steps and reactions; ``Engine`` sets every attribute below."""

    config: EngineConfig
    history: collections.deque[tuple[float, str]]
    decisions: collections.deque[Event]
    _auth: AuthPort
    _device: DevicePort
    _control: ControlPort
    _posture: PosturePort
    _policy: PolicyPort
    _tunnel: TunnelPort
    _proxy: ProxyPort
    _ticks: Ticks
    _network: NetworkWatch | None
    _facts: SessionFacts
    _snapshot: Snapshot
    _subscribers: tuple[Callable[[Event], None], ...]
    _posture_facts: PostureFacts | None
    _user: UserInfo | None
    _started: bool
    _session_warned: bool
    #: when to fetch the next bundle (about two thirds through the held one's life)
    _refresh_at: float | None
    _sign_in_task: asyncio.Task[None] | None
    _reach: Reachability
    _gateways: Gateways
    _live: Live

    # ------------------------------------------------------- state and events
    def _emit(self, kind: EventKind, message: str = "", **fields: Any) -> None:
        event = Event(
            kind=kind, snapshot=self._snapshot, time=self._ticks.now(), message=message, **fields
        )
        if kind is EventKind.DECISION:
            self.decisions.append(event)
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception:
                _log.exception("event subscriber failed")

    def _update(self, *, error: ErrorInfo | EllipsisType | None = ..., **facts: Any) -> None:
        """Change facts (and the error), derive the state, emit when the snapshot changed."""
        held = self._policy.held()
        # Evaluated once per update: the counts ``derive`` needs and the list shown.
        resources = self._policy.resources() if held else ()
        self._facts = replace(
            self._facts,
            **facts,
            blocked_resources=blocked(resources),
            usable_resources=usable(resources),
        )
        snap = self._snapshot
        new_error = snap.error if isinstance(error, EllipsisType) else error
        state = derive(self._facts)
        risk, signals = self._policy.risk()
        new = replace(
            snap,
            state=state,
            error=new_error if state is SessionState.ERROR else None,
            user=self._user.email if self._user else None,
            device_id=(e.device_id if (e := self._device.enrollment()) else None),
            resources=_as_shown(resources, state),
            posture=self._posture.items(self._posture_facts) if self._posture_facts else (),
            risk=risk,
            risk_signals=signals,
            policy_version=held.version if held else None,
            policy_expires_at=held.expires_at if held else None,
            session_expires_at=self._auth.session_expires_at(),
            session_renewable=self._auth.session_renewable(),
            policy_trust_notice=self._policy.trust_notice,
            clock_skew_s=self._control.clock_skew_s(),
        )
        if new != snap:
            if new.state is not snap.state:
                self.history.append((self._ticks.now(), new.state.value))
                _log.info("state %s -> %s", snap.state.value, new.state.value)
            self._snapshot = new
            self._emit(EventKind.STATE)
            if new.policy_trust_notice and not snap.policy_trust_notice:
                self._notice(new.policy_trust_notice, action="policy_trust_on_first_use")

    def _set_snapshot(self, **fields: Any) -> None:
        new = replace(self._snapshot, **fields)
        if new != self._snapshot:
            self._snapshot = new
            self._emit(EventKind.STATE)

    def _notice(self, message: str, **details: str) -> None:
        self._emit(EventKind.NOTICE, message, details=details)

    def _fail(self, exc: BaseException, *, during: str) -> None:
        info = self._clock_problem(exc) or explain(exc, during=during)
        _log.warning("%s failed: %s", during, info.detail)
        if info.code == "signed_out":
            self._signed_out_by_provider(info)
            return
        self._update(error=info, busy=None, failed=True)
        self._emit(
            EventKind.ERROR,
            info.title,
            details={"detail": info.detail, "next": info.next_step, "code": info.code},
        )
        if self._retries_itself():
            self._live.ensure_retry()

    def _clock_problem(self, exc: BaseException) -> ErrorInfo | None:
        """A bundle refused for its time window while this computer's clock is off (or
        never compared) is the clock's fault: say so, with the clock's next step."""
        if not isinstance(exc, BundleNotYetValidError | BundleExpiredError):
            return None
        skew = self._control.clock_skew_s()
        if skew is not None and abs(skew) <= SKEW_SHOWN_S:
            return None
        words = skew_words(skew) or translate(
            "core.engine.reactions",
            "This computer's clock could not be compared with the controller's",
        )
        if isinstance(exc, BundleNotYetValidError):
            detail = translate(
                "core.engine.reactions",
                "{clock}. By this computer's clock the policy looks not yet valid.",
            )
        else:
            detail = translate(
                "core.engine.reactions",
                "{clock}. By this computer's clock the policy looks expired.",
            )
        return ErrorInfo(
            title=translate("core.engine.reactions", "This computer's clock is wrong"),
            detail=detail.format(clock=words),
            next_step=translate(
                "core.engine.reactions",
                "Set the date and time (automatic time is best), then connect again.",
            ),
            code="clock_skew",
        )

    def _signed_out_by_provider(self, info: ErrorInfo) -> None:
        """The provider no longer accepts the sign-in: signed out, asked to sign in again
        (once), and access taken down by the ``SessionEnded`` that follows."""
        self._user = None
        self._update(error=None, busy=None, failed=False, signed_in=False)
        self._emit(
            EventKind.NOTICE,
            translate("core.engine.reactions", "Sign-in needed: {detail}").format(
                detail=info.detail
            ),
            details={"action": "sign_in", "next": info.next_step, "detail": info.detail},
        )
        self._post(SessionEnded())

    def _post(self, message: Message) -> None:
        """Put ``message`` in the inbox (the engine implements it)."""
        raise NotImplementedError

    async def _on_session_ended(self) -> None:
        if self._facts.signed_in:
            return  # signed in again meanwhile
        _log.warning("the sign-in ended: taking access down")
        await self._live.stop()
        await self._live.cancel_retry()
        await self._proxy.stop()
        await self._gateways.down()
        self._policy.clear()
        self._set_snapshot(proxy_address=None, tunnel=None, access=None)
        self._update(
            want_connected=False,
            tunnel_up=False,
            handshake_ok=False,
            bundle_valid=False,
            reconnecting=False,
        )

    async def _on_connect(self, *, retry: bool) -> None:
        if self._sign_in_task is not None:
            return  # connecting follows the sign-in that is running
        facts = self._facts
        if retry and not (facts.want_connected and not facts.tunnel_up):
            return
        if facts.want_connected and facts.tunnel_up and not facts.failed and facts.busy is None:
            return  # already connected (another front end asked first): nothing to redo
        if self._user is None:
            self._user = self._auth.user()
        if self._user is None:
            self._update(want_connected=True)
            self._fail(
                SignInRequiredError(translate("core.engine.reactions", "You are not signed in.")),
                during=translate("core.engine.reactions", "connecting"),
            )
            return
        enrollment = self._device.enrollment()
        if enrollment is not None and await self._device.key_changed():
            _log.warning("the tunnel's device key changed (the helper keeps it): enrolling again")
            self._device.forget()
            enrollment = None
        # The busy states only walk forwards (enrolling, checking posture, connecting):
        # the first one is set together with the wish to connect, so nothing flickers.
        first = SessionState.ENROLLING if enrollment is None else SessionState.CHECKING_POSTURE
        self._update(want_connected=True, signed_in=True, failed=False, error=None, busy=first)
        try:
            if enrollment is None:
                enrollment = await self._device.enroll()
                self._notice(translate("core.engine.reactions", "This device is now enrolled"))
                self._update(busy=SessionState.CHECKING_POSTURE)
            await self._collect_posture()
            reachable = await self._report_posture(enrollment.device_id)
            self._update(busy=SessionState.CONNECTING)
            if reachable:
                reachable = await self._refresh_bundle(enrollment.device_id)
            if not reachable and self._policy.held() is None:
                self._policy.load_cached(device_id=enrollment.device_id)
            if self._policy.held() is None:
                self._update(busy=None, controller_reachable=False, bundle_valid=False)
                self._live.ensure_retry()
                return
            await self._bring_up()
        except Exception as exc:
            self._fail(exc, during=translate("core.engine.reactions", "connecting"))
            return
        self._update(busy=None, controller_reachable=reachable)
        if reachable:
            await self._live.cancel_retry()
        else:
            self._live.ensure_retry()
        if not self._live.running and self._network is not None:
            self._network.prime(self._gateways.interfaces(self._snapshot.tunnel))
        self._live.start()
        if self._snapshot.state in LIVE_STATES | {SessionState.BLOCKED}:
            # ``notice`` names it as data: the tray tells it better from the snapshot
            self._notice(translate("core.engine.reactions", "Connected"), notice="connected")

    async def _bring_up(self) -> None:
        # The decider listens before the helper redirects apps to it.
        self._proxy.set_pac_targets(self._policy.pac_targets())
        address = await self._start_proxy()
        try:
            await self._gateways.bring_up()
        except BaseException:
            await self._proxy.stop()  # nothing listens without a tunnel behind it
            raise
        self._set_snapshot(proxy_address=address, access=self._access(address))
        self._proxy.reevaluate()
        await self._check_health()
        self._live.follow_up()

    async def _start_proxy(self) -> str:
        config = self.config
        return await self._proxy.start(
            config.proxy_port, config.transparent_port if config.transparent else None
        )

    def _access(self, proxy_address: str | None) -> AccessView | None:
        """How apps reach the resources now, from the helper's fence and the settings."""
        if not self._gateways.applied:
            return None
        path = self._gateways.path
        transparent = path is not None and path.transparent
        try:
            suffixes = self._gateways.current().suffixes()
        except NoGatewayError:
            suffixes = ()
        return AccessView(
            mode="transparent" if transparent else "proxy",
            fenced=path is not None,
            proxy_address=proxy_address,
            transparent_address=(
                f"127.0.0.1:{path.redirect_port or self.config.transparent_port}"
                if path is not None and transparent
                else None
            ),
            dns_suffixes=suffixes,
            overridden_routes=self._snapshot.access.overridden_routes
            if self._snapshot.access is not None
            else (),
        )

    async def _on_retry_due(self) -> None:
        facts = self._facts
        if not facts.want_connected or facts.tunnel_up:
            return
        if facts.failed and not self._retries_itself():
            return
        await self._on_connect(retry=True)

    def _retries_itself(self) -> bool:
        """An error that goes away without the employee (the clock gets fixed)."""
        error = self._snapshot.error
        return error is not None and error.code == "clock_skew"

    async def _teardown(self, *, break_glass_reason: str | None = None) -> None:
        self._update(busy=SessionState.DISCONNECTING)
        await self._live.stop()
        await self._live.cancel_retry()
        await self._proxy.stop()
        await self._gateways.down(break_glass_reason=break_glass_reason)
        self._set_snapshot(proxy_address=None, tunnel=None, access=None)
        self._update(busy=None, tunnel_up=False, handshake_ok=False, reconnecting=False)

    async def _reestablish(self) -> None:
        """After a sleep or a network change: tunnel down, connect again from the first
        gateway (a new network may reach the preferred one again)."""
        if not self._facts.want_connected or self._facts.failed:
            return
        self._gateways.reset()
        await self._live.stop()
        # No down first: the helper replaces the tunnel in place (under always-on it
        # would refuse a down the employee did not ask for).
        self._update(tunnel_up=False, handshake_ok=False)
        await self._on_connect(retry=False)

    # ------------------------------------------------------------------ posture
    async def _collect_posture(self) -> None:
        self._posture_facts = await self._posture.collect()
        self._apply_facts()

    def _apply_facts(self) -> None:
        facts = dict(self._posture.policy_facts(self._posture_facts)) if self._posture_facts else {}
        if self._user is not None:
            facts["user.email"] = self._user.email
            facts["user.groups"] = list(self._user.groups)
        self._policy.set_facts(facts)

    async def _report_posture(self, device_id: str) -> bool:
        """Send a fresh signed report; False when the controller cannot be reached."""
        assert self._posture_facts is not None
        try:
            nonce = await self._control.posture_nonce()
            token = self._device.sign_posture(self._reported_facts(), nonce, device_id)
            await self._control.submit_posture(token)
        except Exception as exc:
            if self._unreachable(exc):
                _log.info("controller unreachable while reporting posture: %s", exc)
                return False
            raise
        self._answered()
        return True

    def _reported_facts(self) -> PostureFacts:
        """The collected facts plus what the client states about itself: IT sees a rejected
        managed configuration in the device's signed report (and may write policy on it)."""
        assert self._posture_facts is not None
        stated = Fact(
            name="client.managed_rejected",
            status=FactStatus.KNOWN,
            collected_at=self._ticks.now(),
            value=self.config.managed_rejected or "",
        )
        return {**self._posture_facts, stated.name: stated}

    async def _refresh_bundle(self, device_id: str) -> bool:
        """Fetch and hold a new bundle; False when unreachable. A bad bundle raises.

        The helper's relay key is registered first when the controller does not know it
        yet (never raises), so the answer carries a relay certificate for it."""
        await self._device.register_relay_key()
        try:
            token = await self._control.fetch_bundle()
        except Exception as exc:
            if self._unreachable(exc):
                return False
            raise
        self._answered()
        info = self._policy.accept(token, device_id=device_id)
        _log.info("policy bundle v%s held until %s", info.version, info.expires_at)
        self._plan_refresh(info.expires_at)
        self._apply_facts()
        return True

    async def _on_recheck(self) -> None:
        facts = await self._posture.collect()
        if self._device.enrollment() is None:
            self._posture_facts = facts
            self._apply_facts()
            self._update()
            return
        await self._on_posture_changed(facts)

    async def _on_posture_changed(self, facts: PostureFacts) -> None:
        self._posture_facts = facts
        self._apply_facts()
        self._proxy.reevaluate()
        self._update()
        self._emit(EventKind.POSTURE, translate("core.engine.reactions", "Device posture changed"))
        enrollment = self._device.enrollment()
        if enrollment is None or not self._facts.want_connected:
            return
        try:
            if await self._report_posture(enrollment.device_id):
                await self._apply_new_bundle(enrollment.device_id)
        except Exception as exc:
            info = explain(
                exc, during=translate("core.engine.reactions", "reporting the device's posture")
            )
            if info.code == "signed_out":
                self._signed_out_by_provider(info)
                return
            _log.warning("could not report the posture change: %s", info.detail)

    async def _apply_new_bundle(self, device_id: str) -> bool:
        """Fetch the bundle, re-apply the tunnel if it changed, re-decide connections."""
        ok = await self._refresh_bundle(device_id)
        if ok:
            tunnel_in_use = self._facts.tunnel_up and self._policy.held() is not None
            if tunnel_in_use and await self._gateways.sync():
                self._set_snapshot(access=self._access(self._snapshot.proxy_address))
                self._live.follow_up()
            self._proxy.reevaluate()
            self._proxy.set_pac_targets(self._policy.pac_targets())
            self._update(
                controller_reachable=True,
                bundle_valid=self._policy.held() is not None,
            )
        return ok

    # ------------------------------------------------------------ the controller
    def _unreachable(self, exc: BaseException) -> bool:
        """Is ``exc`` "controller unreachable"? If so the snapshot names the cause."""
        if not self._reach.unreachable(exc):
            return False
        problem = explain(exc, during=translate("core.engine.reactions", "reaching the controller"))
        if problem != self._snapshot.controller_problem:
            self._set_snapshot(controller_problem=problem)
        return True

    def _answered(self) -> None:
        """The controller answered: no problem to show; a later portal is explained anew."""
        self._reach.answered()
        if self._snapshot.controller_problem is not None:
            self._set_snapshot(controller_problem=None)

    def _plan_refresh(self, expires_at: float) -> None:
        """Fetch the next bundle at about two thirds of this one's lifetime (jittered), so
        a quiet device never drops its connections when a bundle expires."""
        now = self._ticks.now()
        self._refresh_at = now + max(0.0, expires_at - now) * random.uniform(0.6, 0.7)  # noqa: S311

    async def _refresh_if_due(self) -> None:
        held = self._policy.held()
        if held is None or self._refresh_at is None or self._ticks.now() < self._refresh_at:
            return
        _log.info("policy v%s is two thirds through its life: fetching the next", held.version)
        await self._try_refresh()
        if self._refresh_at is not None and self._ticks.now() >= self._refresh_at:
            # Not renewed (offline, refused): try again in a while, well before it expires.
            left = max(0.0, held.expires_at - self._ticks.now())
            self._refresh_at = self._ticks.now() + min(60.0, max(5.0, left / 4))

    def _on_reach(self, reachable: bool, error: BaseException | None = None) -> None:
        if error is not None and self._facts.signed_in:
            info = explain(
                error,
                during=translate("core.engine.reactions", "following the controller's events"),
            )
            if info.code == "signed_out":
                self._signed_out_by_provider(info)
                return
            self._unreachable(error)
        if reachable:
            self._answered()
        if reachable != self._facts.controller_reachable:
            self._update(controller_reachable=reachable)

    async def _on_control_event(self, kind: str) -> None:
        if kind == "device_revoked":
            await self._revoked()
        elif kind in ("policy_changed", "resync"):
            await self._try_refresh()
        elif kind == "posture_recheck":
            await self._on_recheck()
        else:
            _log.debug("ignoring controller event %r", kind)

    async def _revoked(self) -> None:
        self._device.forget()
        await self._live.stop()
        await self._live.cancel_retry()
        await self._withdraw(
            translate("core.engine.reactions", "this device was revoked by your organization"),
            error=ErrorInfo(
                title=translate("core.engine.reactions", "Device revoked"),
                detail=translate(
                    "core.engine.reactions", "Your organization revoked this device's access."
                ),
                next_step=translate(
                    "core.engine.reactions",
                    "Contact IT; once they allow it, sign in again to re-enroll.",
                ),
                code="device_revoked",
            ),
        )

    async def _withdraw(self, reason: str, *, error: ErrorInfo | None = None) -> None:
        """Remove access at once: deny every decision, close connections, tunnel down."""
        _log.warning("withdrawing access: %s", reason)
        self._policy.clear()
        self._proxy.reevaluate()
        await self._proxy.stop()
        await self._gateways.down()
        self._set_snapshot(proxy_address=None, tunnel=None, access=None)
        facts: dict[str, Any] = {
            "bundle_valid": False,
            "tunnel_up": False,
            "handshake_ok": False,
            "reconnecting": False,
        }
        if error is not None:
            self._update(error=error, failed=True, **facts)
        else:
            self._update(**facts)
        self._notice(
            translate("core.engine.reactions", "Access withdrawn: {reason}").format(reason=reason),
            notice="access_withdrawn",
        )

    async def _try_refresh(self) -> None:
        enrollment = self._device.enrollment()
        if enrollment is None or not self._facts.want_connected:
            return
        try:
            ok = await self._apply_new_bundle(enrollment.device_id)
        except Exception as exc:
            info = explain(exc, during=translate("core.engine.reactions", "updating the policy"))
            if info.code == "signed_out":
                self._signed_out_by_provider(info)
                return
            # A bundle that fails its checks is refused; anything else is a failed fetch.
            refused = info.code == "policy_invalid"
            _log.warning("policy update failed, keeping the held one: %s", info.detail)
            self._emit(
                EventKind.ERROR,
                translate("core.engine.reactions", "A policy update was refused")
                if refused
                else translate("core.engine.reactions", "Could not update the policy"),
                details={"detail": info.detail, "next": info.next_step, "code": info.code},
            )
            return
        if not ok and self._facts.controller_reachable:
            self._update(controller_reachable=False)

    # ------------------------------------------------------------------ health
    async def _on_health_tick(self) -> None:
        if not self._facts.want_connected:
            return
        if self._network is not None and self._live.running:
            own = self._gateways.interfaces(self._snapshot.tunnel)
            if self._network.changed(own):
                self._notice(translate("core.engine.reactions", "Network changed: reconnecting"))
                await self._reestablish()
                return
        await self._check_health()

    async def _check_health(self) -> None:
        """Bundle expiry, the helper, the tunnel's handshake, the sign-in's end."""
        await self._refresh_if_due()
        held = self._policy.held()
        if held is None and self._facts.bundle_valid:
            await self._live.stop()
            await self._withdraw(
                translate(
                    "core.engine.reactions", "the policy expired and no newer one could be fetched"
                )
            )
            self._live.ensure_retry()
            self._live.start()  # the event stream brings the controller's answer back
            return
        try:
            view = await self._tunnel.status()
        except Exception as exc:
            await self._helper_trouble(exc)
            return
        if self._facts.failed:
            if self._snapshot.error is not None and self._snapshot.error.code == _HELPER_LOST:
                self._notice(
                    translate(
                        "core.engine.reactions", "The Rustronaut helper is back: reconnecting"
                    )
                )
                await self._on_connect(retry=False)
            return
        if view is None and self._gateways.applied and self._facts.tunnel_up:
            # The helper answers but has no tunnel: it restarted. Bring ours back.
            _log.warning("the helper no longer has our tunnel; re-applying it")
            self._notice(translate("core.engine.reactions", "The tunnel was lost: re-applying it"))
            try:
                await self._gateways.bring_up()
            except Exception as exc:
                self._fail(exc, during=translate("core.engine.reactions", "re-applying the tunnel"))
                return
            self._live.follow_up()
            return
        handshake_ok = False
        health = self._gateways.health(view)
        if health is not None:
            # Only a handshake made since the tunnel was applied proves the gateway:
            # waiting for one (within the grace) is not CONNECTED either.
            handshake_ok = health is Health.FRESH
            if health in (Health.SILENT, Health.DEAD) and self._facts.handshake_ok:
                # It was working: say so at once, never "connected" over a silent tunnel.
                quiet = self._gateways.rx_quiet_s() or 0.0
                self._notice(
                    translate(
                        "core.engine.reactions",
                        "The gateway stopped answering ({seconds} s without a reply): reconnecting",
                    ).format(seconds=f"{quiet:.0f}")
                )
                self._update(reconnecting=True, handshake_ok=False)
            step = self._gateways.plan(health)
            if step is not None:
                await self._switch_gateway(step)
                return
        if await self._gateways.renew_cert(view):
            self._live.follow_up()  # the helper may now try a relay it could not use
        self._tell_transport(view)
        self._set_snapshot(tunnel=view)
        self._check_routes(view)
        self._update(
            tunnel_up=view is not None,
            handshake_ok=handshake_ok,
            bundle_valid=held is not None,
            reconnecting=self._facts.reconnecting and not handshake_ok,
        )
        self._warn_before_session_end()

    def _tell_transport(self, view: TunnelView | None) -> None:
        """One notice when the helper moved the tunnel to a relay, another relay or back
        to UDP (``core.engine.transport``); the snapshot shows it from then on."""
        change = transport_notice(self._snapshot.tunnel, view)
        if change is None or view is None:
            return
        text, reason = change
        _log.info("transport: %s (%s)", view.transport, reason)
        self._notice(
            text,
            notice="transport",
            key=f"transport:{view.transport}:{view.relay or ''}",
            transport=view.transport,
            relay=view.relay or "",
            reason=reason,
        )

    def _check_routes(self, view: TunnelView | None) -> None:
        """Say so when a local route would send part of the tunnel's ranges elsewhere."""
        path = self._gateways.path
        access = self._snapshot.access
        if self._network is None or path is None or access is None:
            return
        found = tuple(self._network.shadowed(path.ranges, self._gateways.interfaces(view)))
        if found == access.overridden_routes:
            return
        self._set_snapshot(access=replace(access, overridden_routes=found))
        if found:
            _log.warning("routes more specific than the tunnel's ranges: %s", ", ".join(found))
            self._emit(
                EventKind.NOTICE,
                translate(
                    "core.engine.reactions",
                    "This network routes part of the company's networks elsewhere ({routes}): "
                    "overridden, company traffic still goes only through the tunnel",
                ).format(routes=", ".join(found)),
                details={"routes": ", ".join(found)},
            )

    async def _helper_trouble(self, exc: BaseException) -> None:
        """The helper did not answer a status: lost → an error with a next step."""
        info = explain(exc, during=translate("core.engine.reactions", "checking the tunnel"))
        if info.code != _HELPER_LOST:
            _log.warning("tunnel status failed: %s", info.detail)
            return
        if self._facts.failed and self._snapshot.error == info:
            return  # told already
        _log.error("the helper is gone: %s", info.detail)
        await self._proxy.stop()  # nothing may be relayed around a tunnel we cannot see
        self._set_snapshot(proxy_address=None, tunnel=None, access=None)
        self._update(error=info, failed=True, tunnel_up=False, handshake_ok=False)
        self._emit(
            EventKind.ERROR,
            info.title,
            details={"detail": info.detail, "next": info.next_step, "code": info.code},
        )

    async def _switch_gateway(self, step: Step) -> None:
        """Re-apply the current gateway or bring up another one."""
        old_index = self._gateways.index
        selected = self._gateways.select(step.index)
        if selected is None:
            return
        spec, old, new = selected
        if step.action is Action.SWITCH and step.index != old_index:
            _log.warning("gateway %s is not answering; switching to %s", old, new)
            self._emit(
                EventKind.NOTICE,
                translate(
                    "core.engine.reactions", "Gateway {old} is not answering: switching to {new}"
                ).format(old=old, new=new),
                details={"gateway": new, "previous": old},
            )
        else:
            _log.info("re-applying gateway %s to check its handshake", new)
        try:
            await self._gateways.apply(spec)
        except Exception as exc:
            self._set_snapshot(tunnel=None)
            self._update(tunnel_up=False, handshake_ok=False)
            self._fail(
                exc,
                during=translate("core.engine.reactions", "switching to gateway {gateway}").format(
                    gateway=new
                ),
            )
            return
        self._set_snapshot(access=self._access(self._snapshot.proxy_address))
        self._update(tunnel_up=True, handshake_ok=False)
        self._live.follow_up()

    def _warn_before_session_end(self) -> None:
        expires = self._auth.session_expires_at()
        if expires is None or self._session_warned:
            return
        # The provider's expiry is on its clock: read it on ours corrected by the skew, so a
        # clock set forward does not announce an end that is hours away.
        left = expires - (self._ticks.now() - (self._control.clock_skew_s() or 0.0))
        if 0 < left < self.config.session_warning_s:
            self._session_warned = True
            minutes = int(left / 60)  # whole minutes, rounded down (left > 0)
            self._emit(
                EventKind.NOTICE,
                translate(
                    "core.engine.reactions",
                    "Your sign-in ends in %n minutes. Sign in again to extend it.",
                    None,
                    minutes,
                ),
                details={"action": "extend_session"},
            )

    # ---------------------------------------------------------------- decisions
    def _on_decision(self, d: ProxyDecision) -> None:
        decision = Decision(effect=Effect(d.effect), rule_id=d.rule, reason=d.reason)
        self._emit(
            EventKind.DECISION, d.reason, decision=decision, app=d.app, destination=d.destination
        )
        risk, signals = self._policy.risk()
        if (risk, signals) != (self._snapshot.risk, self._snapshot.risk_signals):
            self._set_snapshot(risk=risk, risk_signals=signals)


def _as_shown(resources: tuple[ResourceView, ...], state: SessionState) -> tuple[ResourceView, ...]:
    """Resources as the employee may believe them: reachable only while really connected."""
    if state in LIVE_STATES:
        return resources
    return tuple(
        replace(
            r,
            reachable=False,
            reason=r.reason or translate("core.engine.reactions", "Not connected"),
        )
        if r.reachable
        else r
        for r in resources
    )
