"""Control characters never leave the proxy raw in an event (issue 16).

Event fields carry what a local process chose (its executable's path, a SOCKS host name)
and what a controller wrote (rule ids and descriptions, resource ids). An ESC starts a
terminal escape sequence and a newline forges a log line or a line of ``rustronaut up``:
every field is escaped where the event is made, with ``core.text``.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.policy.engine import PolicyEngine
from core.proxy import EventKind, ProxyEvent, ProxyServer
from core.proxy.bookkeeping import safe
from core.wire.policy import Resource
from tests.core.policy.helpers import bundle, rule
from tests.core.proxy.helpers import EchoServer, TableDecider, socks_open
from tests.fakes.wait import async_wait_until

pytestmark = [pytest.mark.integration, pytest.mark.hostile_local_user]

EVIL = "\x1b[2J\x1b]8;;https://evil.example\x07reset your password\x1b]8;;\x07\nFORGED line\u202e"
RAW = ("\x1b", "\n", "\x07", "\u202e")


def assert_clean(event: ProxyEvent) -> None:
    fields = [
        event.destination,
        event.reason,
        event.rule or "",
        event.resource or "",
        event.app.exe,
        event.app.name,
    ]
    for text in fields:
        assert not any(ch in text for ch in RAW), repr(text)


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    await server.start()
    yield server
    await server.stop()


async def test_controller_text_in_rules_is_escaped(echo: EchoServer) -> None:
    now = int(time.time())
    loop = Resource(
        id="loop" + EVIL, name="Loop" + EVIL, cidrs=("127.0.0.0/8",), ports=(echo.port,)
    )
    engine = PolicyEngine(record=False)
    engine.load(
        bundle(
            rule("allow" + EVIL, resources=(loop.id,), description=EVIL),
            resources=(loop,),
            issued_at=now - 60,
            expires_at=now + 3600,
        )
    )
    events: list[ProxyEvent] = []
    server = ProxyServer(engine, on_event=events.append, hosts=("127.0.0.1",))
    await server.start(0)
    try:
        code, _r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        w.close()
        await async_wait_until(lambda: events, what="the decision")
    finally:
        await server.stop()
    [event] = events
    assert code == 0
    assert_clean(event)
    assert "\\x1b[2J" in event.reason  # still readable, as text
    assert event.rule is not None
    assert "\\n" in event.rule


async def test_socks_host_name_with_control_bytes_is_escaped(echo: EchoServer) -> None:
    events: list[ProxyEvent] = []
    server = ProxyServer(TableDecider(), on_event=events.append, hosts=("127.0.0.1",))
    await server.start(0)
    try:
        code, _r, w = await socks_open(server.port, EVIL.encode()[:200], 443)
        w.close()
        await async_wait_until(lambda: events, what="the refusal")
    finally:
        await server.stop()
    assert code != 0
    assert_clean(events[0])


async def test_executable_path_with_control_characters_is_escaped(
    tmp_path: Path, echo: EchoServer
) -> None:
    """A real program whose path holds an ESC sequence and a newline connects."""
    system_python = shutil.which("python3.11", path="/usr/bin")
    if system_python is None:
        pytest.skip("needs /usr/bin/python3.11 to copy")
    folder = tmp_path / "a\x1b[31m\nFORGED"
    folder.mkdir()
    exe = folder / "tool\x1b[0m"
    shutil.copy(system_python, exe)
    events: list[ProxyEvent] = []
    server = ProxyServer(
        TableDecider([("loop", (), ("127.0.0.0/8",), ())]),
        on_event=events.append,
        hosts=("127.0.0.1",),
    )
    await server.start(0)
    client = (
        "import socket, struct, sys\n"
        "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
        "s.sendall(b'\\x05\\x01\\x00')\n"
        "assert s.recv(2) == b'\\x05\\x00'\n"
        "s.sendall(b'\\x05\\x01\\x00\\x01' + bytes([127, 0, 0, 1])"
        " + struct.pack('!H', int(sys.argv[2])))\n"
        "print(s.recv(10)[1])\n"
    )
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [str(exe), "-c", client, str(server.port), str(echo.port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.stdout.strip() == "0", done.stderr
        await async_wait_until(lambda: events, what="the decision")
    finally:
        await server.stop()
    [event] = events
    assert event.kind is EventKind.DECISION
    assert_clean(event)
    assert event.app.name == "tool\\x1b[0m"
    assert event.app.exe.endswith("/a\\x1b[31m\\nFORGED/tool\\x1b[0m")


def test_safe_keeps_printable_text_and_escapes_the_rest() -> None:
    assert safe("wiki.corp.example:443") == "wiki.corp.example:443"
    assert safe("Zürich — Büro") == "Zürich — Büro"
    assert safe("a\x1b[2Jb\nc\u202ed") == "a\\x1b[2Jb\\nc\\u202ed"
