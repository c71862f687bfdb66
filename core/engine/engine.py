"""The engine: the single owner of the session, from sign-in to a healthy tunnel.

It runs effects through its ports (``core.engine.ports``), records what they found in
``SessionFacts`` and derives the state with the pure ``core.engine.machine.derive``. Every
change becomes an ``Event`` delivered in order, on the loop's thread, to subscribers (the
tray, the CLI, the local control socket). Live tasks keep the session honest while
connected: the controller's event stream, the tunnel's health (handshake age; long timer
gaps mean the machine slept), the bundle's expiry, posture drift and session expiry.

Gateways: the bundle may name several (``tunnel`` then ``gateways``). One is used at a
time; every health tick ``core.engine.gateways`` classifies its handshake and plans
staying, re-probing or switching to the next one, which this module carries out (with a
NOTICE naming the gateway). Network changes (``core.engine.netwatch``) re-establish the
session like a resume from sleep does.

Threading: every public method is a coroutine for the engine's loop; nothing blocks it.
Concurrency: ``connect``, ``disconnect``, ``sign_in`` and ``sign_out`` are serialised by
one lock; live reactions that change access take the same lock.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import EllipsisType
from typing import Any, Protocol

from core.aio import cancel_and_wait, spawn
from core.engine.api import SettingView, Unsubscribe
from core.engine.errors import (
    AlwaysOnError,
    NoGatewayError,
    SignInRequiredError,
    captive_portal,
    explain,
)
from core.engine.gateways import Action, Health, Step, assess, gateway_label, plan
from core.engine.machine import SessionFacts, derive
from core.engine.netwatch import NetworkWatch
from core.engine.ports import (
    AuthPort,
    ControlPort,
    DevicePort,
    PolicyPort,
    PosturePort,
    ProxyPort,
    TunnelPort,
    UserInfo,
)
from core.engine.state import (
    ErrorInfo,
    Event,
    EventKind,
    SessionState,
    Snapshot,
)
from core.policy.api import Decision, Effect

__all__ = ["Engine", "EngineConfig", "Watcher"]

_log = logging.getLogger(__name__)


class Watcher(Protocol):
    """Something the engine runs while it runs (the settings watcher)."""

    def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The settings the engine acts on (built from the effective settings)."""

    proxy_port: int = 9080
    auto_connect: bool = True
    always_on: bool = False
    allow_break_glass: bool = True
    organization: str | None = None
    #: how often the tunnel's health is checked
    health_interval_s: float = 2.0
    #: a handshake older than this is dead (WireGuard re-handshakes every 2 minutes)
    handshake_stale_s: float = 180.0
    #: grace after ``up`` before the first handshake must have happened
    first_handshake_grace_s: float = 15.0
    #: retry of an unreachable controller: first delay and cap
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    #: warn this long before the sign-in expires
    session_warning_s: float = 15 * 60.0


