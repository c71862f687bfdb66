"""The words of sign-in failures: TLS, nested parentheses, the claim named (issue 17)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from core.auth import OidcClient, OidcConfig, ProviderTlsError, ReauthRequired, TokenSet
from core.auth.idtoken import IdTokenClaims
from tests.core.controlplane.certs import self_signed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


async def test_untrusted_certificate_is_not_called_a_network_problem(tmp_path: Path) -> None:
    """A real HTTPS provider on loopback whose certificate this computer does not trust
    (as behind an HTTPS inspector, or with a wrong date): the words say the connection
    could not be verified and what to check, not "check your network connection"."""
    certfile, keyfile, _ = self_signed(tmp_path, "127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile, keyfile)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    client = OidcClient(OidcConfig(issuer=f"https://127.0.0.1:{port}", client_id="c"))
    try:
        with pytest.raises(ProviderTlsError) as err:
            await client.metadata()
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    assert err.value.code == "tls"
    assert "could not be verified" in err.value.message
    assert "network connection" not in str(err.value)
    assert "date and time" in err.value.next_step
    assert "inspector's certificate" in err.value.next_step

    from core.engine.errors import explain

    info = explain(err.value, during="signing in")
    assert info.code == "tls"
    assert "network connection" not in info.next_step


async def test_refused_refresh_reads_as_one_sentence() -> None:
    """No "(... (invalid_grant: ...).)." nesting: the provider's reason is quoted once."""
    import httpx

    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": "https://idp.example.test",
                    "authorization_endpoint": "https://idp.example.test/auth",
                    "token_endpoint": "https://idp.example.test/token",
                    "jwks_uri": "https://idp.example.test/jwks",
                },
            )
        return httpx.Response(
            400, json={"error": "invalid_grant", "error_description": "grant revoked."}
        )

    client = OidcClient(
        OidcConfig(issuer="https://idp.example.test", client_id="c"),
        transport=httpx.MockTransport(refuse),
    )
    identity = IdTokenClaims(sub="a", iss="https://idp.example.test", aud=("c",), exp=0, iat=0)
    tokens = TokenSet(
        issuer="https://idp.example.test",
        client_id="c",
        access_token="at",
        token_type="Bearer",
        expires_at=0,
        identity=identity,
        refresh_token="rt",
    )
    try:
        with pytest.raises(ReauthRequired) as err:
            await client.refresh(tokens)
    finally:
        await client.aclose()
    message = err.value.message
    assert message == (
        "The identity provider no longer accepts this sign-in (invalid_grant: grant revoked)."
    )
    assert ").)" not in str(err.value)
    assert ".)." not in str(err.value)
