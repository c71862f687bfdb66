"""Records the proxy's decisions at the configured level and sends them in signed batches.

``TelemetrySender.record`` turns one decision into a queued item (an event at level
``full``, a per-minute count at ``counts``, nothing at ``off``) — synchronous and cheap,
called on the engine's loop for every decision. The task ``start`` runs (and ``stop``
cancels, after a last flush) wakes every ``interval_s`` seconds, or as soon as a full
batch is waiting, and sends every ready batch: it signs it (``iat`` now) with the device
key, submits it, and forgets it when the controller stored it or already had it. While
the controller cannot be reached it backs off (``backoff_s`` doubling up to
``max_backoff_s``, or the controller's ``Retry-After``), the queue keeps the items on
disk, and the same batch (same ``seq``) goes again later.

What ``submit`` may raise:

    RetryLater      the controller is busy (429) or the device not usable now (403/404:
                    revoked, or enrolled again under another id); back off and retry
    BatchRefused    the controller will never accept this batch (400/413/422): it is
                    dropped and counted in the next batch's ``dropped``
    anything else   the controller cannot be reached: back off and retry
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec

from core.aio import cancel_and_wait, spawn
from core.telemetry.queue import TelemetryQueue
from core.wire.telemetry import MAX_ITEMS, DecisionAck, DecisionBatch, DecisionEvent, Level
from core.wire.telemetry import hash_app as _hash_app

__all__ = ["BatchRefused", "RetryLater", "Sign", "Submit", "TelemetrySender"]

_log = logging.getLogger(__name__)

#: Signs a batch with the device key: the JWS compact string.
Sign = Callable[[DecisionBatch], str]
#: Sends ``(device_id, token)`` to the controller; see the module docstring.
Submit = Callable[[str, str], Awaitable[DecisionAck]]


class RetryLater(Exception):
    """Send this batch again later; ``after_s`` is the controller's hint, if any."""

    def __init__(self, message: str, after_s: float | None = None) -> None:
        super().__init__(message)
        self.after_s = after_s


class BatchRefused(Exception):
    """The controller refused this batch for good; it is dropped (and counted)."""


