"""The CLI and a second front end on the real product (controller + OIDC, helper,
WireGuard, the real engine and proxy in network namespaces; controller/demo/bed.py):
``rustronaut status --json`` shows the session the other front end shows, and
``rustronaut logout`` signs it out everywhere within a second and the proxy refuses."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from controller.demo.bed import Bed, make_bed, run
from controller.demo.harness import session
from core.engine.localapi.client import RemoteEngine
from core.engine.state import SessionState as S
from core.engine.state import Snapshot
from tests.fakes.cli import ROOT, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns, pytest.mark.timeout(240)]

WIKI = "http://wiki.corp.example/"


@pytest.fixture
def bed() -> Iterator[Bed]:
    with make_bed() as b:
        yield b
    assert not [ns for ns in run(["ip", "netns", "list"]).stdout.split() if b.tag in ns]


async def cli(socket: Path, *args: str) -> tuple[int, str, str]:
    # The demo's engine serves its local API at <state>/run/rustronaut/engine.sock.
    env = {**os.environ, "XDG_RUNTIME_DIR": str(socket.parent.parent), "PYTHONPATH": str(ROOT)}
    return await run_cli(env, *args, timeout=60, no_traceback=False)


async def test_status_and_logout_through_the_running_engine(bed: Bed) -> None:
    async with session(bed) as s:
        await s.wait_state("connected", "degraded")
        tray = await RemoteEngine.attach(s.control_socket, client="tray")
        try:
            rc, out, err = await cli(s.control_socket, "status", "--json")
            assert rc == 0, err
            shown = msgspec.json.decode(out, type=Snapshot)
            now = tray.snapshot
            assert shown.state is now.state
            assert (shown.user, shown.device_id, shown.policy_version) == (
                now.user,
                now.device_id,
                now.policy_version,
            )
            assert [(r.name, r.reachable) for r in shown.resources] == [
                (r.name, r.reachable) for r in now.resources
            ]
            assert s.curl(WIKI).stdout.endswith("200")

            rc, out, err = await cli(s.control_socket, "logout")
            assert rc == 0, err
            start = time.monotonic()
            async with asyncio.timeout(1.0):
                while tray.snapshot.state is not S.SIGNED_OUT:
                    await asyncio.sleep(0.01)
            assert time.monotonic() - start < 1.0
            assert tray.snapshot.user is None
            refused = s.curl(WIKI, timeout=3)
            assert not refused.stdout.endswith("200")
            rc, out, _ = await cli(s.control_socket, "status")
            assert rc == 0
            assert "State:     signed out" in out
        finally:
            await tray.stop()
