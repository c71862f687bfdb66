"""The live decision feed: decisions as devices report them, pushed to admins' browsers.

``LiveFeed.for_service(service)`` (one per service) registers itself in
``ControllerService.decision_listeners``: every stored batch becomes feed ITEMs (see
``item``), fanned out on the loop thread to this replica's sockets. With a
``postgresql://`` database it also shares them with the other replicas: a background
sender NOTIFYs them on channel ``rtc_decisions`` (compact JSON ``{"r": replica, "i":
[ITEM...]}``, each payload ≤ ``MAX_PAYLOAD`` bytes) and a background listener LISTENs and
fans out what OTHER replicas sent (its own were published locally already). Both run on
their own async connections, started lazily on first use in the running loop (the
controller runs uvicorn with ``lifespan="off"``), and reconnect with backoff when the
database drops them; notifications sent while a listener is reconnecting are missed (the
rows are stored; the feed is a live view, not the record).

Why NOTIFY from here and not inside ``store_decisions``' transaction: the ingest runs the
synchronous storage on the event loop, and a transaction that NOTIFYs takes PostgreSQL's
global notify-queue lock at commit (serialising every replica's ingest commits); sending
from a separate connection keeps the ingest path as it was and never blocks it. The
notification still follows the commit (``publish`` runs after ``store_decisions``
returns), so a replica never shows a row that was not stored; one lost in a crash
between commit and NOTIFY is missing only from other replicas' live views.

``serve(ws, admin)`` runs one authenticated socket: filters from the URL query and
``{"type": "filter", ...}`` messages, a bounded queue, a per-socket rate limit with a
``{"type": "skipped", "count": n}`` report once a second, frames batched per
``FRAME_INTERVAL_S``, limits on what the admin sends, and a maximum lifetime after which
the browser reconnects (and is authenticated again, so a socket does not outlive its
session by long). Dead peers are found by uvicorn's protocol-level pings
(``ws_ping_interval``), which end ``receive`` and so the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from controller.storage import DecisionEntry, DeviceRecord
from core.aio import cancel_and_wait, spawn

if TYPE_CHECKING:
    from starlette.requests import Request

    from controller.console.base import Admin, Console
    from controller.service import ControllerService

__all__ = [
    "CHANNEL",
    "MAX_PAYLOAD",
    "FeedFilter",
    "FilterError",
    "LiveFeed",
    "Subscriber",
    "item",
    "pack_payloads",
    "routes",
]

_log = logging.getLogger(__name__)

#: the PostgreSQL notification channel shared by every replica
CHANNEL = "rtc_decisions"
#: the largest NOTIFY payload sent (PostgreSQL's limit is 8000 bytes)
MAX_PAYLOAD = 7900
#: items waiting for one socket; past it the oldest go (counted as skipped)
QUEUE_CAP = 1000
#: items sent to one socket per second; the rest are counted as skipped
RATE_PER_S = 200
#: one frame per this many seconds at most (items arriving meanwhile share it)
FRAME_INTERVAL_S = 0.05
#: what one admin may send: messages per second, bytes per message
IN_MESSAGES_PER_S = 10
IN_MAX_BYTES = 4096
#: the longest filter value accepted
FILTER_MAX = 200
#: sockets one admin may hold open on one replica
SOCKETS_PER_ADMIN = 8
#: a socket is closed (1001) after this long; the browser reconnects and signs in again
MAX_LIFETIME_S = 30 * 60.0
#: payloads waiting for the NOTIFY sender; past it new ones are dropped (and logged)
NOTIFY_QUEUE_CAP = 10_000

_EFFECTS = ("allow", "deny", "")
_FILTER_KEYS = ("user", "device", "resource", "effect")


class FilterError(ValueError):
    """A filter that is not four short strings with a known effect."""


@dataclass(frozen=True, slots=True)
class FeedFilter:
    """What one socket wants: substrings (case-insensitive) of the user, the device (id or
    name) and the resource, and the exact effect; empty = any."""

    user: str = ""
    device: str = ""
    resource: str = ""
    effect: str = ""

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> FeedFilter:
        """Validate ``user``/``device``/``resource``/``effect`` (missing = empty); other
        keys are ignored. Raises ``FilterError``."""
        values: dict[str, str] = {}
        for key in _FILTER_KEYS:
            value = data.get(key, "")
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise FilterError(f"filter {key} is not a string")
            if len(value) > FILTER_MAX:
                raise FilterError(f"filter {key} is over {FILTER_MAX} characters")
            if any(ord(c) < 32 or ord(c) == 127 for c in value):
                raise FilterError(f"filter {key} contains control characters")
            values[key] = value.strip()
        if values["effect"] not in _EFFECTS:
            raise FilterError("filter effect is not allow, deny or empty")
        return cls(
            user=values["user"].casefold(),
            device=values["device"].casefold(),
            resource=values["resource"].casefold(),
            effect=values["effect"],
        )

    def matches(self, it: Mapping[str, Any]) -> bool:
        """Whether the ITEM passes this filter."""
        if self.effect and it.get("effect") != self.effect:
            return False
        if self.user and self.user not in str(it.get("user") or "").casefold():
            return False
        if self.device and not (
            self.device in str(it.get("device") or "").casefold()
            or self.device in str(it.get("device_name") or "").casefold()
        ):
            return False
        return not (self.resource and self.resource not in str(it.get("resource") or "").casefold())


def item(
    entry: DecisionEntry, device: DeviceRecord, *, received: float, replica: str
) -> dict[str, Any]:
    """The feed ITEM of one stored row (the shared contract's shape)."""
    return {
        "id": entry.record_id,
        "at": entry.at,
        "received": received,
        "user": entry.user_id,
        "device": entry.device_id,
        "device_name": device.name,
        "app": entry.app,
        "host": entry.host,
        "ip": entry.ip,
        "port": entry.port,
        "resource": entry.resource,
        "rule": entry.rule,
        "effect": entry.effect,
        "code": entry.code,
        "reason": entry.reason,
        "risk": entry.risk,
        "count": entry.count,
        "replica": replica,
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_SHRINKABLE = ("app", "host", "reason", "device_name", "rule", "resource", "user", "code")


def _fit(it: dict[str, Any], room: int) -> str:
    """One item's JSON within ``room`` bytes: long strings cut until it fits (a device can
    send 512-character fields whose escapes grow sixfold; the stored row keeps them)."""
    text = _dumps(it)
    limit = 256
    while len(text.encode()) > room and limit >= 1:
        it = {
            k: (
                v[:limit] + "…" if k in _SHRINKABLE and isinstance(v, str) and len(v) > limit else v
            )
            for k, v in it.items()
        }
        text = _dumps(it)
        limit //= 2
    return text


def pack_payloads(
    items: Iterable[dict[str, Any]], replica: str, limit: int = MAX_PAYLOAD
) -> list[str]:
    """NOTIFY payloads ``{"r": replica, "i": [ITEM...]}`` of at most ``limit`` bytes each
    (UTF-8), the items in order, each in exactly one payload."""
    head = '{"r":' + _dumps(replica) + ',"i":['
    room = limit - len(head.encode()) - 2
    out: list[str] = []
    chunk: list[str] = []
    size = 0
    for it in items:
        text = _fit(it, room)
        n = len(text.encode())
        if chunk and size + 1 + n > room:
            out.append(head + ",".join(chunk) + "]}")
            chunk, size = [], 0
        chunk.append(text)
        size += n + (1 if len(chunk) > 1 else 0)
    if chunk:
        out.append(head + ",".join(chunk) + "]}")
    return out


@dataclass(eq=False)
class Subscriber:
    """One socket's side of the feed, without I/O: its filter, its bounded queue, and the
    rate limit applied when a frame is taken. Loop thread only."""

    admin_id: str
    filter: FeedFilter = field(default_factory=FeedFilter)
    cap: int = QUEUE_CAP
    rate: int = RATE_PER_S
    clock: Callable[[], float] = time.monotonic
    #: items not sent (queue overflow or rate limit) and not yet reported
    skipped: int = 0
    #: every item ever skipped (for tests and logs)
    skipped_total: int = 0
    _queue: deque[dict[str, Any]] = field(default_factory=deque)
    _window: float = 0.0
    _sent_in_window: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, it: dict[str, Any]) -> bool:
        """Queue the item if the filter passes it (the oldest goes when full)."""
        if not self.filter.matches(it):
            return False
        if len(self._queue) >= self.cap:
            self._queue.popleft()
            self._skip(1)
        self._queue.append(it)
        self._wake.set()
        return True

    def _skip(self, n: int) -> None:
        self.skipped += n
        self.skipped_total += n

    def pending(self) -> int:
        """Items queued and not yet taken."""
        return len(self._queue)

    def take(self) -> list[dict[str, Any]]:
        """Everything queued: what the rate allows in this second (oldest first, newest
        first in the returned frame order is the browser's job), the rest skipped."""
        now = self.clock()
        if now - self._window >= 1.0:
            self._window, self._sent_in_window = now, 0
        allowed = max(0, self.rate - self._sent_in_window)
        out: list[dict[str, Any]] = []
        while self._queue and len(out) < allowed:
            out.append(self._queue.popleft())
        if self._queue:
            self._skip(len(self._queue))
            self._queue.clear()
        self._sent_in_window += len(out)
        self._wake.clear()
        return out

    def take_skipped(self) -> int:
        """The skipped count not yet reported (then zero)."""
        n, self.skipped = self.skipped, 0
        return n


class _Refused(Exception):
    """An admin message broke a limit: close the socket with this code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


_feeds: weakref.WeakKeyDictionary[ControllerService, LiveFeed] = weakref.WeakKeyDictionary()


class LiveFeed:
    """See the module docstring. Create with ``for_service``; one per service."""

    def __init__(self, database: str, *, replica: str | None = None) -> None:
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._database = database
        self._subs: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        #: the PostgreSQL thread, its loop, its stop event and the NOTIFY outbox
        self._pg_thread: threading.Thread | None = None
        self._pg_loop: asyncio.AbstractEventLoop | None = None
        self._pg_stop: asyncio.Event | None = None
        self._outbox: asyncio.Queue[str] | None = None
        self._listening = threading.Event()
        #: the backend pid of the LISTEN connection (None while not connected)
        self.listen_pid: int | None = None
        #: counters: items published locally, received from other replicas, notify drops
        self.published = 0
        self.received = 0
        self.notify_dropped = 0

    @classmethod
    def for_service(cls, service: ControllerService) -> LiveFeed:
        """The service's feed, created and registered as its decision listener once."""
        feed = _feeds.get(service)
        if feed is None:
            feed = cls(service.config.database)
            _feeds[service] = feed
            service.decision_listeners.append(feed.publish)
        return feed

    @property
    def shared(self) -> bool:
        """Whether replicas share the feed (a PostgreSQL database)."""
        return self._database.startswith(("postgresql://", "postgres://"))

    # background tasks -------------------------------------------------------------
    def _ensure_started(self) -> None:
        """Start the PostgreSQL thread (NOTIFY sender and LISTEN reader). Idempotent;
        loop thread only. Without PostgreSQL only the loop is remembered."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._loop_thread = loop, threading.get_ident()
        if not self.shared or (self._pg_thread is not None and self._pg_thread.is_alive()):
            return
        ready = threading.Event()
        self._pg_thread = threading.Thread(
            target=self._pg_thread_main, args=(ready,), name="live-feed-pg", daemon=True
        )
        self._pg_thread.start()
        ready.wait(5)

    def _pg_thread_main(self, ready: threading.Event) -> None:
        # The database I/O runs on its own loop in its own thread: the controller's loop
        # also runs the synchronous storage, and under ingest load one of its turns takes
        # over 100 ms; reading notifications there (one read per turn) fell behind
        # without limit in the benchmark. Here a notification is read as it arrives and
        # handed to the controller's loop in one call.
        loop = asyncio.new_event_loop()
        self._pg_loop = loop
        self._outbox = asyncio.Queue(NOTIFY_QUEUE_CAP)
        ready.set()
        try:
            loop.run_until_complete(self._pg_main())
        finally:
            loop.close()
            self._pg_loop = None

    async def _pg_main(self) -> None:
        self._pg_stop = asyncio.Event()
        tasks = [
            spawn(self._run_sender(), name="live-feed-notify"),
            spawn(self._run_listener(), name="live-feed-listen"),
        ]
        try:
            await self._pg_stop.wait()
        finally:
            for task in tasks:
                await cancel_and_wait(task)

    async def start(self) -> None:
        """Start the background tasks now (they also start on first use)."""
        self._ensure_started()

    async def wait_listening(self) -> None:
        """Wait until the LISTEN connection is up (PostgreSQL only; bound it with
        ``asyncio.timeout``)."""
        self._ensure_started()
        if self.shared:
            # A threading.Event (set on the PostgreSQL thread), waited for off the loop.
            while not await asyncio.to_thread(self._listening.wait, 0.5):
                pass

    async def aclose(self) -> None:
        """Stop the background thread (tests, shutdown). The feed restarts on next use."""
        thread, loop, stop = self._pg_thread, self._pg_loop, self._pg_stop
        self._pg_thread = None
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(thread.join, 10)

    async def _connect(self, purpose: str) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(
            self._database,
            autocommit=True,
            application_name=f"rtc-live-{purpose}",
            connect_timeout=5,
        )

    async def _run_sender(self) -> None:
        assert self._outbox is not None
        outbox = self._outbox
        backoff = 0.1
        pending: list[str] = []
        while True:
            try:
                async with await self._connect("notify") as conn:
                    backoff = 0.1
                    while True:
                        if not pending:
                            pending = [await outbox.get()]
                            while not outbox.empty() and len(pending) < 64:
                                pending.append(outbox.get_nowait())
                        # One round trip for what piled up, in order. One JSON text
                        # parameter: psycopg's text-array dumper cost 13 % of a replica's
                        # CPU in the benchmark; json.dumps is C.
                        await conn.execute(
                            "SELECT pg_notify(%s, p) FROM json_array_elements_text(%s::json) "
                            "WITH ORDINALITY AS t(p, n) ORDER BY n",
                            (CHANNEL, json.dumps(pending)),
                        )
                        pending = []
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning(
                    "live feed: NOTIFY connection failed (%s); retrying in %.1fs", exc, backoff
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _run_listener(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with await self._connect("listen") as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listen_pid = conn.info.backend_pid
                    self._listening.set()
                    backoff = 0.1
                    async for note in conn.notifies():
                        self._on_notification(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning(
                    "live feed: LISTEN connection failed (%s); retrying in %.1fs", exc, backoff
                )
            finally:
                self._listening.clear()
                self.listen_pid = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _on_notification(self, payload: str) -> None:
        """(PostgreSQL thread) Parse another replica's items; fan out on the main loop."""
        try:
            data = json.loads(payload)
            origin = data["r"]
            items = data["i"]
        except (ValueError, KeyError, TypeError):
            _log.warning("live feed: ignored a malformed notification")
            return
        if origin == self.replica or not isinstance(items, list):
            return  # our own: already published locally
        good = [it for it in items if isinstance(it, dict)]
        loop = self._loop
        if good and loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._receive_remote, good)

    def _receive_remote(self, items: list[dict[str, Any]]) -> None:
        self.received += len(items)
        self._fan_out(items)

    # publishing -------------------------------------------------------------------
    def publish(self, entries: list[DecisionEntry], device: DeviceRecord) -> None:
        """The service's decision listener: show a stored batch on this replica's sockets
        and NOTIFY the other replicas. Never blocks; from another thread it hops onto
        the loop (``call_soon_threadsafe``)."""
        if not entries:
            return
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            # Another thread (a worker, or a test's loop): the sockets live on the loop.
            if not loop.is_closed():
                loop.call_soon_threadsafe(self.publish, entries, device)
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop has used the feed yet: no socket to show it to
        self._ensure_started()
        received = time.time()
        items = [item(e, device, received=received, replica=self.replica) for e in entries]
        self.published += len(items)
        self._fan_out(items)
        pg_loop, outbox = self._pg_loop, self._outbox
        if self.shared and pg_loop is not None and outbox is not None:
            payloads = pack_payloads(items, self.replica)
            with contextlib.suppress(RuntimeError):  # the thread is stopping
                pg_loop.call_soon_threadsafe(self._enqueue, outbox, payloads)

    def _enqueue(self, outbox: asyncio.Queue[str], payloads: list[str]) -> None:
        """(PostgreSQL thread) Queue payloads for the NOTIFY sender; drop when full."""
        for payload in payloads:
            try:
                outbox.put_nowait(payload)
            except asyncio.QueueFull:
                self.notify_dropped += 1
                if self.notify_dropped in (1, 100) or self.notify_dropped % 10_000 == 0:
                    _log.warning(
                        "live feed: NOTIFY queue full; %d payloads dropped", self.notify_dropped
                    )

    def _fan_out(self, items: list[dict[str, Any]]) -> None:
        for sub in list(self._subs):
            for it in items:
                sub.offer(it)

    # sockets ----------------------------------------------------------------------
    def subscribe(self, admin_id: str, filt: FeedFilter | None = None) -> Subscriber:
        """A new subscriber (``serve`` does this; tests use it directly)."""
        sub = Subscriber(admin_id, filt or FeedFilter())
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Stop feeding ``sub``. Idempotent."""
        self._subs.discard(sub)

    def sockets_of(self, admin_id: str) -> int:
        """How many sockets the admin holds on this replica."""
        return sum(1 for s in self._subs if s.admin_id == admin_id)

    async def serve(self, ws: WebSocket, admin: Admin) -> None:
        """Run one admin's socket until it closes. The caller has authenticated it (and
        may or may not have accepted it). Never raises for what the browser sends: junk
        closes the socket with 1003/1008 and a reason."""
        self._ensure_started()
        if ws.application_state == WebSocketState.CONNECTING:
            await ws.accept()
        try:
            filt = FeedFilter.parse(dict(ws.query_params))
        except FilterError as exc:
            await _close(ws, 1008, str(exc))
            return
        if self.sockets_of(admin.user_id) >= SOCKETS_PER_ADMIN:
            await _close(ws, 1008, "too many live feeds open for this admin")
            return
        sub = self.subscribe(admin.user_id, filt)
        sender = spawn(self._send_loop(ws, sub), name="live-feed-socket")
        try:
            code, reason = await asyncio.wait_for(self._receive_loop(ws, sub), MAX_LIFETIME_S)
        except TimeoutError:
            code, reason = 1001, "feed lifetime reached; reconnect"
        finally:
            self.unsubscribe(sub)
            await cancel_and_wait(sender)
        if code:
            await _close(ws, code, reason)

    async def _receive_loop(self, ws: WebSocket, sub: Subscriber) -> tuple[int, str]:
        """Read the admin's messages until disconnect (``(0, "")``) or a broken limit."""
        times: deque[float] = deque()
        while True:
            try:
                msg = await ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return 0, ""
            if msg["type"] == "websocket.disconnect":
                return 0, ""
            now = time.monotonic()
            times.append(now)
            while times and now - times[0] > 1.0:
                times.popleft()
            try:
                if len(times) > IN_MESSAGES_PER_S:
                    raise _Refused(1008, "too many messages")
                sub.filter = _parse_message(msg)
            except _Refused as exc:
                return exc.code, exc.reason
            # The new filter applies to what is still queued too.
            kept = [it for it in sub._queue if sub.filter.matches(it)]
            sub._queue.clear()
            sub._queue.extend(kept)

    async def _send_loop(self, ws: WebSocket, sub: Subscriber) -> None:
        """Send frames: at most one per ``FRAME_INTERVAL_S``, the skipped count once a
        second. Ends (quietly) when the socket is gone."""
        last_frame = 0.0
        last_skip = 0.0  # when the skipped count was last reported
        try:
            while True:
                timeout = None
                if sub.skipped:
                    timeout = max(0.0, last_skip + 1.0 - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sub._wake.wait(), timeout)
                now = time.monotonic()
                wait = last_frame + FRAME_INTERVAL_S - now
                if sub.pending() and wait > 0:
                    await asyncio.sleep(wait)  # let more items join this frame
                items = sub.take()
                if items:
                    last_frame = time.monotonic()
                    await ws.send_text(_dumps({"type": "decisions", "items": items}))
                if sub.skipped and time.monotonic() - last_skip >= 1.0:
                    last_skip = time.monotonic()
                    await ws.send_text(_dumps({"type": "skipped", "count": sub.take_skipped()}))
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the receive loop sees the disconnect and ends the socket


