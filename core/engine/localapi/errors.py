"""The local API's errors, each with a title, a next step and a stable code.

::

    LocalApiError (code from the server's ErrorReply, or one of the below)
     ├── EngineNotRunningError      engine_not_running: nobody serves the socket/pipe
     ├── EngineAlreadyRunningError  engine_already_running: the lock is held (names the pid)
     └── ProtocolError              bad_request: a malformed frame or message
          └── UnsupportedVersionError  unsupported_version

Every class has the ``core.errors.UserFacing`` shape: ``title``, ``detail`` (the message),
``next_step`` and ``code``.
"""

from __future__ import annotations

from core.errors import UserFacingError
from core.i18n import QT_TRANSLATE_NOOP

__all__ = [
    "EngineAlreadyRunningError",
    "EngineNotRunningError",
    "LocalApiError",
    "ProtocolError",
    "UnsupportedVersionError",
]


class LocalApiError(UserFacingError):
    """A refusal or failure reported by (or about) the engine behind the local API."""

    title = QT_TRANSLATE_NOOP("core.engine.localapi.errors", "Rustronaut could not do that")
    next_step = QT_TRANSLATE_NOOP(
        "core.engine.localapi.errors",
        "Try again. If it keeps happening, collect diagnostics and contact IT.",
    )
    code = "internal"

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        title: str | None = None,
        next_step: str | None = None,
    ) -> None:
        super().__init__(detail)
        # Instance values shadow the class defaults only when the server said something.
        if code:
            self.code = code
        if title:
            self.title = title
        if next_step:
            self.next_step = next_step

    def __str__(self) -> str:
        return super().__str__() or self.title


class EngineNotRunningError(LocalApiError):
    """No engine answers on the local API (no agent, no tray hosting one)."""

    title = QT_TRANSLATE_NOOP("core.engine.localapi.errors", "Rustronaut is not running")
    next_step = QT_TRANSLATE_NOOP(
        "core.engine.localapi.errors", "Start the Rustronaut app, or run: rustronaut up"
    )
    code = "engine_not_running"


class EngineAlreadyRunningError(LocalApiError):
    """Another engine already owns this user session (the lock is held)."""

    title = QT_TRANSLATE_NOOP("core.engine.localapi.errors", "Rustronaut is already running")
    next_step = QT_TRANSLATE_NOOP(
        "core.engine.localapi.errors",
        "Use the running Rustronaut (the tray or 'rustronaut status'); only one may run.",
    )
    code = "engine_already_running"

    def __init__(self, detail: str = "", *, pid: int | None = None) -> None:
        super().__init__(detail)
        self.pid = pid


class ProtocolError(LocalApiError):
    """A frame or message that breaks the local API protocol."""

    title = QT_TRANSLATE_NOOP("core.engine.localapi.errors", "Malformed request")
    next_step = QT_TRANSLATE_NOOP(
        "core.engine.localapi.errors", "Use a Rustronaut client of the same version as the agent."
    )
    code = "bad_request"


class UnsupportedVersionError(ProtocolError):
    """The other side speaks a protocol version this one does not."""

    title = QT_TRANSLATE_NOOP("core.engine.localapi.errors", "Unsupported protocol version")
    next_step = QT_TRANSLATE_NOOP(
        "core.engine.localapi.errors",
        "Update Rustronaut so the app, the CLI and the agent are the same version.",
    )
    code = "unsupported_version"
