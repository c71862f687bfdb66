"""Break-glass reports over real HTTP: client → controller → audit (admin API and CLI)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from controller.cli import main
from controller.storage import open_storage
from controller.testing import RunningController, login
from core.controlplane import (
    AuthenticationError,
    BearerAuth,
    ControlPlaneClient,
    NotFoundError,
    RejectedError,
)
from core.controlplane.models import BREAK_GLASS_REASON_MAX
from tests.controller.conftest import new_device

pytestmark = pytest.mark.integration


async def _enrolled(rc: RunningController, user: str) -> tuple[ControlPlaneClient, str]:
    tokens = await login(rc, user, f"{user}-password")
    client = ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"]))
    enrolled = await client.enroll(new_device().enroll_request())
    return client, enrolled.device_id


async def _audit(rc: RunningController, query: str = "") -> httpx.Response:
    async with httpx.AsyncClient(base_url=rc.base_url) as http:
        return await http.get(
            "/v1/admin/audit" + query, headers={"Authorization": f"Bearer {rc.admin_token}"}
        )


async def test_report_is_audited_with_time_user_device(controller: RunningController) -> None:
    rc = controller
    client, dev = await _enrolled(rc, "alice")
    async with client:
        before = rc.service.now()
        record = await client.report_break_glass(dev, "  VPN blocks the printer at home  ")
        assert record.reason == "VPN blocks the printer at home"
        assert record.user == "alice@example.com"
        assert record.device_id == dev
        assert record.kind == "break_glass"
        assert before <= record.at <= rc.service.now()
        second = await client.report_break_glass(dev, "video call drops")

    resp = await _audit(rc)
    assert resp.status_code == 200
    records = resp.json()["records"]
    assert [r["reason"] for r in records] == ["VPN blocks the printer at home", "video call drops"]
    assert records[1]["record_id"] == second.record_id
    assert {r["user"] for r in records} == {"alice@example.com"}
    only = await _audit(rc, f"?device_id={dev}&limit=1")
    assert [r["reason"] for r in only.json()["records"]] == ["video call drops"]
    other = await _audit(rc, "?device_id=dev_nobody")
    assert other.json()["records"] == []


async def test_long_reason_is_clipped_not_refused(controller: RunningController) -> None:
    client, dev = await _enrolled(controller, "alice")
    async with client:
        record = await client.report_break_glass(dev, "x" * 2000)
    assert len(record.reason) == BREAK_GLASS_REASON_MAX
    assert record.reason.endswith("\u2026")


async def test_refusals_are_problems(controller: RunningController) -> None:
    rc = controller
    alice, alice_dev = await _enrolled(rc, "alice")
    bob, _bob_dev = await _enrolled(rc, "bob")
    async with alice, bob:
        # Another user's device looks like a missing one.
        with pytest.raises(NotFoundError):
            await bob.report_break_glass(alice_dev, "not mine")
        with pytest.raises(NotFoundError):
            await alice.report_break_glass("dev_missing", "no such device")
        with pytest.raises(ValueError, match="reason"):
            await alice.report_break_glass(alice_dev, "   ")
        with pytest.raises(RejectedError, match="control characters"):
            await alice.report_break_glass(alice_dev, "bell\x07")
    async with ControlPlaneClient(rc.base_url, auth=BearerAuth("not-a-token")) as anon:
        with pytest.raises(AuthenticationError):
            await anon.report_break_glass(alice_dev, "who am I")

    token = (await login(rc, "alice", "alice-password"))["access_token"]
    async with httpx.AsyncClient(base_url=rc.base_url) as http:
        url = f"/v1/devices/{alice_dev}/break-glass"
        auth = {"Authorization": f"Bearer {token}"}
        for body, status in (
            ({"reason": ""}, 400),
            ({"reason": "y" * (BREAK_GLASS_REASON_MAX + 1)}, 400),
            ({"reason": "ok", "extra": 1}, 400),
            ({"reason": " \n "}, 422),
        ):
            resp = await http.post(url, json=body, headers=auth)
            assert resp.status_code == status, (body, resp.text)
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert resp.json()["status"] == status
        resp = await http.post(url, json={"reason": "no token"})
        assert resp.status_code == 401
    bad = await _audit(rc, "?limit=0")
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert (await _audit(rc)).json()["records"] == []  # nothing stored by any refusal


async def test_revoked_device_may_still_report(controller: RunningController) -> None:
    rc = controller
    client, dev = await _enrolled(rc, "alice")
    rc.service.revoke(dev)
    async with client:
        record = await client.report_break_glass(dev, "revoked but disconnecting")
    assert record.device_id == dev


async def test_cli_audit_list(
    controller: RunningController, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = controller
    client, dev = await _enrolled(rc, "alice")
    async with client:
        await client.report_break_glass(dev, "hotel blocks UDP")
    argv = ["audit", "list", "--url", rc.base_url, f"--token={rc.admin_token}", "--device", dev]
    assert await asyncio.to_thread(main, argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["device_id"], r["reason"]) for r in out["records"]] == [(dev, "hotel blocks UDP")]
    bad = ["audit", "list", "--url", rc.base_url, f"--token={rc.admin_token}", "--limit", "0"]
    assert await asyncio.to_thread(main, bad) == 1
    assert "limit" in capsys.readouterr().err


def test_audit_survives_reopen(tmp_path: object) -> None:
    from pathlib import Path

    from controller.storage import AuditEntry

    url = f"sqlite://{Path(str(tmp_path)) / 'c.db'}"
    store = open_storage(url)
    entry = AuditEntry("00aa", 5, "break_glass", "alice", "dev_1", "reason")
    store.add_audit(entry)
    store.close()
    again = open_storage(url)
    try:
        assert again.schema_version() >= 3
        assert again.list_audit() == [entry]
        assert again.list_audit(device_id="dev_2") == []
    finally:
        again.close()


def test_audit_on_postgres(postgres_url: str) -> None:
    from controller.storage import AuditEntry, ConflictError

    store = open_storage(postgres_url)
    try:
        first = AuditEntry("01", 10, "break_glass", "alice", "dev_pg", "one")
        second = AuditEntry("02", 10, "break_glass", "alice", "dev_pg", "two")
        store.add_audit(first)
        store.add_audit(second)
        with pytest.raises(ConflictError):
            store.add_audit(first)
        assert store.list_audit(device_id="dev_pg") == [first, second]
        assert store.list_audit(device_id="dev_pg", limit=1) == [second]
    finally:
        store.close()


async def test_engine_break_glass_reaches_the_audit(controller: RunningController) -> None:
    """Engine.disconnect under always-on → the real ControlAdapter → the controller."""
    from core.engine.adapters import ControlAdapter
    from core.engine.engine import Engine, EngineConfig
    from core.engine.ports import Enrollment
    from tests.core.engine.ports import (
        ALICE,
        Auth,
        Device,
        Policy,
        Posture,
        Proxy,
        Tunnel,
    )

    rc = controller
    client, dev = await _enrolled(rc, "alice")

    class Enrolled:
        def enrollment(self) -> Enrollment:
            return Enrollment(device_id=dev)

    async with client:
        engine = Engine(
            auth=Auth(ALICE),
            device=Device(),
            control=ControlAdapter(client, Enrolled()),  # type: ignore[arg-type]
            posture=Posture(),
            policy=Policy(lambda: 0.0),
            tunnel=Tunnel(),
            proxy=Proxy(),
            config=EngineConfig(always_on=True, auto_connect=False),
        )
        await engine.disconnect(break_glass_reason="  printer at home needs the LAN  ")
    records = (await _audit(rc, f"?device_id={dev}")).json()["records"]
    assert [(r["user"], r["reason"]) for r in records] == [
        ("alice@example.com", "printer at home needs the LAN")
    ]


async def test_every_admin_api_change_is_audited_and_reads_are_not(
    controller: RunningController,
) -> None:
    """The CLI's admin token changes things too: each change is in the audit log (who:
    the token), as the console's are; listing is not a change."""
    rc = controller
    client, dev = await _enrolled(rc, "alice")
    await client.aclose()
    headers = {"Authorization": f"Bearer {rc.admin_token}"}
    wiki = {"id": "wiki", "name": "Wiki", "cidrs": ["10.20.0.0/24"], "ports": [443]}
    async with httpx.AsyncClient(base_url=rc.base_url, headers=headers) as http:
        assert (await http.put("/v1/admin/resources/wiki", json=wiki)).status_code == 200
        assert (await http.get("/v1/admin/resources")).status_code == 200
        assert (await http.post(f"/v1/admin/devices/{dev}/revoke")).status_code == 200
        refused = await http.put("/v1/admin/resources/bad", json={"id": "bad"})
        assert refused.status_code >= 400
    records = (await _audit(rc)).json()["records"]
    kinds = [(r["kind"], r["user"], r["device_id"]) for r in records]
    assert kinds == [
        ("admin:api.putResource", "admin API token", ""),
        ("admin:api.revokeDevice", "admin API token", dev),
    ]
    assert "resource_id=wiki" in records[0]["reason"]