def _parse_message(msg: Mapping[str, Any]) -> FeedFilter:
    """The filter an admin's message sets; ``_Refused`` for anything else."""
    text = msg.get("text")
    if text is None:
        raise _Refused(1003, "binary messages are not accepted")
    if len(text.encode()) > IN_MAX_BYTES:
        raise _Refused(1008, "message too large")
    try:
        data = json.loads(text)
    except ValueError:
        raise _Refused(1003, "message is not JSON") from None
    if not isinstance(data, dict) or data.get("type") != "filter":
        raise _Refused(1003, "unknown message type")
    try:
        return FeedFilter.parse(data)
    except FilterError as exc:
        raise _Refused(1008, str(exc)) from None


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
        await ws.close(code, reason[:120])


# the page -------------------------------------------------------------------------
#: rows the page keeps (live.js drops the oldest past it)
PAGE_ROWS = 500
#: stored decisions shown when the page opens (those of the newest ``_RECENT_SCAN``
#: rows that pass the filter), so it is not empty until the next batch
_RECENT_SHOWN = 50
_RECENT_SCAN = 500


def _recent(console: Console, filt: FeedFilter) -> list[dict[str, Any]]:
    """The newest stored decisions passing ``filt``, newest first, as ITEMs."""
    storage = console.service.storage
    rows = storage.list_decisions(effect=filt.effect or None, limit=_RECENT_SCAN)
    devices = {d.device_id: d for d in storage.list_devices()}
    out: list[dict[str, Any]] = []
    for entry in rows:
        dev = devices.get(entry.device_id)
        it = item(entry, dev, received=entry.at, replica="") if dev else None
        if it is not None and filt.matches(it):
            out.append(it)
            if len(out) >= _RECENT_SHOWN:
                break
    return out


def routes(console: Console) -> list[BaseRoute]:
    """``/live``: the live feed page (the socket itself is ``/ws/live``, mounted by the
    console core, which authenticates it and calls ``LiveFeed.serve``)."""
    LiveFeed.for_service(console.service)

    async def live_page(request: Request) -> Response:
        admin = await console.admin(request)
        filt: dict[str, str] = {}
        for key in _FILTER_KEYS:
            value = request.query_params.get(key, "")
            filt[key] = value[:FILTER_MAX]
        if filt["effect"] not in _EFFECTS:
            filt["effect"] = ""
        try:
            parsed = FeedFilter.parse(filt)
        except FilterError:
            parsed = FeedFilter()
            filt = {key: "" for key in _FILTER_KEYS}
        context = {"filter": filt, "cap": PAGE_ROWS, "recent": _recent(console, parsed)}
        return console.render(request, "live.html", context, admin, page="live")

    return [Route("/live", live_page, methods=["GET"])]
