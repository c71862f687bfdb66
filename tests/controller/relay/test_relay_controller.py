"""The relay against the real controller (uvicorn on loopback, SQLite): a device enrolled
with its relay key gets a certificate with its bundle, the relay admits it from the
controller's ``/v1/relay/devices``, forwards to the gateway, and closes its stream within
2 s of an admin revoking the device."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from controller.config import GatewayConfig, RelayConfig
from controller.relay.config import load_config, read_token
from controller.relay.server import RelayServer
from controller.relayca import CA_CERT_FILE
from controller.testing import login, run_controller
from tests.controller.conftest import new_device as new_keys
from tests.controller.relay.kit import SERVER_NAME, Client, Device, Gateway, server_certificate
from wg_backends.relay import frames

pytestmark = pytest.mark.integration


def _wg_key() -> str:
    raw = (
        X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode()


async def test_enrolled_device_through_the_relay_until_revoked(tmp_path: Path) -> None:
    gateway = Gateway()
    token_file = tmp_path / "relay-token"
    token_file.write_text("relay-token-" + "x" * 32 + "\n")
    token_file.chmod(0o600)
    cert, key, server_ca = server_certificate(tmp_path)
    relay: RelayServer | None = None
    try:
        async with run_controller(
            tmp_path,
            gateway=GatewayConfig(public_key=_wg_key(), endpoint="10.241.0.1:51820"),
            relays=(RelayConfig(name="relay1", endpoint="127.0.0.1:443", server_name=SERVER_NAME),),
            relay_token_file=str(token_file),
        ) as rc:
            alice = str((await login(rc, "alice", "alice-password"))["access_token"])
            relay_key = Ed25519PrivateKey.generate()
            raw = relay_key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            body = msgspec.to_builtins(new_keys().enroll_request())
            body["relay_key"] = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
            async with httpx.AsyncClient(base_url=rc.base_url) as http:
                auth = {"Authorization": f"Bearer {alice}"}
                resp = await http.post("/v1/devices", json=body, headers=auth)
                assert resp.status_code == 201, resp.text
                device_id = resp.json()["device_id"]
                resp = await http.get(f"/v1/devices/{device_id}/bundle", headers=auth)
                pem = resp.json()["relay_cert"]
            dev = Device(device_id, relay_key, tmp_path / "dev.pem", tmp_path / "dev.key")
            dev.cert_file.write_text(pem)
            dev.key_file.write_bytes(
                relay_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            config = tmp_path / "relay.json"
            config.write_text(
                json.dumps(
                    {
                        "name": "relay1",
                        "listen": "127.0.0.1:0",
                        "cert_file": str(cert),
                        "key_file": str(key),
                        "client_ca_file": str(tmp_path / "keys" / CA_CERT_FILE),
                        "controller_url": rc.base_url,
                        "token_file": str(token_file),
                        "gateways": [gateway.endpoint],
                    }
                )
            )
            cfg = load_config(config)
            relay = RelayServer(cfg, read_token(cfg))
            relay.start()
            assert await asyncio.to_thread(relay.wait_ready, 10)
            assert relay.directory.lookup(device_id) == raw

            def through() -> Client:
                assert relay is not None
                c = Client(relay.address, server_ca, dev)
                assert c.hello(gateway.endpoint)["relay"] == "relay1"
                c.data(b"wireguard handshake initiation")
                assert c.recv() == (frames.DATA, b"wireguard handshake initiation")
                return c

            client = await asyncio.to_thread(through)
            start = time.monotonic()
            async with httpx.AsyncClient(base_url=rc.base_url) as http:
                resp = await http.post(
                    f"/v1/admin/devices/{device_id}/revoke",
                    headers={"Authorization": f"Bearer {rc.admin_token}"},
                )
                assert resp.status_code < 300, resp.text
            await asyncio.to_thread(client.expect_error, "revoked")
            elapsed = time.monotonic() - start
            assert elapsed < 2.0, f"revocation took {elapsed:.2f} s"

            def refused() -> None:
                assert relay is not None
                Client(relay.address, server_ca, dev).expect_error("unknown_device")

            await asyncio.to_thread(refused)
    finally:
        if relay is not None:
            await asyncio.to_thread(relay.stop)
        gateway.close()
