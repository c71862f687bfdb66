"""How the tray holds its engine: as a client of the agent, or as the engine's host.

One engine runs per user session (``core.engine.localapi``). Normally the headless agent
owns it and the tray is one of its clients, like the CLI: quitting the tray only
detaches, the connection stays up. Where no agent can run, the tray hosts the engine
itself (the engine lock, the engine, and the local API server, so the CLI still shares
the session); then quitting the tray stops the engine.

- ``EngineLink``: the engine plus what quitting does (``close``) and whether this
  process owns the session (``hosted``).
- ``AttachedLink``: a ``RemoteEngine`` client; ``close`` detaches; ``on_lost`` fires when
  the agent goes away.
- ``HostedLink``: an engine in this process (with its server and lock when hosting for
  the CLI too); ``close`` stops server, engine and lock.
- ``as_link``: a bare engine (tests, benchmarks) is treated as hosted, as before.

No Qt here; any thread may build links, the GUI thread uses them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from core.engine.api import EngineAPI

__all__ = [
    "AttachedLink",
    "ClientEngine",
    "EngineLink",
    "HostedLink",
    "Releasable",
    "Stoppable",
    "as_link",
]

_log = logging.getLogger(__name__)


class ClientEngine(EngineAPI, Protocol):
    """An ``EngineAPI`` reached through the local API (``RemoteEngine``)."""

    def on_lost(self, callback: Callable[[], None]) -> object:
        """Call ``callback`` (on the caller's loop) when the engine goes away."""
        ...


class Stoppable(Protocol):
    """Something with an async ``stop`` (the local API server)."""

    async def stop(self) -> None:
        """Stop it. Idempotent."""
        ...


class Releasable(Protocol):
    """Something with a ``release`` (the engine lock)."""

    def release(self) -> None:
        """Release it. Idempotent."""
        ...


class EngineLink:
    """The engine the tray shows, and what quitting the tray does to it."""

    #: True when this process owns the session: quitting stops the engine.
    hosted: bool = True

    def __init__(self, engine: EngineAPI) -> None:
        self.engine = engine

    @property
    def hosted_by(self) -> str:
        """Who owns the session: "tray" for a hosted engine."""
        return "tray"

    async def close(self) -> None:
        """Let go of the engine (stop it when hosted, detach when attached)."""
        await self.engine.stop()

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the engine goes away (never, for one in this process)."""


class AttachedLink(EngineLink):
    """A client of the engine another process owns (normally the agent)."""

    hosted = False

    def __init__(self, engine: ClientEngine, hosted_by: str = "agent") -> None:
        super().__init__(engine)
        self._client = engine
        self._hosted_by = hosted_by

    @property
    def hosted_by(self) -> str:
        """Who owns the session ("agent", or "cli"/"tray" for another front end)."""
        return self._hosted_by

    async def close(self) -> None:
        """Detach: the client's ``stop`` only closes the connection; the session goes on."""
        await self._client.stop()

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Forward to the client's ``on_lost``."""
        self._client.on_lost(callback)


class HostedLink(EngineLink):
    """An engine this process owns, maybe served to the CLI and held by the engine lock."""

    hosted = True

    def __init__(
        self,
        engine: EngineAPI,
        *,
        server: Stoppable | None = None,
        lock: Releasable | None = None,
    ) -> None:
        super().__init__(engine)
        self.server = server
        self.lock = lock
        self._closed = False

    async def close(self) -> None:
        """Stop serving, stop the engine, release the lock. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.server is not None:
                await self.server.stop()
            await self.engine.stop()
        finally:
            if self.lock is not None:
                self.lock.release()


def as_link(made: EngineLink | EngineAPI) -> EngineLink:
    """``made`` as a link: a bare engine was built in this process, so it is hosted."""
    if isinstance(made, EngineLink):
        return made
    return HostedLink(made)
