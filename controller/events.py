"""The event hub behind ``GET /v1/events`` (server-sent events).

Each connected device has a bounded queue; ``publish`` fans an event out to the queues of
its device (or every device for a broadcast). A slow client whose queue is full loses
its oldest events and gets a ``posture_recheck`` so it re-syncs (its state is pulled, the
stream is only a hint). In-process only: with several controller instances each
serves its own connected clients, and a client re-fetches on reconnect.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from core.controlplane.models import Event, EventType

__all__ = ["EventHub"]

_QUEUE = 64


class EventHub:
    """Fan-out of events to subscribed devices. Loop-thread only."""

    def __init__(self) -> None:
        self._subs: dict[str, set[asyncio.Queue[Event]]] = {}

    @asynccontextmanager
    async def subscribe(self, device_id: str) -> AsyncIterator[asyncio.Queue[Event]]:
        """A queue receiving the device's events while the context is open."""
        queue: asyncio.Queue[Event] = asyncio.Queue(_QUEUE)
        self._subs.setdefault(device_id, set()).add(queue)
        try:
            yield queue
        finally:
            subs = self._subs.get(device_id, set())
            subs.discard(queue)
            if not subs:
                self._subs.pop(device_id, None)

    def subscribers(self, device_id: str) -> int:
        """How many streams the device has open."""
        return len(self._subs.get(device_id, ()))

    def publish(self, type_: EventType, device_id: str | None = None, detail: str = "") -> None:
        """Send an event to one device (or all when ``device_id`` is None). Never blocks."""
        event = Event(type=type_, at=int(time.time()), device_id=device_id, detail=detail)
        targets = (
            [q for qs in self._subs.values() for q in qs]
            if device_id is None
            else list(self._subs.get(device_id, ()))
        )
        for queue in targets:
            if queue.full():
                _ = queue.get_nowait()
            queue.put_nowait(event)
