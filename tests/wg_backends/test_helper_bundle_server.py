"""The helper obeys the organisation, not the caller (issue 16, Deliver 2): with managed
policy trust anchors an ``up``/``update`` takes its spec only from a signed bundle the
helper verifies itself, with the caller's device key added by the helper; a caller-built
spec is refused. Real helper server on a real Unix socket, real managed files, a real
second account (``useradd``) and a real helper process."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from tests.fakes.wait import async_wait_until, wait_until
from tests.wg_backends.accounts import run_as, second_account
from tests.wg_backends.bundlekit import Org, raw_key, spec
from tests.wg_backends.fakes import FakeBackend, plain_asyncio
from tests.wg_backends.helperproc import start_helper
from tests.wg_backends.inproc import Running, serve_in_thread
from tests.wg_backends.keys import PRIV
from wg_backends.errors import HelperRefused
from wg_backends.helper.bundles import FLOORS_FILE_NAME, profile_for
from wg_backends.helper.client import HelperClient
from wg_backends.helper.keys import KEYS_DIR_NAME
from wg_backends.spec import TunnelSpec

pytestmark = [pytest.mark.integration, pytest.mark.root, pytest.mark.hostile_local_user]

ROUTES = ("10.247.77.0/24",)


def _pub(private: str) -> str:
    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@dataclass
class UpdatingBackend(FakeBackend):
    """The fake backend with an in-place update (records the spec it got)."""

    def update(self, new: TunnelSpec) -> None:
        self.up_ifaces[new.interface] = new


class LiveOrg(Org):
    """An organisation whose statements are valid now (the helper uses its own clock)."""

    def endorsement(self, **kw: Any) -> str:
        now = int(time.time())
        kw.setdefault("not_before", now - 3600)
        kw.setdefault("not_after", now + 86400)
        return super().endorsement(**kw)

    def bundle(self, version: int = 1, **kw: Any) -> str:
        now = int(time.time())
        kw.setdefault("issued_at", now - 60)
        kw.setdefault("expires_at", now + 3600)
        kw.setdefault("tunnel", spec(*ROUTES, interface="rtb0"))
        return super().bundle(version, **kw)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory other accounts can traverse (pytest's tmp_path is 0700)."""
    d = Path(tempfile.mkdtemp(prefix="rtw-b-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def managed(tmp_path: Path, settings: dict[str, Any]) -> Path:
    d = tmp_path / "managed"
    d.mkdir(exist_ok=True)
    (d / "managed.json").write_text(json.dumps(settings))
    os.chmod(d / "managed.json", 0o644)
    return d


@pytest.fixture
def org() -> LiveOrg:
    return LiveOrg()


@pytest.fixture
def make_server(tmp_path: Path, open_dir: Path) -> Iterator[Any]:
    running: list[Running] = []

    def make(settings: dict[str, Any], **kw: Any) -> Running:
        kw.setdefault("sock_dir", open_dir / "run")
        kw.setdefault("backend", UpdatingBackend())
        running.append(serve_in_thread(tmp_path, managed_dir=managed(tmp_path, settings), **kw))
        return running[-1]

    yield make
    for r in running:
        r.stop()


def _caller_spec(**kw: Any) -> TunnelSpec:
    return msgspec.structs.replace(spec(*ROUTES, interface="rtb0", **kw), private_key=PRIV)


# ---- with anchors: only signed policy ----------------------------------------------------


@plain_asyncio
async def test_a_signed_bundle_is_brought_up_with_the_helpers_device_key(
    make_server: Any, org: LiveOrg
) -> None:
    r = make_server({"policy_trust_anchors": [raw_key(org.root)]})
    async with HelperClient(r.socket) as c:
        device_key = await c.device_key()
        assert (await c.hello())["signed_policy"] is True
        status = await c.up_bundle(
            org.bundle(3), profile_for(0, has_tunnel=True), endorsements=[org.endorsement()]
        )
        # Read while connected: the owner's disconnect brings the tunnel down.
        got = r.backend.up_ifaces["rtb0"]
    assert status.up
    assert got.peers == spec(*ROUTES, interface="rtb0").peers
    assert got.private_key is not None
    assert _pub(got.private_key) == device_key  # the helper's key, never the caller's
    key_file = r.state_dir / KEYS_DIR_NAME / "uid-0.key"
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    assert (
        json.loads((r.state_dir / FLOORS_FILE_NAME).read_text())["floors"]["dev-1"]["version"] == 3
    )


@plain_asyncio
async def test_a_caller_built_spec_is_refused_when_anchors_are_managed(
    make_server: Any, org: LiveOrg
) -> None:
    r = make_server({"policy_trust_anchors": [raw_key(org.root)]})
    async with HelperClient(r.socket) as c:
        with pytest.raises(HelperRefused) as info:
            await c.up(_caller_spec(dns=("203.0.113.53",)))
    assert info.value.helper_code == "bad_spec"
    assert "only accepts signed policy" in str(info.value)
    assert r.backend.up_ifaces == {}


@plain_asyncio
async def test_an_update_cannot_swap_in_a_caller_built_spec(make_server: Any, org: LiveOrg) -> None:
    r = make_server({"policy_trust_anchors": [raw_key(org.root)]})
    ends = [org.endorsement()]
    async with HelperClient(r.socket) as c:
        await c.up_bundle(org.bundle(1), "tunnel", endorsements=ends)
        with pytest.raises(HelperRefused) as info:
            await c.update(_caller_spec(dns=("203.0.113.53",)))
        assert info.value.helper_code == "bad_spec"
        assert r.backend.up_ifaces["rtb0"].dns == ()
        wider = org.bundle(2, tunnel=spec("10.247.77.0/24", "10.247.78.0/24", interface="rtb0"))
        await c.update_bundle(wider, "tunnel", endorsements=ends)
        assert r.backend.up_ifaces["rtb0"].peers[0].allowed_ips == (
            "10.247.77.0/24",
            "10.247.78.0/24",
        )
        # Rolling back to version 1 (e.g. to drop a route IT removed) is refused.
        with pytest.raises(HelperRefused) as info:
            await c.update_bundle(org.bundle(1), "tunnel", endorsements=ends)
        assert info.value.helper_code == "bad_bundle"
        assert "older" in str(info.value)


@plain_asyncio
async def test_a_bundle_signed_by_a_key_the_anchors_do_not_trust_is_refused(
    make_server: Any, org: LiveOrg, caplog: pytest.LogCaptureFixture
) -> None:
    r = make_server({"policy_trust_anchors": [raw_key(org.root)]})
    evil = LiveOrg()
    async with HelperClient(r.socket) as c:
        with pytest.raises(HelperRefused) as info:
            await c.up_bundle(
                evil.bundle(1), "tunnel", endorsements=[evil.endorsement(), org.endorsement()]
            )
        assert info.value.helper_code == "bad_bundle"
        assert "not trusted" in str(info.value)
        with pytest.raises(HelperRefused) as info:
            await c.up_bundle(org.bundle(1), "gateway:0", endorsements=[org.endorsement()])
        assert info.value.helper_code == "bad_bundle"
    assert r.backend.up_ifaces == {}
    assert any("refused the signed policy of uid 0" in m for m in caplog.messages)


@plain_asyncio
async def test_spec_and_bundle_together_or_neither_are_bad_requests(
    make_server: Any, org: LiveOrg
) -> None:
    import struct

    r = make_server({"policy_trust_anchors": [raw_key(org.root)]})
    both = {
        "v": 1,
        "type": "up",
        "id": 5,
        "spec": msgspec.to_builtins(_caller_spec()),
        "bundle": org.bundle(),
        "profile": "tunnel",
    }
    cases = [
        both,
        {"v": 1, "type": "up", "id": 6},
        {"v": 1, "type": "up", "id": 7, "bundle": org.bundle()},  # no profile
        {"v": 1, "type": "up", "id": 8, "spec": both["spec"], "profile": "tunnel"},
        {"v": 1, "type": "up", "id": 9, "bundle": "x", "profile": "tunnel",
         "endorsements": ["e"] * 17},
    ]  # fmt: skip
    import socket

    for case in cases:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(r.socket))
            body = json.dumps(case).encode()
            s.sendall(struct.pack(">I", len(body)) + body)
            (n,) = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))
            reply = json.loads(s.recv(n, socket.MSG_WAITALL))
        assert reply["type"] == "error", case
        assert reply["code"] in ("bad_request", "bad_spec"), reply
    assert r.backend.up_ifaces == {}


