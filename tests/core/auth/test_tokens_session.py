"""TokenSet parsing, discovery caching and the bearer ``httpx.Auth`` flow."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from core.auth import (
    TOKENS,
    BadProviderResponse,
    IdTokenClaims,
    IdTokenError,
    OidcClient,
    OidcConfig,
    ReauthRequired,
    SecretStore,
    Session,
    TokenSet,
)
from tests.core.auth.conftest import MemoryKeyring
from tests.core.auth.fakeidp import CLIENT_ID, ISSUER, FakeIdP

pytestmark = pytest.mark.unit

WHO = IdTokenClaims(sub="alice", iss=ISSUER, aud=(CLIENT_ID,), exp=1, iat=1)


def _from(body: dict[str, object], previous: TokenSet | None = None) -> TokenSet:
    return TokenSet.from_response(
        body, issuer=ISSUER, client_id=CLIENT_ID, identity=WHO, now=1000.0, previous=previous
    )


def test_token_set_from_response_and_back() -> None:
    t = _from(
        {"access_token": "a", "token_type": "bearer", "expires_in": "60", "refresh_token": "r"}
    )
    assert t.expires_at == 1060.0
    assert t.token_type == "Bearer"
    assert t.session_expires_at is None  # refresh token of unknown lifetime
    assert TokenSet.from_json(t.to_json()) == t
    kept = _from({"access_token": "b", "expires_in": 60}, previous=t)
    assert kept.refresh_token == "r"  # not rotated: the old one stays
    rotated = _from({"access_token": "c", "refresh_token": "r2", "refresh_expires_in": 600}, t)
    assert rotated.refresh_token == "r2"
    assert rotated.session_expires_at == 1600.0
    no_refresh = _from({"access_token": "a", "expires_in": 60})
    assert no_refresh.session_expires_at == 1060.0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"access_token": ""},
        {"access_token": "a", "token_type": "mac"},
        {"access_token": "a", "expires_in": "soon"},
        {"access_token": "a", "expires_in": -5},
        {"access_token": "a", "expires_in": True},
        {"access_token": "a", "refresh_token": 42},
        {"access_token": "a", "id_token": ["x"]},
        {"access_token": "a", "scope": 1},
    ],
)
def test_malformed_token_answers_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(BadProviderResponse):
        _from(body)


def test_stored_form_is_strict() -> None:
    t = _from({"access_token": "a"})
    raw = msgspec.json.decode(t.to_json())
    raw["surprise"] = 1
    with pytest.raises(msgspec.ValidationError):
        TokenSet.from_json(msgspec.json.encode(raw))


async def test_discovery_is_cached_across_logins() -> None:
    idp = FakeIdP()
    async with OidcClient(
        OidcConfig(issuer=ISSUER, client_id=CLIENT_ID),
        transport=idp.transport(),
        open_url=idp.browser,
    ) as client:
        await client.login_browser()
        await client.login_browser()
    paths = [r.url.path for r in idp.requests]
    assert paths.count("/.well-known/openid-configuration") == 1
    assert paths.count("/jwks") == 1


async def test_corrupt_or_foreign_stored_tokens_mean_signed_out() -> None:
    keyring = MemoryKeyring()
    store = SecretStore(backend=keyring)
    async with OidcClient(OidcConfig(issuer=ISSUER, client_id=CLIENT_ID)) as client:
        session = Session(client, store)
        keyring.items[("rustronaut", TOKENS)] = "{not json"
        assert await session.load() is None
        assert keyring.items == {}  # garbage removed
        foreign = TokenSet.from_response(
            {"access_token": "a"}, issuer="https://other.example", client_id="x", identity=WHO
        )
        keyring.items[("rustronaut", TOKENS)] = foreign.to_json().decode()
        assert await session.load() is None
        assert ("rustronaut", TOKENS) in keyring.items  # another config's: left alone
        with pytest.raises(ReauthRequired):
            await session.access_token()


async def test_bearer_auth_refreshes_once_on_401_and_retries() -> None:
    idp = FakeIdP()
    keyring = MemoryKeyring()
    client = OidcClient(OidcConfig(issuer=ISSUER, client_id=CLIENT_ID), transport=idp.transport())
    session = Session(client, SecretStore(backend=keyring))
    session._tokens = _from({"access_token": "revoked-early", "refresh_token": "r"})
    session._tokens = msgspec.structs.replace(session._tokens, expires_at=4e9)
    seen: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        seen.append(token)
        return httpx.Response(401 if token == "revoked-early" else 200, json={"ok": True})

    try:
        async with httpx.AsyncClient(transport=httpx.MockTransport(api), auth=session.auth()) as c:
            response = await c.get("https://controller.example.test/api")
        assert response.status_code == 200
        assert seen[0] == "revoked-early"
        assert session.tokens is not None
        assert seen[1] == session.tokens.access_token != "revoked-early"
        assert len(seen) == 2
        assert keyring.writes == 1  # the refreshed set was stored
    finally:
        await client.aclose()


async def test_refreshed_id_token_for_another_user_is_refused() -> None:
    idp = FakeIdP(claims={"sub": "mallory"})
    async with OidcClient(
        OidcConfig(issuer=ISSUER, client_id=CLIENT_ID), transport=idp.transport()
    ) as client:
        with pytest.raises(IdTokenError, match="different user"):
            await client.refresh(_from({"access_token": "a", "refresh_token": "r"}))


def test_bearer_auth_refuses_sync_clients() -> None:
    client = OidcClient(OidcConfig(issuer=ISSUER, client_id=CLIENT_ID))
    session = Session(client, SecretStore(backend=MemoryKeyring()))
    ok = httpx.MockTransport(lambda r: httpx.Response(200))
    with (
        httpx.Client(transport=ok, auth=session.auth()) as sync,
        pytest.raises(RuntimeError, match="AsyncClient"),
    ):
        sync.get("https://controller.example.test/api")
