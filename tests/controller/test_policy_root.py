"""The reference controller's policy root: kept in its keys dir, published with an
endorsement of every signing key, so a client anchored on the root follows rotations.

Real parts: the controller served over HTTP on loopback, the real client
(``ControlPlaneClient``) and the client's real ``PolicyTrust``.
"""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import httpx
import msgspec
import pytest

from controller.keys import ROOT_FILE, SigningKeyRing
from controller.testing import RunningController, run_controller
from core.controlplane import ControlPlaneClient
from core.controlplane.models import Discovery
from core.policy.errors import UntrustedKeysError
from core.policy.trust import DiscoveredKeys, PolicyTrust
from core.wire.signing import public_key_from_jwk

pytestmark = pytest.mark.integration


def _claims(doc: Discovery) -> DiscoveredKeys:
    return DiscoveredKeys(
        signing={k.kid: public_key_from_jwk(msgspec.to_builtins(k)) for k in doc.policy_keys.keys},
        roots=tuple(public_key_from_jwk(msgspec.to_builtins(k)) for k in doc.policy_roots),
        endorsements=tuple(doc.policy_endorsements),
    )


async def _rotate(rc: RunningController) -> None:
    async with httpx.AsyncClient(base_url=rc.base_url) as http:
        resp = await http.post(
            "/v1/admin/keys/rotate", headers={"Authorization": f"Bearer {rc.admin_token}"}
        )
    assert resp.status_code == 200


async def test_discovery_endorses_every_signing_key_across_a_rotation() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with run_controller(Path(tmp)) as rc:
            trust = PolicyTrust([rc.service.keys.root_public()])
            async with ControlPlaneClient(rc.base_url) as client:
                before = await client.discovery()
                assert set(trust.signing_keys(_claims(before))) == {before.policy_keys.keys[0].kid}
                await _rotate(rc)
                after = await client.discovery()
            trusted = trust.signing_keys(_claims(after))
            assert set(trusted) == {k.kid for k in after.policy_keys.keys}
            assert len(trusted) == 2
            root_file = Path(tmp) / "keys" / ROOT_FILE
            assert stat.S_IMODE(root_file.stat().st_mode) == 0o600
            first_root = rc.service.keys.root_public()
        # The root survives a restart of the controller (same keys dir).
        assert SigningKeyRing.load_or_create(Path(tmp) / "keys").root_public() == first_root


async def test_another_controllers_root_is_not_trusted() -> None:
    async with run_controller() as one, run_controller() as other:
        trust = PolicyTrust([one.service.keys.root_public()])
        async with ControlPlaneClient(other.base_url) as client:
            doc = await client.discovery()
        with pytest.raises(UntrustedKeysError, match="trust anchor"):
            trust.signing_keys(_claims(doc))
