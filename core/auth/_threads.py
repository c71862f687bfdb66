"""Blocking calls (keyring/D-Bus, starting a browser) off the event loop thread.

They run in this package's own small pool rather than the loop's default executor: under
qasync that is a ``QThreadExecutor``, and in our test runs its threads made the
interpreter abort at exit (PySide6 "bool_dealloc" refcount error) after these calls.
One worker keeps keyring calls in order (a write is never overtaken by a later read).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

__all__ = ["in_thread"]

_T = TypeVar("_T")
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="rustronaut-auth")


async def in_thread(func: Callable[..., _T], *args: object) -> _T:
    """Run ``func(*args)`` in the auth worker thread and await its result."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, func, *args)
