"""The overview and device pages against a real controller and fleet."""

from __future__ import annotations

import re

from tests.controller.console.conftest import ADMIN, ConsoleServer
from tests.controller.console.fleet import SCRIPT, make_fleet


def _audit_kinds(server: ConsoleServer) -> list[tuple[str, str, str]]:
    return [(e.kind, e.user_id, e.device_id) for e in server.service.storage.list_audit(limit=100)]


def test_overview_shows_the_fleet(console_server: ConsoleServer) -> None:
    fleet = make_fleet(console_server)
    c = console_server.signed_in_client(*ADMIN)
    page = c.get("/console/")
    assert page.status_code == 200
    html = page.text
    assert 'nav id="nav"' in html
    assert 'data-page="overview" class="active"' in html
    assert 'id="whoami"' in html
    assert "IT Admin" in html
    assert 'id="signout"' in html
    assert f'value="{c.csrf}"' in html
    # Two devices reported posture just now: online; the hostile row never did.
    assert re.search(r'id="stat-online"><span class="value">2<', html)
    assert re.search(r'id="stat-total"><span class="value">3<', html)
    assert re.search(r'id="stat-allowed"><span class="value">1<', html)
    assert re.search(r'id="stat-denied"><span class="value">2<', html)
    assert "<svg" in html
    assert '<title id="chart-svg-title">' in html
    assert 'class="bar-deny"' in html
    assert 'class="bar-allow"' in html
    assert ' style="' not in html
    assert "<script" not in html.replace("&lt;script", "")
    # Top denied: wiki, 2.
    assert re.search(r'<tr data-resource="wiki">.*?<td class="num">2</td>', html, re.S)
    # Posture failures: the bad laptop with its failing check.
    assert f'data-device-id="{fleet.bad.device_id}"' in html
    assert "posture.disk.encrypted" in html
    assert f'data-device-id="{fleet.good.device_id}"' not in html


def test_devices_list_and_detail(console_server: ConsoleServer) -> None:
    fleet = make_fleet(console_server)
    c = console_server.signed_in_client(*ADMIN)
    page = c.get("/console/devices")
    assert page.status_code == 200
    rows = re.findall(
        r'<tr data-device-id="([^"]+)" data-status="(\w+)" data-posture="(\w+)"', page.text
    )
    assert (fleet.good.device_id, "active", "ok") in rows
    assert (fleet.bad.device_id, "active", "failed") in rows
    assert ("dev-hostile", "active", "unknown") in rows
    detail = c.get(f"/console/devices/{fleet.bad.device_id}")
    assert detail.status_code == 200
    html = detail.text
    assert 'table id="posture"' in html
    assert (
        '<tr data-fact="posture.disk.encrypted"><td><code>posture.disk.encrypted</code>'
        "</td><td>no</td>" in html
    )
    assert 'form id="revoke"' in html
    assert 'form id="recheck"' in html
    assert html.count(f'name="csrf" value="{c.csrf}"') >= 3  # type: ignore[attr-defined]
    assert '<tr data-resource="wiki" data-allowed="no">' in html
    assert html.count('<tr data-effect="deny">') == 2
    good = c.get(f"/console/devices/{fleet.good.device_id}").text
    assert '<tr data-resource="wiki" data-allowed="yes">' in good


def test_unknown_device_is_404(console_server: ConsoleServer) -> None:
    c = console_server.signed_in_client(*ADMIN)
    for path in ("/console/devices/nope", "/console/devices/%3Cscript%3E"):
        resp = c.get(path)
        assert resp.status_code == 404
        assert "No such device" in resp.text
        assert "<script>" not in resp.text
    assert c.get("/console/no-such-page").status_code == 404


def test_hostile_device_strings_are_escaped(console_server: ConsoleServer) -> None:
    fleet = make_fleet(console_server)
    c = console_server.signed_in_client(*ADMIN)
    pages = [
        c.get("/console/").text,
        c.get("/console/devices").text,
        c.get(f"/console/devices/{fleet.bad.device_id}").text,
        c.get("/console/devices/dev-hostile").text,
    ]
    for html in pages:
        assert SCRIPT not in html
        assert "<img" not in html
        assert "onerror=alert(1)>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]  # the name, escaped
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in pages[2]  # the app path
    assert "&lt;script&gt;" in pages[2]  # the OS name fact and the reason
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[3]


