"""The helper against a hostile local user (issue 16): real helper server on a real Unix
socket, real second accounts (``useradd``), real managed files with real owners and modes.

Each test here failed on the helper before issue 16: groups read from ``/proc/<pid>``,
``--allow-uid`` unreachable behind a 0660 socket, a symlink at the socket path, a frame
trickled in forever, no connection cap, ``down`` of anyone's tunnel, always-on ignored,
undecodable bodies dropping the connection with a traceback, routes over the controller
and the LAN.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.fakes.wait import wait_until
from tests.wg_backends.accounts import run_as, second_account, throwaway_group
from tests.wg_backends.fakes import plain_asyncio
from tests.wg_backends.inproc import Running, serve_in_thread
from tests.wg_backends.keys import PRIV, PUB
from wg_backends.errors import HelperRefused
from wg_backends.helper import localnet, transport
from wg_backends.helper.client import HelperClient
from wg_backends.helper.transport import PeerCred
from wg_backends.spec import PeerSpec, TunnelSpec

pytestmark = [pytest.mark.integration, pytest.mark.root]

HELLO = {"v": 1, "type": "hello", "id": 1}


def spec(name: str = "rtw0", nets: tuple[str, ...] = ("10.233.0.0/24",)) -> TunnelSpec:
    return TunnelSpec(
        interface=name,
        addresses=("10.232.0.2/32",),
        peers=(PeerSpec(public_key=PUB, endpoint="10.231.0.1:51820", allowed_ips=nets),),
        private_key=PRIV,
    )


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory other accounts can traverse (pytest's tmp_path is 0700)."""
    d = Path(tempfile.mkdtemp(prefix="rtw-h-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_server(tmp_path: Path, open_dir: Path) -> Iterator[Any]:
    running: list[Running] = []

    def make(*args: Any, **kw: Any) -> Running:
        kw.setdefault("sock_dir", open_dir / "run")
        running.append(serve_in_thread(tmp_path, *args, **kw))
        return running[-1]

    yield make
    for r in running:
        r.stop()


def managed_dir(tmp_path: Path, settings: dict[str, Any]) -> Path:
    d = tmp_path / "managed"
    d.mkdir(exist_ok=True)
    (d / "managed.json").write_text(json.dumps(settings))
    os.chmod(d / "managed.json", 0o644)
    return d


def raw(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    return s


def send(s: socket.socket, body: bytes) -> None:
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


# ---- who may call ---------------------------------------------------------------------
def test_allow_uid_lets_exactly_that_account_connect(make_server: Any) -> None:
    with second_account() as allowed, second_account() as other:
        r = make_server(allowed_uids=frozenset({allowed.uid}))
        assert os.stat(r.socket).st_mode & 0o777 == 0o666  # reachable; the peer check decides
        [reply] = run_as(allowed, r.socket, [HELLO])
        assert reply["type"] == "ok"
        assert reply["result"]["uid"] == allowed.uid
        [reply] = run_as(other, r.socket, [HELLO])
        assert reply["code"] == "unauthorized"


def test_without_allow_uid_the_socket_stays_group_only(make_server: Any) -> None:
    with throwaway_group() as group:
        r = make_server(group=group)
        st = os.stat(r.socket)
        assert (st.st_mode & 0o777, st.st_uid) == (0o660, 0)
        assert st.st_gid == __import__("grp").getgrnam(group).gr_gid


def test_group_membership_comes_from_the_uid_not_a_reused_pid(
    make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pid the socket reports now belongs to a group member (pid reuse): an outsider
    must still be refused, because groups come from its uid, not from /proc/<pid>."""
    with (
        throwaway_group() as group,
        second_account() as outsider,
        second_account(groups=(group,)) as member,
    ):
        r = make_server(group=group)
        os.chmod(r.socket, 0o666)  # let every account reach the peer check
        sleeper = subprocess.Popen(
            ["setpriv", "--reuid", str(member.uid), "--regid", str(member.gid),
             "--init-groups", "sleep", "60"]
        )  # fmt: skip
        try:
            wait_until(lambda: _in_group(sleeper.pid, group), 5, what="the member's process")
            real = transport.peer_cred

            def lying(sock: Any, platform: str = sys.platform) -> PeerCred:
                cred = real(sock, platform)  # the uid and gid are the caller's own
                return PeerCred(sleeper.pid, cred.uid, cred.gid, cred.groups)

            monkeypatch.setattr(transport, "peer_cred", lying)
            [reply] = run_as(outsider, r.socket, [HELLO])
            assert reply["code"] == "unauthorized"
            [reply] = run_as(member, r.socket, [HELLO])
            assert reply["type"] == "ok"
        finally:
            sleeper.kill()
            sleeper.wait()


def _in_group(pid: int, group: str) -> bool:
    gid = __import__("grp").getgrnam(group).gr_gid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Groups:"):
            return str(gid) in line.split()[1:]
    return False


def test_connection_cap_per_uid_and_root_is_exempt(make_server: Any) -> None:
    with second_account() as acct:
        r = make_server(allowed_uids=frozenset({acct.uid}), max_connections_per_uid=3)
        replies = run_as(acct, r.socket, [HELLO], connections=5)  # all five held open
        assert [x.get("code", x["type"]) for x in replies] == [
            "ok", "ok", "ok", "too_many_connections", "too_many_connections",
        ]  # fmt: skip
        wait_until(lambda: not r.server._per_caller, 5, what="the account's connections")
        assert [x["type"] for x in run_as(acct, r.socket, [HELLO], connections=3)] == ["ok"] * 3
        held = [raw(r.socket) for _ in range(5)]  # root: no cap
        try:
            for s in held:
                send(s, json.dumps(HELLO).encode())
                assert recv(s)["type"] == "ok"
        finally:
            for s in held:
                s.close()


# ---- the socket file ------------------------------------------------------------------
def test_symlink_at_the_socket_path_is_replaced_not_followed(
    tmp_path: Path, open_dir: Path
) -> None:
    victim = open_dir / "victim"
    victim.write_text("not yours")
    os.chmod(victim, 0o600)
    run_dir = open_dir / "run"
    run_dir.mkdir(mode=0o755)
    (run_dir / "helper.sock").symlink_to(victim)
    r = serve_in_thread(tmp_path, sock_dir=run_dir, allowed_uids=frozenset({65534}))
    try:
        assert stat.S_ISSOCK(os.lstat(run_dir / "helper.sock").st_mode)
        assert os.stat(victim).st_mode & 0o777 == 0o600  # never chmodded to 0666
        assert victim.read_text() == "not yours"
        assert sorted(p.name for p in run_dir.iterdir()) == ["helper.sock"]  # no temp left
        with raw(r.socket) as s:
            send(s, json.dumps(HELLO).encode())
            assert recv(s)["type"] == "ok"
    finally:
        r.stop()


# ---- protocol robustness --------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b'{"v":1,"type":"hello","id":1,"x":"\xff"}',
        b'{"v":1,"type":"up","id":1,"spec":{"interface":"\xc3"}}',
        b"[" * 30_000 + b"]" * 30_000,
        b'{"v":1,"type":"down","id":1,"interface":"-rtw0"}',
    ],
)
def test_undecodable_bodies_get_bad_request_without_a_traceback(
    make_server: Any, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    r = make_server()
    caplog.set_level(logging.DEBUG)
    with raw(r.socket) as s:
        send(s, body)
        reply = recv(s)
        assert (reply["type"], reply["code"]) == ("error", "bad_request")
        send(s, json.dumps(HELLO).encode())  # the connection keeps serving
        assert recv(s)["type"] == "ok"
    assert not [rec for rec in caplog.records if rec.exc_info or rec.levelno >= logging.ERROR]


def test_a_trickled_frame_is_cut_at_one_deadline(make_server: Any) -> None:
    """One byte every 0.3 s: each read is quick, but the frame must end within 1 s."""
    r = make_server(frame_timeout=1.0)
    body = json.dumps(HELLO).encode()
    data = struct.pack(">I", len(body)) + body  # would take ~10 s at this pace
    stop = threading.Event()
    with raw(r.socket) as s:

        def trickle() -> None:
            for i in range(len(data)):
                if stop.wait(0.3):
                    return
                try:
                    s.sendall(data[i : i + 1])
                except OSError:
                    return

        t = threading.Thread(target=trickle, daemon=True)
        start = time.monotonic()
        t.start()
        try:
            s.settimeout(8)
            reply = recv(s)
        finally:
            stop.set()
            t.join(5)
        elapsed = time.monotonic() - start
    assert reply["message"] == "frame timed out"
    assert elapsed < 2.5


# ---- who may take a tunnel down, and always-on ------------------------------------------
@plain_asyncio
async def test_only_the_owner_or_root_may_down_and_every_change_is_logged(
    make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rustronaut.helper")
    with second_account() as acct:
        r = make_server(allowed_uids=frozenset({acct.uid}))
        async with HelperClient(r.socket) as root_client:
            await root_client.up(spec("rtw0"))
            down0 = {"v": 1, "type": "down", "id": 2, "interface": "rtw0"}
            [reply] = await asyncio.to_thread(run_as, acct, r.socket, [down0])
            assert reply["code"] == "not_owner"
            assert "rtw0" in r.backend.up_ifaces
            up1 = {"v": 1, "type": "up", "id": 3, "spec": msgspec.to_builtins(spec("rtw1"))}
            down1 = {"v": 1, "type": "down", "id": 4, "interface": "rtw1"}
            replies = await asyncio.to_thread(run_as, acct, r.socket, [up1, down1])
            assert [x["type"] for x in replies] == ["ok", "ok"]  # its own tunnel: fine
            await root_client.down("rtw0")
    text = caplog.text
    assert f"up rtw0 by uid 0 (pid {os.getpid()})" in text
    assert f"refused down of rtw0 by uid {acct.uid}" in text
    assert f"up rtw1 by uid {acct.uid}" in text
    assert f"down rtw1 by uid {acct.uid}" in text
    assert f"down rtw0 by uid 0 (pid {os.getpid()})" in text


@plain_asyncio
async def test_always_on_down_needs_break_glass_with_a_reason(
    make_server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rustronaut.helper")
    r = make_server(managed_dir=managed_dir(tmp_path, {"always_on": True}))
    async with HelperClient(r.socket) as client:
        await client.up(spec())
        with pytest.raises(HelperRefused) as err:
            await client.down("rtw0")
        assert err.value.helper_code == "always_on"
        with pytest.raises(HelperRefused) as err:
            await client.down("rtw0", break_glass_reason="   ")
        assert err.value.helper_code == "bad_request"
        assert "rtw0" in r.backend.up_ifaces
        await client.down("rtw0", break_glass_reason="hotel wifi\nFORGED log line")
        assert "rtw0" not in r.backend.up_ifaces
    assert "refused down of rtw0 by uid 0" in caplog.text
    assert "break-glass down of rtw0 by uid 0" in caplog.text
    assert "'hotel wifi\\nFORGED log line'" in caplog.text  # escaped: no forged line


@plain_asyncio
async def test_always_on_without_break_glass_allowed_refuses_every_down(
    make_server: Any, tmp_path: Path
) -> None:
    settings = {"always_on": True, "allow_break_glass": False}
    r = make_server(managed_dir=managed_dir(tmp_path, settings))
    async with HelperClient(r.socket) as client:
        await client.up(spec())
        with pytest.raises(HelperRefused) as err:
            await client.down("rtw0", break_glass_reason="please")
        assert err.value.helper_code == "always_on"
    assert "rtw0" in r.backend.up_ifaces  # kept up after the owner left, too


@pytest.mark.parametrize("spoil", ["group-writable", "other-owner", "symlink", "duplicate"])
@plain_asyncio
async def test_managed_files_that_cannot_speak_for_the_organisation_are_ignored(
    make_server: Any, tmp_path: Path, spoil: str
) -> None:
    managed = managed_dir(tmp_path, {})
    path = managed / "managed.json"
    with second_account() as acct:
        if spoil == "group-writable":
            path.write_text('{"always_on": true}')
            os.chmod(path, 0o664)
        elif spoil == "other-owner":
            path.write_text('{"always_on": true}')
            os.chown(path, acct.uid, acct.gid)
        elif spoil == "symlink":
            real = tmp_path / "elsewhere.json"
            real.write_text('{"always_on": true}')
            path.unlink()
            path.symlink_to(real)
        else:
            path.write_text('{"always_on": true, "always_on": true}')
        r = make_server(managed_dir=managed)
        async with HelperClient(r.socket) as client:
            await client.up(spec())
            await client.down("rtw0")  # the spoiled file does not make always-on
    assert "rtw0" not in r.backend.up_ifaces


# ---- routes that cannot hurt ------------------------------------------------------------
@plain_asyncio
async def test_routes_over_the_managed_controller_are_refused(
    make_server: Any, tmp_path: Path
) -> None:
    r = make_server(managed_dir=managed_dir(tmp_path, {"controller_url": "https://10.233.0.9"}))
    async with HelperClient(r.socket) as client:
        with pytest.raises(HelperRefused) as err:
            await client.up(spec())
        assert err.value.helper_code == "bad_spec"
        assert "controller" in err.value.message
        assert r.backend.entered.is_set() is False  # never reached the backend
        await client.up(spec(nets=("10.234.0.0/24",)))
        assert r.backend.up_ifaces["rtw0"].peers[0].allowed_ips == ("10.234.0.0/24",)


@plain_asyncio
async def test_routes_over_the_hosts_lan_are_refused(make_server: Any) -> None:
    lans = [n for n in localnet.connected_networks() if ":" not in n]
    if not lans:
        pytest.skip("this host has no connected IPv4 network")
    r = make_server()
    async with HelperClient(r.socket) as client:
        with pytest.raises(HelperRefused) as err:
            await client.up(spec(nets=(lans[0],)))
        assert err.value.helper_code == "bad_spec"
        assert "local network" in err.value.message
    assert r.backend.up_ifaces == {}
