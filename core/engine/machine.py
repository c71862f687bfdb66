"""The session state as a pure function of facts (Tailscale's ``nextStateLocked`` idea).

The engine never assigns a state by hand: it updates ``SessionFacts`` and asks ``derive``.
Keeping this pure makes every rule a row in a table test, and guarantees for instance
that "connected" is never shown over a dead handshake or without a valid bundle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.engine.state import ResourceView, SessionState

__all__ = ["BUSY_STATES", "LIVE_STATES", "SessionFacts", "blocked", "derive", "usable"]

#: States that only exist while an effect is running.
BUSY_STATES = frozenset(
    {
        SessionState.SIGNING_IN,
        SessionState.ENROLLING,
        SessionState.CHECKING_POSTURE,
        SessionState.CONNECTING,
        SessionState.DISCONNECTING,
    }
)


#: States in which allowed resources can really be reached.
LIVE_STATES = frozenset({SessionState.CONNECTED, SessionState.DEGRADED, SessionState.OFFLINE})


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What the engine knows right now; ``derive`` maps it to a state."""

    busy: SessionState | None = None  # an effect in progress (one of BUSY_STATES)
    failed: bool = False  # the last attempt failed with an ErrorInfo
    signed_in: bool = False  # usable tokens (or refreshable)
    want_connected: bool = False  # the user (or auto-connect/always-on) asked to be connected
    bundle_valid: bool = False  # a verified, unexpired bundle is held
    controller_reachable: bool = True
    tunnel_up: bool = False
    handshake_ok: bool = False  # handshake fresh (or tunnel just came up)
    #: the gateway went silent (or failed) after the session was connected
    reconnecting: bool = False
    blocked_resources: int = 0  # resources denied by posture or risk
    usable_resources: int = 0  # resources the policy allows right now


def derive(f: SessionFacts) -> SessionState:
    """The state for ``f``. Pure; see the table in tests/core/engine/test_machine.py."""
    if f.busy is not None:
        return f.busy
    if f.failed:
        return SessionState.ERROR
    if not f.signed_in:
        return SessionState.SIGNED_OUT
    if not f.want_connected:
        return SessionState.DISCONNECTED
    if not f.bundle_valid:
        # Nothing valid to connect with: offline if we cannot even ask, else still connecting.
        return SessionState.CONNECTING if f.controller_reachable else SessionState.OFFLINE
    if f.tunnel_up and f.blocked_resources and not f.usable_resources:
        # Everything the user may use is blocked by something the device can fix: say so
        # (with the fix) rather than "connecting", whatever the handshake does meanwhile.
        return SessionState.BLOCKED
    if not (f.tunnel_up and f.handshake_ok):
        return SessionState.RECONNECTING if f.reconnecting else SessionState.CONNECTING
    if not f.controller_reachable:
        return SessionState.OFFLINE
    if f.blocked_resources:
        return SessionState.DEGRADED
    return SessionState.CONNECTED


def blocked(resources: Iterable[ResourceView]) -> int:
    """How many ``resources`` count as ``SessionFacts.blocked_resources``. Pure."""
    # Resources the user is simply not entitled to do not degrade the session.
    return sum(1 for r in resources if not r.reachable and r.fixable)


def usable(resources: Iterable[ResourceView]) -> int:
    """How many ``resources`` the policy allows (``SessionFacts.usable_resources``). Pure."""
    return sum(1 for r in resources if r.reachable)
