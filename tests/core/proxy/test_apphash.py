"""Rules pinned to an executable's hash, through the real proxy and the real policy engine.

The connecting app is this test process (a real python binary): a bundle naming its
SHA-256 must match it. Before issue 16 the proxy never computed ``AppIdentity.sha256``:
allow rules pinned to a hash never matched (fail closed) and deny rules pinned to one
never matched either (fail OPEN). The digest is cached by the file's identity, so a busy
app costs one stat.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.policy.api import Effect
from core.policy.engine import PolicyEngine
from core.proxy import EventKind, ProxyEvent, ProxyServer
from core.proxy.apphash import AppHasher, hash_file, rules_need_hash
from core.wire.policy import AppMatch, Resource
from tests.core.policy.helpers import bundle, rule
from tests.core.proxy.helpers import EchoServer, TableDecider, socks_open
from tests.fakes.wait import async_wait_until

pytestmark = [pytest.mark.integration, pytest.mark.hostile_local_user]

SELF_EXE = "/proc/self/exe"


def own_digest() -> str:
    with open(SELF_EXE, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    await server.start()
    yield server
    await server.stop()


def engine_with(echo_port: int, *rules: object) -> PolicyEngine:
    now = int(time.time())
    loop = Resource(id="loop", name="Loopback echo", cidrs=("127.0.0.0/8",), ports=(echo_port,))
    engine = PolicyEngine(record=False)
    engine.load(
        bundle(*rules, resources=(loop,), issued_at=now - 60, expires_at=now + 3600)  # type: ignore[arg-type]
    )
    return engine


async def connect_once(
    engine: PolicyEngine, echo: EchoServer, hasher: AppHasher | None = None
) -> tuple[int, ProxyEvent]:
    events: list[ProxyEvent] = []
    server = ProxyServer(engine, on_event=events.append, hasher=hasher, hosts=("127.0.0.1",))
    await server.start(0)
    try:
        code, _r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        w.close()
        await async_wait_until(lambda: events, what="the decision event")
    finally:
        await server.stop()
    [event] = events
    assert event.kind is EventKind.DECISION
    return code, event


async def test_allow_rule_pinned_to_the_apps_hash_matches(echo: EchoServer) -> None:
    pinned = (AppMatch(sha256=own_digest()),)
    engine = engine_with(echo.port, rule("this-python", resources=("loop",), apps=pinned))
    code, event = await connect_once(engine, echo)
    assert code == 0, event.reason
    assert event.effect is Effect.ALLOW
    assert event.rule == "this-python"


async def test_deny_rule_pinned_to_the_apps_hash_denies(echo: EchoServer) -> None:
    engine = engine_with(
        echo.port,
        rule("everyone", resources=("loop",)),
        rule(
            "not-this-binary",
            "deny",
            resources=("loop",),
            apps=(AppMatch(sha256=own_digest()),),
        ),
    )
    code, event = await connect_once(engine, echo)
    assert code == 2
    assert event.effect is Effect.DENY
    assert event.rule == "not-this-binary"


async def test_deny_rule_that_cannot_be_evaluated_denies(echo: EchoServer) -> None:
    """The executable cannot be hashed (here: larger than the hasher will read): the
    digest stays unknown, and a deny rule pinned to a hash denies rather than failing
    open. An allow rule pinned to a hash does not allow."""
    unreadable = AppHasher(max_bytes=0)
    other_digest = "0" * 64  # not this binary: only "unknown" can make it apply
    engine = engine_with(
        echo.port,
        rule("everyone", resources=("loop",)),
        rule("blocked-tool", "deny", resources=("loop",), apps=(AppMatch(sha256=other_digest),)),
    )
    code, event = await connect_once(engine, echo, unreadable)
    assert code == 2
    assert event.rule == "blocked-tool"
    # …while a hash that is known and different lets the allow stand
    code, event = await connect_once(engine, echo)
    assert code == 0, event.reason
    # an allow pinned to a hash never covers an app whose digest is unknown
    pinned_allow = engine_with(
        echo.port, rule("this-python", resources=("loop",), apps=(AppMatch(sha256=own_digest()),))
    )
    code, event = await connect_once(pinned_allow, echo, unreadable)
    assert code == 2


async def test_no_hash_is_computed_when_no_rule_names_one(echo: EchoServer) -> None:
    hasher = AppHasher()
    engine = engine_with(echo.port, rule("everyone", resources=("loop",)))
    assert not rules_need_hash(engine)
    assert not rules_need_hash(TableDecider())
    code, _event = await connect_once(engine, echo, hasher)
    assert code == 0
    assert hasher.hashed == 0


async def test_digest_is_cached_by_file_identity(tmp_path: Path) -> None:
    exe = tmp_path / "tool"
    exe.write_bytes(b"#!/bin/sh\necho one\n")
    hasher = AppHasher(proc=None)
    first = await hasher.sha256(None, str(exe))
    assert first == hashlib.sha256(exe.read_bytes()).hexdigest()
    assert await hasher.sha256(None, str(exe)) == first
    assert hasher.hashed == 1  # the second connection cost one stat, no read
    # rewritten in place with the same size and the old mtime put back: ctime still moved
    st = exe.stat()
    exe.write_bytes(b"#!/bin/sh\necho two\n")
    os.utime(exe, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = await hasher.sha256(None, str(exe))
    assert second == hashlib.sha256(b"#!/bin/sh\necho two\n").hexdigest()
    assert hasher.hashed == 2
    # many connections at once from an app not hashed yet: one read
    exe.write_bytes(b"three")
    results = await asyncio.gather(*(hasher.sha256(None, str(exe)) for _ in range(20)))
    assert set(results) == {hashlib.sha256(b"three").hexdigest()}
    assert hasher.hashed == 3


async def test_unhashable_files_leave_the_digest_unknown(tmp_path: Path) -> None:
    hasher = AppHasher(proc=None)
    assert await hasher.sha256(None, str(tmp_path / "gone")) is None
    assert await hasher.sha256(None, str(tmp_path)) is None  # not a regular file
    assert await hasher.sha256(None, "") is None
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert hash_file(str(fifo), 1 << 20) is None  # opened without waiting for a writer
    assert await AppHasher(proc=None, max_bytes=1).sha256(None, str(tmp_path / "x")) is None


def test_cache_hit_costs_one_stat() -> None:
    """The benchmark line: a cached digest costs one stat (microseconds)."""
    hasher = AppHasher()
    pid = os.getpid()
    digest = asyncio.run(hasher.sha256(pid, ""))
    assert digest == own_digest()
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        hit, _key = hasher.cached(pid, "")
    per_hit = (time.perf_counter() - start) / n
    assert hit == digest
    assert hasher.hashed == 1
    print(f"\napp digest cache hit: {per_hit * 1e6:.2f} µs per connection")
    assert per_hit < 200e-6
