# ruff: noqa: S608 - table and column names are module constants, values are bound
"""One SQL implementation of ``Storage`` for SQLite and PostgreSQL (psycopg 3).

Statements are written once with ``?`` placeholders and portable types (TEXT, BIGINT,
JSON kept as TEXT); the PostgreSQL driver gets them with ``%s``. Uniqueness of keys and
addresses is enforced by UNIQUE constraints, so two controller instances racing on the
same key or address cannot both win; a lost address race is retried.
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from controller.storage.base import (
    AuditEntry,
    ConflictError,
    ConsoleSession,
    ConsoleStats,
    DecisionEntry,
    DeviceRecord,
    NotFoundError,
    PoolExhaustedError,
    StorageError,
)

__all__ = ["MIGRATIONS", "SqlStorage", "open_storage"]

#: Numbered schema migrations; append only, never edit an applied one.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE devices (
                device_id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                name TEXT NOT NULL,
                platform TEXT NOT NULL,
                wg_public_key TEXT NOT NULL UNIQUE,
                signing_key TEXT NOT NULL UNIQUE,
                address TEXT UNIQUE,
                status TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                revoked_at BIGINT,
                bundle_version BIGINT NOT NULL DEFAULT 0,
                posture_at BIGINT,
                posture TEXT,
                reachable TEXT NOT NULL DEFAULT '[]'
            )""",
            "CREATE INDEX devices_user ON devices (user_id)",
            """CREATE TABLE nonces (
                nonce TEXT PRIMARY KEY,
                device_id TEXT NOT NULL,
                expires_at BIGINT NOT NULL
            )""",
            "CREATE TABLE resources (resource_id TEXT PRIMARY KEY, body TEXT NOT NULL)",
            "CREATE TABLE rules (rule_id TEXT PRIMARY KEY, body TEXT NOT NULL)",
        ),
    ),
    (
        2,
        ("CREATE TABLE user_groups (user_id TEXT PRIMARY KEY, groups_json TEXT NOT NULL)",),
    ),
    (
        3,
        (
            # Append-only audit trail (break-glass disconnects); no foreign key so a
            # record outlives anything done to its device.
            """CREATE TABLE audit (
                record_id TEXT PRIMARY KEY,
                at BIGINT NOT NULL,
                kind TEXT NOT NULL,
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                detail TEXT NOT NULL
            )""",
            "CREATE INDEX audit_at ON audit (at)",
            "CREATE INDEX audit_device ON audit (device_id, at)",
        ),
    ),
    (
        4,
        # Until when a device's last bundle is valid: the gateway drops its peer then.
        ("ALTER TABLE devices ADD COLUMN lease_until BIGINT",),
    ),
    (
        5,
        # Who each user was at their last authenticated call (the token's subject, email
        # and groups), so the gateway's filter can evaluate rules without a token.
        (
            """CREATE TABLE identities (
                user_id TEXT PRIMARY KEY,
                subject TEXT NOT NULL,
                email TEXT NOT NULL,
                groups_json TEXT NOT NULL
            )""",
        ),
    ),
    (
        6,
        # Decision telemetry: the rows of each stored batch, and per device the last
        # batch number stored (a batch at or below it is a replay or a retry).
        (
            """CREATE TABLE decisions (
                record_id {autoid},
                device_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                kind TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                effect TEXT NOT NULL,
                count BIGINT NOT NULL,
                app TEXT NOT NULL,
                host TEXT NOT NULL,
                ip TEXT NOT NULL,
                port BIGINT NOT NULL,
                rule TEXT,
                resource TEXT,
                code TEXT NOT NULL,
                reason TEXT NOT NULL,
                risk BIGINT NOT NULL,
                dropped BIGINT NOT NULL
            )""",
            "CREATE INDEX decisions_device ON decisions (device_id, record_id)",
            "CREATE INDEX decisions_user ON decisions (user_id, record_id)",
            "CREATE INDEX decisions_resource ON decisions (resource, record_id)",
            """CREATE TABLE telemetry_seq (
                device_id TEXT PRIMARY KEY,
                last_seq BIGINT NOT NULL
            )""",
        ),
    ),
    (
        7,
        # Admin console sign-ins: the SHA-256 of the session cookie (never the cookie),
        # who signed in, the CSRF token, and when the session idles out or ends. Shared
        # by every replica, so a console behind a load balancer stays signed in.
        (
            """CREATE TABLE console_sessions (
                session_hash TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                email TEXT NOT NULL,
                name TEXT NOT NULL,
                groups_json TEXT NOT NULL,
                csrf TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                seen_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL
            )""",
            "CREATE INDEX console_sessions_user ON console_sessions (user_id)",
        ),
    ),
    (
        8,
        # The policy an admin is editing in the console before publishing: one draft
        # (resources and rules as JSON) per admin, with the policy version it started from
        # so a publish over someone else's newer publish is refused, not merged blindly.
        (
            """CREATE TABLE policy_drafts (
                admin_id TEXT PRIMARY KEY,
                body TEXT NOT NULL,
                base_version BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )""",
            """CREATE TABLE policy_meta (
                name TEXT PRIMARY KEY,
                value BIGINT NOT NULL
            )""",
        ),
    ),
    (
        9,
        # The helper's relay key (raw Ed25519, base64url): the relay CA issues the
        # device's client certificate to it, relays check streams against it (issue 21).
        ("ALTER TABLE devices ADD COLUMN relay_key TEXT NULL",),
    ),
)

