"""The users and groups page over real HTTP: users with provider and managed groups and
device counts; group edits validated, applied to the device's next bundle, audited,
refused without CSRF; hostile names escaped."""

from __future__ import annotations

import html
import re

import pytest

from controller.console.users import GroupsError, parse_groups
from tests.controller.console.conftest import ConsoleServer
from tests.controller.console.test_console_policy import (
    WIKI,
    admin_api,
    enroll,
    fetch_bundle,
    setup_policy,
)

pytestmark = pytest.mark.integration

ALICE = "alice@example.com"


def _row(page: str, user: str) -> str:
    match = re.search(rf'<tr data-user="{re.escape(user)}">(.*?)</tr>', page, re.S)
    assert match is not None, page
    return match.group(1)


@pytest.mark.unit
def test_parse_groups() -> None:
    assert parse_groups("b, a\na\n\n  c ") == ["a", "b", "c"]
    assert parse_groups("") == []
    for bad in ("ok\x07bell", "x" * 65, "<b>", "a b"):
        with pytest.raises(GroupsError, match="group names"):
            parse_groups(bad)
    with pytest.raises(GroupsError, match="at most 64"):
        parse_groups("\n".join(f"g{i}" for i in range(65)))


def test_users_page_lists_users_groups_and_devices(console_server: ConsoleServer) -> None:
    server = console_server
    setup_policy(server, [WIKI], [])
    enroll(server)
    c = server.signed_in_client()
    page = c.get("/console/users")
    assert page.status_code == 200
    row = _row(page.text, ALICE)
    assert "engineering" in row  # provider group, from the last token
    assert re.search(r'<td class="num"[^>]*>1</td>', row)
    assert 'class="groups"' in row
    assert 'name="csrf"' in row


def test_group_edit_reaches_the_bundle_and_is_audited(console_server: ConsoleServer) -> None:
    server = console_server
    setup_policy(server, [WIKI], [])
    device = enroll(server)
    version = server.service.policy_version()
    c = server.signed_in_client()
    r = c.post(
        "/console/users/groups",
        data={"csrf": c.csrf, "user": ALICE, "groups": "finance\ncontractors, finance"},  # type: ignore[attr-defined]
    )
    assert r.status_code == 303
    assert server.service.storage.get_user_groups(ALICE) == ["contractors", "finance"]
    assert server.service.policy_version() == version + 1
    bundle = fetch_bundle(server, device)
    assert set(bundle.user.groups) == {"contractors", "engineering", "finance"}
    audit = [e for e in server.service.storage.list_audit() if e.kind == "admin:user.groups"]
    assert len(audit) == 1
    assert audit[0].user_id == "it-admin@example.com"
    assert ALICE in audit[0].detail
    assert "contractors, finance" in audit[0].detail
    row = _row(c.get("/console/users").text, ALICE)
    assert "contractors\nfinance</textarea>" in row


def test_group_edit_is_validated_and_needs_csrf(console_server: ConsoleServer) -> None:
    server = console_server
    c = server.signed_in_client()
    r = c.post("/console/users/groups", data={"user": ALICE, "groups": "x"})
    assert r.status_code == 403
    r = c.post(
        "/console/users/groups",
        data={"csrf": c.csrf, "user": ALICE, "groups": "ok\x07bell"},  # type: ignore[attr-defined]
    )
    assert r.status_code == 422
    assert "group names" in html.unescape(r.text)
    r = c.post(
        "/console/users/groups",
        data={"csrf": c.csrf, "user": "a\x00b", "groups": "x"},  # type: ignore[attr-defined]
    )
    assert r.status_code == 422
    assert server.service.storage.list_users() == []
    assert not [e for e in server.service.storage.list_audit() if e.kind == "admin:user.groups"]


def test_hostile_user_and_group_names_are_escaped(console_server: ConsoleServer) -> None:
    server = console_server
    evil = '"><img src=x onerror=alert(1)>'
    # As a hostile identity provider's token could bring them (the admin API refuses them).
    server.service.storage.set_identity(evil, evil, evil, [evil])
    r = admin_api(server, "PUT", "/v1/admin/users/x", {"user": "x", "groups": [evil]})
    assert r.status_code == 400
    c = server.signed_in_client()
    page = c.get("/console/users").text
    assert "<img" not in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    r = c.post(
        "/console/users/groups",
        data={"csrf": c.csrf, "user": "new-user", "groups": "<b>x</b>"},  # type: ignore[attr-defined]
    )
    assert r.status_code == 422  # the admin API's rules for group names
    assert "<b>x</b>" not in r.text
    assert "&lt;b&gt;x&lt;/b&gt;" in r.text  # kept in the textarea, escaped
