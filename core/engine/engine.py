"""The engine: the single owner of the session, from sign-in to a healthy tunnel.

It is one serialised actor. Every request of a front end, every result of an effect it
started and everything the world reports arrives in one inbox of typed, frozen messages
(``core.engine.inbox``) and is handled one at a time by ``_dispatch``; nothing else
writes the session's facts. Handlers run effects through the ports
(``core.engine.ports``), record what they found in ``SessionFacts`` and derive the state
with the pure ``core.engine.machine.derive``. Every change becomes an ``Event``,
delivered in order on the loop's thread to subscribers (the local API, the tray).

Long effects do not hold the inbox: the sign-in (minutes in a browser) runs as its own
task and reports back with ``SignInFinished``. The live sources (``core.engine.live``:
health ticks, the controller's event stream, posture drift, the offline retry) only post
messages. Time comes from an injected ``core.engine.ticks.Ticks``, so tests feed
messages and move time by hand.

Here: the actor, the snapshot and events, and the handlers of the session's requests
(start, stop, sign in and out, connect, disconnect, settings). The handlers of what the
world reports live in ``core.engine.reactions`` (posture, controller events, health,
decisions), which this class mixes in.

Threading: the engine's loop only; ``record_decision_event`` and ``reconfigure`` may be
called from it synchronously (they post).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from core.aio import cancel_and_wait, spawn
from core.engine.api import MIN_REASON_LENGTH, OpenUrl, Setting, Unsubscribe
from core.engine.config import EngineConfig
from core.engine.errors import AlwaysOnError, ReasonTooShortError, SignInRequiredError
from core.engine.gateways import Gateways
from core.engine.inbox import (
    Announce,
    ClockJump,
    ConnectRequested,
    ControllerReach,
    ControlPlaneEvent,
    DisconnectRequested,
    HealthTick,
    Message,
    PostureChanged,
    ProxyDecision,
    RecheckRequested,
    Request,
    RetryDue,
    SessionEnded,
    SettingsChanged,
    SignInFinished,
    SignInRequested,
    SignOutRequested,
    StartRequested,
    StopRequested,
)
from core.engine.live import Live
from core.engine.machine import SessionFacts
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
from core.engine.reactions import Reactions
from core.engine.state import Event, EventKind, SessionState, Snapshot
from core.engine.ticks import RealTicks, Ticks
from core.i18n import translate

__all__ = ["Engine", "EngineConfig", "Watcher"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

SettingsSetter = Callable[[str, object], Awaitable[None] | None]


class Watcher(Protocol):
    """Something the engine runs while it runs (the settings watcher)."""

    def start(self) -> None: ...
    async def stop(self) -> None: ...


class Engine(Reactions):
    """Implements ``core.engine.api.EngineAPI`` over the ports, as one actor."""

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
        settings_view: Callable[[], list[Setting]] | None = None,
        settings_setter: SettingsSetter | None = None,
        diagnostics: Callable[[Engine, Path], Awaitable[Path]] | None = None,
        settings_watcher: Watcher | None = None,
        ticks: Ticks | None = None,
        network: NetworkWatch | None = None,
        clock: Callable[[], float] | None = None,
        updates: Watcher | None = None,
        telemetry: Watcher | None = None,
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
        self._updates = updates  # core.update.schedule: started and stopped with the engine
        self._telemetry = telemetry  # core.telemetry's sender: likewise (None: level off)
        # ``clock`` alone: real timers with another wall clock (tools and older tests).
        self._ticks: Ticks = ticks or RealTicks(clock or time.time)
        self._network = network
        self._facts = SessionFacts()
        self._snapshot = Snapshot(
            organization=self.config.organization,
            always_on=self.config.always_on,
            managed_rejected=self.config.managed_rejected,
        )
        self._subscribers: tuple[Callable[[Event], None], ...] = ()
        self._posture_facts: PostureFacts | None = None
        self._user: UserInfo | None = None
        self._started = False
        self._session_warned = False
        self._refresh_at: float | None = None
        # the actor
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._actor: asyncio.Task[None] | None = None
        self._handling = 0
        self._idle: asyncio.Event | None = None
        # the sign-in effect: its task, its attempt number and who waits for it
        self._sign_in_task: asyncio.Task[None] | None = None
        self._sign_in_attempt = 0
        self._sign_in_waiters: list[asyncio.Future[Any]] = []
        self._reach = Reachability(control=control, device=device, emit=self._emit)
        self._gateways = Gateways(
            tunnel=tunnel,
            policy=policy,
            device=device,
            proxy=proxy,
            config=lambda: self.config,
            clock=self._ticks.now,
            relay_cert=control.relay_cert,
        )
        self._live = Live(
            post=self._post,
            ticks=self._ticks,
            config=lambda: self.config,
            control=control,
            posture=posture,
            reach=self._reach,
        )
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
        self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            self._subscribers = tuple(c for c in self._subscribers if c is not callback)

        return unsubscribe

    def settings(self) -> list[Setting]:
        """The effective settings, with source and lock (empty without a settings source)."""
        return self._settings_view() if self._settings_view else []

    async def set_setting(self, key: str, value: object) -> None:
        """Change a user setting (raises the settings package's errors when refused)."""
        if self._settings_setter is None:
            raise RuntimeError("this engine has no settings store")
        done = self._settings_setter(key, value)
        if inspect.isawaitable(done):
            await done
        # Every front end re-reads the settings, whether or not the engine's part changed.
        await self._ask(SettingsChanged(config=self.config))

    # --------------------------------------------------------------- the actor
    def _post(self, message: Message) -> None:
        """Put ``message`` in the inbox (from the loop's thread); starts the actor."""
        self._inbox.put_nowait(message)
        if self._idle is not None:
            self._idle.clear()
        if self._actor is None or self._actor.done():
            self._actor = spawn(self._run(), name="engine-actor")

    async def _ask(self, message: Message) -> Any:
        """Post a request and wait for the actor's reply (or its refusal)."""
        assert isinstance(message, Request)
        self._post(message)
        return await message.reply

    async def _run(self) -> None:
        while True:
            message = await self._inbox.get()
            self._handling += 1
            try:
                await self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(message, Request) and not message.reply.done():
                    message.reply.set_exception(exc)
                else:
                    _log.exception("engine: handling %s failed", type(message).__name__)
            else:
                if isinstance(message, Request) and not message.reply.done():
                    message.reply.set_result(None)
            finally:
                self._handling -= 1
                if self._inbox.empty() and self._idle is not None:
                    self._idle.set()

    async def settled(self) -> None:
        """Return once the inbox is empty and no message is being handled (tests, tools)."""
        if self._idle is None:
            self._idle = asyncio.Event()
        while True:
            if self._inbox.empty() and self._handling == 0:
                await asyncio.sleep(0)  # let what the last handler spawned post its messages
                if self._inbox.empty() and self._handling == 0:
                    return
                continue
            self._idle.clear()
            await self._idle.wait()

    async def _dispatch(self, message: Message) -> None:
        match message:
            case StartRequested():
                await self._on_start()
            case StopRequested():
                await self._on_stop()
            case ConnectRequested(retry=retry):
                await self._on_connect(retry=retry)
            case DisconnectRequested(reason=reason):
                await self._on_disconnect(reason)
            case SignInRequested():
                self._on_sign_in(message)
            case SignInFinished():
                await self._on_sign_in_finished(message)
            case SignOutRequested(reason=reason):
                await self._on_sign_out(reason)
            case SessionEnded():
                await self._on_session_ended()
            case RecheckRequested():
                await self._on_recheck()
            case PostureChanged(facts=facts):
                await self._on_posture_changed(facts)
            case ControlPlaneEvent(kind=kind):
                await self._on_control_event(kind)
            case ControllerReach(reachable=reachable, error=error):
                self._on_reach(reachable, error)
            case HealthTick():
                await self._on_health_tick()
            case ClockJump():
                self._notice(translate("core.engine.engine", "Reconnecting after sleep"))
                await self._reestablish()
            case RetryDue():
                await self._on_retry_due()
            case ProxyDecision():
                self._on_decision(message)
            case SettingsChanged(config=config):
                await self._on_settings(config)
            case Announce(text=text, details=details):
                self._notice(text, **details)

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Load the stored session and cached bundle; auto-connect if configured."""
        await self._ask(StartRequested())

    async def _on_start(self) -> None:
        if self._started:
            return
        self._started = True
        if self._watcher is not None:
            self._watcher.start()
        if self._updates is not None:
            self._updates.start()
        if self._telemetry is not None:
            self._telemetry.start()
        self._user = self._auth.user()
        enrollment = self._device.enrollment()
        if enrollment is not None:
            self._policy.load_cached(device_id=enrollment.device_id)
        self._update(signed_in=self._user is not None)
        if self._user is not None and (self.config.auto_connect or self.config.always_on):
            self._post(ConnectRequested())

    async def stop(self) -> None:
        """Shut down: live tasks, proxy and tunnel (unless always-on keeps the tunnel)."""
        if self._actor is None or self._actor.done():
            return
        await self._ask(StopRequested())
        await cancel_and_wait(self._actor)
        self._actor = None

    async def _on_stop(self) -> None:
        await self._cancel_sign_in()
        await self._live.stop()
        await self._live.cancel_retry()
        await self._proxy.stop()
        if not self.config.always_on:
            await self._gateways.down()
        await self._posture.stop()
        if self._watcher is not None:
            await self._watcher.stop()
        if self._updates is not None:
            await self._updates.stop()
        if self._telemetry is not None:
            await self._telemetry.stop()
        self._started = False

    def announce(self, text: str, details: Mapping[str, str] | None = None) -> None:
        """Show ``text`` (translated) as one NOTICE event, in order with the session's
        events (posted to the actor). For jobs the engine runs, such as updates."""
        self._post(Announce(text=text, details=dict(details or {})))

    def reconfigure(self, config: EngineConfig) -> None:
        """Apply changed settings at once (managed settings change without a restart)."""
        self._post(SettingsChanged(config=config))

    async def _on_settings(self, config: EngineConfig) -> None:
        old, self.config = self.config, config
        if config.managed_rejected != old.managed_rejected:
            if config.managed_rejected:
                self._notice(
                    translate(
                        "core.engine.engine", "Managed configuration rejected: {reason}"
                    ).format(reason=config.managed_rejected),
                    action="managed_rejected",
                )
            enrollment = self._device.enrollment()
            if enrollment is not None and self._posture_facts is not None:
                # Tell IT at once (the signed report carries it), not at the next drift.
                try:
                    await self._report_posture(enrollment.device_id)
                except Exception as exc:
                    _log.warning("could not report the managed configuration's state: %s", exc)
        if config != old:
            self._set_snapshot(
                always_on=config.always_on,
                organization=config.organization,
                managed_rejected=config.managed_rejected,
            )
            self._notice(
                translate("core.engine.engine", "Settings changed by your organization")
                if config.organization
                else translate("core.engine.engine", "Settings changed")
            )
            listening = (config.proxy_port, config.transparent, config.transparent_port)
            before = (old.proxy_port, old.transparent, old.transparent_port)
            if listening != before and self._snapshot.proxy_address:
                await self._proxy.stop()
                if self._facts.tunnel_up:
                    address = await self._start_proxy()
                    if (config.transparent, config.transparent_port) != before[1:]:
                        await self._gateways.reenforce()  # the helper's redirect follows
                    self._set_snapshot(proxy_address=address, access=self._access(address))
        self._emit(EventKind.SETTINGS)

    # ---------------------------------------------------------------- sign-in
    async def sign_in(self, *, device_code: bool = False, open_url: OpenUrl | None = None) -> None:
        """Run the sign-in; on success continue to connect (errors become ERROR state)."""
        request = SignInRequested(device_code=device_code, open_url=open_url)
        self._post(request)
        waiter: asyncio.Future[Any] = await request.reply
        await waiter

    def _on_sign_in(self, request: SignInRequested) -> None:
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._sign_in_waiters.append(waiter)
        request.reply.set_result(waiter)
        if self._sign_in_task is not None and not self._sign_in_task.done():
            return  # one sign-in at a time: this caller waits for the running one
        self._sign_in_attempt += 1
        self._update(busy=SessionState.SIGNING_IN, failed=False, error=None)
        self._sign_in_task = spawn(
            self._signing_in(self._sign_in_attempt, request), name="engine-sign-in"
        )

    async def _signing_in(self, attempt: int, request: SignInRequested) -> None:
        try:
            user = await self._auth.sign_in(
                device_code=request.device_code,
                on_prompt=self._on_device_prompt,
                open_url=request.open_url,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._post(SignInFinished(attempt=attempt, error=exc))
        else:
            self._post(SignInFinished(attempt=attempt, user=user))

    async def _on_sign_in_finished(self, result: SignInFinished) -> None:
        if result.attempt != self._sign_in_attempt:
            return  # an abandoned attempt (sign-out cancelled it)
        self._sign_in_task = None
        try:
            if result.error is not None or result.user is None:
                self._fail(
                    result.error or SignInRequiredError(""),
                    during=translate("core.engine.engine", "signing in"),
                )
                if not self._facts.signed_in:
                    self._user = None
                return
            self._user = result.user
            self._session_warned = False
            self._update(busy=None, signed_in=True)
            self._notice(
                translate("core.engine.engine", "Signed in as {user}").format(user=self._user.email)
            )
            await self._on_connect(retry=False)
        finally:
            self._release_sign_in_waiters()

    def _release_sign_in_waiters(self) -> None:
        waiters, self._sign_in_waiters = self._sign_in_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _cancel_sign_in(self) -> None:
        task, self._sign_in_task = self._sign_in_task, None
        self._sign_in_attempt += 1
        await cancel_and_wait(task)
        self._release_sign_in_waiters()

    def _on_device_prompt(self, user_code: str, url: str, complete: str | None = None) -> None:
        # The page to type the code on is named; the one with the code filled in (when the
        # provider has it) is only a link: naming it would show the code twice.
        details = {"user_code": user_code, "verification_uri": url}
        if complete:
            details["verification_uri_complete"] = complete
        self._emit(
            EventKind.NOTICE,
            translate("core.engine.engine", "Open {url} and enter the code {code}").format(
                url=url, code=user_code
            ),
            details=details,
        )

    async def sign_out(self, *, break_glass_reason: str | None = None) -> None:
        """Disconnect, revoke and forget tokens; under always-on only with a reason."""
        await self._ask(SignOutRequested(reason=break_glass_reason))

    async def _on_sign_out(self, reason: str | None) -> None:
        if self._facts.signed_in or self._facts.tunnel_up:
            given = await self._leave_always_on(
                reason, action=translate("core.engine.engine", "signing out")
            )
        else:
            # Only a first sign-in to abandon (Cancel in the sign-in window): always-on
            # keeps nothing up yet, so no break-glass reason is asked for.
            given = None
        await self._cancel_sign_in()
        await self._teardown(break_glass_reason=given)
        self._policy.clear()
        try:
            await self._auth.sign_out()
        except Exception:
            _log.exception("sign-out could not revoke tokens; forgetting them anyway")
        self._user = None
        self._update(
            signed_in=False,
            want_connected=False,
            failed=False,
            error=None,
            bundle_valid=False,
            busy=None,
        )
        self._notice(translate("core.engine.engine", "Signed out"), action="signed_out")

    async def _leave_always_on(self, reason: str | None, *, action: str) -> str | None:
        """Under managed always-on: refuse, or report the break-glass reason and return it
        (the helper wants it too). None when always-on is off. ``action`` is the words
        for what was asked ("signing out"), translated."""
        if not self.config.always_on:
            return None
        if not self.config.allow_break_glass:
            raise AlwaysOnError(
                translate(
                    "core.engine.engine",
                    "Your organization does not allow {action} while connected.",
                ).format(action=action)
            )
        text = (reason or "").strip()
        if not text:
            raise AlwaysOnError(
                translate(
                    "core.engine.engine", "Always-on is on: a reason is required for {action}."
                ).format(action=action)
            )
        if len(text) < MIN_REASON_LENGTH:
            raise ReasonTooShortError(
                translate(
                    "core.engine.engine",
                    "Always-on is on: give IT a reason of at least {count} characters.",
                ).format(count=MIN_REASON_LENGTH)
            )
        _log.warning("break-glass (%s): %s", action, text)
        try:
            await self._control.report_break_glass(text)
        except Exception:
            _log.warning("could not report the break-glass reason to the controller")
        return text

    # ---------------------------------------------------------------- connect
    async def connect(self) -> None:
        """Walk to CONNECTED/DEGRADED/BLOCKED, or OFFLINE on the cached bundle, or ERROR."""
        await self._ask(ConnectRequested())

    # ------------------------------------------------------------- disconnect
    async def disconnect(self, *, break_glass_reason: str | None = None) -> None:
        """Tunnel and proxy down; under always-on only with a break-glass reason."""
        await self._ask(DisconnectRequested(reason=break_glass_reason))

    async def _on_disconnect(self, reason: str | None) -> None:
        given = await self._leave_always_on(
            reason, action=translate("core.engine.engine", "disconnecting")
        )
        await self._teardown(break_glass_reason=given)
        self._update(want_connected=False, failed=False, error=None)

    # ------------------------------------------------------------------ posture
    async def recheck_posture(self) -> None:
        """Collect posture now, report it and re-evaluate access."""
        await self._ask(RecheckRequested())

    # ------------------------------------------------------------ decisions
    def record_decision_event(
        self, *, app: str, destination: str, effect: str, rule: str | None, reason: str
    ) -> None:
        """Called by the proxy (on this loop) for every decision: becomes a DECISION
        event (and is kept for diagnostics); the snapshot's risk is refreshed too."""
        self._post(
            ProxyDecision(app=app, destination=destination, effect=effect, rule=rule, reason=reason)
        )

    # ------------------------------------------------------------ diagnostics
    async def collect_diagnostics(self, destination: Path) -> Path:
        """Write the redacted diagnostics zip (see ``core.engine.diag``)."""
        if self._diagnostics is None:
            from core.engine.diag import write_diagnostics

            return await write_diagnostics(self, destination)
        return await self._diagnostics(self, destination)
