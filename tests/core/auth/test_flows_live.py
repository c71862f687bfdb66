"""Full browser-less sign-in flows against real OpenID providers on loopback.

The npm ``oidc-provider`` (OpenID-certified, independent of our code) always; the
reference controller's development provider too (see ``live`` fixture). A scripted HTTP
browser logs in on the provider's own pages; tokens land in a keyring backend.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from core.auth import (
    TOKENS,
    CallbackError,
    LoginTimeout,
    ProviderUnreachable,
    ReauthRequired,
    SecretStore,
    Session,
    TokenError,
    TokenSet,
)
from tests.core.auth.conftest import (
    CLIENT_ID,
    MemoryKeyring,
    NpmProvider,
    free_port,
    start_npm_provider,
)
from tests.core.auth.live import (
    CountingTransport,
    LiveProvider,
    ScriptedBrowser,
    make_client,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
async def controller_provider() -> AsyncIterator[LiveProvider]:
    """The reference controller's development provider (Authlib server side), on loopback."""
    from controller.testing import run_controller

    async with run_controller() as rc:
        user = rc.users[0]
        yield LiveProvider(
            name="controller",
            issuer=rc.issuer,
            client_id=rc.client_id,
            fill={"username": user.username, "password": user.password},
            expected_sub=user.username,
        )


@pytest.fixture(params=["npm-oidc-provider", "controller-dev-provider"])
def live(request: pytest.FixtureRequest) -> LiveProvider:
    if request.param == "npm-oidc-provider":
        npm: NpmProvider = request.getfixturevalue("npm_provider")
        return LiveProvider(
            name="npm",
            issuer=npm.issuer,
            client_id=CLIENT_ID,
            fill={"login": "alice", "password": "any"},
            expected_sub="alice",
        )
    provider: LiveProvider = request.getfixturevalue("controller_provider")
    return provider


@pytest.fixture
async def session(live: LiveProvider, memory_keyring: MemoryKeyring) -> AsyncIterator[Session]:
    client = make_client(live)
    try:
        yield Session(client, SecretStore(backend=memory_keyring))
    finally:
        await client.aclose()


async def assert_closed(url: str) -> None:
    async with httpx.AsyncClient(timeout=2) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(url)


def force_refresh(session: Session) -> None:
    """Make the session's clock (only its "is it time to refresh?" clock) run 2 h ahead."""
    session._clock = lambda: time.time() + 7200


def stored(backend: MemoryKeyring) -> TokenSet | None:
    raw = backend.items.get(("rustronaut", TOKENS))
    return TokenSet.from_json(raw) if raw else None


async def test_browser_login_pkce_stores_verified_tokens(
    live: LiveProvider, session: Session, memory_keyring: MemoryKeyring
) -> None:
    identity = await session.login_browser()
    assert identity.sub == live.expected_sub
    assert identity.iss == live.issuer
    tokens = stored(memory_keyring)
    assert tokens is not None
    assert tokens == session.tokens
    assert tokens.refresh_token
    assert tokens.id_token
    assert tokens.access_token
    browser = session.client._open_url
    assert isinstance(browser, ScriptedBrowser)
    url = httpx.URL(browser.urls[0])
    assert url.params["code_challenge_method"] == "S256"
    assert url.params["redirect_uri"].startswith("http://127.0.0.1:")
    assert "nonce" in url.params
    assert "state" in url.params
    # The loopback listener answered the browser with the small page, then closed.
    assert browser.callback.status_code == 200
    assert "close this tab" in browser.callback.text
    await assert_closed(url.params["redirect_uri"])


