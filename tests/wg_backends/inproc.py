"""An in-process helper server on its own asyncio loop in a thread (for fast tests)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.wg_backends.fakes import FakeBackend, ScriptedRunner
from wg_backends.helper.server import HelperConfig, HelperServer

__all__ = ["Running", "serve_in_thread"]


@dataclass
class Running:
    """A server running in a thread; ``stop()`` shuts it down (tunnels are brought down)."""

    server: HelperServer
    backend: FakeBackend
    loop: asyncio.AbstractEventLoop
    socket: Path
    state_dir: Path
    thread: threading.Thread = field(repr=False)

    task: list[asyncio.Task[None]] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        """Cancel the serving task from any thread and wait for the thread. Idempotent."""
        if self.task:
            with contextlib.suppress(RuntimeError):  # loop already closed: nothing to stop
                self.loop.call_soon_threadsafe(self.task[0].cancel)
        self.thread.join(10)


def _serve(cfg: HelperConfig, backend: FakeBackend, ready: threading.Event, box: list[Any]) -> None:
    loop = asyncio.new_event_loop()
    server = HelperServer(cfg, backend, ScriptedRunner())

    async def main() -> None:
        await server.start()
        box.append((server, loop, asyncio.current_task()))
        ready.set()
        try:
            await server.serve_forever()
        except asyncio.CancelledError:
            pass
        finally:
            await server.close()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def serve_in_thread(
    tmp: Path, backend: FakeBackend | None = None, sock_dir: Path | None = None, **kw: Any
) -> Running:
    """Start a helper server with ``backend`` (a fresh FakeBackend by default) under ``tmp``."""
    backend = backend or FakeBackend()
    cfg = HelperConfig(
        socket_path=(sock_dir or tmp / "run") / "helper.sock", state_dir=tmp / "state", **kw
    )
    ready, box = threading.Event(), []
    t = threading.Thread(target=_serve, args=(cfg, backend, ready, box), daemon=True)
    t.start()
    if not ready.wait(10):
        raise RuntimeError("in-process helper did not start")
    server, loop, task = box[0]
    return Running(server, backend, loop, cfg.socket_path, cfg.state_dir, t, [task])
