"""A small fleet for console page tests: a policy, enrolled devices with real signed
posture reports and decision batches (through the controller's HTTP API), and hostile
strings where devices control them."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass
from typing import Any

import msgspec

from controller.storage.base import DeviceRecord
from core.controlplane import BearerAuth, ControlPlaneClient
from core.wire.policy import Resource, Rule
from core.wire.posture import Fact, PostureReport, sign_report
from tests.controller.console.conftest import ConsoleServer
from tests.controller.console.live_helpers import Device, enroll, event, post_batch

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
WIKI: dict[str, Any] = {"id": "wiki", "name": "Wiki", "cidrs": ["10.20.0.0/24"], "ports": [443]}
ENG: dict[str, Any] = {
    "id": "eng-wiki",
    "effect": "allow",
    "resources": ["wiki"],
    "priority": 10,
    "conditions": {
        "kind": "all",
        "of": [
            {"kind": "fact", "fact": "user.groups", "op": "eq", "value": "engineering"},
            {"kind": "fact", "fact": "posture.disk.encrypted", "op": "eq", "value": True},
        ],
    },
}


@dataclass
class Fleet:
    """What ``make_fleet`` made."""

    good: Device
    bad: Device
    hostile: DeviceRecord


async def _posture(server: ConsoleServer, dev: Device, *, encrypted: bool, os_name: str) -> None:
    async with ControlPlaneClient(server.url, auth=BearerAuth(dev.token), proxy=None) as client:
        nonce = await client.posture_nonce(dev.device_id)
        now = time.time()
        report = PostureReport(
            device_id=dev.device_id,
            nonce=nonce.nonce,
            issued_at=now,
            facts=(Fact.of("disk.encrypted", encrypted, now), Fact.of("os.name", os_name, now)),
        )
        await client.submit_posture(dev.device_id, sign_report(report, dev.keys.signing))


def make_fleet(server: ConsoleServer) -> Fleet:
    """Policy wiki/eng-wiki; alice's "good" laptop (posture ok) and "bad" laptop (disk not
    encrypted, a hostile OS name, hostile decisions); a device row named like a script."""
    service = server.service

    async def policy() -> None:
        service.put_resource(msgspec.convert(WIKI, Resource))
        service.put_rule(msgspec.convert(ENG, Rule))

    server.run(policy())

    async def devices() -> Fleet:
        good = await enroll(server.rc, "alice", "good laptop")
        bad = await enroll(server.rc, "alice", "bad laptop")
        await _posture(server, good, encrypted=True, os_name="linux")
        await _posture(server, bad, encrypted=False, os_name=SCRIPT)
        await post_batch(
            server.rc, good, event(effect="allow", resource="wiki", app="/usr/bin/curl")
        )
        await post_batch(
            server.rc,
            bad,
            event(effect="deny", resource="wiki", app=IMG, host="wiki.corp.example", reason=SCRIPT),
            event(effect="deny", resource="wiki", app="/usr/bin/ssh"),
        )
        # Enrollment refuses such a name; a row written another way must still be safe.
        hostile = service.storage.enroll_device(
            device_id="dev-hostile",
            user_id=IMG + "@example.com",
            name=SCRIPT,
            platform="linux",
            wg_public_key="A" * 43 + "=",
            signing_key="B" * 43,
            pool=ipaddress.ip_network(service.config.pool),
            reserved=frozenset(),
            now=int(time.time()),
        )
        return Fleet(good, bad, hostile)

    return asyncio.run(devices())
