"""A sign-in that lasts, against oidc-provider with its DEFAULT policy (issue 17).

The npm ``oidc-provider`` (OpenID-certified) runs with its default consent policy: it
grants ``offline_access`` (and so a refresh token) in the browser flow only with
``prompt=consent`` (OIDC Core §11), and puts email and name in userinfo, not in the ID
token. The reference controller's provider is exercised where it differs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from core.auth import (
    TOKENS,
    ClockSkewError,
    OidcClient,
    OidcConfig,
    SecretStore,
    Session,
    TokenSet,
)
from tests.core.auth.browser import browse, forms
from tests.core.auth.conftest import CLIENT_ID, MemoryKeyring, NpmProvider, start_npm_provider
from tests.core.auth.live import LiveProvider, ScriptedBrowser, make_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ALICE = {"login": "alice", "password": "any"}


def npm_live(provider: NpmProvider) -> LiveProvider:
    return LiveProvider("npm", provider.issuer, CLIENT_ID, ALICE, "alice")


def stored(backend: MemoryKeyring) -> TokenSet | None:
    raw = backend.items.get(("rustronaut", TOKENS))
    return TokenSet.from_json(raw) if raw else None


def id_token_claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


class TimeMachine:
    """This computer's clock: real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
async def short_lived() -> AsyncIterator[NpmProvider]:
    """Access tokens that live 75 s (the issue's provider)."""
    provider = start_npm_provider(0, access_ttl="75")
    try:
        yield provider
    finally:
        provider.stop()


# -- 1. refresh tokens from a provider with the default consent policy --------------------


async def test_default_browser_login_gets_a_refresh_token(
    npm_provider: NpmProvider, memory_keyring: MemoryKeyring
) -> None:
    browser = ScriptedBrowser(npm_live(npm_provider))
    client = make_client(npm_live(npm_provider), open_url=browser)
    session = Session(client, SecretStore(backend=memory_keyring))
    try:
        await session.login_browser()
    finally:
        await client.aclose()
    params = httpx.URL(browser.urls[0]).params
    assert params["prompt"] == "consent"  # OIDC Core §11, or the scope is dropped
    assert "offline_access" in params["scope"].split()
    tokens = stored(memory_keyring)
    assert tokens is not None
    assert tokens.refresh_token
    assert "offline_access" in tokens.scope.split()
    assert session.renewable is True


async def test_default_device_login_gets_a_refresh_token(
    npm_provider: NpmProvider, memory_keyring: MemoryKeyring
) -> None:
    client = make_client(npm_live(npm_provider))
    session = Session(client, SecretStore(backend=memory_keyring))
    approvals: list[asyncio.Future[object]] = []

    def on_prompt(user_code: str, uri: str, complete: str | None) -> None:
        fill = {**ALICE, "user_code": user_code}
        approvals.append(asyncio.ensure_future(browse(complete or uri, fill=fill)))

    try:
        await session.login_device(on_prompt)
    finally:
        await client.aclose()
    await asyncio.gather(*approvals)
    tokens = stored(memory_keyring)
    assert tokens is not None
    assert tokens.refresh_token
    assert session.renewable is True


async def test_75_s_session_stays_signed_in_across_three_refreshes(
    short_lived: NpmProvider, memory_keyring: MemoryKeyring
) -> None:
    """Access tokens of 75 s; this computer's clock jumps 50 s past each new token (so
    the test takes no minutes): each time the session refreshes before expiry, and every
    token it hands out works at the provider."""
    live = npm_live(short_lived)
    client = make_client(live)
    clock = TimeMachine()
    session = Session(client, SecretStore(backend=memory_keyring), clock=clock)
    meta = await client.metadata()
    assert meta.userinfo_endpoint is not None
    try:
        await session.login_browser()
        seen: list[str] = []
        async with httpx.AsyncClient(auth=session.auth()) as api:
            for _ in range(3):
                tokens = session.tokens
                assert tokens is not None
                assert tokens.issued_at is not None
                assert tokens.expires_at - tokens.issued_at == pytest.approx(75, abs=2)
                clock.offset = tokens.issued_at + 50 - time.time()
                assert clock() < tokens.expires_at  # not expired yet: refreshed before
                me = await api.get(meta.userinfo_endpoint)
                assert me.status_code == 200, me.text
                assert session.tokens is not None
                assert session.tokens.access_token != tokens.access_token
                seen.append(session.tokens.access_token)
        assert len(set(seen)) == 3
        assert session.renewable is True
        assert stored(memory_keyring) == session.tokens
    finally:
        await client.aclose()


