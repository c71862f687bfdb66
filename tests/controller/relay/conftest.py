"""Fixtures: a relay CA, a server certificate, a controller stand-in, a UDP gateway and a
factory for running relays (in-process ``RelayServer`` on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.relay.config import load_config, read_token
from controller.relay.server import RelayServer
from controller.relayca import RelayCA
from tests.controller.relay.kit import (
    TOKEN,
    Client,
    Controller,
    Device,
    Gateway,
    new_device,
    server_certificate,
)


@dataclass
class Bed:
    """Everything one relay test needs; ``relay()`` starts a relay (stopped at teardown)."""

    dir: Path
    ca: RelayCA
    server_ca: Path
    controller: Controller
    gateway: Gateway
    cert_file: Path
    key_file: Path
    relays: list[RelayServer] = field(default_factory=list)

    def config(self, **overrides: Any) -> Path:
        (self.dir / "token").write_text(TOKEN + "\n")
        ca_file = self.dir / "relay-ca.pem"
        ca_file.write_text(self.ca.ca_pem())
        cfg: dict[str, Any] = {
            "name": "relay1",
            "listen": "127.0.0.1:0",
            "cert_file": str(self.cert_file),
            "key_file": str(self.key_file),
            "client_ca_file": str(ca_file),
            "controller_url": self.controller.url,
            "token_file": "token",
            "gateways": [self.gateway.endpoint],
            "poll_interval_s": 0.2,
        }
        cfg.update(overrides)
        path = self.dir / "relay.json"
        path.write_text(json.dumps(cfg))
        return path

    def relay(self, *, ready: bool = True, **overrides: Any) -> RelayServer:
        cfg = load_config(self.config(**overrides))
        server = RelayServer(cfg, read_token(cfg))
        self.relays.append(server)
        server.start()
        if ready:
            assert server.wait_ready(10), "the relay never got a device list"
        return server

    def device(self, device_id: str, *, allow: bool = True) -> Device:
        dev = new_device(self.ca, self.dir, device_id)
        if allow:
            self.controller.allow(dev)
        return dev

    def client(self, relay: RelayServer, device: Device | None, **kw: Any) -> Client:
        return Client(relay.address, self.server_ca, device, **kw)


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    cert, key, server_ca = server_certificate(tmp_path)
    controller = Controller()
    controller.start()
    gateway = Gateway()
    b = Bed(tmp_path, RelayCA.create(), server_ca, controller, gateway, cert, key)
    try:
        yield b
    finally:
        for relay in b.relays:
            relay.stop()
        controller.stop()
        gateway.close()


@pytest.fixture
def relay_factory(bed: Bed) -> Callable[..., RelayServer]:
    return bed.relay
