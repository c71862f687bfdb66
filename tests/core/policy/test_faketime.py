"""The whole client process with its clock a day behind (libfaketime), as an employee would.

The child process talks to the real reference controller (real time) and is handed a
bundle the controller's key signed now. With the old code it refused the bundle as
"issued in the future" and reported nothing about the clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from controller.testing import run_controller
from tests.core.policy.helpers import bundle, rule, token

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime (apt)"),
]

ROOT = Path(__file__).resolve().parents[3]

CHILD = r"""
import asyncio, json, sys
from core.clock import shared
from core.controlplane import ControlPlaneClient
from core.policy.store import PolicyStore
from tests.core.policy.helpers import DEVICE, KEYS

async def main() -> None:
    url, tok = sys.argv[1], sys.argv[2]
    async with ControlPlaneClient(url, proxy=None) as client:
        await client.discovery()
        skew = client.clock_skew_s
    store = PolicyStore(device_id=DEVICE, keys=KEYS)
    store.update(tok)
    print(json.dumps({"skew": skew, "held": store.current() is not None,
                      "trusted_now": shared().now()}))

asyncio.run(main())
"""


async def test_a_client_a_day_behind_measures_the_skew_and_takes_the_bundle() -> None:
    now = int(time.time())
    tok = token(bundle(rule("r"), issued_at=now, expires_at=now + 600))
    async with run_controller() as rc:
        proc = await asyncio.create_subprocess_exec(
            "faketime",
            "-f",
            "-1d",
            sys.executable,
            "-c",
            CHILD,
            rc.base_url,
            tok,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    seen = json.loads(out)
    assert abs(seen["skew"] + 86400) < 10, seen  # a day behind, measured
    assert seen["held"] is True  # the bundle the controller signed now is in force
    assert abs(seen["trusted_now"] - time.time()) < 10  # "now" is the controller's