def _split(destination: str) -> tuple[str, str, int]:
    """``host``, ``ip`` (when the host is an address) and ``port`` of "host:port"."""
    host, port = destination, 0
    head, sep, tail = destination.rpartition(":")
    if sep and tail.isdigit() and len(tail) <= 5 and int(tail) <= 65535:
        host, port = head, int(tail)
    host = host.removeprefix("[").removesuffix("]")
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        ip = ""
    return host, ip, port


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TelemetrySender:
    """See the module docstring. ``level``, ``device_id`` and ``hash_apps`` are read at
    each use, so a settings change applies at once (a level lowered to ``counts`` or
    ``off`` discards the queued items the new level would not send). ``salt`` is the
    organisation's controller URL (see ``core.wire.telemetry.hash_app``). Loop-thread only.
    """

    def __init__(
        self,
        queue: TelemetryQueue,
        *,
        level: Callable[[], Level],
        device_id: Callable[[], str | None],
        sign: Sign,
        submit: Submit,
        hash_apps: Callable[[], bool],
        salt: str,
        clock: Callable[[], float] = time.time,
        interval_s: float = 10.0,
        backoff_s: float = 5.0,
        max_backoff_s: float = 300.0,
    ) -> None:
        self.queue = queue
        self._level = level
        self._device_id = device_id
        self._sign = sign
        self._submit = submit
        self._hash_apps = hash_apps
        self._salt = salt
        self._clock = clock
        self.interval_s = interval_s
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._failures = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: batches the controller stored / answered as duplicates (diagnostics, tests)
        self.sent = 0
        self.duplicates = 0

    # ------------------------------------------------------------------ recording
    def record(
        self,
        *,
        at: float,
        app: str,
        destination: str,
        effect: str,
        rule: str | None,
        resource: str | None,
        code: str,
        reason: str,
        risk: int,
    ) -> None:
        """Queue one decision at the current level. Never raises (telemetry must never
        disturb the decision it reports)."""
        try:
            level = self._level()
            if level != "full" and self.queue.discard_events():
                _log.info("telemetry level is %s: queued decision events discarded", level)
            if level == "off":
                self.queue.clear()
                return
            eff: Literal["allow", "deny"] = "allow" if effect == "allow" else "deny"
            if level == "counts":
                self.queue.add_count(int(at // 60) * 60, resource and _clip(resource, 256), eff)
            else:
                host, ip, port = _split(destination)
                shown = _hash_app(app, self._salt) if self._hash_apps() else app
                self.queue.add_event(
                    DecisionEvent(
                        at=max(0.0, at),
                        app=_clip(shown, 512),
                        host=_clip(host, 256),
                        ip=ip,
                        port=port,
                        effect=eff,
                        rule=rule and _clip(rule, 256),
                        resource=resource and _clip(resource, 256),
                        code=code if code in ("decision", "revoked", "refused") else "decision",  # type: ignore[arg-type]
                        reason=_clip(reason, 512),
                        risk=min(100, max(0, int(risk))),
                    )
                )
                if len(self.queue) >= MAX_ITEMS:
                    self._wake.set()
        except Exception:
            _log.exception("telemetry: could not record a decision")

    # ------------------------------------------------------------------ sending
    async def send_ready(self) -> float:
        """Send every ready batch now; the seconds until the next attempt (the interval,
        or the backoff after a failure). Never raises ``Exception``."""
        try:
            self.queue.flush()
        except OSError as exc:
            _log.warning("telemetry: cannot write the queue: %s", exc)
        if self._level() == "off":
            return self.interval_s
        while True:
            device_id = self._device_id()
            if device_id is None:
                return self.interval_s  # not enrolled yet
            try:
                batch = self.queue.take(device_id)
            except OSError as exc:
                _log.warning("telemetry: cannot write the queue: %s", exc)
                return self._backoff()
            if batch is None:
                self._failures = 0
                return self.interval_s
            try:
                token = self._sign(_dated(batch, self._clock()))
                ack = await self._submit(device_id, token)
            except RetryLater as exc:
                _log.info("telemetry: batch %d deferred: %s", batch.seq, exc)
                wait = self._backoff()
                return max(wait, exc.after_s) if exc.after_s is not None else wait
            except BatchRefused as exc:
                _log.warning("telemetry: batch %d refused, dropped: %s", batch.seq, exc)
                self._forget(batch.seq, refused=True)
                continue
            except Exception as exc:
                _log.info("telemetry: controller unreachable, batch %d kept: %s", batch.seq, exc)
                return self._backoff()
            if ack.duplicate:
                self.duplicates += 1
            else:
                self.sent += 1
            self._failures = 0
            self._forget(batch.seq, refused=False)

    def _forget(self, seq: int, *, refused: bool) -> None:
        try:
            if refused:
                self.queue.give_up(seq)
            else:
                self.queue.ack(seq)
        except OSError as exc:
            _log.warning("telemetry: cannot write the queue: %s", exc)

    def _backoff(self) -> float:
        self._failures += 1
        return min(self._max_backoff_s, self._backoff_s * 2.0 ** min(self._failures - 1, 30))

    async def _run(self) -> None:
        delay = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            delay = await self.send_ready()

    # ------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        """True while the sending task runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the sending task (idempotent). Loop thread."""
        if self._task is None or self._task.done():
            self._task = spawn(self._run(), name="telemetry-sender")

    async def stop(self) -> None:
        """Stop sending and write what is queued. Idempotent."""
        await cancel_and_wait(self._task)
        self._task = None
        try:
            self.queue.flush()
        except OSError as exc:
            _log.warning("telemetry: cannot write the queue: %s", exc)


def _dated(batch: DecisionBatch, now: float) -> DecisionBatch:
    dated: DecisionBatch = msgspec.structs.replace(batch, iat=max(0.0, now))
    return dated