async def test_replayed_code_is_refused_and_nothing_changes(
    live: LiveProvider, session: Session, memory_keyring: MemoryKeyring
) -> None:
    await session.login_browser()
    before = dict(memory_keyring.items)
    browser = session.client._open_url
    assert isinstance(browser, ScriptedBrowser)
    old_code = httpx.URL(str(browser.callback.url)).params["code"]

    async def replay(url: str) -> None:
        # A browser delivering an already-used code with this login's state.
        params = httpx.URL(url).params
        callback = httpx.URL(params["redirect_uri"]).copy_merge_params(
            {"code": old_code, "state": params["state"], "iss": live.issuer}
        )
        async with httpx.AsyncClient() as c:
            await c.get(callback)

    session.client._open_url = replay
    with pytest.raises(TokenError) as err:
        await session.login_browser()
    assert "invalid_grant" in err.value.message
    assert memory_keyring.items == before
    assert session.identity is not None
    assert session.identity.sub == live.expected_sub


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        ({"state": "forged-state"}, "wrong 'state'"),
        ({"iss": "https://evil.example"}, "mix-up"),
    ],
)
async def test_forged_callback_is_refused_and_nothing_stored(
    live: LiveProvider,
    session: Session,
    memory_keyring: MemoryKeyring,
    tamper: dict[str, str],
    words: str,
) -> None:
    session.client._open_url = ScriptedBrowser(live, tamper=tamper)
    with pytest.raises(CallbackError) as err:
        await session.login_browser()
    assert words in err.value.message
    assert memory_keyring.items == {}
    assert memory_keyring.writes == 0
    assert session.tokens is None


async def test_login_times_out_when_the_browser_never_comes_back(
    live: LiveProvider, session: Session, memory_keyring: MemoryKeyring
) -> None:
    seen: list[str] = []
    session.client._open_url = seen.append
    with pytest.raises(LoginTimeout):
        await session.login_browser(time_limit_s=0.3)
    assert memory_keyring.items == {}
    redirect = httpx.URL(seen[0]).params["redirect_uri"]
    await assert_closed(redirect)  # the listener is gone after the timeout


async def test_device_flow_polls_until_approved(
    live: LiveProvider, memory_keyring: MemoryKeyring
) -> None:
    slept: list[float] = []

    async def fast_sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0.05)  # the poll interval, shortened: the provider needs real time

    client = make_client(live, sleep=fast_sleep)
    session = Session(client, SecretStore(backend=memory_keyring))
    prompts: list[tuple[str, str, str | None]] = []
    approvals: list[asyncio.Task[object]] = []

    def on_prompt(user_code: str, uri: str, complete: str | None) -> None:
        prompts.append((user_code, uri, complete))
        from tests.core.auth.browser import browse

        fill = {**live.fill, "user_code": user_code}
        approvals.append(asyncio.ensure_future(browse(complete or uri, fill=fill)))

    try:
        identity = await session.login_device(on_prompt)
    finally:
        await client.aclose()
    await asyncio.gather(*approvals)
    assert identity.sub == live.expected_sub
    assert len(prompts) == 1
    assert prompts[0][0]
    assert slept
    assert all(s == slept[0] for s in slept)
    assert stored(memory_keyring) == session.tokens


async def test_refresh_rotates_and_old_refresh_token_dies(
    live: LiveProvider, session: Session, memory_keyring: MemoryKeyring
) -> None:
    await session.login_browser()
    first = session.tokens
    assert first is not None
    force_refresh(session)  # every access token looks about to expire
    token = await session.access_token()
    second = stored(memory_keyring)
    assert second is not None
    assert second == session.tokens
    assert token == second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token  # rotated, replaced in one write
    assert second.identity.sub == first.identity.sub
    with pytest.raises(ReauthRequired):  # the provider no longer takes the old one
        await session.client.refresh(first)


async def test_concurrent_callers_share_one_refresh(
    live: LiveProvider, memory_keyring: MemoryKeyring
) -> None:
    transport = CountingTransport()
    client = make_client(live, transport=transport)
    session = Session(client, SecretStore(backend=memory_keyring))
    try:
        await session.login_browser()
        token_posts = transport.count("POST", "/token")
        force_refresh(session)
        tokens = await asyncio.gather(*(session.access_token() for _ in range(8)))
        # With rotation, a second concurrent refresh would present a dead refresh token.
        assert transport.count("POST", "/token") == token_posts + 1
        assert len(set(tokens)) == 1
    finally:
        await client.aclose()


