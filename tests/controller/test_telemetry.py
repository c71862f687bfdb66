"""Decision telemetry end to end: the real client sender and queue against the real
controller on loopback — delivery, listing, offline queueing across restarts, the cap,
and every hostile batch refused with nothing stored."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.testing import RunningController, login, run_controller
from core.controlplane import BearerAuth, ControlPlaneClient
from core.engine.wiring import decision_submitter, telemetry_sender
from core.settings import EffectiveSettings, SettingsWatcher
from core.settings.model import Settings
from core.telemetry import QUEUE_FILE, TelemetryQueue, TelemetrySender
from core.wire import signing
from core.wire.telemetry import (
    DecisionAck,
    DecisionBatch,
    DecisionEvent,
    Level,
    encode_batch,
    hash_app,
    sign_batch,
)
from tests.controller.conftest import DeviceKeys, new_device
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.integration


@dataclass
class Device:
    """An enrolled device: its id, keys and a control-plane client with its user's token."""

    device_id: str
    user: str
    keys: DeviceKeys
    client: ControlPlaneClient
    token: str


async def _enroll(rc: RunningController, user: str = "alice") -> Device:
    tokens = await login(rc, user, f"{user}-password")
    keys = new_device()
    client = ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"]), proxy=None)
    enrolled = await client.enroll(keys.enroll_request())
    return Device(enrolled.device_id, enrolled.user, keys, client, tokens["access_token"])


@pytest.fixture
async def rc() -> AsyncIterator[RunningController]:
    async with run_controller(sensitive_rate_per_min=1000) as running:
        yield running


@pytest.fixture
async def alice(rc: RunningController) -> AsyncIterator[Device]:
    dev = await _enroll(rc)
    yield dev
    await dev.client.aclose()


def _sender(
    directory: Path,
    dev: Device,
    *,
    client: ControlPlaneClient | None = None,
    level: Callable[[], Level] = lambda: "full",
    hash_apps: bool = False,
    cap: int = 5000,
    salt: str = "https://acme.example",
    submit: Any = None,
) -> TelemetrySender:
    return TelemetrySender(
        TelemetryQueue(directory, cap=cap),
        level=level,
        device_id=lambda: dev.device_id,
        sign=lambda batch: sign_batch(batch, dev.keys.signing),
        submit=submit or decision_submitter(client or dev.client),
        hash_apps=lambda: hash_apps,
        salt=salt,
        interval_s=0.05,
    )


def _decide(
    sender: TelemetrySender,
    i: int,
    *,
    effect: str = "deny",
    resource: str | None = "wiki",
    app: str = "/usr/bin/curl",
    at: float | None = None,
) -> None:
    sender.record(
        at=(time.time() if at is None else at) + i / 1000,
        app=app,
        destination=f"10.20.0.{i % 250 + 1}:443",
        effect=effect,
        rule="eng-wiki" if effect == "allow" else None,
        resource=resource,
        code="decision",
        reason="allowed by eng-wiki" if effect == "allow" else "no rule allows this",
        risk=i % 101,
    )


async def _listed(rc: RunningController, **params: object) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=rc.base_url) as http:
        resp = await http.get(
            "/v1/admin/decisions",
            params={"limit": 1000, **params},
            headers={"Authorization": f"Bearer {rc.admin_token}"},
        )
    assert resp.status_code == 200, resp.text
    records: list[dict[str, Any]] = resp.json()["records"]
    return records


async def _post(rc: RunningController, dev: Device, token: str, *, as_token: str | None = None):
    async with httpx.AsyncClient(base_url=rc.base_url) as http:
        return await http.post(
            f"/v1/devices/{dev.device_id}/decisions",
            json={"batch": token},
            headers={"Authorization": f"Bearer {as_token or dev.token}"},
        )


def _batch(dev: Device, seq: int, *, n: int = 1, iat: float | None = None) -> DecisionBatch:
    now = time.time()
    return DecisionBatch(
        device_id=dev.device_id,
        seq=seq,
        iat=now if iat is None else iat,
        level="full",
        events=tuple(
            DecisionEvent(at=now + i, app="/usr/bin/ssh", host="git.corp.example", effect="deny")
            for i in range(n)
        ),
    )


# ------------------------------------------------------------------------ delivery
async def test_batches_arrive_and_are_listed_with_filters(
    rc: RunningController, alice: Device, tmp_path: Path
) -> None:
    bob = await _enroll(rc, "bob")
    try:
        a = _sender(tmp_path / "a", alice)
        for i in range(3):
            _decide(a, i, effect="deny")
        _decide(a, 3, effect="allow")
        b = _sender(tmp_path / "b", bob)
        _decide(b, 0, resource="payroll")
        assert await a.send_ready() == a.interval_s
        assert await b.send_ready() == b.interval_s
        assert (a.sent, b.sent) == (1, 1)

        everything = await _listed(rc)
        assert len(everything) == 5
        assert len(await _listed(rc, user=alice.user)) == 4
        assert len(await _listed(rc, device_id=bob.device_id)) == 1
        assert len(await _listed(rc, resource="payroll")) == 1
        allowed = await _listed(rc, effect="allow", device_id=alice.device_id)
        assert len(allowed) == 1
        row = allowed[0]
        assert row["kind"] == "event"
        assert row["user"] == alice.user
        assert row["app"] == "/usr/bin/curl"
        assert (row["host"], row["ip"], row["port"]) == ("10.20.0.4", "10.20.0.4", 443)
        assert (row["rule"], row["resource"], row["risk"]) == ("eng-wiki", "wiki", 3)
        assert [r["record_id"] for r in everything] == sorted(
            (r["record_id"] for r in everything), reverse=True
        )  # newest first
        assert len(await _listed(rc, effect="allow", limit=1)) == 1
    finally:
        await bob.client.aclose()


