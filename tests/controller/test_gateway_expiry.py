"""The gateway drops an expired device's peer on its own, and takes it back on refresh.

Finding (issue 17): with the client's clock set back, its expired policy kept granting
access and the reference gateway kept forwarding for the device. Now the controller
removes the peer when the device's last bundle expires — judged by the controller's
clock (injected here), whatever the device does — and restores it when the device
fetches a new bundle. Drives the real controller with the recording ``wg`` runner.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controller.testing import login, run_controller
from core.clock import TrustedTime
from core.controlplane import BearerAuth, ControlPlaneClient
from tests.controller.conftest import new_device
from tests.controller.test_gateways import GW1, Recorder
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.integration

TTL = 3600


class Clock:
    def __init__(self) -> None:
        self.t = float(int(time.time()))

    def __call__(self) -> float:
        return self.t


async def test_expired_device_loses_its_peer_within_seconds_and_gets_it_back() -> None:
    rec, clock = Recorder(), Clock()
    async with run_controller(
        gateway=GW1, gateway_runner=rec, clock=clock, expiry_interval_s=0.05, bundle_ttl_s=TTL
    ) as rc:
        tokens = await login(rc, "alice", "alice-password")
        keys = new_device()
        async with ControlPlaneClient(
            rc.base_url,
            auth=BearerAuth(tokens["access_token"]),
            proxy=None,
            trusted=TrustedTime(),
        ) as c:
            enrolled = await c.enroll(keys.enroll_request())
            await c.fetch_bundle(enrolled.device_id)
            peers = rec.peers["rtcga1"]
            assert peers == {keys.wg_public: enrolled.address}

            clock.t += TTL - 1
            rc.service.reconcile_gateway()  # one sweep, deterministically
            assert keys.wg_public in peers  # still valid for a second

            clock.t += 1  # the bundle has expired and the device has not refreshed
            await async_wait_until(
                lambda: keys.wg_public not in peers, what="the expired peer to be removed"
            )

            await c.fetch_bundle(enrolled.device_id)  # the device refreshes
            assert peers == {keys.wg_public: enrolled.address}
            rc.service.reconcile_gateway()
            assert peers == {keys.wg_public: enrolled.address}  # and the sweep keeps it


async def test_a_device_that_never_fetches_a_bundle_is_dropped_after_one_lifetime() -> None:
    rec, clock = Recorder(), Clock()
    async with run_controller(
        gateway=GW1, gateway_runner=rec, clock=clock, expiry_interval_s=0.05, bundle_ttl_s=TTL
    ) as rc:
        tokens = await login(rc, "alice", "alice-password")
        keys = new_device()
        async with ControlPlaneClient(
            rc.base_url, auth=BearerAuth(tokens["access_token"]), proxy=None
        ) as c:
            await c.enroll(keys.enroll_request())
        assert keys.wg_public in rec.peers["rtcga1"]
        clock.t += TTL
        await async_wait_until(lambda: keys.wg_public not in rec.peers["rtcga1"])


async def test_the_lease_outlives_a_controller_restart(tmp_path: Path) -> None:
    rec, clock = Recorder(), Clock()
    common = dict(gateway=GW1, gateway_runner=rec, clock=clock, bundle_ttl_s=TTL)
    async with run_controller(tmp_path, **common) as rc:  # type: ignore[arg-type]
        tokens = await login(rc, "alice", "alice-password")
        keys = new_device()
        async with ControlPlaneClient(
            rc.base_url, auth=BearerAuth(tokens["access_token"]), proxy=None
        ) as c:
            enrolled = await c.enroll(keys.enroll_request())
            await c.fetch_bundle(enrolled.device_id)
    clock.t += TTL + 5  # expired while the controller was down
    async with run_controller(tmp_path, **common):  # type: ignore[arg-type]
        # reconciled at start: the expired device is not a peer again
        assert keys.wg_public not in rec.peers["rtcga1"]