async def test_refused_refresh_requires_login_and_clears_keyring(
    live: LiveProvider, session: Session, memory_keyring: MemoryKeyring
) -> None:
    await session.login_browser()
    tokens = session.tokens
    assert tokens is not None
    assert await session.client.revoke(tokens)  # revoked behind the session's back
    force_refresh(session)
    with pytest.raises(ReauthRequired):
        await session.access_token()
    assert memory_keyring.items == {}
    assert session.tokens is None


async def test_logout_revokes_and_clears_then_bearer_is_refused(
    live: LiveProvider, session: Session, memory_keyring: MemoryKeyring
) -> None:
    await session.login_browser()
    tokens = session.tokens
    assert tokens is not None
    meta = await session.client.metadata()
    assert meta.userinfo_endpoint is not None
    async with httpx.AsyncClient(auth=session.auth()) as api:
        me = await api.get(meta.userinfo_endpoint)
        assert me.status_code == 200, me.text
        assert me.json()["sub"] == live.expected_sub
    assert await session.logout() is True
    assert memory_keyring.items == {}
    assert session.tokens is None
    assert await session.logout() is False  # idempotent: nothing left to revoke
    with pytest.raises(ReauthRequired):
        await session.client.refresh(tokens)
    async with httpx.AsyncClient() as api:
        me = await api.get(
            meta.userinfo_endpoint, headers={"Authorization": f"Bearer {tokens.access_token}"}
        )
        assert me.status_code == 401


async def test_reload_from_keyring(
    live: LiveProvider, session: Session, memory_keyring: MemoryKeyring
) -> None:
    await session.login_browser()
    again = Session(session.client, SecretStore(backend=memory_keyring))
    assert await again.load() == session.tokens
    assert again.identity == session.identity


async def test_provider_down_fails_clearly_and_stores_nothing(
    memory_keyring: MemoryKeyring,
) -> None:
    live = LiveProvider("down", f"http://127.0.0.1:{free_port()}", "x", {}, "")
    client = make_client(live)
    session = Session(client, SecretStore(backend=memory_keyring))
    try:
        with pytest.raises(ProviderUnreachable) as err:
            await session.login_browser()
    finally:
        await client.aclose()
    assert "Cannot reach" in err.value.message
    assert memory_keyring.items == {}


async def test_signing_key_rotation_refetches_jwks(memory_keyring: MemoryKeyring) -> None:
    """The provider restarts with a new key on the same issuer: the cached JWKS lacks the
    new ``kid``, so the client refetches it once and the login succeeds."""
    port = free_port()
    first = start_npm_provider(port)
    transport = CountingTransport()
    live = LiveProvider("npm", first.issuer, CLIENT_ID, {"login": "bob", "password": "x"}, "bob")
    client = make_client(live, transport=transport)
    session = Session(client, SecretStore(backend=memory_keyring))
    try:
        await session.login_browser()
        assert transport.count("GET", "/jwks") == 1
        first.stop()
        second = start_npm_provider(port)
        try:
            assert second.kid != first.kid
            assert client._verifier is not None
            client._verifier.jwks._fetched_at -= 60  # outside the refetch rate limit
            await session.login_browser()
            assert transport.count("GET", "/jwks") == 2
            tokens = stored(memory_keyring)
            assert tokens is not None
            assert tokens.id_token is not None
            header = json.loads(base64.urlsafe_b64decode(tokens.id_token.split(".")[0] + "=="))
            assert header["kid"] == second.kid
        finally:
            second.stop()
    finally:
        first.stop()
        await client.aclose()
