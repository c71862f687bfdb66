"""The question the proxy asks and the answer it gets: ``AccessRequest`` → ``Decision``.

These are the only types that cross from the proxy (and the CLI/UI) into the policy
engine. Both are frozen and slotted: built once per connection, read many times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

__all__ = ["AccessRequest", "AppIdentity", "Decider", "Decision", "Effect", "Unmet"]


class Effect(StrEnum):
    """What a rule (and so a decision) does."""

    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class AppIdentity:
    """The local process behind a connection, as the proxy identified it.

    ``exe`` is the absolute executable path ("" when unknown), ``name`` its basename,
    ``sha256`` the hex digest of the executable when computed (else None).
    """

    pid: int | None
    uid: int | None
    exe: str
    name: str
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One connection attempt, already normalised by the proxy.

    ``host`` is a lower-case ASCII (IDNA) name without trailing dot, or an IP literal in
    canonical form; ``addresses`` are the IPs the name resolved to (empty when not
    resolved or when ``host`` is itself an IP). ``protocol`` is "tcp" or "udp".
    """

    app: AppIdentity
    host: str
    port: int
    protocol: str = "tcp"
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Unmet:
    """A requirement the device or user does not meet, with how to fix it."""

    fact: str
    #: for IT: the fact's name, the test and the value ("posture.x must be true (currently false)")
    requirement: str
    remediation: str
    #: for the employee: the requirement by its human label and their current value,
    #: e.g. "needs the firewall on — it is off", "needs group Finance — you are in Sales"
    plain: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request, explainable to the employee and to IT.

    ``rule_id`` is None for the default deny. ``risk`` is 0–100, ``confidence`` 0–1
    (share of the facts the decision needed that were known and fresh).
    """

    effect: Effect
    rule_id: str | None
    reason: str
    resource: str | None = None
    unmet: tuple[Unmet, ...] = ()
    risk: int = 0
    confidence: float = 1.0
    signals: tuple[str, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        """True only for an explicit allow."""
        return self.effect is Effect.ALLOW


class Decider(Protocol):
    """Anything that decides requests (the policy engine; a fixed table in tests)."""

    def decide(self, request: AccessRequest) -> Decision:
        """Decide ``request``. Must never raise: an internal error is a deny."""
        ...
