"""Per-user refusal with a REAL second user's process (root: creates a throwaway user).

The proxy serves only ``host_uid``; curl run as another system user is identified by
netlink sock_diag at accept and its connection closed before a byte is read (no SOCKS
greeting answered, no HTTP status), while our own user's curl through the same proxy
still works.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from core.policy.api import Effect
from core.proxy import EventKind, ProxyEvent, ProxyServer
from tests.core.proxy.helpers import EchoServer, TableDecider
from tests.fakes.wait import async_wait_until

pytestmark = [pytest.mark.integration, pytest.mark.root]


@pytest.fixture
def other_user() -> Iterator[str]:
    if shutil.which("useradd") is None:
        pytest.skip("needs useradd")
    name = f"rtpx{os.getpid() % 100000}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True)


async def test_second_users_process_is_refused(other_user: str) -> None:
    echo = EchoServer()
    await echo.start()
    events: list[ProxyEvent] = []
    decider = TableDecider([("loop", (), ("127.0.0.0/8",), ())])
    server = ProxyServer(decider, host_uid=os.getuid(), on_event=events.append)
    await server.start(0)
    uid = pwd.getpwnam(other_user).pw_uid

    def curl(user: str | None, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["curl", "-sS", "--max-time", "5", *args],
            capture_output=True,
            text=True,
            user=user,
        )

    try:
        socks = ("--socks5-hostname", f"127.0.0.1:{server.port}", f"http://127.0.0.1:{echo.port}/")
        theirs = await asyncio.to_thread(curl, other_user, *socks)
        assert theirs.returncode == 97  # closed before the greeting was answered
        assert "(2)" not in theirs.stderr
        theirs_http = await asyncio.to_thread(
            curl,
            other_user,
            "-p",
            "--proxy",
            f"http://127.0.0.1:{server.port}",
            f"http://127.0.0.1:{echo.port}/",
        )
        assert theirs_http.returncode in (52, 56)  # empty reply / reset: no 403 was sent
        assert "403" not in theirs_http.stderr
        # our own user's process through the same proxy: allowed (the echo server sends
        # the request back, which is not HTTP, so curl fails *after* connecting)
        mine = await asyncio.to_thread(curl, None, "-o", "/dev/null", *socks)
        assert mine.returncode != 97
        await async_wait_until(lambda: len(events) >= 3, what="three decisions")
        refused = [e for e in events if e.kind is EventKind.REFUSED]
        assert len(refused) == 2
        for e in refused:
            assert e.effect is Effect.DENY
            assert e.destination == ""  # refused before the request was read
            assert f"uid {uid}" in e.reason
            assert e.app.uid == uid
            assert e.app.name == "curl"
            assert e.app.pid
        assert [e.effect for e in events if e.kind is EventKind.DECISION] == [Effect.ALLOW]
        assert all(r.app.uid == os.getuid() for r in decider.seen)
    finally:
        await server.stop()
        await echo.stop()