def test_a_second_account_cannot_bring_up_its_own_tunnel_and_dns(
    make_server: Any, org: LiveOrg
) -> None:
    with second_account() as mallory:
        r = make_server(
            {"policy_trust_anchors": [raw_key(org.root)]}, allowed_uids=frozenset({mallory.uid})
        )
        own = msgspec.to_builtins(_caller_spec(dns=("203.0.113.53",)))
        up = {"v": 1, "type": "up", "id": 2, "spec": own}
        [hello, reply] = run_as(mallory, r.socket, [{"v": 1, "type": "hello", "id": 1}, up])
        assert reply["type"] == "error"
        assert reply["code"] == "bad_spec"
        assert "only accepts signed policy" in reply["message"]
        assert r.backend.up_ifaces == {}
        # He gets his own device key, not anybody else's.
        assert hello["result"]["uid"] == mallory.uid
        root_key = (r.state_dir / KEYS_DIR_NAME / "uid-0.key").exists() and _pub(
            (r.state_dir / KEYS_DIR_NAME / "uid-0.key").read_text().strip()
        )
        assert hello["result"]["device_key"] not in (None, root_key)
        mine = (r.state_dir / KEYS_DIR_NAME / f"uid-{mallory.uid}.key").read_text().strip()
        assert hello["result"]["device_key"] == _pub(mine)
        assert mine not in json.dumps(hello)


