"""Counters, events and the open-relay registry of ``ProxyServer`` (its bottom layer).

``ProxyServer`` is assembled from layers, each a class in its own module that extends
the one below: ``Bookkeeping`` (this module: what is open, what was counted, who is
told) → ``serving.Serving`` (peer check, decide, connect, start the relay) →
``handshake.Handshaking`` (callback-driven handshake reading) → ``listeners.Listeners``
(listening sockets, accept, port forwards) → ``server.ProxyServer`` (constructor and
lifecycle). The layers share one object, so the connection path pays no indirection;
each layer declares the attributes it reads, and ``ProxyServer.__init__`` sets them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import MappingProxyType

from core.policy.api import AccessRequest, AppIdentity, Decision, Effect
from core.proxy.model import EventKind, Limits, ProxyCounters, ProxyEvent, ResourceCounters
from core.proxy.reactor import Poller
from core.proxy.relay import Relay
from core.text import safe_line

__all__ = ["Bookkeeping", "Count", "EventCallback", "Opened", "fmt_host", "safe", "safe_app"]

_log = logging.getLogger(__name__)

EventCallback = Callable[[ProxyEvent], None]

_TRIM_AFTER = 2.0  # seconds without traffic before a relay gives its pipes back


@dataclass(slots=True)
class Count:
    """Running totals of one resource (closed relays; live ones are added on demand)."""

    connections: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    denials: int = 0


@dataclass(frozen=True, slots=True)
class Opened:
    """An open relayed connection: what was decided, to re-decide it later."""

    request: AccessRequest
    resource: str
    protocol: str


def fmt_host(host: str) -> str:
    """``host`` as it is shown before ":port" (IPv6 literals in brackets)."""
    return f"[{host}]" if ":" in host else host


def safe(text: str) -> str:
    """``text`` with control, bidi and invisible characters escaped (``core.text``).

    Event fields carry what a local process sent (a SOCKS host name, a path) and what a
    controller wrote (a rule's description): an ESC or a newline must not reach a
    terminal or a log line raw. ``isprintable`` is the fast path: most text is.
    """
    return text if text.isprintable() else safe_line(text)


def safe_app(app: AppIdentity) -> AppIdentity:
    """``app`` with its path and name made safe to show (the policy saw the real ones)."""
    if app.exe.isprintable() and app.name.isprintable():
        return app
    return replace(app, exe=safe_line(app.exe), name=safe_line(app.name))


class Bookkeeping:
    """Relays, counters and event delivery shared by every layer of ``ProxyServer``."""

    # Set by ProxyServer.__init__ (and _loop by start).
    _limits: Limits
    _loop: asyncio.AbstractEventLoop | None
    _poll: Poller  # the connection sockets' readiness callbacks (``reactor``)
    _subscribers: list[EventCallback]
    _relays: dict[Relay, Opened]
    _counts: dict[str, Count]
    _refused: int

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (on the loop thread, soon after the
        decision, never inside it). Returns an unsubscribe function (idempotent)."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def counters(self) -> ProxyCounters:
        """Immutable snapshot of per-resource counters (live relays included)."""
        live: dict[str, Count] = {k: replace(v) for k, v in self._counts.items()}
        active: dict[str, int] = {}
        for relay, opened in self._relays.items():
            c = live.setdefault(opened.resource, Count())
            c.bytes_up += relay.bytes_up
            c.bytes_down += relay.bytes_down
            active[opened.resource] = active.get(opened.resource, 0) + 1
        resources = {
            key: ResourceCounters(
                connections=c.connections,
                active=active.get(key, 0),
                bytes_up=c.bytes_up,
                bytes_down=c.bytes_down,
                denials=c.denials,
            )
            for key, c in live.items()
        }
        return ProxyCounters(
            resources=MappingProxyType(resources),
            active=len(self._relays),
            refused=self._refused,
        )

    def _relay_closed(self, relay: Relay) -> None:
        opened = self._relays.pop(relay, None)
        if opened is None:
            return
        count = self._counts.setdefault(opened.resource, Count())
        count.bytes_up += relay.bytes_up
        count.bytes_down += relay.bytes_down

    async def _sweep(self) -> None:
        """Close relays idle past the limit; trim buffers of those idle a few seconds."""
        idle = self._limits.idle_timeout
        while True:
            await asyncio.sleep(min(idle / 2, 1.0))
            now = time.monotonic()
            for relay in list(self._relays):
                if relay.last_active < now - idle:
                    relay.close("idle timeout")
                elif relay.last_active < now - _TRIM_AFTER:
                    relay.trim()

    # -- events --------------------------------------------------------------------

    def _refuse(self, app: AppIdentity, destination: str, reason: str, protocol: str) -> None:
        self._refused += 1
        decision = Decision(Effect.DENY, None, reason)
        self._emit(EventKind.REFUSED, app, destination, decision, protocol)

    def _emit(
        self,
        kind: EventKind,
        app: AppIdentity,
        destination: str,
        decision: Decision,
        protocol: str,
    ) -> None:
        if not self._subscribers:
            return
        # Escaped here, at the source: every subscriber (Activity view, logs, the CLI's
        # event stream) gets text that cannot drive a terminal or forge a line.
        rule, resource = decision.rule_id, decision.resource
        event = ProxyEvent(
            time=time.time(),
            kind=kind,
            app=safe_app(app),
            destination=safe(destination),
            effect=decision.effect,
            rule=None if rule is None else safe(rule),
            reason=safe(decision.reason),
            resource=None if resource is None else safe(resource),
            protocol=protocol,
        )
        loop = self._loop or asyncio.get_running_loop()
        loop.call_soon(self._deliver, event)

    def _deliver(self, event: ProxyEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                _log.exception("proxy event subscriber failed")