async def test_short_lived_tokens_really_expire_and_the_session_lives_on(
    memory_keyring: MemoryKeyring,
) -> None:
    """Real time, 3 s access tokens: three real refreshes, each before the token ran out,
    and no request refused meanwhile."""
    provider = start_npm_provider(0, access_ttl="3")
    live = npm_live(provider)
    client = make_client(live)
    session = Session(client, SecretStore(backend=memory_keyring))
    try:
        meta = await client.metadata()
        assert meta.userinfo_endpoint is not None
        await session.login_browser()
        first = session.tokens
        assert first is not None
        refreshed: set[str] = set()
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient(auth=session.auth()) as api:
            while len(refreshed) < 3 and time.monotonic() < deadline:
                me = await api.get(meta.userinfo_endpoint)
                assert me.status_code == 200, me.text
                assert session.tokens is not None
                if session.tokens.access_token != first.access_token:
                    refreshed.add(session.tokens.access_token)
                await asyncio.sleep(0.2)  # the user's next request, not a settle
        assert len(refreshed) >= 3
    finally:
        await client.aclose()
        provider.stop()


async def test_without_refresh_token_the_token_is_used_to_its_end(
    npm_provider: NpmProvider, memory_keyring: MemoryKeyring
) -> None:
    """No ``offline_access``: no refresh token; the session is not cut 60 s early and
    ends with words that say why."""
    live = npm_live(npm_provider)
    live.scopes = ("openid", "profile", "email")
    client = make_client(live)
    clock = TimeMachine()
    session = Session(client, SecretStore(backend=memory_keyring), clock=clock)
    try:
        await session.login_browser()
        tokens = session.tokens
        assert tokens is not None
        assert tokens.refresh_token is None
        assert session.renewable is False
        clock.offset = tokens.expires_at - 30 - time.time()  # 30 s left: still usable
        assert await session.access_token() == tokens.access_token
        clock.offset = tokens.expires_at + 1 - time.time()
        from core.auth import ReauthRequired

        with pytest.raises(ReauthRequired) as err:
            await session.access_token()
        assert "no refresh token" in err.value.message
    finally:
        await client.aclose()


# -- 3. identity from userinfo; logout where the tokens were issued ------------------------


async def test_name_and_email_come_from_userinfo_when_the_id_token_lacks_them(
    npm_provider: NpmProvider, memory_keyring: MemoryKeyring
) -> None:
    client = make_client(npm_live(npm_provider))
    session = Session(client, SecretStore(backend=memory_keyring))
    try:
        identity = await session.login_browser()
    finally:
        await client.aclose()
    tokens = stored(memory_keyring)
    assert tokens is not None
    assert tokens.id_token is not None
    assert "email" not in id_token_claims(tokens.id_token)  # the provider's default
    assert identity.email == "alice@example.test"
    assert identity.name == "Test User alice"
    assert tokens.identity == identity


async def revocations(issuer: str) -> list[dict[str, str]]:
    async with httpx.AsyncClient() as c:
        return (await c.get(f"{issuer}/test/revocations")).json()  # type: ignore[no-any-return]


