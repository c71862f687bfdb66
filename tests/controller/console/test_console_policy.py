"""The console's policy pages over real HTTP: validation errors shown and nothing saved,
draft → diff → publish → a real enrolled device gets a new signed bundle, publish over a
concurrent change refused, CSRF, hostile ids and names escaped, audit entries."""

from __future__ import annotations

import asyncio
import html
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import pytest

from controller.testing import RunningController, login
from core.controlplane import BearerAuth, ControlPlaneClient
from core.controlplane.models import Event
from core.wire.policy import BUNDLE_TYP, PolicyBundle, decode_bundle
from core.wire.signing import public_key_from_jwk, verify
from tests.controller.conftest import DeviceKeys, new_device
from tests.controller.console.conftest import ConsoleServer
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.integration

ADMIN_ID = "it-admin@example.com"
WIKI: dict[str, Any] = {"id": "wiki", "name": "Wiki", "cidrs": ["10.20.0.0/24"], "ports": [443]}
DB: dict[str, Any] = {"id": "db", "name": "DB", "cidrs": ["10.30.0.0/24"], "ports": [5432]}
ENG_WIKI: dict[str, Any] = {
    "id": "eng-wiki",
    "effect": "allow",
    "resources": ["wiki"],
    "priority": 10,
    "conditions": {
        "kind": "all",
        "of": [
            {"kind": "fact", "fact": "user.groups", "op": "eq", "value": "engineering"},
            {"kind": "fact", "fact": "posture.disk.encrypted", "op": "eq", "value": True},
        ],
    },
}
ENG_DB: dict[str, Any] = {
    "id": "eng-db",
    "effect": "allow",
    "resources": ["db"],
    "conditions": {"kind": "fact", "fact": "user.groups", "op": "eq", "value": "engineering"},
}


# -- helpers (also used by the what-if and users tests) ---------------------------------


def admin_api(server: ConsoleServer, method: str, path: str, body: object = None) -> httpx.Response:
    """A call to the controller's admin API with its bearer token (not the console)."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        return http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {server.rc.admin_token}"}
        )


def setup_policy(
    server: ConsoleServer, resources: list[dict[str, Any]], rules: list[dict[str, Any]]
) -> None:
    """Publish resources and rules through the admin API."""
    for r in resources:
        assert admin_api(server, "PUT", f"/v1/admin/resources/{r['id']}", r).status_code == 200
    for r in rules:
        assert admin_api(server, "PUT", f"/v1/admin/rules/{r['id']}", r).status_code == 200


@dataclass
class Device:
    """A device enrolled by a real client, with its user's access token."""

    device_id: str
    keys: DeviceKeys
    token: str


async def _enroll(rc: RunningController, user: str, password: str, encrypted: bool) -> Device:
    tokens = await login(rc, user, password)
    keys = new_device()
    async with ControlPlaneClient(rc.base_url, auth=BearerAuth(tokens["access_token"])) as client:
        enrolled = await client.enroll(keys.enroll_request(f"{user}-laptop"))
        dev = enrolled.device_id
        nonce = await client.posture_nonce(dev)
        await client.submit_posture(dev, keys.report(dev, nonce.nonce, encrypted=encrypted))
    return Device(dev, keys, tokens["access_token"])


def enroll(
    server: ConsoleServer,
    user: str = "alice",
    password: str = "alice-password",
    *,
    encrypted: bool = True,
) -> Device:
    """Enroll a device for ``user`` and report its posture (disk encrypted or not)."""
    return asyncio.run(_enroll(server.rc, user, password, encrypted))


async def _fetch(rc: RunningController, device: Device) -> PolicyBundle:
    async with ControlPlaneClient(rc.base_url, auth=BearerAuth(device.token)) as client:
        disc = await client.discovery()
        got = await client.fetch_bundle(device.device_id)
    trusted = {k.kid: public_key_from_jwk(msgspec.to_builtins(k)) for k in disc.policy_keys.keys}
    doc = verify(got.bundle, trusted, typ=BUNDLE_TYP, max_size=1 << 22)
    bundle = decode_bundle(doc.payload)
    assert bundle.version == got.version
    return bundle


def fetch_bundle(server: ConsoleServer, device: Device) -> PolicyBundle:
    """The device's next signed bundle, verified with the discovery keys like a client."""
    return asyncio.run(_fetch(server.rc, device))


def hidden(page: str, name: str) -> str:
    """The value of the first hidden input ``name`` in a page."""
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match is not None, f"no hidden {name} in the page"
    return html.unescape(match.group(1))


