"""Security of the console: headers on every response, CSRF and origin checks, methods,
rate limits and the live WebSocket's authentication, against a real server."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.controller.console.conftest import (
    ADMIN,
    ConsoleServer,
    console_server_running,
)
from tests.controller.console.fleet import make_fleet

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _assert_headers(resp: object) -> None:
    headers = resp.headers  # type: ignore[attr-defined]
    assert headers["content-security-policy"] == CSP, resp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert "strict-transport-security" not in headers  # http on loopback


def test_every_response_carries_the_security_headers(console_server: ConsoleServer) -> None:
    fleet = make_fleet(console_server)
    anon = console_server.client()
    c = console_server.signed_in_client(*ADMIN)
    responses = [
        anon.get("/console/"),  # redirect to sign-in
        anon.get("/console/signin"),
        anon.get("/console/login"),  # redirect to the provider
        anon.get("/console/callback?state=x&code=y"),  # refused
        anon.get("/console/static/console.css"),
        anon.get("/console/static/missing.css"),
        anon.post("/console/logout"),
        c.get("/console/"),
        c.get("/console/devices"),
        c.get(f"/console/devices/{fleet.bad.device_id}"),
        c.get("/console/devices/unknown"),
        c.get("/console/nothing-here"),
        c.put("/console/devices"),
        c.post(f"/console/devices/{fleet.bad.device_id}/revoke", data={}),
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [303, 200, 303, 400, 200, 404, 401, 200, 200, 200, 404, 404, 405, 403]
    for resp in responses:
        _assert_headers(resp)
    assert responses[4].headers["content-type"].startswith("text/css")


def test_changes_without_csrf_are_refused(console_server: ConsoleServer) -> None:
    fleet = make_fleet(console_server)
    c = console_server.signed_in_client(*ADMIN)
    dev_id = fleet.good.device_id
    url = f"/console/devices/{dev_id}/revoke"
    good = {"csrf": c.csrf, "confirm": "yes"}  # type: ignore[attr-defined]
    attempts = [
        c.post(url, data={"confirm": "yes"}),
        c.post(url, data={"csrf": "", "confirm": "yes"}),
        c.post(url, data={"csrf": c.csrf[:-1] + "x", "confirm": "yes"}),  # type: ignore[attr-defined]
        c.post(url, data=good, headers={"Origin": "https://evil.example"}),
        c.post(url, data=good, headers={"Origin": "null"}),
        # "Origin: null" is only our own page when the browser says same-origin
        c.post(url, data=good, headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"}),
        c.post(url, data=good, headers={"Origin": "null", "Sec-Fetch-Site": "none"}),
        c.post(url, data=good, headers={"Sec-Fetch-Site": "cross-site"}),
        c.post(url, data=good, headers={"Sec-Fetch-Site": "same-site"}),
        # The token in a query string or a JSON body does not count.
        c.post(url + f"?csrf={c.csrf}", data={"confirm": "yes"}),  # type: ignore[attr-defined]
        c.post(url, json=good),
        c.post("/console/logout", data={}),
        c.post(f"/console/devices/{dev_id}/recheck", data={"csrf": "nope"}),
    ]
    for resp in attempts:
        assert resp.status_code == 403, (resp.request.url, resp.text[:300])
        assert "Nothing was changed" in resp.text
    assert console_server.service.storage.get_device(dev_id).status == "active"
    assert console_server.service.storage.list_audit(limit=10) == []
    # Still signed in (the logout was refused), and the real thing works.
    assert c.get("/console/devices").status_code == 200
    ok = c.post(
        url, data=good, headers={"Origin": console_server.origin, "Sec-Fetch-Site": "same-origin"}
    )
    assert ok.status_code == 303
    assert console_server.service.storage.get_device(dev_id).status == "revoked"


def test_csrf_token_of_another_session_is_refused(console_server: ConsoleServer) -> None:
    fleet = make_fleet(console_server)
    a = console_server.signed_in_client(*ADMIN)
    b = console_server.signed_in_client(*ADMIN)
    assert a.csrf != b.csrf  # type: ignore[attr-defined]
    resp = a.post(
        f"/console/devices/{fleet.good.device_id}/revoke",
        data={"csrf": b.csrf, "confirm": "yes"},  # type: ignore[attr-defined]
    )
    assert resp.status_code == 403


def test_oversized_form_is_refused(console_server: ConsoleServer) -> None:
    fleet = make_fleet(console_server)
    c = console_server.signed_in_client(*ADMIN)
    resp = c.post(
        f"/console/devices/{fleet.good.device_id}/revoke",
        content=b"csrf=" + b"x" * (200 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 413
    big = c.post(
        f"/console/devices/{fleet.good.device_id}/revoke",
        content=b"x" * (console_server.config.max_body_bytes + 1),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 413
    assert console_server.service.storage.get_device(fleet.good.device_id).status == "active"


def test_sign_in_is_rate_limited() -> None:
    with console_server_running(console={"signin_rate_per_min": 3}) as server:
        c = server.client()
        codes = [c.get("/console/login").status_code for _ in range(4)]
        assert codes == [303, 303, 303, 429]
        limited = c.get("/console/callback?state=a&code=b")
        assert limited.status_code == 429
        assert "Retry-After" in limited.headers
        _assert_headers(limited)


def _ws_url(server: ConsoleServer) -> str:
    return server.url.replace("http://", "ws://") + "/console/ws/live"


def test_websocket_needs_a_session_and_our_origin(console_server: ConsoleServer) -> None:
    c = console_server.signed_in_client(*ADMIN)
    cookie = console_server.cookie_header(c)
    url = _ws_url(console_server)

    async def attempt(headers: dict[str, str], origin: str | None) -> int:
        try:
            async with connect(url, additional_headers=headers, origin=origin) as ws:  # type: ignore[arg-type]
                await ws.recv()
        except InvalidStatus as exc:
            return exc.response.status_code
        except ConnectionClosed as exc:
            return 10000 + (exc.rcvd.code if exc.rcvd else 0)
        return 0

    async def main() -> None:
        assert await attempt({}, console_server.origin) == 403  # no cookie
        bad = {"Cookie": "__Host-rtc_console=" + "A" * 43}
        assert await attempt(bad, console_server.origin) == 403  # unknown session
        evil = await attempt({"Cookie": cookie}, "https://evil.example")
        assert evil == 403  # cross-site WebSocket hijacking
        # The admin API token is not a console credential.
        token = {"Authorization": f"Bearer {console_server.rc.admin_token}"}
        assert await attempt(token, console_server.origin) == 403
        async with connect(
            url,
            additional_headers={"Cookie": cookie},
            origin=console_server.origin,  # type: ignore[arg-type]
        ) as ws:
            await ws.send(
                '{"type": "filter", "user": "", "device": "", "resource": "", "effect": ""}'
            )
            await asyncio.sleep(0.1)
            assert ws.state.name == "OPEN"

    asyncio.run(main())


def test_fifth_socket_is_refused(console_server: ConsoleServer) -> None:
    c = console_server.signed_in_client(*ADMIN)
    cookie = console_server.cookie_header(c)
    url = _ws_url(console_server)

    async def main() -> None:
        socks = []
        for _ in range(4):
            ws = await connect(
                url, additional_headers={"Cookie": cookie}, origin=console_server.origin
            )  # type: ignore[arg-type]
            socks.append(ws)
        await asyncio.sleep(0.2)
        for ws in socks:
            assert ws.state.name == "OPEN"
        fifth = await connect(
            url, additional_headers={"Cookie": cookie}, origin=console_server.origin
        )  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(fifth.recv(), 5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1008
        assert "too many" in info.value.rcvd.reason
        # Closing one makes room again.
        await socks.pop().close()
        await asyncio.sleep(0.2)
        again = await connect(
            url, additional_headers={"Cookie": cookie}, origin=console_server.origin
        )  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        assert again.state.name == "OPEN"
        socks.append(again)
        for ws in socks:
            await ws.close()

    asyncio.run(main())


def test_signed_out_session_cannot_open_a_socket(console_server: ConsoleServer) -> None:
    c = console_server.signed_in_client(*ADMIN)
    cookie = console_server.cookie_header(c)
    assert c.post("/console/logout", data={"csrf": c.csrf}).status_code == 303  # type: ignore[attr-defined]

    async def main() -> int:
        try:
            async with connect(_ws_url(console_server), additional_headers={"Cookie": cookie}):
                return 0
        except InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(main()) == 403


def test_hsts_when_served_over_https() -> None:
    with console_server_running(public_url="https://console.example") as server:
        resp = server.client().get("/console/signin")
        assert resp.status_code == 200
        assert resp.headers["strict-transport-security"] == "max-age=31536000"
        login = server.client().get("/console/login")
        assert login.status_code == 303
        assert (
            "redirect_uri=https%3A%2F%2Fconsole.example%2Fconsole%2Fcallback"
            in (login.headers["location"])
        )


def test_open_socket_closes_when_the_session_ends(console_server: ConsoleServer) -> None:
    c = console_server.signed_in_client(*ADMIN)
    cookie = console_server.cookie_header(c)

    async def main() -> int:
        async with connect(
            _ws_url(console_server),
            additional_headers={"Cookie": cookie},
            origin=console_server.origin,
        ) as ws:
            await asyncio.sleep(0.2)
            out = await asyncio.to_thread(
                c.post,
                "/console/logout",
                data={"csrf": c.csrf},  # type: ignore[attr-defined]
            )
            assert out.status_code == 303

            async def drain() -> None:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)

            with pytest.raises(ConnectionClosed) as info:
                await drain()
            assert info.value.rcvd is not None
            return info.value.rcvd.code

    assert asyncio.run(main()) == 4401


def test_a_browsers_own_post_under_no_referrer_is_accepted(console_server: ConsoleServer) -> None:
    """Under the console's ``Referrer-Policy: no-referrer`` Chromium sends ``Origin: null``
    on the console's own form posts, with ``Sec-Fetch-Site: same-origin`` (which no page
    can forge). Refusing that refused every change in a real browser."""
    fleet = make_fleet(console_server)
    c = console_server.signed_in_client(*ADMIN)
    dev_id = fleet.good.device_id
    ok = c.post(
        f"/console/devices/{dev_id}/revoke",
        data={"csrf": c.csrf, "confirm": "yes"},  # type: ignore[attr-defined]
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )
    assert ok.status_code == 303, ok.text[:300]
    assert console_server.service.storage.get_device(dev_id).status == "revoked"
