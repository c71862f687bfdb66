"""Typed, immutable values the proxy hands out: limits, decision events, counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from core.policy.api import AppIdentity, Effect
from core.proxy.errors import ProxyConfigError

__all__ = ["EventKind", "Limits", "ProxyCounters", "ProxyEvent", "ResourceCounters"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of the proxy. Raises ProxyConfigError on nonsense values.

    ``relay`` chooses the relay engine: "splice" (Linux zero-copy through a pipe),
    "buffered" (asyncio BufferedProtocol, any OS) or "auto" (splice where available;
    it measured faster here, see tests/bench/bench_proxy.py). ``max_connections`` caps
    the served account's open connections; ``start`` lowers it to what the descriptor
    limit leaves (``listeners.fd_budget``). Other accounts' connections are closed at
    accept and never count. A splice relay that has moved ``bulk_after`` bytes in one
    direction is carried by a thread per direction while fewer than ``bulk_threads``
    threads do so (0: never; ``relay.BulkThreads``); past that it stays on the loop thread.
    """

    max_connections: int = 4096
    handshake_timeout: float = 10.0
    handshake_max_bytes: int = 16384
    connect_timeout: float = 10.0
    resolve_timeout: float = 5.0
    idle_timeout: float = 3600.0
    relay: Literal["auto", "splice", "buffered"] = "auto"
    chunk_size: int = 1 << 20
    max_resolved: int = 16
    bulk_threads: int = 128  # 64 bulk relays at once on their own threads
    bulk_after: int = 1 << 18

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ProxyConfigError("max_connections must be at least 1")
        for name in ("handshake_timeout", "connect_timeout", "resolve_timeout", "idle_timeout"):
            if not getattr(self, name) > 0:
                raise ProxyConfigError(f"{name} must be a positive number of seconds")
        if self.handshake_max_bytes < 512:
            raise ProxyConfigError("handshake_max_bytes must be at least 512")
        if self.chunk_size < 4096:
            raise ProxyConfigError("chunk_size must be at least 4096")
        if self.relay not in ("auto", "splice", "buffered"):
            raise ProxyConfigError(f"relay must be auto, splice or buffered, not {self.relay!r}")
        if self.max_resolved < 1:
            raise ProxyConfigError("max_resolved must be at least 1")
        if not 0 <= self.bulk_threads <= 1024:
            raise ProxyConfigError("bulk_threads must be between 0 and 1024")
        if self.bulk_after < 0:
            raise ProxyConfigError("bulk_after must not be negative")


class EventKind(StrEnum):
    """Why a ProxyEvent was emitted."""

    DECISION = "decision"  # a new connection was decided (allow or deny)
    REVOKED = "revoked"  # re-evaluation closed an open connection
    REFUSED = "refused"  # refused before any policy question (other user, bad input)


@dataclass(frozen=True, slots=True)
class ProxyEvent:
    """One decision, as the UI and logs show it.

    ``time`` is wall-clock seconds since the epoch; ``destination`` is "host:port" after
    normalisation (the escaped raw text when it could not be normalised, "" when the
    connection was refused at accept, before its request was read); ``rule`` is None
    for a default deny or a refusal outside policy. Every text field (destination,
    reason, rule, resource, the app's path and name) has its control, bidi and invisible
    characters escaped (``core.text``): it is safe to print and to log. ``protocol`` is
    the path the connection came by: "socks5", "http", "http-connect", "forward" or
    "transparent" (redirected to the transparent listener); "" when refused at accept.
    """

    time: float
    kind: EventKind
    app: AppIdentity
    destination: str
    effect: Effect
    rule: str | None
    reason: str
    resource: str | None = None
    protocol: str = ""


@dataclass(frozen=True, slots=True)
class ResourceCounters:
    """Counters for one resource (or destination host when the policy names none)."""

    connections: int = 0
    active: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    denials: int = 0


def _empty() -> MappingProxyType[str, ResourceCounters]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ProxyCounters:
    """Immutable snapshot of all counters; ``resources`` is a read-only mapping."""

    resources: MappingProxyType[str, ResourceCounters] = field(default_factory=_empty)
    active: int = 0
    refused: int = 0

    @property
    def total(self) -> ResourceCounters:
        """Sum over all resources."""
        values = list(self.resources.values())
        return ResourceCounters(
            connections=sum(v.connections for v in values),
            active=sum(v.active for v in values),
            bytes_up=sum(v.bytes_up for v in values),
            bytes_down=sum(v.bytes_down for v in values),
            denials=sum(v.denials for v in values),
        )
