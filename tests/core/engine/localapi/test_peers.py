"""Only the same OS user reaches the engine: a second local account is refused, first by
the private directory and socket mode, and by ``SO_PEERCRED`` even when those are opened.

Needs root (a throwaway account is created with ``useradd`` and removed afterwards; the
client runs as it through ``setpriv``)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.engine.localapi.client import RemoteEngine
from core.engine.localapi.server import LocalApiServer

from .rig import engine

pytestmark = [pytest.mark.integration, pytest.mark.root, pytest.mark.hostile_local_user]

# Runs as the other account with the system Python (stdlib only): connect, say hello,
# report what came back.
CLIENT = r"""
import socket, struct, sys, json
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print("connect-failed", exc.errno); sys.exit(0)
body = json.dumps({"v": 1, "type": "hello", "id": 1}).encode()
s.settimeout(5)
try:
    s.sendall(struct.pack(">I", len(body)) + body)
    data = s.recv(65536)
except OSError as exc:
    print("recv-failed", exc.errno); sys.exit(0)
print("closed" if not data else "answered " + data[4:].decode())
"""


@pytest.fixture
def stranger() -> Iterator[pwd.struct_passwd]:
    name = f"rtapi{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "-m", "-s", "/usr/sbin/nologin", name], check=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", "-r", name], check=False, capture_output=True)


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A directory every account can traverse (pytest's own tmp root is private)."""
    path = Path(tempfile.mkdtemp(prefix="rtapi-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def as_user(user: pwd.struct_passwd, sock: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        "setpriv",
        "--reuid",
        str(user.pw_uid),
        "--regid",
        str(user.pw_gid),
        "--init-groups",
        "/usr/bin/python3",
        "-I",
        "-c",
        CLIENT,
        str(sock),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd="/",
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def test_another_account_cannot_reach_the_socket(
    stranger: pwd.struct_passwd, reachable: Path
) -> None:
    sock = reachable / "run" / "engine.sock"  # only the runtime directory is private
    eng = engine()
    server = LocalApiServer(eng, sock)
    await server.start()
    try:
        assert (await as_user(stranger, sock)).startswith("connect-failed 13")  # EACCES
        # The owner gets in.
        mine = await RemoteEngine.attach(sock)
        await mine.stop()
    finally:
        await server.stop()


async def test_another_account_is_refused_by_peer_credentials_even_on_an_open_socket(
    stranger: pwd.struct_passwd, reachable: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sock = reachable / "run" / "engine.sock"
    eng = engine()
    server = LocalApiServer(eng, sock)
    await server.start()
    try:
        # A mistake (or a hostile umask) opens directory and socket to everyone...
        os.chmod(sock.parent, 0o777)
        os.chmod(sock, 0o777)
        # ...and the stranger still gets nothing: closed before a byte is read.
        assert await as_user(stranger, sock) in {"closed", "recv-failed 104", "recv-failed 32"}
        assert "refused a caller of another user" in caplog.text
        assert f"uid={stranger.pw_uid}" in caplog.text
        assert server.clients == 0
    finally:
        os.chmod(sock.parent, 0o700)
        await server.stop()
