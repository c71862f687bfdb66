"""The engine's public surface, as the tray and the CLI use it.

``EngineAPI`` is what front ends may call. ``core.engine.engine.Engine`` implements it
in the process that owns the session (the agent, or the tray where no agent can run);
the local API's client (``core.engine.localapi``) implements the same protocol in every
other process, so a view never knows whether the engine is local.

Every method is a coroutine (or a cheap synchronous read) for the caller's event loop;
none blocks. Failures never raise out of ``connect``/``sign_in``: they become an ``ERROR``
snapshot with an ``ErrorInfo`` and an ``error`` event. Refusals (always-on, a locked
setting, a reason that is too short) raise errors that carry ``title``, ``detail`` and
``next_step`` (``core.errors.UserFacing``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.engine.state import Event, Snapshot

__all__ = [
    "MIN_REASON_LENGTH",
    "EngineAPI",
    "OpenUrl",
    "Setting",
    "SettingView",
    "Unsubscribe",
]

Unsubscribe = Callable[[], None]

#: Opens a URL in the browser of the front end that asked for a sign-in.
OpenUrl = Callable[[str], object]

#: The shortest break-glass reason accepted under managed always-on, in every front end
#: (tray dialogs, CLI, local API): long enough to say something to IT.
MIN_REASON_LENGTH = 10


@dataclass(frozen=True, slots=True)
class Setting:
    """One effective setting as front ends show it (a plain, serialisable value)."""

    key: str
    value: object
    source: str  # "default" | "user" | "managed"
    locked: bool
    description: str = ""
    title: str = ""
    #: the file or registry key the value came from (None for defaults)
    origin: str | None = None


#: Kept for the views written against the earlier protocol name.
SettingView = Setting


class EngineAPI(Protocol):
    """What a front end may do with the engine."""

    @property
    def snapshot(self) -> Snapshot:
        """The current snapshot (immutable)."""
        ...

    def subscribe(self, callback: Callable[[Event], None]) -> Unsubscribe:
        """Call ``callback`` with every event, in order, on the caller's loop thread."""
        ...

    def settings(self) -> list[Setting]:
        """The effective settings with their source and lock (no I/O)."""
        ...

    async def set_setting(self, key: str, value: object) -> None:
        """Change a user setting; raises ``core.settings`` errors for locked/invalid ones.

        Every front end sees the change (a ``SETTINGS`` event) within a second.
        """
        ...

    async def start(self) -> None:
        """Load state (cached bundle, tokens); auto-connect if configured. Idempotent."""
        ...

    async def sign_in(self, *, device_code: bool = False, open_url: OpenUrl | None = None) -> None:
        """Run the browser (or device-code) sign-in; on success continue to connect.

        ``open_url`` opens the sign-in page in the browser of the front end that asked
        (default: the engine's own way of opening a browser).
        """
        ...

    async def sign_out(self, *, break_glass_reason: str | None = None) -> None:
        """Disconnect, revoke tokens and forget them.

        Under managed always-on a reason of at least ``MIN_REASON_LENGTH`` characters is
        required (and reported to IT), or ``AlwaysOnError`` is raised and nothing changes.
        """
        ...

    async def connect(self) -> None:
        """Walk to CONNECTED/DEGRADED/BLOCKED (or ERROR with a next step)."""
        ...

    async def disconnect(self, *, break_glass_reason: str | None = None) -> None:
        """Tunnel and proxy down. Under managed always-on a reason is required (as above)."""
        ...

    async def recheck_posture(self) -> None:
        """Collect posture now and re-evaluate."""
        ...

    async def collect_diagnostics(self, destination: Path) -> Path:
        """Write the redacted diagnostics zip and return its path."""
        ...

    async def stop(self) -> None:
        """Stop this front end's use of the engine. Idempotent.

        In the process that owns the engine this shuts the session down (always-on keeps
        the tunnel); for a client of the local API it only closes the connection: the
        session goes on in the agent.
        """
        ...
