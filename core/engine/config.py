"""The engine's settings (``EngineConfig``), built by ``core.engine.wiring`` from the
effective settings. A module of its own so the engine's parts (``core.engine.engine``,
``core.engine.health``, ``core.engine.live``) share it without importing each other.
Imports nothing from the project.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EngineConfig"]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The settings the engine acts on (built from the effective settings)."""

    proxy_port: int = 9080
    #: redirect apps' connections to the resources to the decider (no proxy settings)
    transparent: bool = True
    transparent_port: int = 9082
    auto_connect: bool = True
    always_on: bool = False
    allow_break_glass: bool = True
    organization: str | None = None
    #: how often the tunnel's health is checked
    health_interval_s: float = 2.0
    #: a handshake older than this is dead (WireGuard re-handshakes every 2 minutes)
    handshake_stale_s: float = 180.0
    #: grace after ``up`` before the first handshake must have happened
    first_handshake_grace_s: float = 15.0
    #: retry of an unreachable controller: first delay and cap
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    #: warn this long before the sign-in expires
    session_warning_s: float = 10 * 60.0
    #: why the organization's managed settings were rejected (None: accepted)
    managed_rejected: str | None = None