#: The auto-numbered primary key of each dialect (``{autoid}`` in migrations).
_AUTOID = {
    "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "postgresql": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
}
_DECISION_COLS = (
    "device_id, user_id, seq, kind, at, effect, count, app, host, ip, port, rule, resource, "
    "code, reason, risk, dropped"
)

_DEVICE_COLS = (
    "device_id, user_id, name, platform, wg_public_key, signing_key, address, status, "
    "created_at, revoked_at, bundle_version, posture_at, posture, reachable, lease_until, "
    "relay_key"
)


def _row_to_device(row: Sequence[Any]) -> DeviceRecord:
    return DeviceRecord(
        device_id=row[0],
        user_id=row[1],
        name=row[2],
        platform=row[3],
        wg_public_key=row[4],
        signing_key=row[5],
        address=row[6],
        status=row[7],
        created_at=int(row[8]),
        revoked_at=None if row[9] is None else int(row[9]),
        bundle_version=int(row[10]),
        posture_at=None if row[11] is None else int(row[11]),
        posture=None if row[12] is None else json.loads(row[12]),
        reachable=tuple(json.loads(row[13])),
        lease_until=None if row[14] is None else int(row[14]),
        relay_key=row[15],
    )


class SqlStorage:
    """``Storage`` over a DB-API connection; see ``open_storage``. Thread-safe."""

    def __init__(self, conn: Any, *, dialect: str) -> None:
        self._conn = conn
        self._dialect = dialect
        self._lock = threading.RLock()
        self._closed = False
        self._migrate()

    # plumbing ---------------------------------------------------------------------
    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._dialect == "postgresql" else statement

    def _is_unique_violation(self, exc: BaseException) -> bool:
        if self._dialect == "sqlite":
            return isinstance(exc, sqlite3.IntegrityError)
        import psycopg.errors

        return isinstance(exc, psycopg.errors.UniqueViolation)

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One transaction on the shared connection; rolled back on any error."""
        with self._lock:
            if self._closed:
                raise StorageError("storage is closed")
            cur = self._conn.cursor()
            try:
                if self._dialect == "sqlite":
                    cur.execute("BEGIN IMMEDIATE")
                yield cur
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise
            finally:
                cur.close()

    def _exec(self, cur: Any, statement: str, params: Sequence[Any] = ()) -> Any:
        cur.execute(self._sql(statement), tuple(params))
        return cur

    def _migrate(self) -> None:
        with self._tx() as cur:
            if self._dialect == "postgresql":
                # Serialise migrations of instances starting together on one database.
                cur.execute("SELECT pg_advisory_xact_lock(872341)")
            self._exec(cur, "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            row = self._exec(cur, "SELECT MAX(version) FROM schema_version").fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            for number, statements in MIGRATIONS:
                if number <= current:
                    continue
                for statement in statements:
                    self._exec(cur, statement.replace("{autoid}", _AUTOID[self._dialect]))
                self._exec(cur, "INSERT INTO schema_version (version) VALUES (?)", (number,))

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def schema_version(self) -> int:
        """The applied migration number."""
        with self._tx() as cur:
            row = self._exec(cur, "SELECT MAX(version) FROM schema_version").fetchone()
            return int(row[0])

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
        """See ``Storage.enroll_device``."""
        for _attempt in range(5):
            with self._tx() as cur:
                taken = self._exec(
                    cur,
                    "SELECT device_id FROM devices WHERE wg_public_key = ? OR signing_key = ?",
                    (wg_public_key, signing_key),
                ).fetchone()
                if taken is not None:
                    raise ConflictError("this key is already enrolled for another device")
                used = {
                    r[0]
                    for r in self._exec(
                        cur, "SELECT address FROM devices WHERE address IS NOT NULL"
                    ).fetchall()
                }
                address = _first_free(pool, used | reserved)
                if address is None:
                    raise PoolExhaustedError(f"address pool {pool} is exhausted")
                try:
                    self._exec(
                        cur,
                        "INSERT INTO devices (device_id, user_id, name, platform, wg_public_key,"
                        " signing_key, address, status, created_at, relay_key) VALUES"
                        " (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
                        (
                            device_id,
                            user_id,
                            name,
                            platform,
                            wg_public_key,
                            signing_key,
                            address,
                            now,
                            relay_key,
                        ),
                    )
                except Exception as exc:
                    if not self._is_unique_violation(exc):
                        raise
                    # Another instance won the race for a key or the address: re-check.
                    continue
            return self.get_device(device_id)
        raise ConflictError("could not allocate an address (contention); try again")

    def get_device(self, device_id: str) -> DeviceRecord:
        """See ``Storage.get_device``."""
        with self._tx() as cur:
            row = self._exec(
                cur, f"SELECT {_DEVICE_COLS} FROM devices WHERE device_id = ?", (device_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no device {device_id!r}")
        return _row_to_device(row)

    def list_devices(self) -> list[DeviceRecord]:
        """See ``Storage.list_devices``."""
        with self._tx() as cur:
            rows = self._exec(
                cur, f"SELECT {_DEVICE_COLS} FROM devices ORDER BY created_at, device_id"
            ).fetchall()
        return [_row_to_device(r) for r in rows]

    def revoke_device(self, device_id: str, *, now: int) -> DeviceRecord:
        """See ``Storage.revoke_device``."""
        before = self.get_device(device_id)
        if before.status == "revoked":
            return before
        with self._tx() as cur:
            self._exec(
                cur,
                "UPDATE devices SET status = 'revoked', revoked_at = ?, address = NULL"
                " WHERE device_id = ? AND status = 'active'",
                (now, device_id),
            )
            self._exec(cur, "DELETE FROM nonces WHERE device_id = ?", (device_id,))
        return before

    def record_posture(
        self, device_id: str, *, posture: dict[str, Any], reachable: list[str], now: int
    ) -> None:
        """See ``Storage.record_posture``."""
        with self._tx() as cur:
            n = self._exec(
                cur,
                "UPDATE devices SET posture = ?, reachable = ?, posture_at = ? WHERE device_id = ?",
                (json.dumps(posture, sort_keys=True), json.dumps(reachable), now, device_id),
            ).rowcount
        if n == 0:
            raise NotFoundError(f"no device {device_id!r}")

    def next_bundle_version(self, device_id: str) -> int:
        """See ``Storage.next_bundle_version``."""
        with self._tx() as cur:
            row = self._exec(
                cur,
                "UPDATE devices SET bundle_version = bundle_version + 1"
                " WHERE device_id = ? RETURNING bundle_version",
                (device_id,),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no device {device_id!r}")
        return int(row[0])

    def set_lease(self, device_id: str, until: int) -> None:
        """See ``Storage.set_lease``."""
        with self._tx() as cur:
            n = self._exec(
                cur, "UPDATE devices SET lease_until = ? WHERE device_id = ?", (until, device_id)
            ).rowcount
        if n == 0:
            raise NotFoundError(f"no device {device_id!r}")

    def set_reachable(self, device_id: str, reachable: list[str]) -> None:
        """See ``Storage.set_reachable``."""
        with self._tx() as cur:
            n = self._exec(
                cur,
                "UPDATE devices SET reachable = ? WHERE device_id = ?",
                (json.dumps(reachable), device_id),
            ).rowcount
        if n == 0:
            raise NotFoundError(f"no device {device_id!r}")

    # nonces -----------------------------------------------------------------------
    def add_nonce(self, nonce: str, device_id: str, expires_at: int) -> None:
        """See ``Storage.add_nonce``."""
        with self._tx() as cur:
            # Keep the table small: expired nonces are useless.
            self._exec(cur, "DELETE FROM nonces WHERE expires_at < ?", (expires_at - 3600,))
            self._exec(
                cur,
                "INSERT INTO nonces (nonce, device_id, expires_at) VALUES (?, ?, ?)",
                (nonce, device_id, expires_at),
            )

    def take_nonce(self, nonce: str, device_id: str, now: int) -> bool:
        """See ``Storage.take_nonce``."""
        with self._tx() as cur:
            row = self._exec(
                cur,
                "DELETE FROM nonces WHERE nonce = ? RETURNING device_id, expires_at",
                (nonce,),
            ).fetchone()
        return row is not None and row[0] == device_id and int(row[1]) >= now

    # policy -----------------------------------------------------------------------
    def _put(self, table: str, key: str, ident: str, body: dict[str, Any]) -> None:
        text = json.dumps(body, sort_keys=True)
        with self._tx() as cur:
            self._exec(cur, f"DELETE FROM {table} WHERE {key} = ?", (ident,))
            self._exec(
                cur,
                f"INSERT INTO {table} ({key}, body) VALUES (?, ?)",
                (ident, text),
            )

    def _delete(self, table: str, key: str, ident: str) -> None:
        with self._tx() as cur:
            n = self._exec(cur, f"DELETE FROM {table} WHERE {key} = ?", (ident,)).rowcount
        if n == 0:
            raise NotFoundError(f"no {table[:-1]} {ident!r}")

    def _list(self, table: str, key: str) -> list[dict[str, Any]]:
        with self._tx() as cur:
            rows = self._exec(cur, f"SELECT body FROM {table} ORDER BY {key}").fetchall()
        return [json.loads(r[0]) for r in rows]

    def put_resource(self, resource_id: str, body: dict[str, Any]) -> None:
        """See ``Storage.put_resource``."""
        self._put("resources", "resource_id", resource_id, body)

    def delete_resource(self, resource_id: str) -> None:
        """See ``Storage.delete_resource``."""
        self._delete("resources", "resource_id", resource_id)

    def list_resources(self) -> list[dict[str, Any]]:
        """See ``Storage.list_resources``."""
        return self._list("resources", "resource_id")

    def put_rule(self, rule_id: str, body: dict[str, Any]) -> None:
        """See ``Storage.put_rule``."""
        self._put("rules", "rule_id", rule_id, body)

    def delete_rule(self, rule_id: str) -> None:
        """See ``Storage.delete_rule``."""
        self._delete("rules", "rule_id", rule_id)

    def list_rules(self) -> list[dict[str, Any]]:
        """See ``Storage.list_rules``."""
        return self._list("rules", "rule_id")

    # users ------------------------------------------------------------------------
    def set_user_groups(self, user_id: str, groups: list[str]) -> None:
        """See ``Storage.set_user_groups``."""
        with self._tx() as cur:
            self._exec(cur, "DELETE FROM user_groups WHERE user_id = ?", (user_id,))
            self._exec(
                cur,
                "INSERT INTO user_groups (user_id, groups_json) VALUES (?, ?)",
                (user_id, json.dumps(sorted(set(groups)))),
            )

    def get_user_groups(self, user_id: str) -> list[str] | None:
        """See ``Storage.get_user_groups``."""
        with self._tx() as cur:
            row = self._exec(
                cur, "SELECT groups_json FROM user_groups WHERE user_id = ?", (user_id,)
            ).fetchone()
        return None if row is None else list(json.loads(row[0]))

    def list_users(self) -> list[tuple[str, list[str]]]:
        """See ``Storage.list_users``."""
        with self._tx() as cur:
            rows = self._exec(
                cur, "SELECT user_id, groups_json FROM user_groups ORDER BY user_id"
            ).fetchall()
        return [(r[0], list(json.loads(r[1]))) for r in rows]

    def set_identity(self, user_id: str, subject: str, email: str, groups: list[str]) -> None:
        """See ``Storage.set_identity``."""
        with self._tx() as cur:
            self._exec(cur, "DELETE FROM identities WHERE user_id = ?", (user_id,))
            self._exec(
                cur,
                "INSERT INTO identities (user_id, subject, email, groups_json) VALUES (?, ?, ?, ?)",
                (user_id, subject, email, json.dumps(sorted(set(groups)))),
            )

    def list_identities(self) -> dict[str, tuple[str, str, list[str]]]:
        """See ``Storage.list_identities``."""
        with self._tx() as cur:
            rows = self._exec(
                cur, "SELECT user_id, subject, email, groups_json FROM identities"
            ).fetchall()
        return {r[0]: (r[1], r[2], list(json.loads(r[3]))) for r in rows}

    # audit ------------------------------------------------------------------------
    def add_audit(self, entry: AuditEntry) -> None:
        """See ``Storage.add_audit``."""
        try:
            with self._tx() as cur:
                self._exec(
                    cur,
                    "INSERT INTO audit (record_id, at, kind, user_id, device_id, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        entry.record_id,
                        entry.at,
                        entry.kind,
                        entry.user_id,
                        entry.device_id,
                        entry.detail,
                    ),
                )
        except Exception as exc:
            if self._is_unique_violation(exc):
                raise ConflictError(f"audit record {entry.record_id!r} exists") from exc
            raise

    def list_audit(self, *, device_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        """See ``Storage.list_audit``."""
        where, params = ("WHERE device_id = ? ", [device_id]) if device_id is not None else ("", [])
        with self._tx() as cur:
            rows = self._exec(
                cur,
                "SELECT record_id, at, kind, user_id, device_id, detail FROM audit "
                f"{where}ORDER BY at DESC, record_id DESC LIMIT ?",
                (*params, max(0, int(limit))),
            ).fetchall()
        return [
            AuditEntry(
                record_id=r[0],
                at=int(r[1]),
                kind=r[2],
                user_id=r[3],
                device_id=r[4],
                detail=r[5],
            )
            for r in reversed(rows)
        ]

    # decision telemetry -----------------------------------------------------------
    def store_decisions(
        self,
        device_id: str,
        seq: int,
        entries: list[DecisionEntry],
        *,
        ids: list[int] | None = None,
    ) -> bool:
        """See ``Storage.store_decisions``. The conditional UPDATE takes the row lock, so
        two instances storing the same batch at once store it once."""
        with self._tx() as cur:
            self._relaxed_commit(cur)
            self._exec(
                cur,
                "INSERT INTO telemetry_seq (device_id, last_seq) VALUES (?, 0) "
                "ON CONFLICT (device_id) DO NOTHING",
                (device_id,),
            )
            moved = self._exec(
                cur,
                "UPDATE telemetry_seq SET last_seq = ? WHERE device_id = ? AND last_seq < ?",
                (seq, device_id, seq),
            ).rowcount
            if moved != 1:
                return False
            if entries:
                rows = [
                    (
                        e.device_id,
                        e.user_id,
                        e.seq,
                        e.kind,
                        e.at,
                        e.effect,
                        e.count,
                        e.app,
                        e.host,
                        e.ip,
                        e.port,
                        e.rule,
                        e.resource,
                        e.code,
                        e.reason,
                        e.risk,
                        e.dropped,
                    )
                    for e in entries
                ]
                one = "(" + ", ".join(["?"] * 17) + ")"
                if self._dialect == "postgresql":
                    # One statement for the batch: executemany's pipeline held the GIL
                    # for a quarter of a replica's ingest time (bench_console). The ids
                    # come back in the VALUES order.
                    cur.execute(
                        self._sql(
                            f"INSERT INTO decisions ({_DECISION_COLS}) VALUES "
                            + ", ".join([one] * len(rows))
                            + (" RETURNING record_id" if ids is not None else "")
                        ),
                        [value for row in rows for value in row],
                    )
                    if ids is not None:
                        ids.extend(int(r[0]) for r in cur.fetchall())
                else:
                    cur.executemany(f"INSERT INTO decisions ({_DECISION_COLS}) VALUES {one}", rows)
                    if ids is not None:
                        ids.extend(self._inserted_ids(cur, len(entries)))
        return True

    def _inserted_ids(self, cur: Any, n: int) -> list[int]:
        """SQLite: the record ids of the ``n`` rows just inserted, in order. The write
        lock (BEGIN IMMEDIATE) and AUTOINCREMENT make them the ``n`` ids up to the last."""
        row = cur.execute("SELECT last_insert_rowid()").fetchone()
        last = int(row[0])
        return list(range(last - n + 1, last + 1))

    def _relaxed_commit(self, cur: Any) -> None:
        """PostgreSQL: this transaction's commit does not wait for its WAL flush.

        For decision telemetry only, a live view and not the record: waiting for the flush
        made every batch wait on a disk sync on the controller's loop and capped ingest
        (benchmark: bench_console). A database crash can lose the last fraction of a second
        of acknowledged decisions (never half a batch: the commit is still atomic, and
        the sequence row moves with the rows); all other state keeps the durable commit.
        """
        if self._dialect == "postgresql":
            cur.execute("SET LOCAL synchronous_commit TO OFF")

    def prune_decisions(self, keep: int) -> int:
        """See ``Storage.prune_decisions``. One range delete on the primary key."""
        with self._tx() as cur:
            self._relaxed_commit(cur)
            row = self._exec(cur, "SELECT MAX(record_id) FROM decisions").fetchone()
            if not row or row[0] is None or int(row[0]) <= keep:
                return 0
            gone = self._exec(
                cur, "DELETE FROM decisions WHERE record_id <= ?", (int(row[0]) - keep,)
            ).rowcount
        return max(0, int(gone))

    def list_decisions(
        self,
        *,
        user_id: str | None = None,
        device_id: str | None = None,
        resource: str | None = None,
        effect: str | None = None,
        limit: int = 100,
    ) -> list[DecisionEntry]:
        """See ``Storage.list_decisions``."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("user_id", user_id),
            ("device_id", device_id),
            ("resource", resource),
            ("effect", effect),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = ("WHERE " + " AND ".join(where) + " ") if where else ""
        with self._tx() as cur:
            rows = self._exec(
                cur,
                f"SELECT record_id, {_DECISION_COLS} FROM decisions "
                f"{clause}ORDER BY record_id DESC LIMIT ?",
                (*params, max(0, int(limit))),
            ).fetchall()
        return [
            DecisionEntry(
                record_id=int(r[0]),
                device_id=r[1],
                user_id=r[2],
                seq=int(r[3]),
                kind=r[4],
                at=float(r[5]),
                effect=r[6],
                count=int(r[7]),
                app=r[8],
                host=r[9],
                ip=r[10],
                port=int(r[11]),
                rule=r[12],
                resource=r[13],
                code=r[14],
                reason=r[15],
                risk=int(r[16]),
                dropped=int(r[17]),
            )
            for r in rows
        ]

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
        """See ``Storage.search_audit``."""
        where: list[str] = []
        params: list[Any] = []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if kind_prefix is not None:
            where.append("kind LIKE ? ESCAPE '\\'")
            params.append(_like_escape(kind_prefix) + "%")
        for column, value in (("user_id", user), ("device_id", device)):
            if value:
                where.append(f"LOWER({column}) LIKE ? ESCAPE '\\'")
                params.append("%" + _like_escape(value.lower()) + "%")
        clause = ("WHERE " + " AND ".join(where) + " ") if where else ""
        with self._tx() as cur:
            rows = self._exec(
                cur,
                "SELECT record_id, at, kind, user_id, device_id, detail FROM audit "
                f"{clause}ORDER BY at DESC, record_id DESC LIMIT ? OFFSET ?",
                (*params, max(0, int(limit)), max(0, int(offset))),
            ).fetchall()
        return [
            AuditEntry(
                record_id=r[0], at=int(r[1]), kind=r[2], user_id=r[3], device_id=r[4], detail=r[5]
            )
            for r in rows
        ]

    # console sessions (admin console sign-ins) --------------------------------------
    def create_console_session(self, session: ConsoleSession) -> None:
        """See ``Storage.create_console_session``."""
        with self._tx() as cur:
            self._exec(
                cur,
                "INSERT INTO console_sessions (session_hash, user_id, email, name, "
                "groups_json, csrf, created_at, seen_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.session_hash,
                    session.user_id,
                    session.email,
                    session.name,
                    json.dumps(list(session.groups)),
                    session.csrf,
                    session.created_at,
                    session.seen_at,
                    session.expires_at,
                ),
            )

    def get_console_session(self, session_hash: str) -> ConsoleSession | None:
        """See ``Storage.get_console_session``."""
        with self._tx() as cur:
            r = self._exec(
                cur,
                "SELECT session_hash, user_id, email, name, groups_json, csrf, created_at, "
                "seen_at, expires_at FROM console_sessions WHERE session_hash = ?",
                (session_hash,),
            ).fetchone()
        if r is None:
            return None
        return ConsoleSession(
            session_hash=r[0],
            user_id=r[1],
            email=r[2],
            name=r[3],
            groups=tuple(json.loads(r[4])),
            csrf=r[5],
            created_at=int(r[6]),
            seen_at=int(r[7]),
            expires_at=int(r[8]),
        )

    def touch_console_session(self, session_hash: str, seen_at: int) -> None:
        """See ``Storage.touch_console_session``."""
        with self._tx() as cur:
            self._exec(
                cur,
                "UPDATE console_sessions SET seen_at = ? WHERE session_hash = ? AND seen_at < ?",
                (seen_at, session_hash, seen_at),
            )

    def delete_console_session(self, session_hash: str) -> None:
        """See ``Storage.delete_console_session``."""
        with self._tx() as cur:
            self._exec(cur, "DELETE FROM console_sessions WHERE session_hash = ?", (session_hash,))

    def purge_console_sessions(self, *, idle_before: int, now: int) -> int:
        """See ``Storage.purge_console_sessions``."""
        with self._tx() as cur:
            gone = self._exec(
                cur,
                "DELETE FROM console_sessions WHERE seen_at < ? OR expires_at <= ?",
                (idle_before, now),
            ).rowcount
        return max(0, int(gone))

    # console stats (overview page) ----------------------------------------------------
    def console_stats(self, *, now: float, minutes: int = 60, top: int = 10) -> ConsoleStats:
        """See ``Storage.console_stats``. Aggregated in the database: the window may hold
        millions of rows."""
        # Whole minutes; SQLite's CAST truncates, PostgreSQL's rounds (hence FLOOR).
        minute = (
            "CAST(FLOOR(at / 60) AS BIGINT)"
            if self._dialect == "postgresql"
            else "CAST(at / 60 AS INTEGER)"
        )
        since = (int(now) // 60 - (minutes - 1)) * 60
        with self._tx() as cur:
            rows = self._exec(
                cur,
                f"SELECT {minute} AS m, effect, SUM(count) FROM decisions "
                "WHERE at >= ? AND at < ? GROUP BY m, effect",
                (float(since), float(now) + 60.0),
            ).fetchall()
            denied = self._exec(
                cur,
                "SELECT resource, SUM(count) AS n FROM decisions "
                "WHERE effect = 'deny' AND at >= ? GROUP BY resource "
                "ORDER BY n DESC, resource LIMIT ?",
                (float(now) - 86400.0, max(0, int(top))),
            ).fetchall()
        per_minute: dict[int, tuple[int, int]] = {}
        for m, effect, n in rows:
            key = int(m) * 60
            allowed, refused = per_minute.get(key, (0, 0))
            if effect == "allow":
                allowed += int(n)
            else:
                refused += int(n)
            per_minute[key] = (allowed, refused)
        return ConsoleStats(per_minute=per_minute, top_denied=[(r[0], int(r[1])) for r in denied])

    # policy drafts (console) --------------------------------------------------------
    def policy_version(self) -> int:
        """See ``Storage.policy_version``."""
        with self._tx() as cur:
            row = self._exec(cur, "SELECT value FROM policy_meta WHERE name = 'version'").fetchone()
        return 0 if row is None else int(row[0])

    def _bump_version(self, cur: Any, expected: int | None) -> int | None:
        """Increment the policy version inside ``cur``'s transaction; None when it is not
        ``expected``. The UPDATE takes the row's lock, so of two publishers starting from
        the same version exactly one moves it."""
        self._exec(
            cur,
            "INSERT INTO policy_meta (name, value) VALUES ('version', 0) "
            "ON CONFLICT (name) DO NOTHING",
        )
        if expected is None:
            row = self._exec(
                cur,
                "UPDATE policy_meta SET value = value + 1 WHERE name = 'version' RETURNING value",
            ).fetchone()
        else:
            row = self._exec(
                cur,
                "UPDATE policy_meta SET value = value + 1 WHERE name = 'version' AND value = ?"
                " RETURNING value",
                (expected,),
            ).fetchone()
        return None if row is None else int(row[0])

    def bump_policy_version(self) -> int:
        """See ``Storage.bump_policy_version``."""
        with self._tx() as cur:
            version = self._bump_version(cur, None)
        assert version is not None  # unconditional update of a row just ensured
        return version

    def apply_policy(
        self,
        *,
        expected_version: int | None,
        put_resources: Mapping[str, dict[str, Any]] | None = None,
        delete_resources: Sequence[str] = (),
        put_rules: Mapping[str, dict[str, Any]] | None = None,
        delete_rules: Sequence[str] = (),
    ) -> int:
        """See ``Storage.apply_policy``."""
        with self._tx() as cur:
            version = self._bump_version(cur, expected_version)
            if version is None:
                raise ConflictError(
                    "the policy changed since you started editing: review the new diff"
                )
            for table, key, deletes, puts in (
                ("rules", "rule_id", delete_rules, put_rules or {}),
                ("resources", "resource_id", delete_resources, put_resources or {}),
            ):
                for ident in deletes:
                    n = self._exec(cur, f"DELETE FROM {table} WHERE {key} = ?", (ident,)).rowcount
                    if n == 0:
                        raise NotFoundError(f"no {table[:-1]} {ident!r}")
                for ident, body in puts.items():
                    self._exec(cur, f"DELETE FROM {table} WHERE {key} = ?", (ident,))
                    self._exec(
                        cur,
                        f"INSERT INTO {table} ({key}, body) VALUES (?, ?)",
                        (ident, json.dumps(body, sort_keys=True)),
                    )
        return version

    def get_policy_draft(self, admin_id: str) -> tuple[str, int, int] | None:
        """See ``Storage.get_policy_draft``."""
        with self._tx() as cur:
            row = self._exec(
                cur,
                "SELECT body, base_version, updated_at FROM policy_drafts WHERE admin_id = ?",
                (admin_id,),
            ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), int(row[2]))

    def put_policy_draft(self, admin_id: str, body: str, base_version: int, now: int) -> None:
        """See ``Storage.put_policy_draft``."""
        with self._tx() as cur:
            self._exec(cur, "DELETE FROM policy_drafts WHERE admin_id = ?", (admin_id,))
            self._exec(
                cur,
                "INSERT INTO policy_drafts (admin_id, body, base_version, updated_at)"
                " VALUES (?, ?, ?, ?)",
                (admin_id, body, base_version, now),
            )

    def delete_policy_draft(self, admin_id: str) -> bool:
        """See ``Storage.delete_policy_draft``."""
        with self._tx() as cur:
            n = self._exec(
                cur, "DELETE FROM policy_drafts WHERE admin_id = ?", (admin_id,)
            ).rowcount
        return bool(n)

    # --- relay (issue 21) ---
    def set_relay_key(self, device_id: str, relay_key: str) -> None:
        """See ``Storage.set_relay_key``."""
        with self._tx() as cur:
            n = self._exec(
                cur,
                "UPDATE devices SET relay_key = ? WHERE device_id = ? AND status = 'active'",
                (relay_key, device_id),
            ).rowcount
        if n == 0:
            raise NotFoundError(f"no active device {device_id!r}")

    def relay_devices(self) -> dict[str, str]:
        """See ``Storage.relay_devices``."""
        with self._tx() as cur:
            rows = self._exec(
                cur,
                "SELECT device_id, relay_key FROM devices"
                " WHERE status = 'active' AND relay_key IS NOT NULL ORDER BY device_id",
            ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}


