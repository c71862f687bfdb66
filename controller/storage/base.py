"""The storage interface and its records (see the package docstring for the error tree)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "AuditEntry",
    "ConflictError",
    "ConsoleSession",
    "ConsoleStats",
    "DecisionEntry",
    "DeviceRecord",
    "NotFoundError",
    "PoolExhaustedError",
    "Storage",
    "StorageError",
]


class StorageError(Exception):
    """The database refused an operation; the message says which and why."""


class ConflictError(StorageError):
    """A unique value (a key, an address) is already in use."""


class NotFoundError(StorageError):
    """The named row does not exist."""


class PoolExhaustedError(StorageError):
    """Every address of the configured pool is taken."""


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One enrolled (or revoked) device. ``address`` is None once released."""

    device_id: str
    user_id: str
    name: str
    platform: str
    wg_public_key: str
    signing_key: str
    address: str | None
    status: str
    created_at: int
    revoked_at: int | None
    bundle_version: int
    posture_at: int | None
    posture: dict[str, Any] | None
    reachable: tuple[str, ...]
    #: until when its last bundle is valid (unix s); None: it has not fetched one yet
    lease_until: int | None = None
    #: the helper's relay key (raw Ed25519, base64url; issue 21); None: not registered
    relay_key: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record (e.g. a break-glass disconnect), kept for the administrators."""

    record_id: str
    at: int
    kind: str
    user_id: str
    device_id: str
    detail: str


@dataclass(frozen=True, slots=True)
class DecisionEntry:
    """One stored decision-telemetry row: an event (``count`` 1) or a per-minute count
    (``kind`` "count", ``at`` the minute). ``record_id`` is the database's (0 before
    storing); ``dropped`` is how many items the device dropped before this batch."""

    device_id: str
    user_id: str
    seq: int
    kind: str
    at: float
    effect: str
    count: int = 1
    app: str = ""
    host: str = ""
    ip: str = ""
    port: int = 0
    rule: str | None = None
    resource: str | None = None
    code: str = ""
    reason: str = ""
    risk: int = 0
    dropped: int = 0
    record_id: int = 0


class Storage(Protocol):
    """What the controller needs from a database. Every method is thread-safe."""

    def close(self) -> None:
        """Close the connection. Idempotent."""
        ...

    def schema_version(self) -> int:
        """The applied migration number."""
        ...

    # devices ----------------------------------------------------------------------
    def enroll_device(
        self,
        *,
        device_id: str,
        user_id: str,
        name: str,
        platform: str,
        wg_public_key: str,
        signing_key: str,
        pool: ipaddress.IPv4Network | ipaddress.IPv6Network,
        reserved: frozenset[str],
        now: int,
        relay_key: str | None = None,
    ) -> DeviceRecord:
        """Insert a device with the lowest free pool address (not in ``reserved``), with
        its relay key when given (not unique: it names the helper, not the device).

        Raises ``ConflictError`` if either key is used by any device (even revoked),
        ``PoolExhaustedError`` when no address is free. Nothing is stored on error.
        """
        ...

    def get_device(self, device_id: str) -> DeviceRecord:
        """The device; raises ``NotFoundError``."""
        ...

    def list_devices(self) -> list[DeviceRecord]:
        """All devices, oldest first."""
        ...

    def revoke_device(self, device_id: str, *, now: int) -> DeviceRecord:
        """Mark revoked and release its address; returns the record before release.

        Idempotent: revoking a revoked device returns it unchanged. ``NotFoundError``.
        """
        ...

    def record_posture(
        self, device_id: str, *, posture: dict[str, Any], reachable: list[str], now: int
    ) -> None:
        """Store the verified posture facts and the reachable resource ids."""
        ...

    def next_bundle_version(self, device_id: str) -> int:
        """Atomically increment and return the device's bundle version (persisted)."""
        ...

    def set_lease(self, device_id: str, until: int) -> None:
        """Record until when the device's access lasts (its last bundle's expiry), so
        every instance, and a restarted one, removes its gateway peer on time."""
        ...

    def set_reachable(self, device_id: str, reachable: list[str]) -> None:
        """Replace the device's reachable resource ids (recomputed after a policy change
        from its last posture facts). ``NotFoundError``."""
        ...

    # nonces -----------------------------------------------------------------------
    def add_nonce(self, nonce: str, device_id: str, expires_at: int) -> None:
        """Remember a posture nonce issued to ``device_id``."""
        ...

    def take_nonce(self, nonce: str, device_id: str, now: int) -> bool:
        """Consume the nonce: True only once, for its device, before it expires."""
        ...

    # policy -----------------------------------------------------------------------
    def put_resource(self, resource_id: str, body: dict[str, Any]) -> None:
        """Insert or replace a resource (validated JSON object)."""
        ...

    def delete_resource(self, resource_id: str) -> None:
        """Remove a resource; raises ``NotFoundError``."""
        ...

    def list_resources(self) -> list[dict[str, Any]]:
        """All resources, by id."""
        ...

    def put_rule(self, rule_id: str, body: dict[str, Any]) -> None:
        """Insert or replace a rule (validated JSON object)."""
        ...

    def delete_rule(self, rule_id: str) -> None:
        """Remove a rule; raises ``NotFoundError``."""
        ...

    def list_rules(self) -> list[dict[str, Any]]:
        """All rules, by id."""
        ...

    # users ------------------------------------------------------------------------
    def set_user_groups(self, user_id: str, groups: list[str]) -> None:
        """Record the admin-managed groups of a user (replaces)."""
        ...

    def get_user_groups(self, user_id: str) -> list[str] | None:
        """The user's admin-managed groups, or None if never set."""
        ...

    def list_users(self) -> list[tuple[str, list[str]]]:
        """All users with admin-managed groups."""
        ...

    def set_identity(self, user_id: str, subject: str, email: str, groups: list[str]) -> None:
        """Record who the user was at their last authenticated call (replaces)."""
        ...

    def list_identities(self) -> dict[str, tuple[str, str, list[str]]]:
        """Every recorded user: ``user_id -> (subject, email, token groups)``."""
        ...

    # audit ------------------------------------------------------------------------
    def add_audit(self, entry: AuditEntry) -> None:
        """Append an audit record. Raises ``ConflictError`` if its id is taken."""
        ...

    def list_audit(self, *, device_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        """The newest ``limit`` records (of one device when given), oldest first."""
        ...

    # decision telemetry -----------------------------------------------------------
    def store_decisions(
        self,
        device_id: str,
        seq: int,
        entries: list[DecisionEntry],
        *,
        ids: list[int] | None = None,
    ) -> bool:
        """Store one batch atomically when ``seq`` is above the device's last stored one
        (then True); else store nothing and return False (a replay or a retry). With
        ``ids``, the stored rows' record ids are appended to it, in ``entries`` order
        (the console's live feed shows them)."""
        ...

    def prune_decisions(self, keep: int) -> int:
        """Delete all but the newest ``keep`` rows (by record id); how many went."""
        ...

    def list_decisions(
        self,
        *,
        user_id: str | None = None,
        device_id: str | None = None,
        resource: str | None = None,
        effect: str | None = None,
        limit: int = 100,
    ) -> list[DecisionEntry]:
        """The newest ``limit`` rows matching every filter given, newest first."""
        ...

    # audit page (console) ---------------------------------------------------------
    def search_audit(
        self,
        *,
        kind: str | None = None,
        kind_prefix: str | None = None,
        user: str | None = None,
        device: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Audit records, newest first, skipping ``offset``: of exactly ``kind`` and/or
        whose kind starts with ``kind_prefix`` (``"admin:"``), whose user / device id
        contains ``user`` / ``device`` (case-insensitive; empty = any)."""
        ...

    # console sessions (admin console sign-ins) --------------------------------------
    def create_console_session(self, session: ConsoleSession) -> None:
        """Store a new console session (its ``session_hash`` is the key)."""
        ...

    def get_console_session(self, session_hash: str) -> ConsoleSession | None:
        """The session with this cookie hash, or None."""
        ...

    def touch_console_session(self, session_hash: str, seen_at: int) -> None:
        """Record the session's latest activity (idle timeout); no-op when gone."""
        ...

    def delete_console_session(self, session_hash: str) -> None:
        """End a session (sign-out, expiry); no-op when gone."""
        ...

    def purge_console_sessions(self, *, idle_before: int, now: int) -> int:
        """Delete sessions idle since before ``idle_before`` or past ``expires_at`` at
        ``now``; how many went."""
        ...

    # console stats (overview page) ----------------------------------------------------
    def console_stats(self, *, now: float, minutes: int = 60, top: int = 10) -> ConsoleStats:
        """Decisions per minute (allow/deny) over the last ``minutes`` minutes and the
        ``top`` most denied resources over the last 24 hours, from ``decisions``."""
        ...

    # policy drafts (console) --------------------------------------------------------
    def policy_version(self) -> int:
        """The policy version (0 before the first change): bumped by every change of
        resources, rules or admin-managed groups, so a draft reviewed against one version
        is never published over a newer one."""
        ...

    def bump_policy_version(self) -> int:
        """Increment the policy version; returns the new one."""
        ...

    def apply_policy(
        self,
        *,
        expected_version: int | None,
        put_resources: Mapping[str, dict[str, Any]] | None = None,
        delete_resources: Sequence[str] = (),
        put_rules: Mapping[str, dict[str, Any]] | None = None,
        delete_rules: Sequence[str] = (),
    ) -> int:
        """In ONE transaction: bump the policy version, insert/replace and delete the
        given resources and rules (validated JSON objects by id). Returns the new version.

        Raises ``ConflictError`` (nothing written) when ``expected_version`` is given and
        the version is not it (someone else changed the policy), ``NotFoundError``
        (nothing written) when a deleted id does not exist.
        """
        ...

    def get_policy_draft(self, admin_id: str) -> tuple[str, int, int] | None:
        """The admin's draft: (JSON body, base version, updated at), or None."""
        ...

    def put_policy_draft(self, admin_id: str, body: str, base_version: int, now: int) -> None:
        """Store (replace) the admin's draft."""
        ...

    def delete_policy_draft(self, admin_id: str) -> bool:
        """Drop the admin's draft; False when there was none."""
        ...

    # --- relay (issue 21) ---
    def set_relay_key(self, device_id: str, relay_key: str) -> None:
        """Register (replace) the relay key of an active device. ``NotFoundError`` when
        there is no such device or it is revoked (nothing is written then)."""
        ...

    def relay_devices(self) -> dict[str, str]:
        """``device id -> relay key`` of every active device with a relay key."""
        ...


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """One admin console session; the cookie itself is never stored, only its SHA-256."""

    session_hash: str
    user_id: str
    email: str
    name: str
    groups: tuple[str, ...]
    csrf: str
    created_at: int
    seen_at: int
    #: absolute end (created_at + the configured lifetime)
    expires_at: int


@dataclass(frozen=True, slots=True)
class ConsoleStats:
    """Aggregates for the console's overview."""

    #: (minute start, Unix s) → (allowed, denied), only minutes with decisions
    per_minute: dict[int, tuple[int, int]]
    #: (resource id or None for "no resource", denied count), most denied first
    top_denied: list[tuple[str | None, int]]
