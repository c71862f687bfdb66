"""Start the whole controller (+ development OIDC provider) on loopback, for tests and demos.

``run_controller()`` is an async context manager: it binds 127.0.0.1 on a free port,
serves with uvicorn on the running loop and yields a ``RunningController`` with the base
URL, the admin token, the issuer URL and the demo users; leaving the context stops the
server and closes the database. Used by this package's tests, the engine's end-to-end
tests and the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import uvicorn

from controller.config import (
    ConfigError,
    ControllerConfig,
    DemoUser,
    DevOidcConfig,
    GatewayConfig,
    IssuerConfig,
    hash_admin_token,
    new_admin_token,
)
from controller.gateway import Gateway, GatewayGroup, Runner, subprocess_runner
from controller.keys import SigningKeyRing
from controller.oidc import DevOidcProvider
from controller.service import ControllerService
from controller.storage import open_storage
from controller.tokens import TokenValidator
from core.aio import cancel_and_wait, spawn

__all__ = ["RunningController", "build", "listen_socket", "login", "run_controller", "serve_app"]


@dataclass(frozen=True)
class RunningController:
    """A controller serving on loopback."""

    base_url: str
    admin_token: str
    issuer: str
    client_id: str
    users: tuple[DemoUser, ...]
    service: ControllerService
    oidc: DevOidcProvider | None
    #: the loopback port serving HTTPS (``run_controller(tls=...)``), else 0
    tls_port: int = 0


def build(
    config: ControllerConfig,
    *,
    base_url: str,
    gateway_runner: Runner | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[Any, ControllerService, DevOidcProvider | None, str]:
    """Assemble storage, keys, service, validator, dev provider and the ASGI app.

    ``clock`` is the service's (bundle issue and expiry times, device leases; tests).

    Returns ``(app, service, dev_provider, issuer)``. Raises ``ConfigError`` when no
    issuer is configured (neither ``issuers`` nor an enabled ``dev_oidc``) and
    ``StorageError`` when the database cannot be opened.
    """
    dev_on = config.dev_oidc is not None and config.dev_oidc.enabled
    if not config.issuers and not dev_on:
        raise ConfigError("no OIDC issuer configured: set 'issuers' or enable 'dev_oidc'")
    storage = open_storage(config.database)
    keys = SigningKeyRing.load_or_create(Path(config.keys_dir))
    members = [
        Gateway(
            g.interface,
            gateway_runner or subprocess_runner,
            keepalive_s=g.peer_keepalive_s,
            filtered=g.filter,
        )
        for g in config.all_gateways
        if g.interface
    ]
    # One gateway is driven directly; several as a group (each device a peer of each).
    gateway: Gateway | None = (
        None if not members else members[0] if len(members) == 1 else GatewayGroup(members)
    )
    service = ControllerService(config, storage, keys, gateway=gateway, clock=clock)
    service.reconcile_gateway()
    issuers = list(config.issuers)
    local: dict[str, Any] = {}
    dev = None
    issuer = issuers[0].issuer if issuers else ""
    if config.dev_oidc is not None and config.dev_oidc.enabled:
        issuer = base_url.rstrip("/") + "/oidc"
        console = config.console
        dev = DevOidcProvider(
            config.dev_oidc,
            issuer,
            api_audience=config.api_audience,
            # The admin console as a second, confidential client (when it uses this provider).
            console_redirect_uri=(
                base_url.rstrip("/") + "/console/callback"
                if console is not None and not console.issuer
                else None
            ),
            console_client_id=console.client_id if console is not None else "rustronaut-console",
        )
        issuers.append(
            IssuerConfig(issuer=issuer, audiences=(config.api_audience, config.dev_oidc.client_id))
        )
        local[issuer] = dev.verification_keys()
    provider = dev

    def revoked(iss: str, jti: str) -> bool:
        return (
            provider is not None and iss == provider.issuer and provider.access_token_revoked(jti)
        )

    validator = TokenValidator(issuers, local_keys=local, revoked=revoked)
    from controller.app import create_app

    client_id = (
        config.dev_oidc.client_id if dev is not None and config.dev_oidc else config.client_id
    )
    app = create_app(service, validator, issuer=issuer, client_id=client_id, dev_oidc=dev)
    return app, service, dev, issuer


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for ``serve_app``.

    Created with ``IPPROTO_TCP`` explicitly: asyncio enables TCP_NODELAY only on
    accepted sockets whose protocol says TCP, and a socket made with proto 0 would leave
    Nagle on — every keep-alive request then waits ~40 ms for a delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


@asynccontextmanager
async def serve_app(
    app: Any, sock: socket.socket, *, certfile: str | None = None, keyfile: str | None = None
) -> AsyncIterator[None]:
    """Serve ``app`` with uvicorn on the bound ``sock`` until the context exits.

    With ``certfile``/``keyfile`` (PEM) it serves HTTPS.
    """
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
    )
    task = spawn(server.serve(sockets=[sock]), name="controller-uvicorn")
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        yield
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), 5)
        except (TimeoutError, Exception):
            await cancel_and_wait(task)


@asynccontextmanager
async def run_controller(
    workdir: Path | None = None,
    *,
    database: str | None = None,
    gateway: GatewayConfig | None = None,
    gateway_runner: Runner | None = None,
    users: tuple[DemoUser, ...] | None = None,
    clock: Callable[[], float] = time.time,
    expiry_interval_s: float = 1.0,
    public_url: str | None = None,
    tls: tuple[str, str] | None = None,
    **overrides: Any,
) -> AsyncIterator[RunningController]:
    """Run a controller with its dev OIDC provider on 127.0.0.1:<free port>.

    ``workdir`` holds keys and the SQLite database (a temporary dir when None);
    ``database`` overrides the URL (e.g. PostgreSQL); ``overrides`` are extra
    ``ControllerConfig`` fields; ``clock`` the service's clock. With a gateway, expired
    devices' peers are removed every ``expiry_interval_s`` (``run_expiry``).
    ``public_url`` is the address clients know it by when a TLS front serves it (the
    test bed's ``https://acme.example``): its issuer is then ``<public_url>/oidc``, while
    ``base_url`` stays the loopback address it listens on. With ``tls`` (PEM certificate
    and key files) the same app is also served over HTTPS on a second loopback port
    (``tls_port``), for a TCP front that passes TLS through. Must be entered on the loop
    that will serve.
    """
    with tempfile.TemporaryDirectory(prefix="rtc-ctl-") as tmp:
        base = Path(workdir) if workdir is not None else Path(tmp)
        sock = listen_socket("127.0.0.1", 0)
        port = sock.getsockname()[1]
        base_url = f"http://127.0.0.1:{port}"
        public = (public_url or base_url).rstrip("/")
        admin_token = new_admin_token()
        dev_cfg = DevOidcConfig() if users is None else DevOidcConfig(users=users)
        cfg_data: dict[str, Any] = {
            "admin_token_sha256": hash_admin_token(admin_token),
            "keys_dir": str(base / "keys"),
            "database": database or f"sqlite://{base / 'controller.db'}",
            "host": "127.0.0.1",
            "port": port,
            "public_url": public,
            "dev_oidc": dev_cfg,
            "gateway": gateway,
            **overrides,
        }
        config = msgspec.convert(msgspec.to_builtins(cfg_data), ControllerConfig)
        app, service, dev, issuer = build(
            config, base_url=public, gateway_runner=gateway_runner, clock=clock
        )
        expiry = (
            spawn(service.run_expiry(expiry_interval_s), name="controller-expiry")
            if service.gateway is not None
            else None
        )
        tls_sock = listen_socket("127.0.0.1", 0) if tls is not None else None
        try:
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(serve_app(app, sock))
                if tls is not None and tls_sock is not None:
                    await stack.enter_async_context(
                        serve_app(app, tls_sock, certfile=tls[0], keyfile=tls[1])
                    )
                yield RunningController(
                    base_url=base_url,
                    admin_token=admin_token,
                    issuer=issuer,
                    client_id=dev_cfg.client_id,
                    users=dev_cfg.users,
                    service=service,
                    oidc=dev,
                    tls_port=tls_sock.getsockname()[1] if tls_sock is not None else 0,
                )
        finally:
            if expiry is not None:
                await cancel_and_wait(expiry)
            service.storage.close()
            sock.close()
            if tls_sock is not None:
                tls_sock.close()


async def login(
    rc: RunningController,
    username: str,
    password: str,
    *,
    scope: str = "openid email profile offline_access",
    transport: Any = None,
) -> dict[str, Any]:
    """Sign in through the dev provider's form like a browser would (code + PKCE S256).

    Returns the token response (``access_token``, ``refresh_token``, ``id_token``...).
    Raises ``RuntimeError`` if the login is refused. For tests and the demo.
    """
    import base64
    import hashlib
    from urllib.parse import parse_qs, urlsplit

    import httpx

    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    redirect = "http://127.0.0.1:9/callback"
    query = {
        "response_type": "code",
        "client_id": rc.client_id,
        "redirect_uri": redirect,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    async with httpx.AsyncClient(transport=transport) as http:
        resp = await http.post(
            f"{rc.issuer}/authorize",
            params=query,
            data={"username": username, "password": password},
        )
        if resp.status_code != 302:
            raise RuntimeError(f"login refused: {resp.status_code} {resp.text[:200]}")
        code = parse_qs(urlsplit(resp.headers["location"]).query)["code"][0]
        tok = await http.post(
            f"{rc.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "client_id": rc.client_id,
                "code_verifier": verifier,
            },
        )
        if tok.status_code != 200:
            raise RuntimeError(f"token exchange refused: {tok.status_code} {tok.text[:200]}")
        data: dict[str, Any] = tok.json()
        return data
