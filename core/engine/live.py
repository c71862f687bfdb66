"""The live session: what keeps a connected session honest, and the retries while offline.

``Live`` runs the live tasks while the session wants to be connected: the controller's
event stream (the engine's loop, fed through ``Hooks.follow_events``), posture drift
(the posture port's watcher) and a health tick that

* notices a long timer gap (the machine slept) or a network change
  (``core.engine.netwatch``) and re-establishes the session: tunnel down, live tasks
  stopped, connect again from the preferred gateway;
* withdraws access when the held bundle expired (``Hooks.expired``);
* reads the tunnel's status, classifies its handshake and carries out gateway failover
  (``core.engine.health.Gateways``), with a NOTICE naming the gateway it switches to;
* warns once before the sign-in expires.

While offline with nothing valid it retries connecting with capped exponential backoff
and jitter (``Backoff``), probing cheaply first so the tray does not flap.

The interface back to the engine is ``Hooks``: read the facts and the snapshot, change
them (which derives the state and emits), connect under the engine's lock, and the
engine's own reactions. Imports: the ports, ``core.engine.config``, ``core.engine.health``,
``core.engine.machine``, ``core.engine.netwatch`` and ``core.engine.state``; never the
engine. Threading: the engine's loop only; reactions that change access take
``Hooks.lock``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from core.aio import cancel_and_wait, spawn
from core.engine.config import EngineConfig
from core.engine.gateways import Action, Health, Step
from core.engine.health import Gateways
from core.engine.machine import SessionFacts, blocked
from core.engine.netwatch import NetworkWatch
from core.engine.ports import AuthPort, PolicyPort, PosturePort, TunnelPort
from core.engine.state import EventKind, Snapshot

__all__ = ["Backoff", "Hooks", "Live", "jitter"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Hooks:
    """The engine's side of the live session; every callable runs on the loop."""

    #: the engine's lock: connect, disconnect and access-changing reactions
    lock: asyncio.Lock
    #: read the session
    facts: Callable[[], SessionFacts]
    snapshot: Callable[[], Snapshot]
    #: change facts and derive (``Engine._update``), snapshot fields, announce, fail
    update: Callable[..., None]
    set_snapshot: Callable[..., None]
    emit: Callable[..., None]
    fail: Callable[..., None]
    #: connect, the lock held
    connect_locked: Callable[[], Awaitable[None]]
    #: the held bundle expired: withdraw access (takes the lock)
    expired: Callable[[], Coroutine[Any, Any, None]]
    #: is the controller answering? (cheap, no state changes: ``Reachability.probe``)
    probe: Callable[[], Awaitable[bool]]
    #: the controller's event stream, followed until cancelled
    follow_events: Callable[[], Coroutine[Any, Any, None]]
    #: the posture watcher's callback
    posture_changed: Callable[[Any], None]


class Backoff:
    """Capped exponential delays with jitter, from ``backoff_initial_s`` up to
    ``backoff_max_s`` (read from the config at each step, so settings apply at once)."""

    def __init__(self, config: Callable[[], EngineConfig]) -> None:
        self._config = config
        self._delay = config().backoff_initial_s

    def reset(self) -> None:
        """Back to the first delay (the other side answered)."""
        self._delay = self._config().backoff_initial_s

    async def wait(self) -> None:
        """Sleep the current delay (jittered), then double it up to the cap."""
        await asyncio.sleep(jitter(self._delay))
        self._delay = min(self._delay * 2, self._config().backoff_max_s)


def jitter(delay: float) -> float:
    """``delay`` spread over its upper half, so clients do not retry in lockstep."""
    # "Equal jitter" (AWS architecture blog): spreads reconnect storms after an outage
    # while keeping at least half the delay.
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - not security relevant


def _awake_or_asleep() -> float:
    """Seconds on a clock that keeps counting while the machine is suspended."""
    # time.monotonic (and asyncio's timers) stop during suspend on Linux and macOS, so a
    # timer gap measured with it never shows a sleep: after a resume the tick simply
    # comes late by the machine's reckoning. CLOCK_BOOTTIME (Linux) and Darwin's
    # CLOCK_MONOTONIC include the suspended time. Elsewhere (Windows) time.monotonic as
    # before.
    if sys.platform == "darwin":
        return time.clock_gettime(time.CLOCK_MONOTONIC)
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        return time.clock_gettime(boottime)
    return time.monotonic()