def _draft(server: ConsoleServer) -> tuple[str, int, int] | None:
    return server.service.storage.get_policy_draft(ADMIN_ID)


def _audit_kinds(server: ConsoleServer) -> list[tuple[str, str]]:
    return [(e.kind, e.detail) for e in server.service.storage.list_audit()]


def _json(body: object) -> str:
    return msgspec.json.encode(body).decode()


# -- pages ------------------------------------------------------------------------------


def test_policy_page_lists_the_policy_and_escapes_hostile_text(
    console_server: ConsoleServer,
) -> None:
    evil = "<script>alert(1)</script>"
    setup_policy(
        console_server,
        [WIKI, {**DB, "name": evil}],
        [{**ENG_WIKI, "description": f'"><img src=x onerror=alert(1)>{evil}'}],
    )
    c = console_server.signed_in_client()
    page = c.get("/console/policy")
    assert page.status_code == 200
    assert 'table id="resources"' in page.text
    assert 'table id="rules"' in page.text
    assert 'data-id="wiki"' in page.text
    assert 'data-id="eng-wiki"' in page.text
    assert evil not in page.text
    assert "<img" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    # The editor holds the published JSON, escaped.
    edit = c.get("/console/policy/resources/db")
    assert edit.status_code == 200
    assert 'id="resource-edit"' in edit.text
    assert evil not in edit.text
    assert "&lt;script&gt;" in edit.text
    assert c.get("/console/policy/rules/nope").status_code == 404


def test_signed_out_browser_is_sent_to_sign_in(console_server: ConsoleServer) -> None:
    c = console_server.client()
    for path in ("/console/policy", "/console/policy/diff", "/console/whatif", "/console/users"):
        r = c.get(path)
        assert r.status_code in (302, 303, 307), (path, r.status_code)
    r = c.post("/console/policy/new-rule", data={"body": _json(ENG_DB)})
    assert r.status_code in (302, 303, 307, 401, 403)
    assert _draft(console_server) is None


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/console/policy/new-rule", "{not json", "not valid JSON"),
        ("/console/policy/new-rule", _json({**ENG_DB, "priority": "high"}), "$.priority"),
        ("/console/policy/new-rule", _json({**ENG_DB, "effect": "perhaps"}), "$.effect"),
        ("/console/policy/new-rule", _json({**ENG_DB, "resources": ["nope"]}), "unknown resources"),
        ("/console/policy/new-rule", _json(ENG_WIKI), "already exists"),
        (
            "/console/policy/new-rule",
            _json({**ENG_DB, "id": "a b", "resources": ["wiki"]}),
            "may only use letters",
        ),
        ("/console/policy/rules/eng-wiki", _json({**ENG_WIKI, "id": "other"}), "differs"),
        ("/console/policy/new-resource", _json({"id": "x", "name": "X"}), "neither hosts"),
        (
            "/console/policy/new-resource",
            _json({"id": "x", "name": "X", "hosts": ["<script>"]}),
            "not a lower-case host",
        ),
        ("/console/policy/new-resource", _json(WIKI), "already exists"),
    ],
)
def test_invalid_edit_is_shown_and_nothing_saved(
    console_server: ConsoleServer, path: str, body: str, message: str
) -> None:
    setup_policy(console_server, [WIKI], [ENG_WIKI])
    c = console_server.signed_in_client()
    r = c.post(path, data={"csrf": c.csrf, "body": body, "action": "save"})  # type: ignore[attr-defined]
    assert r.status_code == 422, r.text
    error = re.search(r'<p class="form-error"[^>]*>(.*?)</p>', r.text, re.S)
    assert error is not None
    assert message in html.unescape(error.group(1))
    # The admin's text is kept in the textarea (escaped), nothing is saved.
    textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", r.text, re.S)
    assert textarea is not None
    assert html.unescape(textarea.group(1)) == body
    assert "<script>" not in r.text
    assert _draft(console_server) is None
    assert [x.id for x in console_server.service.rules()] == ["eng-wiki"]


def test_deleting_a_resource_a_rule_uses_is_refused(console_server: ConsoleServer) -> None:
    setup_policy(console_server, [WIKI], [ENG_WIKI])
    c = console_server.signed_in_client()
    r = c.post(
        "/console/policy/resources/wiki",
        data={"csrf": c.csrf, "body": _json(WIKI), "action": "delete"},  # type: ignore[attr-defined]
    )
    assert r.status_code == 422
    assert "used by rules eng-wiki" in html.unescape(r.text)
    assert _draft(console_server) is None


