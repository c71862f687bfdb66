"""The local API end to end: a real Engine (in-memory ports) served on a real Unix socket,
used by real ``RemoteEngine`` clients and by raw sockets speaking garbage."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import struct
from pathlib import Path

import pytest

from core.engine.api import MIN_REASON_LENGTH
from core.engine.localapi import protocol as p
from core.engine.localapi.client import RemoteEngine
from core.engine.localapi.errors import EngineNotRunningError, LocalApiError
from core.engine.localapi.server import LocalApiServer
from core.engine.localapi.transport import UnsafeDirectoryError, secure_dir
from core.engine.state import Event, EventKind
from core.engine.state import SessionState as S

from ..ports import ALICE
from .rig import SIGN_IN_URL, BrowserAuth, engine, serve, until

pytestmark = pytest.mark.integration


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "run" / "engine.sock"


async def raw(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_unix_connection(str(path))


def stale(path: Path) -> None:
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"")


def exists(path: Path) -> bool:
    return path.exists()


async def read_all(reader: asyncio.StreamReader) -> list[p.Reply]:
    """Every reply until the connection ends."""
    frames: list[p.Reply] = []
    try:
        while True:
            frames.append(await read_reply(reader))
    except (asyncio.IncompleteReadError, ConnectionError):
        return frames


async def read_reply(reader: asyncio.StreamReader) -> p.Reply:
    async with asyncio.timeout(2):
        (length,) = struct.unpack(">I", await reader.readexactly(4))
        return p.decode_reply(await reader.readexactly(length))


async def test_a_client_sees_the_engine_and_drives_it(sock: Path) -> None:
    eng = engine()
    server = await serve(eng, sock)
    try:
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
        client = await RemoteEngine.attach(sock, client="cli")
        assert (client.hosted_by, client.pid, client.version) == ("agent", os.getpid(), 1)
        assert client.snapshot == eng.snapshot
        assert client.snapshot.state is S.DISCONNECTED
        assert [s.key for s in client.settings()] == [s.key for s in eng.settings()]

        seen: list[Event] = []
        client.subscribe(seen.append)
        await client.connect()
        assert client.snapshot.state is S.CONNECTED
        assert client.snapshot == eng.snapshot
        await until(lambda: any(e.snapshot.state is S.CONNECTED for e in seen))
        assert all(type(e.snapshot.state) is S for e in seen)

        await client.disconnect()
        assert client.snapshot.state is S.DISCONNECTED
        await client.stop()
        assert client.closed
        assert eng.snapshot.state is S.DISCONNECTED  # detaching changed nothing
    finally:
        await server.stop()
        await eng.stop()
    assert not exists(sock)


async def test_a_change_by_one_client_shows_in_the_other_within_a_second(sock: Path) -> None:
    eng = engine()
    server = await serve(eng, sock)
    tray = await RemoteEngine.attach(sock, client="tray")
    cli = await RemoteEngine.attach(sock, client="cli")
    try:
        kinds: list[EventKind] = []
        tray.subscribe(lambda e: kinds.append(e.kind))
        await cli.connect()
        await until(lambda: tray.snapshot.state is S.CONNECTED, within=1.0)

        await cli.disconnect()
        await until(lambda: tray.snapshot.state is S.DISCONNECTED, within=1.0)

        await cli.set_setting("auto_connect", True)
        await until(lambda: EventKind.SETTINGS in kinds, within=1.0)
        assert {s.key: s.value for s in tray.settings()}["auto_connect"] is True

        await cli.connect()
        await until(lambda: tray.snapshot.state is S.CONNECTED, within=1.0)
        await cli.sign_out()
        await until(lambda: tray.snapshot.state is S.SIGNED_OUT, within=1.0)
        assert tray.snapshot.user is None
        assert eng.snapshot.state is S.SIGNED_OUT
    finally:
        await tray.stop()
        await cli.stop()
        await server.stop()
        await eng.stop()


async def test_the_sign_in_page_opens_only_in_the_client_that_asked(sock: Path) -> None:
    auth = BrowserAuth(None)
    eng = engine(auth=auth)
    server = await serve(eng, sock)
    asker = await RemoteEngine.attach(sock, client="tray")
    other = await RemoteEngine.attach(sock, client="tray")
    reader, writer = await raw(sock)  # a third front end, watching every frame it gets
    try:
        writer.write(p.encode(p.Subscribe(id=1)))
        assert isinstance(await read_reply(reader), p.SnapshotReply)
        other_opened: list[str] = []
        other.subscribe(lambda e: other_opened.extend(u for u in [e.message] if "idp" in u))
        opened: list[str] = []
        signing_in = asyncio.ensure_future(asker.sign_in(open_url=opened.append))
        await until(lambda: opened == [SIGN_IN_URL])
        auth.approved.set()
        await signing_in
        assert asker.snapshot.user == ALICE.email
        await until(lambda: other.snapshot.state is S.CONNECTED)
        # The watcher got events, and not one open_url among them.
        writer.close()
        frames = await read_all(reader)
        assert any(isinstance(f, p.EventMsg) for f in frames)
        assert not any(isinstance(f, p.OpenUrl) for f in frames)
        assert other_opened == []
    finally:
        await asker.stop()
        await other.stop()
        await server.stop()
        await eng.stop()


async def test_refusals_arrive_as_typed_errors_with_words_and_code(sock: Path) -> None:
    eng = engine(always_on=True)
    server = await serve(eng, sock)
    client = await RemoteEngine.attach(sock)
    try:
        with pytest.raises(LocalApiError) as locked:
            await client.set_setting("controller_url", "https://evil.example")
        assert locked.value.code == "setting_locked"
        assert locked.value.title == "This setting is managed by your organization"
        assert locked.value.next_step
        assert "Error" not in str(locked.value)

        await client.connect()
        with pytest.raises(LocalApiError) as refused:
            await client.disconnect()
        assert refused.value.code == "always_on"
        with pytest.raises(LocalApiError) as short:
            await client.sign_out(break_glass_reason="x" * (MIN_REASON_LENGTH - 1))
        # Too short is refused (as "always_on" or the finer "reason_too_short").
        assert short.value.code in {"always_on", "reason_too_short"}
        assert client.snapshot.state is S.CONNECTED
        await client.disconnect(break_glass_reason="the VPN breaks my video call")
        assert client.snapshot.state is S.DISCONNECTED
    finally:
        await client.stop()
        await server.stop()
        await eng.stop()


async def test_garbage_is_answered_bad_request_and_closed_without_a_traceback(
    sock: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    eng = engine()
    server = await serve(eng, sock)
    try:
        for garbage in (
            struct.pack(">I", 3) + b"\xff\xfe\xfd",  # invalid UTF-8
            struct.pack(">I", 11) + b"not json!!!",
            struct.pack(">I", p.MAX_FRAME + 1),  # oversized: refused before the body
            p.frame(b"[" * 50_000 + b"]" * 50_000),  # deep nesting
            p.frame(b'{"type":"launch","id":5}'),
        ):
            reader, writer = await raw(sock)
            writer.write(garbage)
            reply = await read_reply(reader)
            assert isinstance(reply, p.ErrorReply)
            assert reply.code == "bad_request"
            assert reply.title
            assert reply.next_step
            assert await asyncio.wait_for(reader.read(), 2) == b""  # closed
            writer.close()
        # ...and the server still serves.
        client = await RemoteEngine.attach(sock)
        await client.stop()
    finally:
        await server.stop()
        await eng.stop()
    assert not [r for r in caplog.records if r.exc_info]
    assert "Traceback" not in caplog.text


async def test_a_wrong_version_is_answered_and_the_connection_stays(sock: Path) -> None:
    eng = engine()
    server = await serve(eng, sock)
    try:
        reader, writer = await raw(sock)
        writer.write(p.frame(b'{"v":2,"type":"hello","id":3}'))
        reply = await read_reply(reader)
        assert isinstance(reply, p.ErrorReply)
        assert reply.id == 3
        assert reply.code == "unsupported_version"
        writer.write(p.encode(p.Hello(id=4)))
        hello = await read_reply(reader)
        assert isinstance(hello, p.HelloReply)
        assert hello.version == 1
        writer.close()
    finally:
        await server.stop()
        await eng.stop()


async def test_a_frame_started_and_never_finished_times_out(sock: Path) -> None:
    eng = engine()
    server = LocalApiServer(eng, sock, frame_timeout=0.2)
    await server.start()
    try:
        reader, writer = await raw(sock)
        writer.write(p.encode(p.Hello(id=1))[:6])
        reply = await read_reply(reader)
        assert isinstance(reply, p.ErrorReply)
        assert reply.code == "bad_request"
        assert "timed out" in reply.detail
        writer.close()
        # Idle between frames is fine: a connection that says nothing stays open.
        idle_reader, idle_writer = await raw(sock)
        await asyncio.sleep(0.4)  # longer than the frame deadline, on purpose
        idle_writer.write(p.encode(p.Hello(id=2)))
        assert isinstance(await read_reply(idle_reader), p.HelloReply)
        idle_writer.close()
    finally:
        await server.stop()


async def test_a_client_that_does_not_read_is_dropped_and_never_blocks_the_engine(
    sock: Path,
) -> None:
    eng = engine()
    server = LocalApiServer(eng, sock, queue_frames=8)
    await server.start()
    try:
        slow_reader, slow_writer = await raw(sock)
        slow_writer.write(p.encode(p.Subscribe(id=1)))
        await read_reply(slow_reader)
        fast = await RemoteEngine.attach(sock)
        got: list[Event] = []
        fast.subscribe(got.append)
        await until(lambda: server.clients == 2)
        event = Event(kind=EventKind.NOTICE, snapshot=eng.snapshot, time=0.0, message="x" * 4000)
        for _ in range(2000):  # far more than socket buffers + queue hold
            server._on_event(event)  # as the engine's subscription would, synchronously
            await asyncio.sleep(0)
        await until(lambda: server.clients == 1, within=2)
        await until(lambda: len(got) == 2000, within=5)
        assert not fast.closed
        await fast.stop()
        slow_writer.close()
    finally:
        await server.stop()


async def test_clients_are_told_when_the_engine_goes_away(sock: Path) -> None:
    eng = engine()
    server = await serve(eng, sock)
    client = await RemoteEngine.attach(sock)
    lost: list[bool] = []
    client.on_lost(lambda: lost.append(True))
    await server.stop()
    await eng.stop()
    await until(lambda: lost == [True])
    assert client.closed
    with pytest.raises(EngineNotRunningError) as caught:
        await client.connect()
    assert caught.value.code == "engine_not_running"
    await client.stop()
    assert lost == [True]


async def test_detaching_does_not_count_as_lost(sock: Path) -> None:
    eng = engine()
    server = await serve(eng, sock)
    try:
        client = await RemoteEngine.attach(sock)
        lost: list[bool] = []
        client.on_lost(lambda: lost.append(True))
        await client.stop()
        await asyncio.sleep(0)
        assert lost == []
        assert client.closed
    finally:
        await server.stop()
        await eng.stop()


async def test_nobody_serving_is_engine_not_running(sock: Path) -> None:
    with pytest.raises(EngineNotRunningError) as caught:
        await RemoteEngine.attach(sock)
    assert caught.value.code == "engine_not_running"
    assert caught.value.title == "Rustronaut is not running"
    stale(sock)  # a stale non-socket file: still "not running"
    with pytest.raises(EngineNotRunningError):
        await RemoteEngine.attach(sock)


def test_a_runtime_dir_open_to_others_or_not_ours_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    with pytest.raises(UnsafeDirectoryError, match="open to other users"):
        secure_dir(shared)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "private")
    (tmp_path / "private").mkdir(mode=0o700)
    with pytest.raises(UnsafeDirectoryError, match="not a directory"):
        secure_dir(link)
    made = secure_dir(tmp_path / "fresh")
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o700


async def test_the_server_refuses_to_listen_in_a_shared_directory(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    server = LocalApiServer(engine(), shared / "engine.sock")
    with pytest.raises(UnsafeDirectoryError):
        await server.start()
    assert not exists(shared / "engine.sock")


async def test_start_and_stop_are_idempotent(sock: Path) -> None:
    eng = engine()
    server = LocalApiServer(eng, sock)
    await server.start()
    await server.start()
    assert server.address == str(sock)
    await server.stop()
    await server.stop()
    assert not exists(sock)