class Live:
    """The live tasks, gateway failover and the offline retry of one engine."""

    def __init__(
        self,
        *,
        hooks: Hooks,
        gateways: Gateways,
        auth: AuthPort,
        policy: PolicyPort,
        posture: PosturePort,
        tunnel: TunnelPort,
        config: Callable[[], EngineConfig],
        clock: Callable[[], float],
        network: NetworkWatch | None = None,
    ) -> None:
        self._hooks = hooks
        self._gateways = gateways
        self._auth = auth
        self._policy = policy
        self._posture = posture
        self._tunnel = tunnel
        self._config = config
        self._clock = clock
        self._network = network
        self._tasks: list[asyncio.Task[Any]] = []
        self._switch_task: asyncio.Task[Any] | None = None
        self._retry_task: asyncio.Task[Any] | None = None
        self._expiry_task: asyncio.Task[Any] | None = None
        self._session_warned = False

    # ------------------------------------------------------------- live tasks
    def start(self) -> None:
        """Start the posture watcher, the event stream and the health tick (once)."""
        if self._tasks:
            return
        self._posture.start(self._hooks.posture_changed)
        self._tasks = [
            spawn(self._hooks.follow_events(), name="engine-events"),
            spawn(self._health_loop(), name="engine-health"),
        ]

    async def stop(self) -> None:
        """Stop the live tasks (a running gateway switch too) and the posture watcher.

        Safe to call from the gateway switch itself: it is not waited for then.
        """
        tasks, self._tasks = self._tasks, []
        switch, self._switch_task = self._switch_task, None
        if switch is not None and switch is not asyncio.current_task():
            await cancel_and_wait(switch)
        for task in tasks:
            await cancel_and_wait(task)
        await self._posture.stop()

    def rearm_session_warning(self) -> None:
        """Warn again before the (new) sign-in expires."""
        self._session_warned = False

    async def _health_loop(self) -> None:
        interval = self._config().health_interval_s
        last = _awake_or_asleep()
        if self._network is not None:
            self._network.prime(self._tunnel_interfaces())
        while True:
            await asyncio.sleep(interval)
            now = _awake_or_asleep()
            gap, last = now - last, now
            if gap > max(3 * interval, interval + 10):
                _log.info("timer gap of %.0f s: the machine slept or the network changed", gap)
                self._hooks.emit(EventKind.NOTICE, "Reconnecting after sleep")
                spawn(self._reestablish(), name="engine-reestablish")
                continue
            if self._network is not None and self._network.changed(self._tunnel_interfaces()):
                self._hooks.emit(EventKind.NOTICE, "Network changed: reconnecting")
                spawn(self._reestablish(), name="engine-reestablish")
                continue
            await self.check_health()

    def _tunnel_interfaces(self) -> set[str]:
        return self._gateways.interfaces(self._hooks.snapshot().tunnel)

    async def _reestablish(self) -> None:
        async with self._hooks.lock:
            # A new network (or a resume) may reach the preferred gateway again.
            self._gateways.reset()
            await self._gateways.down()
            await self.stop()
            await self._hooks.connect_locked()

    # ------------------------------------------------------------------ health
    async def check_health(self) -> None:
        """Update tunnel health, bundle validity and the session-expiry warning."""
        hooks = self._hooks
        held = self._policy.held()
        if held is None and hooks.facts().bundle_valid:
            # One withdrawal per expiry: ticks while it waits for the lock must not queue
            # more (each would withdraw again and announce it again).
            if self._expiry_task is None or self._expiry_task.done():
                self._expiry_task = spawn(hooks.expired(), name="engine-expired")
            return
        try:
            view = await self._tunnel.status()
        except Exception as exc:
            _log.warning("tunnel status failed: %s", exc)
            view = None
        handshake_ok = False
        health = self._gateways.health(view)
        if health is not None:
            # Only a handshake made since the tunnel was applied proves the gateway:
            # waiting for one (within the grace) is not CONNECTED either.
            handshake_ok = health is Health.FRESH
            self._plan_gateway(health)
        hooks.set_snapshot(tunnel=view)
        hooks.update(
            tunnel_up=view is not None,
            handshake_ok=handshake_ok,
            bundle_valid=held is not None,
            blocked_resources=blocked(self._policy.resources()) if held else 0,
        )
        expires = self._auth.session_expires_at()
        if expires is not None and not self._session_warned:
            left = expires - self._clock()
            if 0 < left < self._config().session_warning_s:
                self._session_warned = True
                hooks.emit(
                    EventKind.NOTICE,
                    f"Your sign-in ends in {int(left // 60)} minutes. Sign in again to extend it.",
                    details={"action": "extend_session"},
                )

    def _plan_gateway(self, health: Health) -> None:
        """Carry out ``Gateways.plan`` for the current gateway's ``health``."""
        if self._switch_task is not None and not self._switch_task.done():
            return  # a switch is already running
        step = self._gateways.plan(health)
        if step is not None:
            self._switch_task = spawn(self._switch_gateway(step), name="engine-gateway")

    async def _switch_gateway(self, step: Step) -> None:
        """Re-apply the current gateway or bring up another one (under the lock)."""
        hooks = self._hooks
        async with hooks.lock:
            facts = hooks.facts()
            if not (facts.tunnel_up and facts.want_connected):
                return
            old_index = self._gateways.index
            selected = self._gateways.select(step.index)
            if selected is None:
                return
            spec, old, new = selected
            if step.action is Action.SWITCH and step.index != old_index:
                _log.warning("gateway %s is not answering; switching to %s", old, new)
                hooks.emit(
                    EventKind.NOTICE,
                    f"Gateway {old} is not answering: switching to {new}",
                    details={"gateway": new, "previous": old},
                )
            else:
                _log.info("re-applying gateway %s to check its handshake", new)
            await self._gateways.down()
            try:
                await self._gateways.apply(spec)
            except Exception as exc:
                hooks.set_snapshot(tunnel=None)
                hooks.update(tunnel_up=False, handshake_ok=False)
                hooks.fail(exc, during=f"switching to gateway {new}")
                return
            await self._gateways.await_handshake()
            await self.check_health()

    # ------------------------------------------------------------------- retry
    def ensure_retry(self) -> None:
        """Retry connecting in the background unless a retry is already running."""
        if self._retry_task is None or self._retry_task.done():
            self._retry_task = spawn(self._retry_loop(), name="engine-retry")

    async def cancel_retry(self) -> None:
        """Stop the background retry (if any) and wait for it."""
        task, self._retry_task = self._retry_task, None
        await cancel_and_wait(task)

    def _needs_retry(self) -> bool:
        facts = self._hooks.facts()
        return facts.want_connected and not facts.tunnel_up

    async def _retry_loop(self) -> None:
        """Offline with nothing valid: retry connecting with capped backoff and jitter."""
        backoff = Backoff(self._config)
        while self._needs_retry():
            await backoff.wait()
            if not await self._hooks.probe():
                continue  # still offline: no state flapping in the tray while we wait
            async with self._hooks.lock:
                if not self._needs_retry():
                    return
                await self._hooks.connect_locked()
