"""The engine's local control socket with a real Unix socket and a real client."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from core.engine.control import ControlClient, ControlServer, EngineNotRunningError

from .test_engine import make

pytestmark = pytest.mark.integration


async def test_status_connect_disconnect_and_events(tmp_path: Path) -> None:
    rig = make(auto_connect=False)
    await rig.engine.start()
    server = ControlServer(rig.engine, tmp_path / "run" / "engine.sock")
    await server.start()
    try:
        assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(server.path.parent).st_mode) == 0o700
        client = ControlClient(server.path)
        status = await client.request("status")
        assert status["snapshot"]["state"] == "disconnected"

        seen: list[str] = []

        async def follow() -> None:
            async for event in client.events():
                seen.append(event["snapshot"]["state"])
                if event["snapshot"]["state"] == "connected":
                    return

        follower = asyncio.ensure_future(follow())
        await asyncio.sleep(0.05)
        answer = await client.request("connect")
        assert answer["ok"]
        assert answer["snapshot"]["state"] == "connected"
        await asyncio.wait_for(follower, 2)
        assert "enrolling" in seen
        answer = await client.request("disconnect")
        assert answer["snapshot"]["state"] == "disconnected"
        assert not rig.tunnel.is_up
    finally:
        await server.stop()
        await rig.engine.stop()
    assert not server.path.exists()


async def test_garbage_and_unknown_ops_are_refused_and_server_keeps_serving(
    tmp_path: Path,
) -> None:
    rig = make(auto_connect=False)
    server = ControlServer(rig.engine, tmp_path / "engine.sock")
    await server.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(server.path))
        writer.write(b'\x00\xffgarbage\n[1,2]\n{"op": "format-disk"}\n')
        await writer.drain()
        answers = [await reader.readline() for _ in range(3)]
        assert all(b'"ok": false' in a for a in answers)
        assert b"unknown op" in answers[2]
        writer.write(b"x" * 70_000 + b"\n")
        await writer.drain()
        assert b"too large" in await reader.readline()
        writer.close()
        assert (await ControlClient(server.path).request("status"))["ok"]
    finally:
        await server.stop()


async def test_no_engine_running(tmp_path: Path) -> None:
    with pytest.raises(EngineNotRunningError):
        await ControlClient(tmp_path / "nothing.sock").request("status")
