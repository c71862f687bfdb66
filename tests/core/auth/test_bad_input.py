"""Every bad-input case of the sign-in: refused with a clear message, nothing stored.

Each test starts from a previously stored good session in the keyring and checks that a
failed login leaves it exactly as it was (no write at all), and the in-memory session too.
The provider is ``FakeIdP`` (scriptable, behind ``httpx.MockTransport``); the browser
really calls the client's loopback listener.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt

from core.auth import (
    TOKENS,
    AuthError,
    BadProviderResponse,
    ClockSkewError,
    ConfigurationError,
    DeviceCodeExpired,
    DiscoveryError,
    IdTokenClaims,
    IdTokenError,
    LoginDenied,
    OidcClient,
    OidcConfig,
    SecretStore,
    Session,
    TokenSet,
)
from tests.core.auth.conftest import MemoryKeyring
from tests.core.auth.fakeidp import (
    CLIENT_ID,
    ISSUER,
    FakeIdP,
    hs256_with_public_key,
    unsigned_token,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

PREVIOUS = TokenSet(
    issuer=ISSUER,
    client_id=CLIENT_ID,
    access_token="previous-access",
    token_type="Bearer",
    expires_at=4_000_000_000,
    identity=IdTokenClaims(sub="bob", iss=ISSUER, aud=(CLIENT_ID,), exp=1, iat=1),
    refresh_token="previous-refresh",
)


class Harness:
    def __init__(self, idp: FakeIdP, sleep: Callable[[float], Any] | None = None) -> None:
        self.idp = idp
        self.keyring = MemoryKeyring()
        self.keyring.items[("rustronaut", TOKENS)] = PREVIOUS.to_json().decode()
        self.before = dict(self.keyring.items)
        self.slept: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            self.slept.append(seconds)
            await asyncio.sleep(0)

        self.client = OidcClient(
            OidcConfig(issuer=idp.issuer, client_id=idp.client_id),
            transport=idp.transport(),
            open_url=idp.browser,
            sleep=sleep or fake_sleep,
        )
        self.session = Session(self.client, SecretStore(backend=self.keyring))

    def assert_nothing_stored(self) -> None:
        assert self.keyring.writes == 0
        assert self.keyring.items == self.before
        assert self.session.tokens == PREVIOUS


@pytest.fixture
async def harness() -> AsyncIterator[Callable[..., Any]]:
    made: list[Harness] = []

    async def make(idp: FakeIdP | None = None, **kw: Any) -> Harness:
        h = Harness(idp or FakeIdP(), **kw)
        assert await h.session.load() == PREVIOUS
        made.append(h)
        return h

    yield make
    for h in made:
        await h.client.aclose()


async def test_fake_provider_happy_path_replaces_the_session(harness: Any) -> None:
    """Control case: the same harness with a well-behaved provider does store."""
    h = await harness()
    identity = await h.session.login_browser()
    assert identity.sub == "alice"
    assert h.keyring.writes == 1
    stored = TokenSet.from_json(h.keyring.items[("rustronaut", TOKENS)])
    assert stored == h.session.tokens != PREVIOUS


def _other_key_signs(idp: FakeIdP, claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, idp.impostor)


def _unknown_kid(idp: FakeIdP, claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": "RS256", "kid": "not-published"}, claims, idp.impostor)


@pytest.mark.parametrize(
    ("edit", "error", "words"),
    [
        ({"forge": _other_key_signs}, IdTokenError, "signature is invalid"),
        ({"forge": _unknown_kid}, IdTokenError, "does not publish"),
        ({"claims": {"iss": "https://evil.example"}}, IdTokenError, "issuer"),
        ({"claims": {"aud": "someone-else"}}, IdTokenError, "audience"),
        ({"claims": {"aud": [CLIENT_ID, "other"]}}, IdTokenError, "azp"),
        ({"claims": {"nonce": "replayed-nonce"}}, IdTokenError, "nonce"),
        ({"claims": {"sub": None}}, IdTokenError, "sub"),
        (
            {"forge": lambda idp, c: unsigned_token({"alg": "none", "kid": "k1"}, c)},
            IdTokenError,
            "'none'",
        ),
        (
            {"forge": lambda idp, c: hs256_with_public_key(idp.key, c)},
            IdTokenError,
            "'HS256'",
        ),
        ({"forge": lambda idp, c: "not-a-jwt"}, IdTokenError, "not a signed JWT"),
        ({"omit_id_token": True}, IdTokenError, "no ID token"),
    ],
    ids=[
        "wrong-signature",
        "unknown-kid",
        "wrong-issuer",
        "wrong-audience",
        "multi-aud-no-azp",
        "wrong-nonce",
        "no-subject",
        "alg-none",
        "hs256-with-public-key",
        "garbage",
        "no-id-token",
    ],
)
async def test_bad_id_token_is_refused_and_nothing_stored(
    harness: Any, edit: dict[str, Any], error: type[AuthError], words: str
) -> None:
    idp = FakeIdP()
    for k, v in edit.items():
        setattr(idp, k, v)
    h = await harness(idp)
    with pytest.raises(error) as err:
        await h.session.login_browser()
    assert words in err.value.message
    assert err.value.next_step
    h.assert_nothing_stored()


async def test_expired_id_token_with_agreeing_clocks_is_an_expired_token(harness: Any) -> None:
    idp = FakeIdP(claims={"exp": 1_000_000_000, "iat": 999_999_000})
    h = await harness(idp)
    with pytest.raises(IdTokenError) as err:
        await h.session.login_browser()
    assert not isinstance(err.value, ClockSkewError)
    assert "expired" in err.value.message
    h.assert_nothing_stored()


@pytest.mark.parametrize("offset", [-3600, 3600])
async def test_clock_skew_tells_the_user_to_check_the_clock(harness: Any, offset: int) -> None:
    # The provider's clock (Date header and token times) is an hour off ours.
    h = await harness(FakeIdP(clock_offset=offset))
    with pytest.raises(ClockSkewError) as err:
        await h.session.login_browser()
    assert "clock" in err.value.message
    assert "date, time" in err.value.next_step
    h.assert_nothing_stored()


async def test_small_skew_is_allowed(harness: Any) -> None:
    h = await harness(FakeIdP(clock_offset=60))
    assert (await h.session.login_browser()).sub == "alice"


def _big(n: int) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(200, content=b"{" + b" " * n + b"}")


def _streamed_big() -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 8192

    return httpx.Response(200, content=chunks())  # no Content-Length


def _html() -> httpx.Response:
    return httpx.Response(200, text="<html>Welcome to the portal</html>")


@pytest.mark.parametrize(
    ("idp_kw", "error", "words"),
    [
        ({"discovery": {"issuer": "https://other.example"}}, DiscoveryError, "not the configured"),
        (
            {"discovery": {"token_endpoint": "http://idp.example.test/token"}},
            DiscoveryError,
            "plain HTTP",
        ),
        (
            {"discovery": {"authorization_endpoint": "http://idp.example.test/a"}},
            DiscoveryError,
            "plain HTTP",
        ),
        ({"discovery": {"jwks_uri": None}}, DiscoveryError, "jwks_uri"),
        (
            {"discovery": {"code_challenge_methods_supported": ["plain"]}},
            DiscoveryError,
            "S256",
        ),
        (
            {"responses": {"/.well-known/openid-configuration": _big(300_000)}},
            BadProviderResponse,
            "too large",
        ),
        (
            {"responses": {"/.well-known/openid-configuration": _html}},
            BadProviderResponse,
            "not JSON",
        ),
        (
            {"responses": {"/.well-known/openid-configuration": lambda: httpx.Response(404)}},
            DiscoveryError,
            "HTTP 404",
        ),
        ({"responses": {"/token": _streamed_big}}, BadProviderResponse, "too large"),
        ({"responses": {"/token": _html}}, BadProviderResponse, "token"),
        (
            {"responses": {"/token": lambda: httpx.Response(502, text="bad gateway")}},
            BadProviderResponse,
            "502",
        ),
        ({"responses": {"/jwks": _html}}, BadProviderResponse, "not JSON"),
        (
            {"responses": {"/jwks": lambda: httpx.Response(200, json={"keys": []})}},
            BadProviderResponse,
            "no usable",
        ),
    ],
    ids=[
        "discovery-other-issuer",
        "http-token-endpoint",
        "http-authorization-endpoint",
        "discovery-missing-jwks",
        "no-pkce-s256",
        "oversized-discovery",
        "html-discovery",
        "discovery-404",
        "oversized-streamed-token",
        "html-token",
        "token-502",
        "html-jwks",
        "empty-jwks",
    ],
)
async def test_bad_provider_answer_is_refused_and_nothing_stored(
    harness: Any, idp_kw: dict[str, Any], error: type[AuthError], words: str
) -> None:
    h = await harness(FakeIdP(**idp_kw))
    with pytest.raises(error) as err:
        await h.session.login_browser()
    assert words in err.value.message
    h.assert_nothing_stored()


async def test_refused_discovery_keeps_the_cached_good_one(harness: Any) -> None:
    idp = FakeIdP()
    h = await harness(idp)
    good = await h.client.metadata()
    idp.discovery = {"issuer": "https://other.example"}
    with pytest.raises(DiscoveryError):
        await h.client.discovery.get(refresh=True)
    assert await h.client.metadata() == good


@pytest.mark.parametrize(
    "issuer",
    ["http://idp.example.test", "ftp://idp.example.test", "idp.example.test", "https://x/?a=1"],
)
def test_unusable_issuer_is_refused_before_any_request(issuer: str) -> None:
    with pytest.raises(ConfigurationError):
        OidcClient(OidcConfig(issuer=issuer, client_id="c"), transport=FakeIdP().transport())


def test_http_issuer_on_loopback_is_allowed() -> None:
    OidcClient(OidcConfig(issuer="http://127.0.0.1:9", client_id="c"))


async def test_device_flow_honours_interval_and_slow_down(harness: Any) -> None:
    idp = FakeIdP(device_script=["authorization_pending", "slow_down", "authorization_pending"])
    h = await harness(idp)
    prompts: list[tuple[str, str, str | None]] = []
    identity = await h.session.login_device(lambda *a: prompts.append(a))
    assert identity.sub == "alice"
    assert prompts == [("ABCD-EFGH", f"{ISSUER}/activate", None)]
    assert h.slept == [2, 2, 7, 7]  # +5 s from the slow_down on, for every later poll


async def test_device_flow_default_interval_is_five_seconds(harness: Any) -> None:
    h = await harness(FakeIdP(device_interval=None, device_script=["authorization_pending"]))
    await h.session.login_device(lambda *a: None)
    assert h.slept == [5, 5]


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (["access_denied"], LoginDenied),
        (["authorization_pending", "expired_token"], DeviceCodeExpired),
    ],
)
async def test_device_flow_refusals_store_nothing(
    harness: Any, script: list[str], error: type[AuthError]
) -> None:
    h = await harness(FakeIdP(device_script=script))
    with pytest.raises(error):
        await h.session.login_device(lambda *a: None)
    h.assert_nothing_stored()


async def test_device_flow_refuses_an_http_verification_uri(harness: Any) -> None:
    h = await harness(FakeIdP(device_verification_uri="http://phish.example/activate"))
    prompts: list[object] = []
    with pytest.raises(BadProviderResponse):
        await h.session.login_device(lambda *a: prompts.append(a))
    assert prompts == []  # the user is never shown that URL
    h.assert_nothing_stored()


async def test_jwks_rotation_refetches_once_on_unknown_kid(harness: Any) -> None:
    idp = FakeIdP()
    h = await harness(idp)
    await h.session.login_browser()
    assert sum(r.url.path == "/jwks" for r in idp.requests) == 1
    # The provider rotates: a new key (new kid) signs, and the JWKS publishes it.
    from joserfc.jwk import RSAKey

    old = idp.key
    idp.key = RSAKey.generate_key(2048, parameters={"kid": "k2", "use": "sig"})
    assert h.client._verifier is not None
    h.client._verifier.jwks._fetched_at -= 60  # past the refetch rate limit
    await h.session.login_browser()
    assert sum(r.url.path == "/jwks" for r in idp.requests) == 2
    # A token with a bogus kid right after does not trigger another fetch (rate limit).
    idp.forge = _unknown_kid
    with pytest.raises(IdTokenError):
        await h.session.login_browser()
    assert sum(r.url.path == "/jwks" for r in idp.requests) == 2
    assert old.kid == "k1"


async def test_refresh_failures_keep_or_drop_the_session_as_they_should(harness: Any) -> None:
    idp = FakeIdP()
    h = await harness(idp)
    h.session._margin = 10**10
    # A provider outage: the tokens stay for a later retry.
    idp.responses["/token"] = lambda: httpx.Response(503, text="maintenance")
    with pytest.raises(BadProviderResponse):
        await h.session.access_token()
    h.assert_nothing_stored()
    # A refused refresh token: the session is gone and must be renewed.
    idp.responses["/token"] = lambda: httpx.Response(400, json={"error": "invalid_grant"})
    from core.auth import ReauthRequired

    with pytest.raises(ReauthRequired):
        await h.session.access_token()
    assert h.keyring.items == {}
    assert h.session.tokens is None