def test_a_second_account_cannot_use_the_owners_bundle(make_server: Any, org: LiveOrg) -> None:
    with second_account() as alice, second_account() as mallory:
        r = make_server(
            {"policy_trust_anchors": [raw_key(org.root)]},
            allowed_uids=frozenset({alice.uid, mallory.uid}),
        )
        token, ends = org.bundle(4), [org.endorsement()]
        up = {"v": 1, "type": "up", "id": 1, "bundle": token, "profile": "tunnel",
              "endorsements": ends}  # fmt: skip
        down = {"v": 1, "type": "down", "id": 2, "interface": "rtb0"}
        # The owner's engine used it first: device dev-1 is now bound to her account...
        [first, _] = run_as(alice, r.socket, [up, down])
        assert first["type"] == "ok", first
        r.backend.up_ifaces.clear()
        # ...so the same signed bundle relayed by another account is refused.
        [reply] = run_as(mallory, r.socket, [up])
        assert reply["code"] == "bad_bundle"
        assert "another account" in reply["message"]
        assert r.backend.up_ifaces == {}


# ---- without anchors (development) ---------------------------------------------------------


@plain_asyncio
async def test_without_anchors_a_caller_spec_still_works_and_a_bundle_cannot(
    make_server: Any, org: LiveOrg, caplog: pytest.LogCaptureFixture
) -> None:
    r = make_server({})
    async with HelperClient(r.socket) as c:
        assert (await c.hello())["signed_policy"] is False
        with pytest.raises(HelperRefused) as info:
            await c.up_bundle(org.bundle(1), "tunnel", endorsements=[org.endorsement()])
        assert info.value.helper_code == "bad_bundle"
        assert "no policy trust anchors" in str(info.value)
        await c.up(_caller_spec())
        assert "rtb0" in r.backend.up_ifaces
    assert any("caller-built spec" in m for m in caplog.messages)


# ---- the real helper process -----------------------------------------------------------------


def test_the_real_helper_refuses_an_ordinary_users_own_spec(
    tmp_path: Path, open_dir: Path, org: LiveOrg
) -> None:
    with second_account() as mallory:
        mdir = managed(tmp_path, {"policy_trust_anchors": [raw_key(org.root)]})
        hp = start_helper(
            open_dir / "helper",
            extra=["--managed-dir", str(mdir), "--allow-uid", str(mallory.uid)],
        )
        try:
            resolv = Path("/etc/resolv.conf").read_bytes()
            own = msgspec.to_builtins(_caller_spec(dns=("203.0.113.53",)))
            [hello, reply] = run_as(
                mallory,
                hp.socket,
                [{"v": 1, "type": "hello", "id": 1}, {"v": 1, "type": "up", "id": 2, "spec": own}],
            )
            assert reply["code"] == "bad_spec"
            assert "only accepts signed policy" in reply["message"]
            assert isinstance(hello["result"]["device_key"], str)
            assert Path("/etc/resolv.conf").read_bytes() == resolv
            assert not Path("/sys/class/net/rtb0").exists()
        finally:
            hp.stop()
        log = hp.log_text()
        assert f"refused up of rtb0 by uid {mallory.uid}" in log
        assert "policy trust anchors are managed" in log


@plain_asyncio
async def test_a_large_bundle_travels_in_one_request_frame(make_server: Any, org: LiveOrg) -> None:
    import random

    from tests.bench.bench_policy import make_bundle
    from wg_backends.helper import protocol as p

    big = make_bundle(3000, random.Random(3))
    token = org.bundle(1, resources=big.resources, rules=big.rules, profiles=big.profiles)
    assert p.MAX_FRAME < len(token) < p.MAX_REQUEST_FRAME
    r = make_server({"policy_trust_anchors": [raw_key(org.root)]})
    async with HelperClient(r.socket) as c:
        status = await c.up_bundle(token, "tunnel", endorsements=[org.endorsement()])
    assert status.up


