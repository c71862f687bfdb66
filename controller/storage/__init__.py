"""Controller state behind one small interface: SQLite (embedded default) or PostgreSQL.

``open_storage(url)`` picks the backend from the URL (``sqlite:///path``, ``sqlite://:memory:``
or ``postgresql://...``); both run the same numbered schema migrations at open, so a
controller restarted on the same database finds its devices, policy and bundle
versions, and several instances may share one PostgreSQL database behind a load
balancer (uniqueness and counters are enforced by the database, not in memory).
Calls are synchronous and thread-safe (one lock per store); they are short, indexed
statements, so the async web handlers call them directly.

Errors::

    StorageError                 anything the database refused
     ├── ConflictError           a unique key is already taken (WireGuard/signing key)
     ├── NotFoundError           no such device/resource/rule
     └── PoolExhaustedError      the address pool has no free address
"""

from __future__ import annotations

from controller.storage.base import (
    AuditEntry,
    ConflictError,
    DecisionEntry,
    DeviceRecord,
    NotFoundError,
    PoolExhaustedError,
    Storage,
    StorageError,
)
from controller.storage.sql import SqlStorage, open_storage

__all__ = [
    "AuditEntry",
    "ConflictError",
    "DecisionEntry",
    "DeviceRecord",
    "NotFoundError",
    "PoolExhaustedError",
    "SqlStorage",
    "Storage",
    "StorageError",
    "open_storage",
]