async def test_logout_revokes_where_the_tokens_were_issued(
    npm_provider: NpmProvider, memory_keyring: MemoryKeyring
) -> None:
    """Signed in at provider A; the settings now name provider B: logout still revokes at
    A (and nothing at B), then forgets the tokens."""
    other = start_npm_provider()
    store = SecretStore(backend=memory_keyring)
    client_a = make_client(npm_live(npm_provider))
    client_b = make_client(npm_live(other), open_url=lambda url: False)
    try:
        await Session(client_a, store).login_browser()
        tokens = stored(memory_keyring)
        assert tokens is not None
        assert tokens.refresh_token is not None
        before = len(await revocations(npm_provider.issuer))
        session_b = Session(client_b, store, end_provider_session=False)
        assert await session_b.load() is None  # another issuer's tokens are not used
        assert await session_b.logout() is True
        revoked = (await revocations(npm_provider.issuer))[before:]
        assert {r["token"] for r in revoked} == {tokens.refresh_token, tokens.access_token}
        assert await revocations(other.issuer) == []
        assert memory_keyring.items == {}
        from core.auth import ReauthRequired

        with pytest.raises(ReauthRequired):
            await client_a.refresh(tokens)
    finally:
        await client_a.aclose()
        await client_b.aclose()
        other.stop()


async def _provider_asks_to_log_in(browser: ScriptedBrowser, issuer: str) -> bool:
    """A new authorization request in the same browser: does the provider show its login
    form (no provider session), or go straight to consent (the session still exists)?"""
    url = httpx.URL(f"{issuer}/auth").copy_merge_params(
        {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": "http://127.0.0.1:1/callback",
            "state": "s",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        }
    )
    async with httpx.AsyncClient(cookies=browser.cookies, follow_redirects=True) as c:
        page = await c.get(url)
    form = forms(page.text)[0]
    return "login" in form.visible


async def test_logout_ends_the_provider_session_in_the_browser(
    npm_provider: NpmProvider, memory_keyring: MemoryKeyring
) -> None:
    live = npm_live(npm_provider)
    browser = ScriptedBrowser(live)
    opened: list[str] = []

    async def open_url(url: str) -> None:
        if "/session/end" not in url:
            await browser(url)
            return
        opened.append(url)
        # The user confirms on the provider's own logout page ("Yes, sign me out").
        async with httpx.AsyncClient(cookies=browser.cookies) as c:
            page = await c.get(url)
            form = forms(page.text)[0]
            done = await c.post(
                httpx.URL(str(page.url)).join(form.action), data={**form.fields, "logout": "yes"}
            )
            assert done.status_code in {200, 302, 303}, done.text

    client = make_client(live, open_url=open_url)
    session = Session(client, SecretStore(backend=memory_keyring))
    try:
        await session.login_browser()
        assert not await _provider_asks_to_log_in(browser, live.issuer)  # session lives
        tokens = session.tokens
        assert tokens is not None
        await session.logout()
    finally:
        await client.aclose()
    assert len(opened) == 1
    params = httpx.URL(opened[0]).params
    assert params["id_token_hint"] == tokens.id_token
    assert params["client_id"] == CLIENT_ID
    assert await _provider_asks_to_log_in(browser, live.issuer)


async def test_logout_leaves_the_provider_session_when_the_setting_is_off(
    npm_provider: NpmProvider, memory_keyring: MemoryKeyring
) -> None:
    live = npm_live(npm_provider)
    browser = ScriptedBrowser(live)
    opened: list[str] = []

    async def open_url(url: str) -> None:
        opened.append(url)
        await browser(url)

    client = make_client(live, open_url=open_url)
    session = Session(client, SecretStore(backend=memory_keyring), end_provider_session=False)
    try:
        await session.login_browser()
        assert await session.logout() is True
    finally:
        await client.aclose()
    assert len(opened) == 1  # the login only
    assert memory_keyring.items == {}


# -- 6. clocks that lie (the provider side) ------------------------------------------------


@pytest.fixture(params=["npm-oidc-provider", "controller-dev-provider"])
async def any_live(request: pytest.FixtureRequest) -> AsyncIterator[LiveProvider]:
    """The npm provider, and the reference controller's own provider (controller/oidc)."""
    if request.param == "npm-oidc-provider":
        yield npm_live(request.getfixturevalue("npm_provider"))
        return
    from controller.testing import run_controller

    async with run_controller() as rc:
        user = rc.users[0]
        yield LiveProvider(
            "controller",
            rc.issuer,
            rc.client_id,
            {"username": user.username, "password": user.password},
            user.username,
        )