async def test_counts_level_sends_counts_and_nothing_identifying(
    rc: RunningController, alice: Device, tmp_path: Path
) -> None:
    s = _sender(tmp_path, alice, level=lambda: "counts")
    minute = (int(time.time()) // 60) * 60
    for i in range(5):
        _decide(s, i, effect="deny", at=minute + 1)
    for i in range(2):
        _decide(s, i, effect="allow", at=minute + 1)
    await s.send_ready()
    rows = await _listed(rc, device_id=alice.device_id)
    assert {(r["kind"], r["effect"], r["count"], r["at"]) for r in rows} == {
        ("count", "deny", 5, float(minute)),
        ("count", "allow", 2, float(minute)),
    }
    assert all(r["app"] == "" and r["host"] == "" for r in rows)


async def test_the_background_task_sends_and_stop_flushes(
    rc: RunningController, alice: Device, tmp_path: Path
) -> None:
    s = _sender(tmp_path, alice)
    s.start()
    try:
        _decide(s, 1)
        await async_wait_until(lambda: s.sent == 1, what="the batch sent by the task")
    finally:
        await s.stop()
    _decide(s, 2)  # recorded after stop: kept on disk for the next start
    await s.stop()
    assert len(TelemetryQueue(tmp_path)) == 1
    assert len(await _listed(rc, device_id=alice.device_id)) == 1


# ------------------------------------------------------------- offline and restarts
def _dead_url() -> str:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_offline_then_restart_delivers_everything_exactly_once(
    rc: RunningController, alice: Device, tmp_path: Path
) -> None:
    async with ControlPlaneClient(_dead_url(), proxy=None, timeout=2.0) as offline:
        s1 = _sender(tmp_path, alice, client=offline)
        for i in range(700):
            _decide(s1, i)
        assert await s1.send_ready() == 5.0  # backoff
        assert await s1.send_ready() == 10.0  # doubling
        await s1.stop()
    assert (tmp_path / QUEUE_FILE).exists()

    # Back online, but the answer to the first batch is lost: stored, not acknowledged.
    real = decision_submitter(alice.client)

    async def lossy(device_id: str, token: str) -> DecisionAck:
        await real(device_id, token)
        raise ConnectionError("the answer was lost")

    s2 = _sender(tmp_path, alice, submit=lossy)
    assert await s2.send_ready() == 5.0
    await s2.stop()
    assert len(await _listed(rc, device_id=alice.device_id)) == 500

    s3 = _sender(tmp_path, alice)  # a restart on the same directory
    assert await s3.send_ready() == s3.interval_s
    assert (s3.duplicates, s3.sent) == (1, 1)
    rows = await _listed(rc, device_id=alice.device_id)
    assert len(rows) == 700
    assert len({r["at"] for r in rows}) == 700  # none lost, none twice
    assert {r["seq"] for r in rows} == {1, 2}
    assert len(TelemetryQueue(tmp_path)) == 0


async def test_the_cap_is_respected_and_the_drop_reported(
    rc: RunningController, alice: Device, tmp_path: Path
) -> None:
    async with ControlPlaneClient(_dead_url(), proxy=None, timeout=2.0) as offline:
        s1 = _sender(tmp_path, alice, client=offline, cap=5)
        for i in range(8):
            _decide(s1, i, at=1_800_000_000.0)
        await s1.send_ready()
        await s1.stop()
    s2 = _sender(tmp_path, alice, cap=5)
    await s2.send_ready()
    rows = sorted(await _listed(rc, device_id=alice.device_id), key=lambda r: r["at"])
    assert [r["risk"] for r in rows] == [3, 4, 5, 6, 7]  # the oldest three dropped
    assert sum(r["dropped"] for r in rows) == 3


# ------------------------------------------------------------------ levels, privacy
async def test_level_off_records_and_sends_nothing(
    rc: RunningController, alice: Device, tmp_path: Path
) -> None:
    level: list[Level] = ["full"]
    s = _sender(tmp_path, alice, level=lambda: level[0])
    _decide(s, 0)
    level[0] = "off"  # IT turned it off before the batch left: it never does
    _decide(s, 1)
    await s.send_ready()
    assert s.sent == 0
    assert len(s.queue) == 0
    assert await _listed(rc, device_id=alice.device_id) == []

    values = Settings(controller_url=rc.base_url, telemetry_level="off")
    settings = EffectiveSettings(
        values=values, sources={}, origins={}, problems=(), user_path=tmp_path / "user.json"
    )
    # No sender, so the engine starts no task and the proxy's decisions go nowhere.
    assert (
        telemetry_sender(SettingsWatcher(initial=settings), cast(Any, None), alice.client, tmp_path)
        is None
    )


async def test_a_hashed_app_path_never_leaves_in_plain(
    rc: RunningController, alice: Device, tmp_path: Path
) -> None:
    path = "/home/alice/projects/acquisition-target/bin/tool"
    s = _sender(tmp_path, alice, hash_apps=True, salt=rc.base_url)
    _decide(s, 0, app=path)
    s.queue.flush()
    assert b"acquisition-target" not in (tmp_path / QUEUE_FILE).read_bytes()
    await s.send_ready()
    rows = await _listed(rc, device_id=alice.device_id)
    assert [r["app"] for r in rows] == [hash_app(path, rc.base_url)]
    assert "acquisition-target" not in msgspec.json.encode(rows).decode()


# ----------------------------------------------------------------------- hostile
async def test_a_forged_signature_is_refused_and_nothing_stored(
    rc: RunningController, alice: Device
) -> None:
    head, _payload, sig = sign_batch(_batch(alice, 1), alice.keys.signing).split(".")
    forged = signing.b64url(encode_batch(_batch(alice, 1, n=3)))
    resp = await _post(rc, alice, f"{head}.{forged}.{sig}")
    assert resp.status_code == 422
    assert await _listed(rc) == []


async def test_another_devices_key_is_refused(rc: RunningController, alice: Device) -> None:
    second = await _enroll(rc)  # alice's other device
    try:
        resp = await _post(rc, alice, sign_batch(_batch(alice, 1), second.keys.signing))
        assert resp.status_code == 422
        # Its own batch, signed right, but sent to the first device's endpoint.
        resp = await _post(rc, alice, sign_batch(_batch(second, 1), second.keys.signing))
        assert resp.status_code == 422
        assert await _listed(rc) == []
    finally:
        await second.client.aclose()


async def test_a_replayed_seq_is_a_duplicate_and_stores_nothing(
    rc: RunningController, alice: Device
) -> None:
    token = sign_batch(_batch(alice, 5, n=2), alice.keys.signing)
    first = await _post(rc, alice, token)
    assert first.status_code == 200
    assert first.json() == {"seq": 5, "duplicate": False, "stored": 2}
    again = await _post(rc, alice, token)
    assert again.json() == {"seq": 5, "duplicate": True, "stored": 0}
    older = await _post(rc, alice, sign_batch(_batch(alice, 4, n=7), alice.keys.signing))
    assert older.json()["duplicate"] is True
    assert len(await _listed(rc)) == 2


async def test_stale_and_oversized_batches_are_refused(
    rc: RunningController, alice: Device
) -> None:
    stale = sign_batch(_batch(alice, 1, iat=time.time() - 3600), alice.keys.signing)
    assert (await _post(rc, alice, stale)).status_code == 422
    huge = sign_batch(_batch(alice, 2), Ed25519PrivateKey.generate()) + "A" * (300 * 1024)
    assert (await _post(rc, alice, huge)).status_code == 413
    assert await _listed(rc) == []


async def test_a_revoked_or_foreign_device_is_refused(rc: RunningController, alice: Device) -> None:
    bob = await _enroll(rc, "bob")
    try:
        token = sign_batch(_batch(alice, 1), alice.keys.signing)
        assert (await _post(rc, alice, token, as_token=bob.token)).status_code == 404
        async with httpx.AsyncClient(base_url=rc.base_url) as http:
            resp = await http.post(
                f"/v1/admin/devices/{alice.device_id}/revoke",
                headers={"Authorization": f"Bearer {rc.admin_token}"},
            )
            assert resp.status_code == 200
        assert (await _post(rc, alice, token)).status_code == 403
        assert await _listed(rc) == []
    finally:
        await bob.client.aclose()


async def test_a_flood_is_rate_limited_per_device(tmp_path: Path) -> None:
    async with run_controller(sensitive_rate_per_min=1000, telemetry_batches_per_min=2) as rc:
        dev = await _enroll(rc)
        try:
            for seq in (1, 2):
                ok = await _post(rc, dev, sign_batch(_batch(dev, seq), dev.keys.signing))
                assert ok.status_code == 200
            flood = await _post(rc, dev, sign_batch(_batch(dev, 3), dev.keys.signing))
            assert flood.status_code == 429
            assert int(flood.headers["Retry-After"]) >= 1
            assert len(await _listed(rc)) == 2
            # The real sender honours it: the batch stays queued, retried after the hint.
            s = _sender(tmp_path, dev)
            _decide(s, 0)
            assert await s.send_ready() >= int(flood.headers["Retry-After"])
            assert len(s.queue) == 1
        finally:
            await dev.client.aclose()