_TWO_LARGE = r"""
import json, socket, struct, sys
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    return s
def answer(s):
    head = s.recv(4, socket.MSG_WAITALL)
    if len(head) < 4:
        return {"closed": True}
    return json.loads(s.recv(struct.unpack(">I", head)[0], socket.MSG_WAITALL))
size = 1024 * 1024
a, b = conn(), conn()
a.sendall(struct.pack(">I", size) + b"x" * 200_000)   # A is buffering a large frame
print("A", flush=True)
sys.stdin.readline()                                   # the test saw the helper hold A
b.sendall(struct.pack(">I", size) + b"y" * 200_000)   # B too, at the same time: refused
print(json.dumps(answer(b)), flush=True)
a.sendall(b"x" * (size - 200_000))                     # A completes (junk: bad_request)
print(json.dumps(answer(a)), flush=True)
c = conn()
c.sendall(struct.pack(">I", size) + b"z" * size)       # the slot is free again
print(json.dumps(answer(c)), flush=True)
"""


def test_one_large_request_at_a_time_per_account(make_server: Any, org: LiveOrg) -> None:
    import subprocess

    from tests.wg_backends.accounts import SYSTEM_PYTHON

    with second_account() as mallory:
        r = make_server({}, allowed_uids=frozenset({mallory.uid}))
        proc = subprocess.Popen(
            ["setpriv", "--reuid", str(mallory.uid), "--regid", str(mallory.gid),
             "--init-groups", SYSTEM_PYTHON, "-I", "-c", _TWO_LARGE, str(r.socket)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd="/",
        )  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdin is not None
        assert proc.stdout.readline().strip() == "A"
        wait_until(lambda: f"uid:{mallory.uid}" in r.server._large, what="A holds the slot")
        out, _ = proc.communicate("go\n", timeout=60)
        assert proc.returncode == 0
        second, first, third = (json.loads(line) for line in out.splitlines())
        assert second["code"] == "bad_request"
        assert "another large request" in second["message"]
        assert first["code"] == "bad_request"
        assert "another large request" not in first["message"]
        assert "another large request" not in third["message"]


# ---- for real: a tunnel from a signed bundle, with the helper's own key ---------------------


@pytest.mark.e2e
@pytest.mark.netns
def test_a_real_tunnel_from_a_signed_bundle_handshakes_with_the_helpers_key(
    testbed: Any, org: LiveOrg
) -> None:
    import asyncio

    mdir = managed(testbed.workdir, {"policy_trust_anchors": [raw_key(org.root)]})
    hp = start_helper(
        testbed.workdir / "helper",
        netns=testbed.client_ns,
        extra=["--backend", "wg-quick", "--managed-dir", str(mdir)],
    )
    token = org.bundle(1, tunnel=testbed.client_spec(with_key=False))

    async def go() -> str:
        async with HelperClient(hp.socket) as c:
            key = await c.device_key()
            # The controller enrolls the device with the helper's key: the gateway's peer.
            gw = testbed.gateway_if
            testbed.exec(testbed.gateway_ns, ["wg", "set", gw, "peer", testbed.client_public,
                                              "remove"])  # fmt: skip
            testbed.exec(testbed.gateway_ns, ["wg", "set", gw, "peer", key, "allowed-ips",
                                              "10.232.0.2/32"])  # fmt: skip
            status = await c.up_bundle(token, "tunnel", endorsements=[org.endorsement()])
            assert status.up
            assert status.public_key == key
            # Any packet into the tunnel starts a handshake; it completes only if the
            # gateway knows the key the helper used.
            url = f"http://{testbed.server_ip}:9/"
            testbed.exec(testbed.client_ns, ["curl", "-sS", "-m", "3", url], check=False)

            async def shook() -> bool:
                return (await c.status(testbed.client_if)).handshake_age is not None

            await async_wait_until(shook, timeout=10, what="a handshake with the gateway")
            await c.down(testbed.client_if)
            return key

    try:
        key = asyncio.run(go())
    finally:
        hp.stop()
    conf_dir = hp.config_dir
    assert not any(key in p.read_text() for p in conf_dir.glob("*.conf"))  # removed on down
    assert "up from signed policy by uid 0" in hp.log_text()
