"""Admin sign-in through the real dev OIDC provider: sessions, refusals, expiry."""

from __future__ import annotations

import hashlib

from tests.controller.console.conftest import (
    ADMIN,
    PREAUTH_COOKIE,
    SESSION_COOKIE,
    USER,
    ConsoleServer,
    walk_sign_in,
)


def _sessions(server: ConsoleServer) -> int:
    storage = server.service.storage
    with storage._tx() as cur:  # type: ignore[attr-defined]
        return int(storage._exec(cur, "SELECT COUNT(*) FROM console_sessions").fetchone()[0])  # type: ignore[attr-defined]


def test_admin_signs_in_and_sees_the_console(console_server: ConsoleServer) -> None:
    c = console_server.signed_in_client(*ADMIN)
    page = c.get("/console/signin")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/"
    cookie = c.session_cookie  # type: ignore[attr-defined]
    assert len(cookie) >= 43  # 256 bits, URL-safe base64
    row = console_server.service.storage.get_console_session(
        hashlib.sha256(cookie.encode()).hexdigest()
    )
    assert row is not None
    assert row.user_id == "it-admin@example.com"
    assert row.groups == ("rustronaut-admins",)
    assert PREAUTH_COOKIE not in c.jar.values  # type: ignore[attr-defined]
    assert _sessions(console_server) == 1


def test_cookie_attributes(console_server: ConsoleServer) -> None:
    c = console_server.client()
    walk = walk_sign_in(c, *ADMIN)
    headers = c.jar.set_cookie_headers  # type: ignore[attr-defined]
    pre = next(h for h in headers if h.startswith(PREAUTH_COOKIE + "="))
    for attr in ("HttpOnly", "Secure", "Path=/", "SameSite=lax"):
        assert attr in pre
    assert "Domain" not in pre
    assert walk.final is not None
    session = next(
        h for h in walk.final.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "=")
    )
    for attr in ("HttpOnly", "Secure", "Path=/", "SameSite=strict"):
        assert attr in session, session
    assert "Domain" not in session
    # The cookie is never stored: only its SHA-256.
    cookie = c.jar.values[SESSION_COOKIE]  # type: ignore[attr-defined]
    storage = console_server.service.storage
    with storage._tx() as cur:  # type: ignore[attr-defined]
        rows = storage._exec(cur, "SELECT * FROM console_sessions").fetchall()  # type: ignore[attr-defined]
    assert cookie not in repr(rows)


def test_non_admin_is_refused_without_a_session(console_server: ConsoleServer) -> None:
    c = console_server.client()
    walk = walk_sign_in(c, *USER)
    assert walk.final is not None
    assert walk.final.status_code == 403
    assert "alice@example.com" in walk.final.text
    assert "not in an admin group" in walk.final.text
    assert "rustronaut-admins" in walk.final.text
    assert SESSION_COOKIE not in c.jar.values  # type: ignore[attr-defined]
    assert _sessions(console_server) == 0
    assert c.get("/console/devices").status_code == 303


def test_tampered_state_is_refused(console_server: ConsoleServer) -> None:
    c = console_server.client()
    walk = walk_sign_in(c, *ADMIN, stop_before_callback=True)
    url = walk.callback_url.replace("state=", "state=x")
    resp = c.get(url)
    assert resp.status_code == 400
    assert "does not match" in resp.text
    assert SESSION_COOKIE not in c.jar.values  # type: ignore[attr-defined]
    assert _sessions(console_server) == 0


def test_callback_without_a_started_sign_in_is_refused(console_server: ConsoleServer) -> None:
    c = console_server.client()
    walk = walk_sign_in(c, *ADMIN, stop_before_callback=True)
    other = console_server.client()  # another browser: no pre-auth cookie (login CSRF)
    resp = other.get(walk.callback_url)
    assert resp.status_code == 400
    assert _sessions(console_server) == 0


def test_replayed_code_is_refused(console_server: ConsoleServer) -> None:
    c = console_server.client()
    walk = walk_sign_in(c, *ADMIN)
    assert walk.final is not None
    assert walk.final.status_code == 200
    # The same callback again: the pre-auth cookie is spent.
    again = c.get(walk.callback_url)
    assert again.status_code == 400
    # A fresh sign-in's state with the old code: the provider refuses the used code.
    fresh = walk_sign_in(c, *ADMIN, stop_before_callback=True)
    state = fresh.callback_url.split("state=")[1].split("&")[0]
    code = walk.callback_url.split("code=")[1].split("&")[0]
    replay = c.get(f"/console/callback?code={code}&state={state}")
    assert replay.status_code == 400
    assert "refused the code" in replay.text
    assert _sessions(console_server) == 1


def test_wrong_nonce_is_refused(console_server: ConsoleServer) -> None:
    from controller.console.auth import PendingLogin

    c = console_server.client()
    walk = walk_sign_in(c, *ADMIN, stop_before_callback=True)
    jar = c.jar  # type: ignore[attr-defined]
    pending = PendingLogin.decode(jar.values[PREAUTH_COOKIE])
    assert pending is not None
    forged = PendingLogin(
        pending.state, "another-nonce", pending.verifier, pending.started_at, pending.next_path
    )
    jar.values[PREAUTH_COOKIE] = forged.encode()
    resp = c.get(walk.callback_url)
    assert resp.status_code == 400
    assert "nonce" in resp.text
    assert _sessions(console_server) == 0