class Engine:
    """Implements ``core.engine.api.EngineAPI`` over the ports."""

    def __init__(
        self,
        *,
        auth: AuthPort,
        device: DevicePort,
        control: ControlPort,
        posture: PosturePort,
        policy: PolicyPort,
        tunnel: TunnelPort,
        proxy: ProxyPort,
        config: EngineConfig | None = None,
        settings_view: Callable[[], list[SettingView]] | None = None,
        settings_setter: Callable[[str, object], None] | None = None,
        diagnostics: Callable[[Engine, Path], Awaitable[Path]] | None = None,
        settings_watcher: Watcher | None = None,
        clock: Callable[[], float] = time.time,
        network: NetworkWatch | None = None,
    ) -> None:
        self._auth = auth
        self._device = device
        self._control = control
        self._posture = posture
        self._policy = policy
        self._tunnel = tunnel
        self._proxy = proxy
        self.config = config or EngineConfig()
        self._settings_view = settings_view
        self._settings_setter = settings_setter
        self._diagnostics = diagnostics
        self._watcher = settings_watcher
        self._clock = clock
        self._facts = SessionFacts()
        self._snapshot = Snapshot(
            organization=self.config.organization, always_on=self.config.always_on
        )
        self._subscribers: list[Callable[[Event], None]] = []
        self._lock = asyncio.Lock()
        self._live: list[asyncio.Task[Any]] = []
        self._retry_task: asyncio.Task[Any] | None = None
        self._posture_facts: Any = None
        self._user: UserInfo | None = None
        self._tunnel_up_at: float | None = None
        self._applied_spec: Any = None
        self._portal_told = False
        #: the gateway in use (index into ``_gateway_specs()``) and the ones that failed
        #: in this round
        self._gw_index = 0
        self._gw_failed: frozenset[int] = frozenset()
        self._gw_task: asyncio.Task[Any] | None = None
        self._network = network
        self._session_warned = False
        self._started = False
        #: recent history for diagnostics: (time, state) and decisions
        self.history: collections.deque[tuple[float, str]] = collections.deque(maxlen=200)
        self.decisions: collections.deque[Event] = collections.deque(maxlen=500)

    # ----------------------------------------------------------------- observing
    @property
    def snapshot(self) -> Snapshot:
        """The current snapshot (immutable)."""
        return self._snapshot

    def subscribe(self, callback: Callable[[Event], None]) -> Unsubscribe:
        """Deliver every event to ``callback`` in order, on the loop's thread."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def settings(self) -> list[SettingView]:
        """The effective settings, with source and lock (empty without a settings source)."""
        return self._settings_view() if self._settings_view else []

    def set_setting(self, key: str, value: object) -> None:
        """Change a user setting (raises the settings package's errors when refused)."""
        if self._settings_setter is None:
            raise RuntimeError("this engine has no settings store")
        self._settings_setter(key, value)

    def _emit(self, kind: EventKind, message: str = "", **fields: Any) -> None:
        event = Event(
            kind=kind, snapshot=self._snapshot, time=self._clock(), message=message, **fields
        )
        if kind is EventKind.DECISION:
            self.decisions.append(event)
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                _log.exception("event subscriber failed")

    def _update(self, *, error: ErrorInfo | EllipsisType | None = ..., **facts: Any) -> None:
        """Change facts (and the error), derive the state, emit when the snapshot changed."""
        if facts:
            self._facts = replace(self._facts, **facts)
        snap = self._snapshot
        new_error = snap.error if isinstance(error, EllipsisType) else error
        state = derive(self._facts)
        risk, signals = self._policy.risk()
        held = self._policy.held()
        new = replace(
            snap,
            state=state,
            error=new_error if state is SessionState.ERROR else None,
            user=self._user.email if self._user else None,
            device_id=(e.device_id if (e := self._device.enrollment()) else None),
            resources=self._policy.resources() if held else (),
            posture=self._posture.items(self._posture_facts) if self._posture_facts else (),
            risk=risk,
            risk_signals=signals,
            policy_version=held.version if held else None,
            policy_expires_at=held.expires_at if held else None,
            session_expires_at=self._auth.session_expires_at(),
        )
        if new != snap:
            if new.state is not snap.state:
                self.history.append((self._clock(), new.state.value))
                _log.info("state %s -> %s", snap.state.value, new.state.value)
            self._snapshot = new
            self._emit(EventKind.STATE)

    def _set_snapshot(self, **fields: Any) -> None:
        new = replace(self._snapshot, **fields)
        if new != self._snapshot:
            self._snapshot = new
            self._emit(EventKind.STATE)

    def _notice(self, message: str) -> None:
        self._emit(EventKind.NOTICE, message)

    def _fail(self, exc: BaseException, *, during: str) -> None:
        info = explain(exc, during=during)
        _log.warning("%s failed: %s", during, info.detail)
        self._update(error=info, busy=None, failed=True)
        self._emit(
            EventKind.ERROR, info.title, details={"detail": info.detail, "next": info.next_step}
        )

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Load the stored session and cached bundle; auto-connect if configured."""
        if self._started:
            return
        self._started = True
        if self._watcher is not None:
            self._watcher.start()
        self._user = self._auth.user()
        enrollment = self._device.enrollment()
        if enrollment is not None:
            self._policy.load_cached(device_id=enrollment.device_id)
        self._update(signed_in=self._user is not None)
        if self._user is not None and (self.config.auto_connect or self.config.always_on):
            spawn(self.connect(), name="engine-autoconnect")

    async def stop(self) -> None:
        """Shut down: live tasks, proxy and tunnel (unless always-on keeps the tunnel)."""
        await self._stop_live()
        await cancel_and_wait(self._retry_task)
        await self._proxy.stop()
        if not self.config.always_on:
            await self._safe_tunnel_down()
        await self._posture.stop()
        if self._watcher is not None:
            await self._watcher.stop()
        self._started = False

    def reconfigure(self, config: EngineConfig) -> None:
        """Apply changed settings at once (managed settings change without a restart)."""
        old, self.config = self.config, config
        if config == old:
            return
        self._set_snapshot(always_on=config.always_on, organization=config.organization)
        self._notice("Settings changed" + (" by your organization" if config.organization else ""))
        if config.proxy_port != old.proxy_port and self._snapshot.proxy_address:
            spawn(self._restart_proxy(), name="engine-proxy-restart")

    async def _restart_proxy(self) -> None:
        async with self._lock:
            await self._proxy.stop()
            if self._facts.tunnel_up:
                address = await self._proxy.start(self.config.proxy_port)
                self._set_snapshot(proxy_address=address)

    # ---------------------------------------------------------------- sign-in
    async def sign_in(self, *, device_code: bool = False) -> None:
        """Run the sign-in; on success continue to connect (errors become ERROR state)."""
        async with self._lock:
            self._update(busy=SessionState.SIGNING_IN, failed=False, error=None)
            try:
                self._user = await self._auth.sign_in(
                    device_code=device_code, on_prompt=self._on_device_prompt
                )
            except Exception as exc:
                self._fail(exc, during="signing in")
                return
            self._session_warned = False
            self._update(busy=None, signed_in=True)
            self._notice(f"Signed in as {self._user.email}")
        await self.connect()

    def _on_device_prompt(self, user_code: str, url: str) -> None:
        self._emit(
            EventKind.NOTICE,
            f"Open {url} and enter the code {user_code}",
            details={"user_code": user_code, "verification_uri": url},
        )

    async def sign_out(self) -> None:
        """Disconnect (always-on does not hold once signed out), revoke and forget tokens."""
        async with self._lock:
            await self._teardown()
            self._policy.clear()
            try:
                await self._auth.sign_out()
            except Exception:
                _log.exception("sign-out could not revoke tokens; forgetting them anyway")
            self._user = None
            self._update(
                signed_in=False, want_connected=False, failed=False, error=None, bundle_valid=False
            )

    # ---------------------------------------------------------------- connect
    async def connect(self) -> None:
        """Walk to CONNECTED/DEGRADED, or OFFLINE on the cached bundle, or ERROR."""
        async with self._lock:
            await self._connect_locked()

    async def _connect_locked(self) -> None:
        self._update(want_connected=True, failed=False, error=None)
        if self._user is None:
            self._user = self._auth.user()
        if self._user is None:
            self._fail(SignInRequiredError("You are not signed in."), during="connecting")
            return
        self._update(signed_in=True)
        try:
            enrollment = self._device.enrollment()
            if enrollment is None:
                self._update(busy=SessionState.ENROLLING)
                enrollment = await self._device.enroll()
                self._notice("This device is now enrolled")
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
                self._ensure_retry()
                return
            await self._bring_up()
        except Exception as exc:
            self._fail(exc, during="connecting")
            return
        self._update(busy=None, controller_reachable=reachable)
        if not reachable:
            self._ensure_retry()
        self._start_live()
        if self._snapshot.state in (SessionState.CONNECTED, SessionState.DEGRADED):
            self._notice("Connected")

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
        try:
            nonce = await self._control.posture_nonce()
            token = self._device.sign_posture(self._posture_facts, nonce, device_id)
            await self._control.submit_posture(token)
        except Exception as exc:
            if self._unreachable(exc):
                _log.info("controller unreachable while reporting posture: %s", exc)
                return False
            raise
        return True

    async def _refresh_bundle(self, device_id: str) -> bool:
        """Fetch and hold a new bundle; False when unreachable. A bad bundle raises."""
        try:
            token = await self._control.fetch_bundle()
        except Exception as exc:
            if self._unreachable(exc):
                return False
            raise
        info = self._policy.accept(token, device_id=device_id)
        _log.info("policy bundle v%s held until %s", info.version, info.expires_at)
        self._apply_facts()
        return True

    def _gateway_specs(self) -> list[Any]:
        """The bundle's tunnel specs in order: ``tunnel`` then the failover ``gateways``."""
        specs = getattr(self._policy, "tunnel_specs", None)
        if callable(specs):
            listed = [s for s in specs() if s is not None]
            if listed:
                return listed
        spec = self._policy.tunnel_spec()
        if spec is None:
            raise NoGatewayError("The policy for this device names no gateway to connect to.")
        return [spec]

    def _current_spec(self) -> Any:
        specs = self._gateway_specs()
        if self._gw_index >= len(specs):
            self._gw_index, self._gw_failed = 0, frozenset()
        return specs[self._gw_index]

    async def _apply(self, spec: Any) -> None:
        await self._tunnel.up(_with_key(spec, self._device.wg_private_key()))
        self._applied_spec = spec
        self._tunnel_up_at = self._clock()

    async def _bring_up(self) -> None:
        await self._apply(self._current_spec())
        await self._await_handshake()
        self._proxy.set_pac_targets(self._policy.pac_targets())
        address = await self._proxy.start(self.config.proxy_port)
        self._set_snapshot(proxy_address=address)
        self._proxy.reevaluate()
        await self._check_health()

    async def _await_handshake(self, within_s: float = 1.0) -> None:
        """Wait briefly for the first handshake so a healthy connect is CONNECTED at once.

        WireGuard handshakes within milliseconds of ``up`` when the gateway answers (the
        bundle's persistent keepalive starts it); a gateway that does not is left to the
        health loop and its grace. Never raises.
        """
        # No longer than a health tick: the tick would see the handshake anyway.
        wait = min(within_s, self.config.first_handshake_grace_s, self.config.health_interval_s)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                view = await self._tunnel.status()
            except Exception:
                return
            if view is None or view.handshake_age_s is not None:
                return
            await asyncio.sleep(0.02)

    async def _sync_tunnel(self) -> None:
        """Re-apply the tunnel when a new bundle changed its spec (routes, peers).

        The controller narrows what the gateway accepts as posture changes; re-applying
        also makes WireGuard handshake afresh at once instead of after its ~15 s rekey
        timeout, so restored access is restored in about a second.
        """
        if not self._facts.tunnel_up or self._policy.held() is None:
            return
        spec = self._current_spec()
        if spec == self._applied_spec:
            return
        _log.info("policy changed the tunnel; re-applying it")
        await self._safe_tunnel_down()
        await self._apply(spec)

    # ------------------------------------------------------------- disconnect
    async def disconnect(self, *, break_glass_reason: str | None = None) -> None:
        """Tunnel and proxy down; under always-on only with a break-glass reason."""
        if self.config.always_on:
            if not self.config.allow_break_glass:
                raise AlwaysOnError("Your organization does not allow disconnecting.")
            if not (break_glass_reason and break_glass_reason.strip()):
                raise AlwaysOnError("Always-on is on: a reason is required to disconnect.")
            try:
                await self._control.report_break_glass(break_glass_reason.strip())
            except Exception:
                _log.warning("could not report the break-glass reason to the controller")
        async with self._lock:
            await self._teardown()
            self._update(want_connected=False, failed=False, error=None)

    async def _teardown(self) -> None:
        self._update(busy=SessionState.DISCONNECTING)
        await self._stop_live()
        await cancel_and_wait(self._retry_task)
        self._retry_task = None
        await self._proxy.stop()
        await self._safe_tunnel_down()
        self._set_snapshot(proxy_address=None, tunnel=None)
        self._update(busy=None, tunnel_up=False, handshake_ok=False)

    async def _safe_tunnel_down(self) -> None:
        try:
            await self._tunnel.down()
        except Exception:
            _log.exception("tunnel down failed")
        self._tunnel_up_at = None

    async def _withdraw(self, reason: str, *, error: ErrorInfo | None = None) -> None:
        """Remove access at once: deny every decision, close connections, tunnel down."""
        _log.warning("withdrawing access: %s", reason)
        self._policy.clear()
        self._proxy.reevaluate()
        await self._proxy.stop()
        await self._safe_tunnel_down()
        self._set_snapshot(proxy_address=None, tunnel=None)
        if error is not None:
            self._update(
                error=error, failed=True, bundle_valid=False, tunnel_up=False, handshake_ok=False
            )
        else:
            self._update(bundle_valid=False, tunnel_up=False, handshake_ok=False)
        self._notice(f"Access withdrawn: {reason}")

    # ------------------------------------------------------------------ posture
    async def recheck_posture(self) -> None:
        """Collect posture now, report it and re-evaluate access."""
        if self._posture_facts is None and self._device.enrollment() is None:
            self._posture_facts = await self._posture.collect()
            self._update()
            return
        facts = await self._posture.collect()
        await self._on_posture_change(facts)

    def _posture_changed(self, facts: Any) -> None:
        spawn(self._on_posture_change(facts), name="engine-posture-change")

    async def _on_posture_change(self, facts: Any) -> None:
        self._posture_facts = facts
        self._apply_facts()
        self._proxy.reevaluate()
        self._update(blocked_resources=_blocked(self._policy.resources()))
        self._emit(EventKind.POSTURE, "Device posture changed")
        enrollment = self._device.enrollment()
        if enrollment is None or not self._facts.want_connected:
            return
        try:
            if await self._report_posture(enrollment.device_id):
                await self._refresh_bundle(enrollment.device_id)
                await self._sync_tunnel()
                self._proxy.reevaluate()
                self._update(blocked_resources=_blocked(self._policy.resources()))
        except Exception as exc:
            _log.warning("could not report the posture change: %s", exc)

    # --------------------------------------------------------------- live tasks
    def _start_live(self) -> None:
        if self._live:
            return
        self._posture.start(self._posture_changed)
        self._live = [
            spawn(self._events_loop(), name="engine-events"),
            spawn(self._health_loop(), name="engine-health"),
        ]

    async def _stop_live(self) -> None:
        live, self._live = self._live, []
        gw_task, self._gw_task = self._gw_task, None
        if gw_task is not None and gw_task is not asyncio.current_task():
            await cancel_and_wait(gw_task)
        for task in live:
            await cancel_and_wait(task)
        await self._posture.stop()

    async def _events_loop(self) -> None:
        """Follow the controller's event stream, reconnecting with backoff."""
        delay = self.config.backoff_initial_s
        while True:
            try:
                async for event in self._control.events():
                    delay = self.config.backoff_initial_s
                    if not self._facts.controller_reachable:
                        self._portal_told = False
                        self._update(controller_reachable=True)
                    await self._on_control_event(event.kind, dict(event.data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._unreachable(exc):
                    _log.warning("event stream failed: %s", exc)
                if self._facts.controller_reachable:
                    self._update(controller_reachable=False)
            await asyncio.sleep(_jitter(delay))
            delay = min(delay * 2, self.config.backoff_max_s)
            # The stream being back does not prove the policy is current: re-fetch.
            await self._try_refresh()

    async def _on_control_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "device_revoked":
            # Handled in its own task: withdrawing stops the live tasks, this one included.
            spawn(self._revoked(), name="engine-revoked")
        elif kind == "policy_changed":
            await self._try_refresh()
        elif kind == "posture_recheck":
            await self.recheck_posture()
        else:
            _log.debug("ignoring controller event %r", kind)

    async def _revoked(self) -> None:
        async with self._lock:
            self._device.forget()
            await self._stop_live()
            await self._withdraw(
                "this device was revoked by your organization",
                error=ErrorInfo(
                    title="Device revoked",
                    detail="Your organization revoked this device's access.",
                    next_step="Contact IT; once they allow it, sign in again to re-enroll.",
                ),
            )

    async def _expired(self) -> None:
        async with self._lock:
            if self._policy.held() is not None:
                return
            await self._stop_live()
            await self._withdraw("the policy expired and no newer one could be fetched")
            self._ensure_retry()

    async def _try_refresh(self) -> bool:
        enrollment = self._device.enrollment()
        if enrollment is None:
            return False
        try:
            ok = await self._refresh_bundle(enrollment.device_id)
        except Exception as exc:
            _log.warning("new policy refused, keeping the held one: %s", exc)
            self._emit(EventKind.ERROR, "A policy update was refused", details={"detail": str(exc)})
            return True
        if ok:
            try:
                await self._sync_tunnel()
            except Exception as exc:
                self._fail(exc, during="applying a policy update")
                return True
            self._proxy.reevaluate()
            self._proxy.set_pac_targets(self._policy.pac_targets())
            self._update(
                controller_reachable=True,
                bundle_valid=self._policy.held() is not None,
                blocked_resources=_blocked(self._policy.resources()),
            )
        elif self._facts.controller_reachable:
            self._update(controller_reachable=False)
        return ok

    def _ensure_retry(self) -> None:
        if self._retry_task is None or self._retry_task.done():
            self._retry_task = spawn(self._retry_loop(), name="engine-retry")

    async def _retry_loop(self) -> None:
        """Offline with nothing valid: retry connecting with capped backoff and jitter."""
        delay = self.config.backoff_initial_s
        while self._needs_retry():
            await asyncio.sleep(_jitter(delay))
            delay = min(delay * 2, self.config.backoff_max_s)
            if not await self._probe():
                continue  # still offline: no state flapping in the tray while we wait
            async with self._lock:
                if not self._needs_retry():
                    return
                await self._connect_locked()

    async def _probe(self) -> bool:
        """Cheaply ask whether the controller answers (a posture nonce), without states."""
        if self._device.enrollment() is None:
            return True
        try:
            await self._control.posture_nonce()
        except Exception as exc:
            return not self._unreachable(exc)
        self._portal_told = False
        return True

    def _unreachable(self, exc: BaseException) -> bool:
        """Is ``exc`` "controller unreachable"? A captive portal is, and the employee is
        told once per episode what to do (sign in to the Wi-Fi), never a silent fail-open."""
        if not _is_unreachable(exc):
            return False
        if captive_portal(exc) is not None and not self._portal_told:
            self._portal_told = True
            info = explain(exc, during="reaching the controller")
            self._emit(
                EventKind.ERROR,
                info.title,
                details={"detail": info.detail, "next": info.next_step, "captive_portal": "1"},
            )
        return True

    def _needs_retry(self) -> bool:
        return self._facts.want_connected and not self._facts.tunnel_up

    async def _health_loop(self) -> None:
        interval = self.config.health_interval_s
        last = time.monotonic()
        if self._network is not None:
            self._network.prime(self._tunnel_interfaces())
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            gap, last = now - last, now
            if gap > max(3 * interval, interval + 10):
                _log.info("timer gap of %.0f s: the machine slept or the network changed", gap)
                self._notice("Reconnecting after sleep")
                spawn(self._reestablish(), name="engine-reestablish")
                continue
            if self._network is not None and self._network.changed(self._tunnel_interfaces()):
                self._notice("Network changed: reconnecting")
                spawn(self._reestablish(), name="engine-reestablish")
                continue
            await self._check_health()

    def _tunnel_interfaces(self) -> set[str]:
        # The tunnel's own interface coming and going is not a change of network.
        names = {self._snapshot.tunnel.interface} if self._snapshot.tunnel else set()
        if self._policy.held() is not None:
            try:
                specs = self._gateway_specs()
            except Exception:
                specs = []
            names |= {str(n) for s in specs if (n := getattr(s, "interface", None))}
        return names

    async def _check_health(self) -> None:
        """Update tunnel health, bundle validity and the session-expiry warning."""
        held = self._policy.held()
        if held is None and self._facts.bundle_valid:
            spawn(self._expired(), name="engine-expired")
            return
        try:
            view = await self._tunnel.status()
        except Exception as exc:
            _log.warning("tunnel status failed: %s", exc)
            view = None
        now = self._clock()
        handshake_ok = False
        if view is not None and self._tunnel_up_at is not None:
            health = assess(
                view.handshake_age_s,
                now - self._tunnel_up_at,
                grace_s=self.config.first_handshake_grace_s,
                stale_s=self.config.handshake_stale_s,
            )
            # Only a handshake made since the tunnel was applied proves the gateway:
            # waiting for one (within the grace) is not CONNECTED either.
            handshake_ok = health is Health.FRESH
            self._plan_gateway(health)
        self._set_snapshot(tunnel=view)
        self._update(
            tunnel_up=view is not None,
            handshake_ok=handshake_ok,
            bundle_valid=held is not None,
            blocked_resources=_blocked(self._policy.resources()) if held else 0,
        )
        expires = self._auth.session_expires_at()
        if expires is not None and not self._session_warned:
            left = expires - now
            if 0 < left < self.config.session_warning_s:
                self._session_warned = True
                self._emit(
                    EventKind.NOTICE,
                    f"Your sign-in ends in {int(left // 60)} minutes. Sign in again to extend it.",
                    details={"action": "extend_session"},
                )

    def _plan_gateway(self, health: Health) -> None:
        """Carry out ``gateways.plan`` for the current gateway's ``health``."""
        if self._gw_task is not None and not self._gw_task.done():
            return  # a switch is already running
        try:
            count = len(self._gateway_specs())
        except Exception:
            return  # no bundle: nothing to switch between
        step = plan(health, current=self._gw_index, count=count, failed=self._gw_failed)
        self._gw_failed = step.failed
        if step.action is not Action.STAY:
            self._gw_task = spawn(self._switch_gateway(step), name="engine-gateway")

    async def _switch_gateway(self, step: Step) -> None:
        """Re-apply the current gateway or bring up another one (under the lock)."""
        async with self._lock:
            if not (self._facts.tunnel_up and self._facts.want_connected):
                return
            specs = self._gateway_specs()
            if step.index >= len(specs):
                return
            old_index, spec = self._gw_index, specs[step.index]
            old = gateway_label(specs[old_index], old_index) if old_index < len(specs) else "?"
            new = gateway_label(spec, step.index)
            if step.action is Action.SWITCH and step.index != old_index:
                _log.warning("gateway %s is not answering; switching to %s", old, new)
                self._emit(
                    EventKind.NOTICE,
                    f"Gateway {old} is not answering: switching to {new}",
                    details={"gateway": new, "previous": old},
                )
            else:
                _log.info("re-applying gateway %s to check its handshake", new)
            self._gw_index = step.index
            await self._safe_tunnel_down()
            try:
                await self._apply(spec)
            except Exception as exc:
                self._set_snapshot(tunnel=None)
                self._update(tunnel_up=False, handshake_ok=False)
                self._fail(exc, during=f"switching to gateway {new}")
                return
            await self._await_handshake()
            await self._check_health()

    async def _reestablish(self) -> None:
        async with self._lock:
            # A new network (or a resume) may reach the preferred gateway again.
            self._gw_index, self._gw_failed = 0, frozenset()
            await self._safe_tunnel_down()
            await self._stop_live()
            await self._connect_locked()

    # ------------------------------------------------------------ decisions
    def record_decision_event(
        self, *, app: str, destination: str, effect: str, rule: str | None, reason: str
    ) -> None:
        """Called by the proxy for every decision: becomes a DECISION event (and is kept
        for diagnostics). Risk may have moved, so the snapshot's risk is refreshed too."""
        decision = Decision(effect=Effect(effect), rule_id=rule, reason=reason)
        self._emit(EventKind.DECISION, reason, decision=decision, app=app, destination=destination)
        risk, signals = self._policy.risk()
        if (risk, signals) != (self._snapshot.risk, self._snapshot.risk_signals):
            self._set_snapshot(risk=risk, risk_signals=signals)

    # ------------------------------------------------------------ diagnostics
    async def collect_diagnostics(self, destination: Path) -> Path:
        """Write the redacted diagnostics zip (see ``core.engine.diag``)."""
        if self._diagnostics is None:
            from core.engine.diag import write_diagnostics

            return await write_diagnostics(self, destination)
        return await self._diagnostics(self, destination)


def _with_key(spec: Any, private_key: str) -> Any:
    with_key = getattr(spec, "with_private_key", None)
    return with_key(private_key) if callable(with_key) else spec


def _blocked(resources: Sequence[Any]) -> int:
    # Resources the user is simply not entitled to do not degrade the session.
    return sum(1 for r in resources if not r.reachable and r.fixable)


def _jitter(delay: float) -> float:
    # Full jitter spreads reconnect storms after an outage (AWS architecture blog advice).
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - not security relevant


def _is_unreachable(exc: BaseException) -> bool:
    import httpx

    if isinstance(exc, httpx.TransportError | ConnectionError | asyncio.TimeoutError):
        return True
    return bool(getattr(exc, "unreachable", False))
