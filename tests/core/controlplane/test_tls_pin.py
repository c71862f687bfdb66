"""TLS with an SPKI pin against a real HTTPS controller on loopback."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller.config import ControllerConfig, IssuerConfig, hash_admin_token
from controller.testing import build, listen_socket, serve_app
from core.controlplane import (
    ControllerUnreachableError,
    ControlPlaneClient,
    PinMismatchError,
    spki_sha256,
)
from core.engine.wiring import controller_pins
from core.settings import load

from .certs import self_signed

pytestmark = pytest.mark.integration


def _self_signed(tmp: Path) -> tuple[Path, Path, bytes]:
    return self_signed(tmp, "127.0.0.1")


@pytest.fixture
async def https_controller(tmp_path: Path) -> AsyncIterator[tuple[str, Path, bytes]]:
    certfile, keyfile, der = _self_signed(tmp_path)
    sock = listen_socket("127.0.0.1", 0)
    base = f"https://127.0.0.1:{sock.getsockname()[1]}"
    cfg = ControllerConfig(
        admin_token_sha256=hash_admin_token("x"),
        keys_dir=str(tmp_path / "keys"),
        database=f"sqlite://{tmp_path / 'c.db'}",
        client_id="desktop",
        issuers=(IssuerConfig(issuer="https://idp.example", audiences=("api",)),),
    )
    app, service, _dev, _iss = build(cfg, base_url=base)
    try:
        async with serve_app(app, sock, certfile=str(certfile), keyfile=str(keyfile)):
            yield base, certfile, der
    finally:
        service.storage.close()
        sock.close()


async def test_pin_accepts_the_right_key_and_refuses_another(
    https_controller: tuple[str, Path, bytes],
) -> None:
    base, certfile, der = https_controller

    def trusting() -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(certfile))

    good_pin = spki_sha256(der)
    async with ControlPlaneClient(base, verify=trusting(), spki_pin=good_pin) as c:
        assert (await c.discovery()).client_id == "desktop"
    # Several pins: one matching is enough (rotation: old and new key both pinned).
    async with ControlPlaneClient(
        base, verify=trusting(), spki_pin=["B" * 43 + "=", good_pin]
    ) as c:
        assert (await c.discovery()).client_id == "desktop"
    wrong_pin = "A" * 43 + "="
    async with ControlPlaneClient(base, verify=trusting(), spki_pin=wrong_pin) as c:
        with pytest.raises(PinMismatchError):
            await c.discovery()
    # Without trusting the self-signed certificate, the OS trust store refuses it.
    async with ControlPlaneClient(base, spki_pin=good_pin) as c:
        with pytest.raises(ControllerUnreachableError):
            await c.discovery()


# Every TLS pin is honoured: a valid backup pin works (the engine's wiring used only the
# first one).
@pytest.mark.hostile_controller
async def test_the_backup_pin_is_honoured_by_the_engine_wiring(
    https_controller: tuple[str, Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, certfile, der = https_controller
    retired = "A" * 43 + "="  # a well-formed pin of a key the controller no longer uses
    config = tmp_path / "config"
    (config / "rustronaut").mkdir(parents=True)
    settings_file = config / "rustronaut" / "settings.json"
    settings_file.write_text(
        json.dumps({"controller_url": base, "tls_pin_sha256": [retired, spki_sha256(der)]})
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    settings = load()
    assert len(settings.tls_pin_sha256) == 2
    pins = controller_pins(settings)
    assert pins == (retired, spki_sha256(der))
    trusting = ssl.create_default_context(cafile=str(certfile))
    async with ControlPlaneClient(base, verify=trusting, spki_pin=pins) as client:
        assert (await client.discovery()).client_id == "desktop"