def test_draft_diff_publish_gives_the_device_a_new_bundle(console_server: ConsoleServer) -> None:
    server = console_server
    setup_policy(server, [WIKI], [ENG_WIKI])
    device = enroll(server)
    before = fetch_bundle(server, device)
    assert [r.id for r in before.rules] == ["eng-wiki"]
    version = server.service.policy_version()
    c = server.signed_in_client()
    csrf = c.csrf  # type: ignore[attr-defined]

    # Stage a new resource and a rule for it, and change the existing rule.
    r = c.post("/console/policy/new-resource", data={"csrf": csrf, "body": _json(DB)})
    assert r.status_code == 303
    assert r.headers["location"] == "/console/policy?notice=saved"
    r = c.post("/console/policy/new-rule", data={"csrf": csrf, "body": _json(ENG_DB)})
    assert r.status_code == 303
    changed = {**ENG_WIKI, "priority": 20}
    r = c.post(
        "/console/policy/rules/eng-wiki",
        data={"csrf": csrf, "body": _json(changed), "action": "save"},
    )
    assert r.status_code == 303
    # Nothing is live yet: the draft is the admin's.
    assert [x.id for x in server.service.rules()] == ["eng-wiki"]
    assert server.service.policy_version() == version
    row = _draft(server)
    assert row is not None
    assert row[1] == version
    page = c.get("/console/policy").text
    assert 'data-id="eng-db" data-state="added"' in page
    assert 'data-id="eng-wiki" data-state="changed"' in page

    diff = c.get("/console/policy/diff")
    assert diff.status_code == 200
    assert 'id="diff"' in diff.text
    for kind, ident, action in (
        ("resource", "db", "added"),
        ("rule", "eng-db", "added"),
        ("rule", "eng-wiki", "changed"),
    ):
        assert f'data-kind="{kind}" data-id="{ident}" data-action="{action}"' in diff.text
    assert '<span class="diff-del">-  &#34;priority&#34;: 10,</span>' in diff.text
    assert '<span class="diff-add">+  &#34;priority&#34;: 20,</span>' in diff.text
    assert 'id="publish"' in diff.text

    async def publish_and_watch() -> list[Event]:
        received: list[Event] = []
        async with ControlPlaneClient(server.url, auth=BearerAuth(device.token)) as client:

            async def consume() -> None:
                async for event in client.events(device.device_id):
                    received.append(event)

            task = asyncio.get_running_loop().create_task(consume())
            await async_wait_until(
                lambda: server.service.events.subscribers(device.device_id), what="subscribed"
            )
            r = await asyncio.to_thread(
                c.post,
                "/console/policy/publish",
                data={"csrf": csrf, "version": hidden(diff.text, "version")},
            )
            assert r.status_code == 303, r.text
            assert r.headers["location"] == "/console/policy?notice=published"
            await async_wait_until(lambda: received, what="policy_changed")
            task.cancel()
        return received

    events = asyncio.run(publish_and_watch())
    assert events[0].type == "policy_changed"
    assert server.service.policy_version() == version + 1
    assert _draft(server) is None
    after = fetch_bundle(server, device)
    assert after.version > before.version
    assert [r.id for r in after.rules] == ["eng-db", "eng-wiki"]
    assert [r.id for r in after.resources] == ["db", "wiki"]
    assert next(r for r in after.rules if r.id == "eng-wiki").priority == 20
    audit = [d for k, d in _audit_kinds(server) if k == "admin:policy.publish"]
    assert len(audit) == 1
    assert "resource db added" in audit[0]
    assert "rule eng-db added" in audit[0]
    assert "rule eng-wiki changed" in audit[0]


