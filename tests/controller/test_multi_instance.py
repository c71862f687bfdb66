"""Two controller instances behind one PostgreSQL database act as one service."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from controller.config import IssuerConfig
from controller.testing import login, run_controller
from core.controlplane import BearerAuth, ConflictError, ControlPlaneClient
from core.wire.policy import BUNDLE_TYP
from core.wire.signing import public_key_from_jwk, verify
from tests.controller.conftest import new_device

pytestmark = pytest.mark.integration


async def test_instances_share_devices_versions_and_keys(postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    db = "multi_instance"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db}")
    url = postgres_url.replace("/postgres?", f"/{db}?")
    async with run_controller(tmp_path, database=url) as a:
        issuer = IssuerConfig(issuer=a.issuer, audiences=("rustronaut-api",))
        # Same keys directory (tmp_path/keys) and database; trusts A's issuer.
        async with run_controller(tmp_path, database=url, issuers=(issuer,), dev_oidc=None) as b:
            tokens = await login(a, "alice", "alice-password")
            auth = BearerAuth(tokens["access_token"])
            keys = new_device()
            async with (
                ControlPlaneClient(a.base_url, auth=auth) as ca,
                ControlPlaneClient(b.base_url, auth=auth) as cb,
            ):
                dev = (await ca.enroll(keys.enroll_request())).device_id
                with pytest.raises(ConflictError):
                    await cb.enroll(keys.enroll_request("same keys on b"))
                second = await cb.enroll(new_device().enroll_request("other"))
                assert second.address == "10.77.0.3/32"  # no duplicate across instances
                # A nonce issued by A is consumed on B.
                nonce = await ca.posture_nonce(dev)
                assert (await cb.submit_posture(dev, keys.report(dev, nonce.nonce))).accepted
                versions = [(await c.fetch_bundle(dev)).version for c in (ca, cb, ca, cb)]
                assert versions == [1, 2, 3, 4]
                # A key rotated through B is used and published by A as well.
                async with httpx.AsyncClient() as http:
                    resp = await http.post(
                        f"{b.base_url}/v1/admin/keys/rotate",
                        headers={"Authorization": f"Bearer {b.admin_token}"},
                    )
                assert resp.status_code == 200
                disc = await ca.discovery()
                bundle = await ca.fetch_bundle(dev)
                from msgspec import to_builtins

                current = disc.policy_keys.keys[0]
                doc = verify(
                    bundle.bundle,
                    {current.kid: public_key_from_jwk(to_builtins(current))},
                    typ=BUNDLE_TYP,
                    max_size=1 << 20,
                )
                assert doc.kid == current.kid
                assert len(disc.policy_keys.keys) == 2
