"""The what-if page over real HTTP agrees with the client's ``PolicyEngine`` fed the
device's real signed bundle and posture facts: allow, deny without a rule, deny on
failing posture (the fact named, with its fix); draft answers; stale posture; hostile
strings from devices and admins escaped."""

from __future__ import annotations

import asyncio
import html
import re
import time

import pytest

from controller.testing import RunningController
from core.controlplane import BearerAuth, ControlPlaneClient
from core.policy.api import AccessRequest, AppIdentity, Decision
from core.policy.engine import PolicyEngine
from core.wire.posture import Fact, PostureReport, sign_report
from tests.controller.console.conftest import ConsoleServer
from tests.controller.console.test_console_policy import (
    DB,
    ENG_WIKI,
    WIKI,
    Device,
    _json,
    enroll,
    fetch_bundle,
    setup_policy,
)

pytestmark = pytest.mark.integration

CURL = AppIdentity(pid=None, uid=None, exe="/usr/bin/curl", name="curl")


def _ask(
    server: ConsoleServer, c: object, user: str, device: str, resource: str, app: str = ""
) -> tuple[int, str]:
    r = c.get(  # type: ignore[attr-defined]
        "/console/whatif",
        params={"user": user, "device": device, "resource": resource, "app": app},
    )
    return r.status_code, r.text


def _effect(page: str, box: str = "whatif-result") -> str:
    match = re.search(rf'id="{box}" data-effect="(allow|deny)"', page)
    assert match is not None, page
    return match.group(1)


def _engine_decision(server: ConsoleServer, device: Device, host: str, port: int) -> Decision:
    """What the device's own engine decides with its real bundle and last facts."""
    bundle = fetch_bundle(server, device)
    facts = server.service.storage.get_device(device.device_id).posture or {}
    engine = PolicyEngine(record=False)
    engine.load(bundle)
    engine.set_facts(facts)
    return engine.explain(AccessRequest(CURL, host, port))


def test_whatif_allow_agrees_with_the_engine(console_server: ConsoleServer) -> None:
    server = console_server
    setup_policy(server, [WIKI], [ENG_WIKI])
    device = enroll(server, encrypted=True)
    c = server.signed_in_client()
    form = c.get("/console/whatif", params={"user": "alice@example.com"}).text
    assert 'form id="whatif"' in form
    assert f'value="{device.device_id}"' in form  # the user's devices are offered
    status, page = _ask(server, c, "alice@example.com", device.device_id, "wiki")
    assert status == 200
    assert _effect(page) == "allow"
    assert "allowed by rule eng-wiki" in page
    decision = _engine_decision(server, device, "10.20.0.9", 443)
    assert decision.allowed
    assert decision.rule_id == "eng-wiki"
    assert 'data-rule="eng-wiki"' in page


def test_whatif_deny_without_a_rule_agrees_with_the_engine(console_server: ConsoleServer) -> None:
    server = console_server
    setup_policy(server, [WIKI], [ENG_WIKI])
    device = enroll(server, "bob", "bob-password", encrypted=True)
    c = server.signed_in_client()
    status, page = _ask(server, c, "bob@example.com", device.device_id, "wiki")
    assert status == 200
    assert _effect(page) == "deny"
    assert 'data-rule=""' in page
    decision = _engine_decision(server, device, "10.20.0.9", 443)
    assert not decision.allowed
    assert decision.rule_id is None
    assert html.escape(decision.reason, quote=True).replace("&#x27;", "&#39;") in page
    assert 'data-fact="user.groups"' in page


def test_whatif_deny_on_failing_posture_names_the_fact(console_server: ConsoleServer) -> None:
    server = console_server
    setup_policy(server, [WIKI], [ENG_WIKI])
    device = enroll(server, encrypted=False)
    c = server.signed_in_client()
    status, page = _ask(server, c, "alice@example.com", device.device_id, "wiki")
    assert status == 200
    assert _effect(page) == "deny"
    assert 'data-fact="posture.disk.encrypted" data-missing="false"' in page
    assert "posture.disk.encrypted must be true (currently false)" in page
    assert "Turn on full-disk encryption" in page  # what would fix it
    decision = _engine_decision(server, device, "10.20.0.9", 443)
    assert not decision.allowed
    assert [u.fact for u in decision.unmet] == ["posture.disk.encrypted"]
    # Later: the report is stale (a new sign-in: the first session idled out).
    server.clock.advance(3600)
    c = server.signed_in_client()
    _status, page = _ask(server, c, "alice@example.com", device.device_id, "wiki")
    assert 'data-posture="stale"' in page


def test_whatif_answers_for_the_draft_too(console_server: ConsoleServer) -> None:
    server = console_server
    setup_policy(server, [WIKI], [ENG_WIKI])
    device = enroll(server, "bob", "bob-password")
    c = server.signed_in_client()
    sales = {"id": "sales-wiki", "effect": "allow", "resources": ["wiki"]}
    r = c.post("/console/policy/new-rule", data={"csrf": c.csrf, "body": _json(sales)})  # type: ignore[attr-defined]
    assert r.status_code == 303
    r = c.post("/console/policy/new-resource", data={"csrf": c.csrf, "body": _json(DB)})  # type: ignore[attr-defined]
    assert r.status_code == 303
    _status, page = _ask(server, c, "bob@example.com", device.device_id, "wiki")
    assert _effect(page) == "deny"
    assert _effect(page, "whatif-draft") == "allow"
    # A resource only in the draft: deny today.
    _status, page = _ask(server, c, "bob@example.com", device.device_id, "db")
    assert _effect(page) == "deny"
    assert _effect(page, "whatif-draft") == "deny"


def test_whatif_refuses_a_device_of_another_user(console_server: ConsoleServer) -> None:
    server = console_server
    setup_policy(server, [WIKI], [ENG_WIKI])
    device = enroll(server)
    c = server.signed_in_client()
    status, page = _ask(server, c, "bob@example.com", device.device_id, "wiki")
    assert status == 404
    assert 'id="whatif-result"' not in page
    status, _page = _ask(server, c, "alice@example.com", device.device_id, "nope")
    assert status == 404


async def _report_hostile(rc: RunningController, device: Device, value: str) -> None:
    async with ControlPlaneClient(rc.base_url, auth=BearerAuth(device.token)) as client:
        nonce = await client.posture_nonce(device.device_id)
        now = time.time()
        report = PostureReport(
            device_id=device.device_id,
            nonce=nonce.nonce,
            issued_at=now,
            facts=(Fact.of("disk.encrypted", True, now), Fact.of("os.name", value, now)),
        )
        await client.submit_posture(device.device_id, sign_report(report, device.keys.signing))


def test_hostile_strings_are_escaped(console_server: ConsoleServer) -> None:
    server = console_server
    evil = "<script>alert(1)</script>"
    setup_policy(server, [WIKI], [ENG_WIKI])
    device = enroll(server)
    asyncio.run(_report_hostile(server.rc, device, evil))  # from the device
    # Groups as a hostile identity provider's token could carry them.
    server.service.storage.set_identity("alice@example.com", "alice", "alice@example.com", [evil])
    c = server.signed_in_client()
    status, page = _ask(server, c, "alice@example.com", device.device_id, "wiki", app=evil)
    assert status == 200
    assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    status, page = _ask(server, c, evil, device.device_id, "wiki")
    assert status == 404
    assert evil not in page