def _like_escape(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _first_free(
    pool: ipaddress.IPv4Network | ipaddress.IPv6Network, used: set[str] | frozenset[str]
) -> str | None:
    """The lowest host address of ``pool`` (as ``addr/prefix``) not in ``used``."""
    prefix = 32 if pool.version == 4 else 128
    for count, host in enumerate(pool.hosts()):
        if count > 65536:
            break
        text = f"{host}/{prefix}"
        if text not in used and str(host) not in used:
            return text
    return None


def open_storage(url: str) -> SqlStorage:
    """Open (creating and migrating) the database named by ``url``.

    ``sqlite:///abs/path.db``, ``sqlite://:memory:`` or a ``postgresql://`` conninfo URL.
    Raises ``StorageError`` for an unknown scheme or a database that cannot be opened.
    """
    try:
        if url.startswith("sqlite://"):
            path = url.removeprefix("sqlite://")
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=5000")
            # isolation_level=None + explicit BEGIN IMMEDIATE in _tx: we own transactions.
            return SqlStorage(conn, dialect="sqlite")
        if url.startswith(("postgresql://", "postgres://")):
            import psycopg

            return SqlStorage(psycopg.connect(url), dialect="postgresql")
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(f"cannot open database {url!r}: {exc}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("psycopg"):
            raise StorageError(f"cannot open database: {exc}") from exc
        raise
    raise StorageError(f"unsupported database URL {url!r} (sqlite:// or postgresql://)")