def test_wrong_verifier_is_refused(console_server: ConsoleServer) -> None:
    from controller.console.auth import PendingLogin

    c = console_server.client()
    walk = walk_sign_in(c, *ADMIN, stop_before_callback=True)
    jar = c.jar  # type: ignore[attr-defined]
    pending = PendingLogin.decode(jar.values[PREAUTH_COOKIE])
    assert pending is not None
    jar.values[PREAUTH_COOKIE] = PendingLogin(
        pending.state, pending.nonce, "x" * 64, pending.started_at, pending.next_path
    ).encode()
    assert c.get(walk.callback_url).status_code == 400
    assert _sessions(console_server) == 0


def test_each_sign_in_gets_a_new_cookie(console_server: ConsoleServer) -> None:
    c = console_server.signed_in_client(*ADMIN)
    first = c.session_cookie  # type: ignore[attr-defined]
    walk = walk_sign_in(c, *ADMIN)
    assert walk.final is not None
    assert walk.final.status_code == 200
    second = c.jar.values[SESSION_COOKIE]  # type: ignore[attr-defined]
    assert second != first
    # The old session ended with the new sign-in.
    old = console_server.client()
    old.jar.values[SESSION_COOKIE] = first  # type: ignore[attr-defined]
    assert old.get("/console/devices").status_code == 303
    assert _sessions(console_server) == 1


def test_sign_out_ends_the_session_on_the_server(console_server: ConsoleServer) -> None:
    c = console_server.signed_in_client(*ADMIN)
    cookie = c.session_cookie  # type: ignore[attr-defined]
    out = c.post("/console/logout", data={"csrf": c.csrf})  # type: ignore[attr-defined]
    assert out.status_code == 303
    assert out.headers["location"] == "/console/signin"
    assert SESSION_COOKIE not in c.jar.values  # type: ignore[attr-defined]
    replay = console_server.client()
    replay.jar.values[SESSION_COOKIE] = cookie  # type: ignore[attr-defined]
    assert replay.get("/console/devices").status_code == 303
    assert _sessions(console_server) == 0


def test_idle_timeout(console_server: ConsoleServer) -> None:
    c = console_server.signed_in_client(*ADMIN)
    idle = console_server.config.console.idle_timeout_s  # type: ignore[union-attr]
    console_server.clock.advance(idle - 120)
    assert c.get("/console/signin").status_code == 303  # still signed in: refreshes seen_at
    console_server.clock.advance(idle - 60)
    assert c.get("/console/signin").headers.get("location") == "/console/"  # activity kept it
    console_server.clock.advance(idle + 1)
    resp = c.get("/console/signin")
    assert resp.status_code == 200
    assert 'id="signin"' in resp.text
    assert _sessions(console_server) == 0


def test_absolute_lifetime(console_server: ConsoleServer) -> None:
    c = console_server.signed_in_client(*ADMIN)
    cfg = console_server.config.console
    assert cfg is not None
    step = cfg.idle_timeout_s - 60
    spent = 0
    while spent + step < cfg.max_lifetime_s:
        console_server.clock.advance(step)
        spent += step
        assert c.get("/console/signin").status_code == 303, spent
    console_server.clock.advance(cfg.max_lifetime_s - spent)
    assert c.get("/console/signin").status_code == 200
    assert _sessions(console_server) == 0


def test_signin_page_keeps_a_safe_next(console_server: ConsoleServer) -> None:
    c = console_server.client()
    resp = c.get("/console/devices?x=1")
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/console/signin?next=/console/devices")
    evil = c.get("/console/signin?next=//evil.example/")
    assert "evil" not in evil.text


def test_console_refuses_an_insecure_public_url() -> None:
    import msgspec
    import pytest

    from controller.config import ControllerConfig

    base = {"admin_token_sha256": "0" * 64, "keys_dir": "/tmp/k", "dev_oidc": {}}
    for url in ("http://console.example.com", "http://10.0.0.5:8443"):
        with pytest.raises(msgspec.ValidationError, match="https"):
            msgspec.convert({**base, "public_url": url, "console": {}}, ControllerConfig)
    with pytest.raises(msgspec.ValidationError, match="https"):
        msgspec.convert({**base, "host": "0.0.0.0", "console": {}}, ControllerConfig)
    for url in ("https://console.example.com", "http://127.0.0.1:8443", "http://[::1]:1"):
        msgspec.convert({**base, "public_url": url, "console": {}}, ControllerConfig)
    with pytest.raises(msgspec.ValidationError, match="client_secret"):
        msgspec.convert(
            {
                **base,
                "public_url": "https://c.example",
                "console": {"issuer": "https://idp.example"},
            },
            ControllerConfig,
        )


def test_static_admin_token_is_not_accepted(console_server: ConsoleServer) -> None:
    c = console_server.client()
    resp = c.get(
        "/console/devices", headers={"Authorization": f"Bearer {console_server.rc.admin_token}"}
    )
    assert resp.status_code == 303
