"""The proxy with the real policy engine (core.policy.PolicyEngine) as its Decider:
a bundle allows one app to one resource; a new bundle revokes open connections."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from core.policy.api import Effect
from core.policy.engine import PolicyEngine
from core.proxy import EventKind, ProxyEvent, ProxyServer
from core.wire.policy import AppMatch, PolicyBundle, Resource, Rule, UserInfo
from tests.core.proxy.helpers import EchoServer, socks_open
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.integration


def _bundle(version: int, echo_port: int, *, allow: bool, app_exe: str) -> PolicyBundle:
    now = int(time.time())
    resource = Resource(id="echo", name="Echo", cidrs=("127.0.0.0/8",), ports=(echo_port,))
    rules = (
        Rule(id="allow-echo", effect="allow", resources=("echo",), apps=(AppMatch(exe=app_exe),)),
    )
    if not allow:
        rules += (Rule(id="deny-echo", effect="deny", resources=("echo",), priority=10),)
    return PolicyBundle(
        version=version,
        device_id="dev-proxy-test",
        issued_at=now - 60,
        expires_at=now + 3600,
        user=UserInfo(subject="alice"),
        resources=(resource,),
        rules=rules,
    )


async def test_real_engine_decides_and_revokes() -> None:
    echo = EchoServer()
    await echo.start()
    me = os.readlink("/proc/self/exe")
    engine = PolicyEngine(record=False)
    engine.load(_bundle(1, echo.port, allow=True, app_exe=me))
    events: list[ProxyEvent] = []
    server = ProxyServer(engine, host_uid=os.getuid(), on_event=events.append)
    await server.start(0)
    try:
        code, r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        assert code == 0
        w.write(b"hi")
        assert await r.readexactly(2) == b"hi"
        other_port, _r2, w2 = await socks_open(
            server.port, "127.0.0.1", echo.port + 1 if echo.port < 65535 else 1
        )
        w2.close()
        assert other_port == 2  # not a resource: default deny
        engine.load(_bundle(2, echo.port, allow=False, app_exe=me))
        assert server.reevaluate() == 1
        assert await asyncio.wait_for(r.read(), 1) == b""
        w.close()
        await async_wait_until(
            lambda: any(e.kind is EventKind.REVOKED for e in events), what="the revocation"
        )
        first = events[0]
        assert first.effect is Effect.ALLOW
        assert first.rule == "allow-echo"
        assert first.resource == "echo"
        assert first.app.exe == me
        revoked = [e for e in events if e.kind is EventKind.REVOKED]
        assert len(revoked) == 1
        assert revoked[0].rule == "deny-echo"
        assert server.counters().resources["echo"].connections == 1
    finally:
        await server.stop()
        await echo.stop()
