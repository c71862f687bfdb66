"""The client measures how far this computer's clock is off the controller's (issue 17).

Against the real reference controller on loopback (its ``Date`` header), with the
client's wall clock injected a day behind or minutes ahead: no faketime needed.
"""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from controller.testing import run_controller
from core.clock import TrustedTime
from core.controlplane import ControlPlaneClient

pytestmark = pytest.mark.integration

DAY = 86400.0


async def test_skew_against_the_real_controller_with_the_clock_a_day_behind() -> None:
    trusted = TrustedTime(wall=lambda: time.time() - DAY)
    async with run_controller() as rc:
        async with ControlPlaneClient(rc.base_url, proxy=None, trusted=trusted) as client:
            assert client.clock_skew_s is None  # nothing measured yet
            await client.discovery()
            skew = client.clock_skew_s
    assert skew is not None
    assert abs(skew + DAY) < 5, skew  # local − controller: a day behind
    # The controller's time, carried forward, is what "now" means from here on.
    assert trusted.anchored
    assert abs(trusted.now() - time.time()) < 5


def _dated(controller_now: list[float]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        date = email.utils.formatdate(controller_now[0], usegmt=True)
        return httpx.Response(200, json={"nonce": "n", "expires_at": 1}, headers={"Date": date})

    return httpx.MockTransport(handle)


async def test_skew_is_the_median_of_the_last_answers() -> None:
    wall = [1_000_000.0]
    controller = [1_000_000.0 - 600]  # this computer is 10 minutes ahead
    trusted = TrustedTime(wall=lambda: wall[0], elapsed=lambda: wall[0])
    async with ControlPlaneClient(
        "https://ctl.example", transport=_dated(controller), trusted=trusted
    ) as client:
        for _ in range(3):
            await client.posture_nonce("dev")
        assert client.clock_skew_s == pytest.approx(599.5)
        controller[0] += 3600  # one odd answer does not move the median
        await client.posture_nonce("dev")
        assert client.clock_skew_s == pytest.approx(599.5)


async def test_an_answer_without_a_date_measures_nothing() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"nonce": "n", "expires_at": 1})

    trusted = TrustedTime()
    async with ControlPlaneClient(
        "https://ctl.example", transport=httpx.MockTransport(handle), trusted=trusted
    ) as client:
        await client.posture_nonce("dev")
        assert client.clock_skew_s is None
    assert not trusted.anchored