def clocked_client(live: LiveProvider, clock: Callable[[], float]) -> OidcClient:
    return OidcClient(
        OidcConfig(issuer=live.issuer, client_id=live.client_id, scopes=live.scopes),
        transport=httpx.AsyncHTTPTransport(),
        open_url=ScriptedBrowser(live),
        clock=clock,
    )


@pytest.mark.parametrize("hours", [24, -24])
async def test_login_with_a_wrong_clock_says_how_far_off_it_is(
    any_live: LiveProvider, memory_keyring: MemoryKeyring, hours: int
) -> None:
    clock = TimeMachine()
    clock.offset = hours * 3600
    client = clocked_client(any_live, clock)
    session = Session(client, SecretStore(backend=memory_keyring), clock=clock)
    try:
        with pytest.raises(ClockSkewError) as err:
            await session.login_browser()
    finally:
        await client.aclose()
    assert "This computer's clock is 1440 minutes off the identity provider's" in str(err.value)
    assert ("ahead" if hours > 0 else "behind") in err.value.message
    # The claim that failed is the one named: iat when the clock is behind, exp ahead.
    assert ("'exp'" if hours > 0 else "'iat'") in err.value.message
    assert err.value.code == "clock_skew"
    assert "Set this computer's clock" in err.value.next_step
    assert memory_keyring.items == {}


async def test_clock_jumping_ahead_does_not_cost_the_sign_in(
    any_live: LiveProvider, memory_keyring: MemoryKeyring
) -> None:
    """Signed in; the clock jumps a day ahead: the refresh still keeps the rotated tokens
    (times judged by the provider's clock), and once the clock is set right the session
    goes on with no new sign-in."""
    live = any_live
    clock = TimeMachine()
    client = clocked_client(live, clock)
    session = Session(client, SecretStore(backend=memory_keyring), clock=clock)
    try:
        await session.login_browser()
        first = session.tokens
        assert first is not None
        clock.offset = 86400
        token = await session.access_token()  # "expired" by the wrong clock: refreshes
        assert token != first.access_token
        assert client.clock_skew_s == pytest.approx(86400, abs=5)
        second = stored(memory_keyring)
        assert second is not None
        assert second.refresh_token != first.refresh_token  # the rotated one was kept
        clock.offset = 0  # the clock is fixed: the session renews with no new sign-in
        third = await session.access_token()
        assert third not in {token, first.access_token}
        assert session.identity is not None
        assert session.identity.sub == live.expected_sub
    finally:
        await client.aclose()


async def test_refused_refresh_under_a_wrong_clock_keeps_the_tokens(
    npm_provider: NpmProvider, memory_keyring: MemoryKeyring
) -> None:
    """``invalid_grant`` while this computer's clock is far ahead: reported once as the
    clock's fault (code clock_skew), the stored tokens kept for when it is fixed."""
    live = npm_live(npm_provider)
    clock = TimeMachine()
    client = clocked_client(live, clock)
    session = Session(client, SecretStore(backend=memory_keyring), clock=clock)
    transport_calls: list[str] = []
    try:
        await session.login_browser()
        tokens = session.tokens
        assert tokens is not None
        assert tokens.refresh_token is not None
        # The provider refuses this refresh token (as a provider whose own checks trip on
        # a wrong client clock would): revoked behind the session's back.
        async with httpx.AsyncClient() as c:
            meta = await client.metadata()
            assert meta.revocation_endpoint is not None
            await c.post(
                meta.revocation_endpoint,
                data={"token": tokens.refresh_token, "client_id": CLIENT_ID},
            )
        clock.offset = 86400
        with pytest.raises(ClockSkewError) as err:
            await session.access_token()
        assert err.value.code == "clock_skew"
        assert "1440 minutes off" in err.value.message
        assert "invalid_grant" in err.value.message
        assert stored(memory_keyring) == tokens  # kept
        assert session.tokens == tokens
        # One failure, not a storm: the next calls get the same answer without asking.
        client._oauth.event_hooks["request"].append(
            lambda r: transport_calls.append(str(r.url))  # type: ignore[arg-type,func-returns-value]
        )
        for _ in range(5):
            with pytest.raises(ClockSkewError):
                await session.access_token()
        assert transport_calls == []
    finally:
        await client.aclose()
