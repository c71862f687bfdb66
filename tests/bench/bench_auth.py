"""Sign-in benchmark: ID token verification and whole flows against two real providers.

Run: ``.venv/bin/python -m tests.bench.bench_auth``  (about 30 s; prints medians)

Measured:
  * verify    — ``IdTokenVerifier.verify`` (JWKS cached): signature + claims checks
  * joserfc   — bare ``joserfc.jwt.decode`` of the same token (the peer: the floor our
                checks add to)
  * login     — browser-less authorization code + PKCE login (scripted browser posting
                the provider's forms, loopback listener, token exchange, verification)
                against the npm oidc-provider and the controller's development provider
  * refresh   — one refresh round trip (rotation), both providers
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import KeySet

from core.auth import OidcClient, OidcConfig, SecretStore, Session
from core.auth.idtoken import ALLOWED_ALGORITHMS
from tests.core.auth.conftest import CLIENT_ID, MemoryKeyring, start_npm_provider
from tests.core.auth.fakeidp import FakeIdP
from tests.core.auth.live import LiveProvider, ScriptedBrowser

ROOT = Path(__file__).resolve().parents[2]


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


async def bench_verify() -> None:
    idp = FakeIdP()
    client = OidcClient(
        OidcConfig(issuer=idp.issuer, client_id=idp.client_id), transport=idp.transport()
    )
    meta = await client.metadata()
    verifier = await client._verifier_for(meta)
    token = idp.id_token(nonce="n")
    keys = KeySet.import_key_set({"keys": [idp.key.as_dict(private=False)]})
    await verifier.verify(token, nonce="n")  # warm the JWKS cache
    ours, peer = [], []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(200):
            await verifier.verify(token, nonce="n")
        ours.append((time.perf_counter() - t) / 200)
        t = time.perf_counter()
        for _ in range(200):
            jwt.decode(token, keys, algorithms=ALLOWED_ALGORITHMS)
        peer.append((time.perf_counter() - t) / 200)
    await client.aclose()
    a, b = _median_us(ours), _median_us(peer)
    print(
        f"verify ID token (RS256)   ours {a:8.1f} µs   joserfc decode {b:8.1f} µs"
        f"   ratio {a / b:.2f}"
    )


async def bench_flows(live: LiveProvider, rounds: int = 7) -> tuple[float, float]:
    logins, refreshes = [], []
    config = OidcConfig(issuer=live.issuer, client_id=live.client_id)
    async with OidcClient(config, open_url=ScriptedBrowser(live)) as client:
        session = Session(client, SecretStore(backend=MemoryKeyring()), refresh_margin_s=1e12)
        await session.login_browser()  # warm: discovery + JWKS cached
        for _ in range(rounds):
            t = time.perf_counter()
            await session.login_browser()
            logins.append(time.perf_counter() - t)
            t = time.perf_counter()
            await session.access_token()  # margin huge: always refreshes
            refreshes.append(time.perf_counter() - t)
    return statistics.median(logins) * 1e3, statistics.median(refreshes) * 1e3


async def main() -> None:
    await bench_verify()
    npm = start_npm_provider()
    try:
        npm_live = LiveProvider("npm", npm.issuer, CLIENT_ID, {"login": "a", "password": "x"}, "a")
        n_login, n_refresh = await bench_flows(npm_live)
    finally:
        npm.stop()
    from controller.testing import run_controller

    async with run_controller() as rc:
        user = rc.users[0]
        ctl = LiveProvider(
            "controller",
            rc.issuer,
            rc.client_id,
            {"username": user.username, "password": user.password},
            user.username,
        )
        c_login, c_refresh = await bench_flows(ctl)
    print(f"{'':26}{'npm oidc-provider':>20}{'controller dev':>18}{'ratio':>8}")
    print(f"{'browser-less login (ms)':26}{n_login:20.1f}{c_login:18.1f}{c_login / n_login:8.2f}")
    print(f"{'refresh (ms)':26}{n_refresh:20.1f}{c_refresh:18.1f}{c_refresh / n_refresh:8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
