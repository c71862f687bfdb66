"""The engine's public surface, as the tray and the CLI use it.

``EngineAPI`` is what front ends may call; ``core.engine.engine.Engine`` implements it.
Every method is a coroutine run on the engine's event loop (the Qt thread under qasync);
none blocks. Failures never raise out of ``connect``/``sign_in``: they become an
``ERROR`` snapshot with an ``ErrorInfo`` and an ``error`` event.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from core.engine.state import Event, Snapshot

__all__ = ["EngineAPI", "SettingView", "Unsubscribe"]

Unsubscribe = Callable[[], None]


class SettingView(Protocol):
    """One effective setting as the UI shows it (read-only)."""

    @property
    def key(self) -> str: ...
    @property
    def value(self) -> object: ...
    @property
    def source(self) -> str:
        """ "default" | "user" | "managed"."""
        ...

    @property
    def locked(self) -> bool: ...
    @property
    def description(self) -> str: ...


class EngineAPI(Protocol):
    """What a front end may do with the engine."""

    @property
    def snapshot(self) -> Snapshot:
        """The current snapshot (immutable)."""
        ...

    def subscribe(self, callback: Callable[[Event], None]) -> Unsubscribe:
        """Call ``callback`` with every event, in order, on the engine's loop thread."""
        ...

    def settings(self) -> list[SettingView]:
        """The effective settings with their source and lock."""
        ...

    def set_setting(self, key: str, value: object) -> None:
        """Change a user setting; raises ``core.settings`` errors for locked/invalid ones."""
        ...

    async def start(self) -> None:
        """Load state (cached bundle, tokens); auto-connect if configured. Idempotent."""
        ...

    async def sign_in(self, *, device_code: bool = False) -> None:
        """Run the browser (or device-code) sign-in; on success continue to connect."""
        ...

    async def sign_out(self) -> None:
        """Disconnect, revoke tokens and forget them."""
        ...

    async def connect(self) -> None:
        """Walk to CONNECTED/DEGRADED (or ERROR with a next step)."""
        ...

    async def disconnect(self, *, break_glass_reason: str | None = None) -> None:
        """Tunnel and proxy down. Under managed always-on a reason is required."""
        ...

    async def recheck_posture(self) -> None:
        """Collect posture now and re-evaluate."""
        ...

    async def collect_diagnostics(self, destination: Path) -> Path:
        """Write the redacted diagnostics zip and return its path."""
        ...

    async def stop(self) -> None:
        """Shut everything down (app quit). Idempotent."""
        ...
