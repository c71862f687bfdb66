"""The device's relay key and certificate against the REAL controller (issue 21).

The engine's device adapter enrolls with the helper's relay key (the helper's ``hello``
stands behind ``relay_key=``: only its public half ever reaches the engine), a device
enrolled before relays — or whose helper's key changed — registers it with
``PUT /v1/devices/{id}/relay-key`` (never a re-enrollment), and the control adapter keeps
the certificate each bundle answer carries. A refused or failed registration never
raises (the tunnel does not wait for it) and is tried again at the next call.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.config import GatewayConfig, RelayConfig
from controller.relayca import device_of
from controller.testing import RunningController, login, run_controller
from core.controlplane.client import BearerAuth, ControlPlaneClient
from core.engine.adapters import ControlAdapter, DeviceAdapter
from core.wire.signing import b64url

pytestmark = pytest.mark.integration

GW = "10.241.0.1:51820"


def _wg_key() -> str:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    raw = (
        X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode()


def _relay_key() -> str:
    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return b64url(raw)


class _Store:
    """The keyring as a dict (what DeviceAdapter uses: get and set)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value


class _Counting(httpx.AsyncHTTPTransport):
    """The real network, with a list of the requests made (method, path)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path))
        return await super().handle_async_request(request)

    def puts(self) -> int:
        return sum(1 for method, path in self.seen if method == "PUT")


class _Helper:
    """What the helper answers as this account's relay key (None: a helper without
    relays, or one from before them)."""

    def __init__(self, key: str | None) -> None:
        self.key = key

    async def relay_key(self) -> str | None:
        return self.key


class Rig:
    def __init__(self, rc: RunningController, token: str, tmp: Path, helper: _Helper) -> None:
        self.rc = rc
        self.helper = helper
        self.record = tmp / "enrollment.json"
        self.net = _Counting()
        self.client = ControlPlaneClient(
            rc.base_url, auth=BearerAuth(token), transport=self.net, proxy=None
        )
        self.device = DeviceAdapter(
            _Store(),  # type: ignore[arg-type]
            self.client,
            self.record,
            relay_key=helper.relay_key,
        )
        self.control = ControlAdapter(self.client, self.device)

    def recorded(self) -> dict[str, object]:
        data = json.loads(self.record.read_text())
        assert isinstance(data, dict)
        return data

    def stored_key(self, device_id: str) -> str | None:
        return self.rc.service.storage.get_device(device_id).relay_key


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[tuple[RunningController, str]]:
    (tmp_path / "relay-token").write_text("t" * 40 + "\n")
    (tmp_path / "relay-token").chmod(0o600)
    async with run_controller(
        tmp_path,
        sensitive_rate_per_min=1000,
        gateway=GatewayConfig(public_key=_wg_key(), endpoint=GW),
        relays=(RelayConfig(name="relay1", endpoint="relay1.example:443"),),
        relay_token_file=str(tmp_path / "relay-token"),
    ) as rc:
        tokens = await login(rc, "alice", "alice-password")
        yield rc, str(tokens["access_token"])


def _rig(controller: tuple[RunningController, str], tmp: Path, key: str | None) -> Rig:
    rc, token = controller
    return Rig(rc, token, tmp, _Helper(key))


def _cert_key(pem: str) -> tuple[str, str]:
    device_id, raw = device_of(x509.load_pem_x509_certificate(pem.encode()))
    return device_id, b64url(raw)


async def test_enrollment_sends_the_helpers_relay_key_and_bundles_carry_its_certificate(
    controller: tuple[RunningController, str], tmp_path: Path
) -> None:
    key = _relay_key()
    rig = _rig(controller, tmp_path, key)
    enrollment = await rig.device.enroll()
    assert rig.stored_key(enrollment.device_id) == key
    assert rig.recorded()["relay_key"] == key
    assert rig.control.relay_cert() is None
    await rig.control.fetch_bundle()
    first = rig.control.relay_cert()
    assert first is not None
    assert _cert_key(first) == (enrollment.device_id, key)
    # Known already: no registration call, however often it is asked.
    await rig.device.register_relay_key()
    await rig.device.register_relay_key()
    assert rig.net.puts() == 0
    # A fresh certificate with every bundle answer; the adapter keeps the latest.
    await rig.control.fetch_bundle()
    assert rig.control.relay_cert() not in (None, first)
    await rig.client.aclose()


async def test_a_device_enrolled_before_relays_registers_the_key_with_a_put_not_a_reenrollment(
    controller: tuple[RunningController, str], tmp_path: Path
) -> None:
    rig = _rig(controller, tmp_path, None)  # an older helper: no relay key
    enrollment = await rig.device.enroll()
    assert "relay_key" not in rig.recorded()
    assert rig.stored_key(enrollment.device_id) is None
    await rig.control.fetch_bundle()
    assert rig.control.relay_cert() is None  # no key, no certificate
    await rig.device.register_relay_key()
    assert rig.net.puts() == 0  # nothing to register

    rig.helper.key = key = _relay_key()  # the helper was updated
    await rig.device.register_relay_key()
    assert rig.net.seen[-1] == ("PUT", f"/v1/devices/{enrollment.device_id}/relay-key")
    assert rig.stored_key(enrollment.device_id) == key
    assert rig.recorded()["relay_key"] == key
    assert rig.recorded()["device_id"] == enrollment.device_id  # the same enrollment
    assert len(rig.rc.service.storage.list_devices()) == 1
    await rig.control.fetch_bundle()
    cert = rig.control.relay_cert()
    assert cert is not None
    assert _cert_key(cert) == (enrollment.device_id, key)

    # The helper's key changed (reinstalled): registered again, certificates follow.
    rig.helper.key = newer = _relay_key()
    await rig.device.register_relay_key()
    assert rig.net.puts() == 2
    assert rig.stored_key(enrollment.device_id) == newer
    await rig.control.fetch_bundle()
    cert = rig.control.relay_cert()
    assert cert is not None
    assert _cert_key(cert) == (enrollment.device_id, newer)
    await rig.client.aclose()


async def test_a_refused_or_failed_registration_never_raises_and_is_tried_again(
    controller: tuple[RunningController, str], tmp_path: Path
) -> None:
    rig = _rig(controller, tmp_path, None)
    enrollment = await rig.device.enroll()
    # A broken helper answering garbage: the controller refuses it (400), nothing raises,
    # nothing is recorded, and the next call asks again.
    rig.helper.key = "not-a-key"
    await rig.device.register_relay_key()
    await rig.device.register_relay_key()
    assert rig.net.puts() == 2
    assert "relay_key" not in rig.recorded()
    assert rig.stored_key(enrollment.device_id) is None
    rig.helper.key = key = _relay_key()
    await rig.device.register_relay_key()
    assert rig.stored_key(enrollment.device_id) == key
    assert rig.recorded()["relay_key"] == key
    await rig.client.aclose()


async def test_a_revoked_device_cannot_register_a_key_and_the_caller_is_not_disturbed(
    controller: tuple[RunningController, str], tmp_path: Path
) -> None:
    rig = _rig(controller, tmp_path, None)
    enrollment = await rig.device.enroll()
    rig.rc.service.revoke(enrollment.device_id)
    rig.helper.key = _relay_key()
    await rig.device.register_relay_key()  # 403 from the controller: logged only
    assert rig.net.puts() == 1
    assert "relay_key" not in rig.recorded()
    await rig.client.aclose()


async def test_an_unreachable_controller_never_blocks_the_registration_caller(
    tmp_path: Path,
) -> None:
    client = ControlPlaneClient("http://127.0.0.1:9", auth=BearerAuth("t"), proxy=None)
    record = tmp_path / "enrollment.json"
    record.write_text(json.dumps({"device_id": "dev-1", "address": "10.0.0.2/32"}))
    device = DeviceAdapter(
        _Store(),  # type: ignore[arg-type]
        client,
        record,
        relay_key=_Helper(_relay_key()).relay_key,
    )
    await device.register_relay_key()  # logged, not raised
    assert "relay_key" not in json.loads(record.read_text())
    await client.aclose()


async def test_a_helper_that_cannot_be_asked_enrolls_without_a_relay_key(
    controller: tuple[RunningController, str], tmp_path: Path
) -> None:
    async def gone() -> str | None:
        from wg_backends.errors import HelperUnavailable

        raise HelperUnavailable("connection refused")

    rc, token = controller
    rig = Rig(rc, token, tmp_path, _Helper(None))
    rig.device = DeviceAdapter(
        _Store(),  # type: ignore[arg-type]
        rig.client,
        rig.record,
        relay_key=gone,
    )
    enrollment = await rig.device.enroll()
    assert rig.stored_key(enrollment.device_id) is None
    await rig.device.register_relay_key()  # nothing to register, nothing raised
    assert rig.net.puts() == 0
    await rig.client.aclose()
