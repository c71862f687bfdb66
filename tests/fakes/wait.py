"""Wait for a condition instead of sleeping a fixed time before an assert.

``wait_until`` polls a predicate in a thread's own time; ``async_wait_until`` polls it on
the running loop (other tasks run between polls). Both return as soon as the predicate
holds and raise ``AssertionError`` naming what was awaited when the timeout passes, so a
slow machine only waits longer and a broken one fails with a clear message.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

__all__ = ["async_wait_until", "wait_until"]

DEFAULT_TIMEOUT = 5.0
"""Seconds; generous, since a condition that holds returns at once."""
INTERVAL = 0.01
"""Seconds between polls."""


def _timed_out(predicate: Callable[..., object], what: str | None, timeout: float) -> str:
    name = what or getattr(predicate, "__name__", repr(predicate))
    return f"timed out after {timeout} s waiting for {name}"


def wait_until(
    predicate: Callable[[], object],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    what: str | None = None,
    interval: float = INTERVAL,
) -> None:
    """Poll ``predicate`` until it is truthy; ``AssertionError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(predicate, what, timeout))
        time.sleep(interval)


async def async_wait_until(
    predicate: Callable[[], object | Awaitable[object]],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    what: str | None = None,
    interval: float = INTERVAL,
) -> None:
    """Poll ``predicate`` (plain or async) on the running loop until it is truthy.

    Other tasks run between polls; ``AssertionError`` after ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() >= deadline:
            raise AssertionError(_timed_out(predicate, what, timeout))
        await asyncio.sleep(interval)
