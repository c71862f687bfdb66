"""What the engine's actor handles: one inbox of typed, frozen messages.

Front ends' requests (connect, disconnect, sign in and out, recheck, settings), the
results of effects the engine started (a sign-in finished), and what the world reports
(posture drift, controller events and reachability, health ticks, proxy decisions, a
clock jump) all arrive here and are handled one at a time by ``core.engine.engine``.
Nothing else changes the session: every fact has this one writer.

A request that a caller waits for carries a ``reply`` future the actor resolves (or
fails with the refusal). Imports: ``core.engine`` data modules only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.engine.api import OpenUrl
from core.engine.config import EngineConfig
from core.engine.ports import PostureFacts, UserInfo

__all__ = [
    "Announce",
    "ClockJump",
    "ConnectRequested",
    "ControlPlaneEvent",
    "ControllerReach",
    "DisconnectRequested",
    "HealthTick",
    "Message",
    "PostureChanged",
    "ProxyDecision",
    "RecheckRequested",
    "Request",
    "RetryDue",
    "SessionEnded",
    "SettingsChanged",
    "SignInFinished",
    "SignInRequested",
    "SignOutRequested",
    "StartRequested",
    "StopRequested",
]


def _future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    #: resolved when the actor has handled the request (or failed with its refusal)
    reply: asyncio.Future[Any] = field(default_factory=_future, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class StartRequested(Request):
    """Load the stored session and cached bundle; auto-connect if configured."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRequested(Request):
    """Shut the session down (always-on keeps the tunnel)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectRequested(Request):
    """Walk to connected. ``retry``: the offline retry asked, not a person."""

    retry: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DisconnectRequested(Request):
    """Tunnel and proxy down (a reason under always-on)."""

    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignInRequested(Request):
    """Start the browser or device-code sign-in; ``reply`` resolves when it finished."""

    device_code: bool = False
    open_url: OpenUrl | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignInFinished:
    """The sign-in effect ended: with a user, or with the error that stopped it."""

    attempt: int
    user: UserInfo | None = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignOutRequested(Request):
    """Disconnect, revoke and forget the tokens (a reason under always-on)."""

    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnded:
    """The provider no longer accepts the sign-in: take access down, ask to sign in."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecheckRequested(Request):
    """Collect posture now, report it and re-evaluate access."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PostureChanged:
    """The posture watcher saw drift."""

    facts: PostureFacts


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlPlaneEvent:
    """An event from the controller's stream ("policy_changed", "device_revoked", ...)."""

    kind: str
    data: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerReach:
    """The controller's event stream connected (``reachable``) or dropped (``error``)."""

    reachable: bool
    error: BaseException | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthTick:
    """Time for the periodic check: expiry, tunnel health, helper, network."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockJump:
    """The ticks came ``gap_s`` late: the machine slept (or the clock jumped)."""

    gap_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Announce:
    """A job the engine runs (the update schedule) has news for the employee: one
    notice with ``text`` (translated) and ``details``."""

    text: str
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryDue:
    """The offline retry's backoff elapsed and the controller answers again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyDecision:
    """The proxy decided a connection."""

    app: str
    destination: str
    effect: str
    rule: str | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsChanged(Request):
    """The effective settings changed (managed or user)."""

    config: EngineConfig


Message = (
    Announce
    | StartRequested
    | StopRequested
    | ConnectRequested
    | DisconnectRequested
    | SignInRequested
    | SignInFinished
    | SignOutRequested
    | SessionEnded
    | RecheckRequested
    | PostureChanged
    | ControlPlaneEvent
    | ControllerReach
    | HealthTick
    | ClockJump
    | RetryDue
    | ProxyDecision
    | SettingsChanged
)