def test_publish_over_a_concurrent_change_is_refused(console_server: ConsoleServer) -> None:
    server = console_server
    setup_policy(server, [WIKI], [ENG_WIKI])
    c = server.signed_in_client()
    csrf = c.csrf  # type: ignore[attr-defined]
    assert (
        c.post("/console/policy/new-resource", data={"csrf": csrf, "body": _json(DB)}).status_code
        == 303
    )
    diff = c.get("/console/policy/diff").text
    seen = hidden(diff, "version")
    # Someone else changes the policy (the admin API) after the diff was reviewed.
    assert admin_api(server, "DELETE", "/v1/admin/rules/eng-wiki").status_code == 204
    r = c.post("/console/policy/publish", data={"csrf": csrf, "version": seen})
    assert r.status_code == 409
    assert "the policy changed since you started editing: review the new diff" in html.unescape(
        r.text
    )
    assert [x.id for x in server.service.resources()] == ["wiki"]  # nothing published
    assert not [k for k, _ in _audit_kinds(server) if k == "admin:policy.publish"]
    # The refusal moved the draft onto the new policy: the new diff, then publish works.
    new_version = hidden(r.text, "version")
    assert int(new_version) == server.service.policy_version() > int(seen)
    r = c.post("/console/policy/publish", data={"csrf": csrf, "version": new_version})
    assert r.status_code == 303
    assert [x.id for x in server.service.resources()] == ["db", "wiki"]
    assert [x.id for x in server.service.rules()] == []  # the other admin's delete kept


def test_group_change_moves_the_version_too(console_server: ConsoleServer) -> None:
    server = console_server
    setup_policy(server, [WIKI], [])
    c = server.signed_in_client()
    csrf = c.csrf  # type: ignore[attr-defined]
    assert (
        c.post("/console/policy/new-resource", data={"csrf": csrf, "body": _json(DB)}).status_code
        == 303
    )
    seen = hidden(c.get("/console/policy/diff").text, "version")
    r = admin_api(
        server,
        "PUT",
        "/v1/admin/users/bob@example.com",
        {"user": "bob@example.com", "groups": ["x"]},
    )
    assert r.status_code == 200
    r = c.post("/console/policy/publish", data={"csrf": csrf, "version": seen})
    assert r.status_code == 409


def test_changes_without_csrf_are_refused(console_server: ConsoleServer) -> None:
    server = console_server
    setup_policy(server, [WIKI], [ENG_WIKI])
    c = server.signed_in_client()
    csrf = c.csrf  # type: ignore[attr-defined]
    r = c.post("/console/policy/new-resource", data={"body": _json(DB)})
    assert r.status_code == 403
    r = c.post("/console/policy/new-resource", data={"csrf": "wrong", "body": _json(DB)})
    assert r.status_code == 403
    assert _draft(server) is None
    assert (
        c.post("/console/policy/new-resource", data={"csrf": csrf, "body": _json(DB)}).status_code
        == 303
    )
    version = hidden(c.get("/console/policy/diff").text, "version")
    r = c.post("/console/policy/publish", data={"version": version})
    assert r.status_code == 403
    r = c.post(
        "/console/policy/publish",
        data={"csrf": csrf, "version": version},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403
    r = c.post("/console/policy/discard", data={})
    assert r.status_code == 403
    assert [x.id for x in server.service.resources()] == ["wiki"]
    assert _draft(server) is not None


def test_revert_and_discard(console_server: ConsoleServer) -> None:
    server = console_server
    setup_policy(server, [WIKI, DB], [ENG_WIKI])
    c = server.signed_in_client()
    csrf = c.csrf  # type: ignore[attr-defined]
    r = c.post("/console/policy/resources/db", data={"csrf": csrf, "action": "delete", "body": ""})
    assert r.status_code == 303
    assert 'data-id="db" data-state="deleted"' in c.get("/console/policy").text
    r = c.post("/console/policy/resources/db", data={"csrf": csrf, "action": "revert"})
    assert r.status_code == 303
    assert _draft(server) is None  # the only change undone: no draft left
    r = c.post("/console/policy/resources/db", data={"csrf": csrf, "action": "delete", "body": ""})
    assert r.status_code == 303
    r = c.post("/console/policy/discard", data={"csrf": csrf})
    assert r.status_code == 303
    assert _draft(server) is None
    assert [x.id for x in server.service.resources()] == ["db", "wiki"]
    discards = [d for k, d in _audit_kinds(server) if k == "admin:policy.discard"]
    assert discards == ["draft discarded: resource db"]


def test_hostile_ids_in_urls_and_pages_are_escaped(console_server: ConsoleServer) -> None:
    server = console_server
    setup_policy(server, [WIKI], [])
    c = server.signed_in_client()
    hostile = '"><script>alert(1)</script>'
    r = c.get("/console/policy/rules/" + quote(hostile, safe=""))
    assert r.status_code == 404
    assert "<script>alert(1)" not in r.text
    body = _json({**ENG_DB, "id": hostile, "resources": ["wiki"]})
    r = c.post("/console/policy/new-rule", data={"csrf": c.csrf, "body": body})  # type: ignore[attr-defined]
    assert r.status_code == 422
    assert "<script>alert(1)" not in r.text
