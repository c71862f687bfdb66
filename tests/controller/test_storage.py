"""Storage against SQLite and a REAL throw-away PostgreSQL cluster (initdb + pg_ctl)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.storage import ConflictError, NotFoundError, PoolExhaustedError, open_storage
from controller.storage.sql import MIGRATIONS

pytestmark = pytest.mark.integration

POOL = ipaddress.ip_network("10.9.0.0/29")  # 6 hosts


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'c.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    import psycopg

    name = f"t{os.getpid()}_{abs(hash(request.node.name)) % 10**8}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    yield base.replace("/postgres?", f"/{name}?")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _enroll(s, n: int, **kw):  # type: ignore[no-untyped-def]
    args = dict(
        device_id=f"d{n}",
        user_id="alice",
        name="n",
        platform="linux",
        wg_public_key=f"wg{n}",
        signing_key=f"sk{n}",
        pool=POOL,
        reserved=frozenset({"10.9.0.1/32"}),
        now=100 + n,
    )
    args.update(kw)
    return s.enroll_device(**args)


def test_migrations_and_state_survive_reopen(url: str) -> None:
    s = open_storage(url)
    assert s.schema_version() == MIGRATIONS[-1][0]
    d = _enroll(s, 1)
    assert d.address == "10.9.0.2/32"
    assert s.next_bundle_version("d1") == 1
    s.put_resource("wiki", {"id": "wiki"})
    s.set_user_groups("alice", ["b", "a", "a"])
    s.close()
    s.close()  # idempotent
    s = open_storage(url)  # migrations do not re-run
    try:
        assert s.get_device("d1").address == "10.9.0.2/32"
        assert s.next_bundle_version("d1") == 2  # monotonic across restarts
        assert s.list_resources() == [{"id": "wiki"}]
        assert s.get_user_groups("alice") == ["a", "b"]
    finally:
        s.close()


def test_keys_unique_pool_exhaustion_and_release(url: str) -> None:
    s = open_storage(url)
    try:
        for n in range(1, 6):
            _enroll(s, n)
        addrs = [d.address for d in s.list_devices()]
        assert len(set(addrs)) == 5
        assert "10.9.0.1/32" not in addrs
        with pytest.raises(PoolExhaustedError):
            _enroll(s, 9)
        with pytest.raises(ConflictError):
            _enroll(s, 10, wg_public_key="wg1")
        with pytest.raises(ConflictError):
            _enroll(s, 11, signing_key="sk2")
        assert len(s.list_devices()) == 5  # nothing stored by refusals
        before = s.revoke_device("d3", now=500)
        assert before.address == "10.9.0.4/32"
        assert s.get_device("d3").address is None
        assert s.revoke_device("d3", now=600).revoked_at == 500  # idempotent
        assert _enroll(s, 12).address == "10.9.0.4/32"  # released address reused
        with pytest.raises(ConflictError):
            _enroll(s, 13, wg_public_key="wg3")  # a revoked device's key stays burnt
        with pytest.raises(NotFoundError):
            s.get_device("nope")
    finally:
        s.close()


def test_nonces_single_use_bound_and_expiring(url: str) -> None:
    s = open_storage(url)
    try:
        _enroll(s, 1)
        s.add_nonce("n1", "d1", 200)
        s.add_nonce("n2", "d1", 200)
        s.add_nonce("n3", "d1", 200)
        assert s.take_nonce("n1", "d1", 150) is True
        assert s.take_nonce("n1", "d1", 150) is False
        assert s.take_nonce("n2", "d2", 150) is False  # other device: consumed, refused
        assert s.take_nonce("n3", "d1", 201) is False  # expired
        s.record_posture("d1", posture={"posture.x": True}, reachable=["wiki"], now=160)
        d = s.get_device("d1")
        assert d.reachable == ("wiki",)
        assert d.posture == {"posture.x": True}
    finally:
        s.close()


def test_identities_and_recomputed_reachability_survive_reopen(url: str) -> None:
    s = open_storage(url)
    try:
        _enroll(s, 1)
        s.set_identity("alice", "sub-1", "alice@example.com", ["eng", "eng", "a"])
        s.set_identity("alice", "sub-1", "alice@example.com", ["eng"])  # replaces
        s.set_reachable("d1", ["wiki", "payroll"])
        with pytest.raises(NotFoundError):
            s.set_reachable("nope", [])
    finally:
        s.close()
    s = open_storage(url)
    try:
        assert s.list_identities() == {"alice": ("sub-1", "alice@example.com", ["eng"])}
        assert s.get_device("d1").reachable == ("wiki", "payroll")
    finally:
        s.close()
