"""Asyncio hygiene: one place that starts background tasks and keeps them.

A bare ``asyncio.create_task`` whose result nobody holds can be garbage-collected mid-run
and its exception lost; ``spawn`` names the task, keeps a strong reference until it ends
and logs an unexpected exception. Use it for every background task in the project.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["cancel_and_wait", "spawn"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_tasks: set[asyncio.Task[Any]] = set()


def _done(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        _log.error("background task %s failed", task.get_name(), exc_info=exc)


def spawn(coro: Coroutine[Any, Any, _T], *, name: str) -> asyncio.Task[_T]:
    """Start ``coro`` as a named task on the running loop and keep it alive until done.

    Must be called from the loop's thread. The task's exception, if any, is logged.
    """
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _tasks.add(task)
    task.add_done_callback(_done)
    return task


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has really finished. Idempotent."""
    if task is None or task.done():
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
    except Exception:
        _log.debug("task %s ended with an error while cancelled", task.get_name())