def test_revoke_needs_confirmation_and_is_audited(console_server: ConsoleServer) -> None:
    fleet = make_fleet(console_server)
    c = console_server.signed_in_client(*ADMIN)
    dev_id = fleet.good.device_id
    url = f"/console/devices/{dev_id}/revoke"
    unconfirmed = c.post(url, data={"csrf": c.csrf})  # type: ignore[attr-defined]
    assert unconfirmed.status_code == 400
    assert 'class="form-error"' in unconfirmed.text
    assert console_server.service.storage.get_device(dev_id).status == "active"
    done = c.post(url, data={"csrf": c.csrf, "confirm": "yes"})  # type: ignore[attr-defined]
    assert done.status_code == 303
    assert done.headers["location"] == f"/console/devices/{dev_id}?done=revoked"
    dev = console_server.service.storage.get_device(dev_id)
    assert dev.status == "revoked"
    assert dev.address is None
    assert ("admin:device_revoke", "it-admin@example.com", dev_id) in _audit_kinds(console_server)
    page = c.get(done.headers["location"]).text
    assert 'id="notice"' in page
    assert 'form id="revoke"' not in page


def test_recheck_publishes_the_event_and_is_audited(console_server: ConsoleServer) -> None:
    import asyncio

    fleet = make_fleet(console_server)
    c = console_server.signed_in_client(*ADMIN)
    dev_id = fleet.bad.device_id
    hub = console_server.service.events
    got: list[str] = []

    async def listen() -> None:
        async with hub.subscribe(dev_id) as queue:
            ready.set()
            ev = await asyncio.wait_for(queue.get(), 10)
            got.append(ev.type)

    ready = __import__("threading").Event()
    fut = asyncio.run_coroutine_threadsafe(listen(), console_server._loop)
    assert ready.wait(10)
    resp = c.post(f"/console/devices/{dev_id}/recheck", data={"csrf": c.csrf})  # type: ignore[attr-defined]
    assert resp.status_code == 303
    fut.result(10)
    assert got == ["posture_recheck"]
    assert ("admin:device_recheck", "it-admin@example.com", dev_id) in _audit_kinds(console_server)


def test_a_missing_group_is_not_a_posture_failure(console_server: ConsoleServer) -> None:
    """Bob (sales) has a healthy laptop; the wiki needs engineering. That is access, not
    posture: the laptop is "ok", not listed under posture failures, and its page says
    which client version its posture report carried."""
    import asyncio
    import time

    from core.controlplane import BearerAuth, ControlPlaneClient
    from core.wire.posture import Fact, PostureReport, sign_report
    from tests.controller.console.live_helpers import enroll

    make_fleet(console_server)

    async def bobs_laptop() -> str:
        dev = await enroll(console_server.rc, "bob", "bob laptop")
        async with ControlPlaneClient(
            console_server.url, auth=BearerAuth(dev.token), proxy=None
        ) as client:
            nonce = await client.posture_nonce(dev.device_id)
            now = time.time()
            facts = (Fact.of("disk.encrypted", True, now), Fact.of("client.version", "9.8.7", now))
            report = PostureReport(
                device_id=dev.device_id, nonce=nonce.nonce, issued_at=now, facts=facts
            )
            await client.submit_posture(dev.device_id, sign_report(report, dev.keys.signing))
        return dev.device_id

    bob = asyncio.run(bobs_laptop())
    c = console_server.signed_in_client(*ADMIN)
    rows = re.findall(
        r'<tr data-device-id="([^"]+)" data-status="(\w+)" data-posture="(\w+)"',
        c.get("/console/devices").text,
    )
    assert (bob, "active", "ok") in rows
    overview = c.get("/console/").text
    assert f'data-device-id="{bob}"' not in overview
    assert "user.groups" not in overview  # only posture checks are posture failures
    detail = c.get(f"/console/devices/{bob}").text
    assert "<td>9.8.7</td>" in detail


def test_the_chart_keeps_the_peak_label_clear_of_the_bars() -> None:
    from controller.console.overview import chart

    now = 1_800_000_000
    c = chart({now // 60 * 60: (30, 12), now // 60 * 60 - 60: (3, 0)}, now)
    assert c.peak == 42
    tallest = c.bars[-1]
    assert (tallest.allowed, tallest.denied) == (30, 12)
    assert tallest.deny_y >= 18  # the "peak N/min" label sits at y=12 above the bars
    assert round(tallest.allow_y + tallest.allow_h, 2) == c.height - 20  # on the axis
    assert round(tallest.deny_y + tallest.deny_h, 2) == round(tallest.allow_y, 2)
