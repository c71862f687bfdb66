"""The engine: the single owner of the session, from sign-in to a healthy tunnel.

It runs effects through its ports (``core.engine.ports``), records what they found in
``SessionFacts`` and derives the state with the pure ``core.engine.machine.derive``. Every
change becomes an ``Event`` delivered in order, on the loop's thread, to subscribers (the
tray, the CLI, the local control socket).

Here: the state (facts, snapshot, events), sign-in, connect and disconnect, the
transitions that withdraw access (revoked device, expired bundle), posture reports and
the controller's event stream (what its events mean; reconnecting with backoff).
Elsewhere: the live session (``core.engine.live``: live tasks, tunnel health, gateway
failover, sleep and network changes, offline retry), the tunnel in use
(``core.engine.health``) and whether the controller answers (``core.engine.reach``); the
live session reaches back only through ``core.engine.live.Hooks``.
Imports: the ports and the engine's own modules, ``core.policy.api`` for decisions.

Threading: every public method is a coroutine for the engine's loop; nothing blocks it.
Concurrency: ``connect``, ``disconnect``, ``sign_in`` and ``sign_out`` are serialised by
one lock; live reactions that change access take the same lock.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from types import EllipsisType
from typing import Any, Protocol

from core.aio import spawn
from core.engine.api import SettingView, Unsubscribe
from core.engine.config import EngineConfig
from core.engine.errors import AlwaysOnError, SignInRequiredError, explain
from core.engine.health import Gateways
from core.engine.live import Backoff, Hooks, Live
from core.engine.machine import SessionFacts, blocked, derive
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
from core.engine.reach import Reachability
from core.engine.state import ErrorInfo, Event, EventKind, SessionState, Snapshot
from core.policy.api import Decision, Effect

__all__ = ["Engine", "EngineConfig", "Watcher"]

_log = logging.getLogger(__name__)


class Watcher(Protocol):
    """Something the engine runs while it runs (the settings watcher)."""

    def start(self) -> None: ...
    async def stop(self) -> None: ...


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
        self._posture_facts: Any = None
        self._user: UserInfo | None = None
        self._started = False
        self._reach = Reachability(control=control, device=device, emit=self._emit)
        self._gateways = Gateways(
            tunnel=tunnel, policy=policy, device=device, config=self._config, clock=clock
        )
        self._live = Live(
            hooks=Hooks(
                lock=self._lock,
                facts=lambda: self._facts,
                snapshot=lambda: self._snapshot,
                update=self._update,
                set_snapshot=self._set_snapshot,
                emit=self._emit,
                fail=self._fail,
                connect_locked=self._connect_locked,
                expired=self._expired,
                probe=self._reach.probe,
                follow_events=self._events_loop,
                posture_changed=self._posture_changed,
            ),
            gateways=self._gateways,
            auth=auth,
            policy=policy,
            posture=posture,
            tunnel=tunnel,
            config=self._config,
            clock=clock,
            network=network,
        )
        #: recent history for diagnostics: (time, state) and decisions
        self.history: collections.deque[tuple[float, str]] = collections.deque(maxlen=200)
        self.decisions: collections.deque[Event] = collections.deque(maxlen=500)

    def _config(self) -> EngineConfig:
        # The live parts read the settings through this: ``reconfigure`` replaces them.
        return self.config

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
        await self._live.stop()
        await self._live.cancel_retry()
        await self._proxy.stop()
        if not self.config.always_on:
            await self._gateways.down()
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
            self._live.rearm_session_warning()
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
                self._live.ensure_retry()
                return
            await self._bring_up()
        except Exception as exc:
            self._fail(exc, during="connecting")
            return
        self._update(busy=None, controller_reachable=reachable)
        if not reachable:
            self._live.ensure_retry()
        self._live.start()
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
            if self._reach.unreachable(exc):
                _log.info("controller unreachable while reporting posture: %s", exc)
                return False
            raise
        return True

    async def _refresh_bundle(self, device_id: str) -> bool:
        """Fetch and hold a new bundle; False when unreachable. A bad bundle raises."""
        try:
            token = await self._control.fetch_bundle()
        except Exception as exc:
            if self._reach.unreachable(exc):
                return False
            raise
        info = self._policy.accept(token, device_id=device_id)
        _log.info("policy bundle v%s held until %s", info.version, info.expires_at)
        self._apply_facts()
        return True

    async def _bring_up(self) -> None:
        await self._gateways.bring_up()
        self._proxy.set_pac_targets(self._policy.pac_targets())
        address = await self._proxy.start(self.config.proxy_port)
        self._set_snapshot(proxy_address=address)
        self._proxy.reevaluate()
        await self._live.check_health()

    async def _sync_tunnel(self) -> None:
        """Re-apply the tunnel when a new bundle changed its spec (``Gateways.sync``)."""
        if not self._facts.tunnel_up or self._policy.held() is None:
            return
        await self._gateways.sync()

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
        await self._live.stop()
        await self._live.cancel_retry()
        await self._proxy.stop()
        await self._gateways.down()
        self._set_snapshot(proxy_address=None, tunnel=None)
        self._update(busy=None, tunnel_up=False, handshake_ok=False)

    async def _withdraw(self, reason: str, *, error: ErrorInfo | None = None) -> None:
        """Remove access at once: deny every decision, close connections, tunnel down."""
        _log.warning("withdrawing access: %s", reason)
        self._policy.clear()
        self._proxy.reevaluate()
        await self._proxy.stop()
        await self._gateways.down()
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
        self._update(blocked_resources=blocked(self._policy.resources()))
        self._emit(EventKind.POSTURE, "Device posture changed")
        enrollment = self._device.enrollment()
        if enrollment is None or not self._facts.want_connected:
            return
        try:
            if await self._report_posture(enrollment.device_id):
                await self._refresh_bundle(enrollment.device_id)
                await self._sync_tunnel()
                self._proxy.reevaluate()
                self._update(blocked_resources=blocked(self._policy.resources()))
        except Exception as exc:
            _log.warning("could not report the posture change: %s", exc)

    # ------------------------------------------------------------ event stream
    async def _events_loop(self) -> None:
        """Follow the controller's event stream, reconnecting with backoff."""
        backoff = Backoff(self._config)
        while True:
            try:
                async for event in self._control.events():
                    backoff.reset()
                    if not self._facts.controller_reachable:
                        self._reach.answered()
                        self._update(controller_reachable=True)
                    await self._on_control_event(event.kind, dict(event.data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._reach.unreachable(exc):
                    _log.warning("event stream failed: %s", exc)
                if self._facts.controller_reachable:
                    self._update(controller_reachable=False)
            await backoff.wait()
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
            await self._live.stop()
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
            await self._live.stop()
            await self._withdraw("the policy expired and no newer one could be fetched")
            self._live.ensure_retry()

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
                blocked_resources=blocked(self._policy.resources()),
            )
        elif self._facts.controller_reachable:
            self._update(controller_reachable=False)
        return ok

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
