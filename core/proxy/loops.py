"""The event loop the proxy's own threads run: uvloop where it is installed, else asyncio's.

The proxy thread (``ProxyThread``) and the bulk worker threads own their loops (the
tray's main loop is Qt's), so they can run a faster one than their caller. The proxy
serves connections from loop callbacks; uvloop dispatches those in C (libuv) instead of
asyncio's Python ``_run_once``. Measured on the proxy benchmark: about 12 % less CPU per
connection (docs/performance.md). Our code uses only the loop API both implement
(``add_reader``, ``call_soon``, ``call_later``, ``call_soon_threadsafe``, sock_* calls),
and the proxy's tests run on both (``RUSTRONAUT_TEST_LOOP=uvloop``).

``RUSTRONAUT_PROXY_LOOP=asyncio`` forces asyncio's loop: a support switch, read when a
loop is made. Windows has no uvloop; there the proxy keeps asyncio's default loop.
"""

from __future__ import annotations

import asyncio
import os
from typing import Literal

__all__ = ["LOOP_ENV", "LoopKind", "loop_kind", "new_loop"]

LOOP_ENV = "RUSTRONAUT_PROXY_LOOP"
"""Environment switch: ``asyncio`` forces asyncio's loop, anything else prefers uvloop."""

LoopKind = Literal["uvloop", "asyncio"]


def loop_kind() -> LoopKind:
    """Which loop ``new_loop`` makes here: uvloop when importable and not switched off."""
    if os.environ.get(LOOP_ENV, "").strip().lower() == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401 - a plain import: PyInstaller finds and bundles it
    except ImportError:
        return "asyncio"
    return "uvloop"


def new_loop(*, selector: bool = False) -> asyncio.AbstractEventLoop:
    """A new event loop for one of the proxy's threads (not set as anyone's current loop).

    ``selector``: without uvloop, a selector loop whatever the policy says (the bulk
    workers need ``add_reader``, which Windows' proactor loop lacks).
    """
    if loop_kind() == "uvloop":
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.SelectorEventLoop() if selector else asyncio.new_event_loop()
