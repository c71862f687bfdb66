"""The console's audit log page on a real controller: break-glass reports sent by a real
device and admin changes, newest first, escaped, filtered by kind/user/device, paged;
and the storage query behind it on SQLite and PostgreSQL (LIKE wildcards are literal)."""

from __future__ import annotations

import asyncio
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from controller.storage import AuditEntry, open_storage
from controller.testing import login
from core.controlplane import BearerAuth, ControlPlaneClient
from tests.controller.conftest import new_device
from tests.controller.console.conftest import ConsoleServer

pytestmark = pytest.mark.integration


class _Rows(HTMLParser):
    """The cells of ``table#audit tbody tr`` (text, unescaped by the parser), and every
    ``<script>`` element's source seen anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, object]] = []
        self.scripts: list[str] = []
        self._in_table = False
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts.append(a.get("src") or "<inline>")
        if tag == "table" and a.get("id") == "audit":
            self._in_table = True
        elif self._in_table and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append({"kind": a.get("data-kind"), "cells": []})
        elif self._in_body and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self.rows:
            cells = self.rows[-1]["cells"]
            assert isinstance(cells, list)
            cells.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._in_table = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _page(client: httpx.Client, **params: str) -> tuple[str, _Rows]:
    resp = client.get("/console/audit", params=params)
    assert resp.status_code == 200, resp.text
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    parser = _Rows()
    parser.feed(resp.text)
    return resp.text, parser


def _real_rows(parsed: _Rows) -> list[dict[str, object]]:
    return [r for r in parsed.rows if r["kind"] is not None]


async def _break_glass(server: ConsoleServer, reason: str) -> str:
    rc = server.rc
    tokens = await login(rc, "alice", "alice-password")
    async with ControlPlaneClient(
        rc.base_url, auth=BearerAuth(tokens["access_token"]), proxy=None
    ) as client:
        dev = await client.enroll(new_device().enroll_request("Alice laptop"))
        await client.report_break_glass(dev.device_id, reason)
    return dev.device_id


HOSTILE = "<script>alert('x')</script> & \"quotes\""


def test_entries_are_listed_newest_first_and_escaped(console_server: ConsoleServer) -> None:
    device_id = asyncio.run(_break_glass(console_server, HOSTILE))
    storage = console_server.service.storage
    now = int(time.time())
    for i, (kind, user) in enumerate(
        [("admin:rule_saved", "it-admin"), ("admin:device_revoked", "root<b>")]
    ):
        storage.add_audit(
            AuditEntry(f"zz{i}", now + 10 + i, kind, user, "dev_x" if i else "", f"change {i}")
        )
    client = console_server.signed_in_client()
    html, parsed = _page(client)
    rows = _real_rows(parsed)
    assert [r["kind"] for r in rows] == ["admin:device_revoked", "admin:rule_saved", "break_glass"]
    bg = rows[2]["cells"]
    assert isinstance(bg, list)
    assert bg[1:] == ["break_glass", "alice@example.com", device_id, HOSTILE]
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(" in html
    assert "root&lt;b&gt;" in html
    assert all(src != "<inline>" for src in parsed.scripts)
    assert 'data-page="audit"' in html


def test_filters_and_paging(console_server: ConsoleServer) -> None:
    storage = console_server.service.storage
    now = int(time.time())
    for i in range(7):
        storage.add_audit(
            AuditEntry(f"a{i}", now + i, "admin:rule_saved", "it-admin", "", f"rule {i}")
        )
    storage.add_audit(AuditEntry("b0", now, "break_glass", "alice", "dev_Alice1", "vpn broke"))
    storage.add_audit(AuditEntry("b1", now, "break_glass", "bob", "dev_Bob_%", "hotel wifi"))
    client = console_server.signed_in_client()

    _html, parsed = _page(client, kind="break_glass")
    assert {r["kind"] for r in _real_rows(parsed)} == {"break_glass"}
    assert len(_real_rows(parsed)) == 2
    _html, parsed = _page(client, kind="admin")
    assert len(_real_rows(parsed)) == 7
    _html, parsed = _page(client, user="BOB")
    [row] = _real_rows(parsed)
    assert row["cells"][2] == "bob"  # type: ignore[index]
    _html, parsed = _page(client, device="alice1")
    assert len(_real_rows(parsed)) == 1
    # LIKE wildcards typed by an admin are literal characters.
    _html, parsed = _page(client, device="_%")
    assert len(_real_rows(parsed)) == 1
    _html, parsed = _page(client, device="%")
    assert len(_real_rows(parsed)) == 1
    _html, parsed = _page(client, user="nobody")
    assert _real_rows(parsed) == []
    assert "No audit records match this filter" in _html

    html, parsed = _page(client, kind="admin", limit="3")
    assert [r["cells"][4] for r in _real_rows(parsed)] == ["rule 6", "rule 5", "rule 4"]  # type: ignore[index]
    assert 'id="audit-older"' in html
    assert 'id="audit-newer"' not in html
    html, parsed = _page(client, kind="admin", limit="3", offset="6")
    assert [r["cells"][4] for r in _real_rows(parsed)] == ["rule 0"]  # type: ignore[index]
    assert 'id="audit-older"' not in html
    assert 'id="audit-newer"' in html
    # Junk paging and kinds fall back to the defaults rather than failing.
    html, parsed = _page(client, kind="<x>", limit="lots", offset="-5")
    assert len(_real_rows(parsed)) == 9


def test_the_page_needs_a_signed_in_admin(console_server: ConsoleServer) -> None:
    resp = console_server.client().get("/console/audit")
    assert resp.status_code in (302, 303, 401)
    assert "/console/" in resp.headers.get("location", "/console/")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_search_audit_storage(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = f"sqlite://{tmp_path / 'a.db'}"
    if backend == "postgresql":
        import psycopg

        base = request.getfixturevalue("postgres_url")
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS audit_page WITH (FORCE)")
            conn.execute("CREATE DATABASE audit_page")
        url = base.replace("/postgres?", "/audit_page?")
    storage = open_storage(url)
    try:
        storage.add_audit(AuditEntry("1", 100, "break_glass", "alice", "d1", "x"))
        storage.add_audit(AuditEntry("2", 200, "admin:publish", "it-admin", "", "y"))
        storage.add_audit(AuditEntry("3", 300, "admin:revoke", "It-Admin", "d_%", "z"))
        ids = [e.record_id for e in storage.search_audit()]
        assert ids == ["3", "2", "1"]
        assert [e.record_id for e in storage.search_audit(kind_prefix="admin:")] == ["3", "2"]
        assert [e.record_id for e in storage.search_audit(kind="break_glass")] == ["1"]
        assert [e.record_id for e in storage.search_audit(user="it-ADMIN")] == ["3", "2"]
        assert [e.record_id for e in storage.search_audit(device="_%")] == ["3"]
        assert [e.record_id for e in storage.search_audit(limit=1, offset=1)] == ["2"]
    finally:
        storage.close()
