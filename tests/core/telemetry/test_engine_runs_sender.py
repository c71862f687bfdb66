"""The engine starts the telemetry sender with itself and stops it (queue written) with
itself; the sender's task is the only one it adds."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.engine.engine import Engine, EngineConfig
from core.telemetry import TelemetryQueue, TelemetrySender
from core.wire.telemetry import DecisionAck, DecisionBatch
from tests.core.engine.ports import (
    ALICE,
    Auth,
    Control,
    Device,
    ManualTicks,
    Policy,
    Posture,
    Proxy,
    Tunnel,
)
from tests.core.engine.test_engine import Clock
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.unit


async def test_the_sender_runs_while_the_engine_runs(tmp_path: Path) -> None:
    got: list[tuple[str, str]] = []

    async def submit(device_id: str, token: str) -> DecisionAck:
        got.append((device_id, token))
        return DecisionAck(seq=len(got), duplicate=False, stored=1)

    def sign(batch: DecisionBatch) -> str:
        return f"signed-{batch.seq}"

    sender = TelemetrySender(
        TelemetryQueue(tmp_path),
        level=lambda: "full",
        device_id=lambda: "dev_1",
        sign=sign,
        submit=submit,
        hash_apps=lambda: True,
        salt="https://acme.example",
        interval_s=0.02,
    )
    clock = Clock()
    engine = Engine(
        auth=Auth(ALICE),
        device=Device(),
        control=Control(),
        posture=Posture(),
        policy=Policy(clock),
        tunnel=Tunnel(clock),
        proxy=Proxy(),
        config=EngineConfig(),
        ticks=ManualTicks(clock),
        telemetry=sender,
    )
    await engine.start()
    assert sender.running
    sender.record(
        at=1.0,
        app="/usr/bin/ssh",
        destination="git.corp.example:22",
        effect="deny",
        rule=None,
        resource="git",
        code="decision",
        reason="no rule allows this",
        risk=10,
    )
    await async_wait_until(lambda: got == [("dev_1", "signed-1")], what="the batch sent")
    await engine.stop()
    sender.record(
        at=2.0,
        app="/usr/bin/ssh",
        destination="git.corp.example:22",
        effect="deny",
        rule=None,
        resource="git",
        code="decision",
        reason="no rule allows this",
        risk=10,
    )
    assert not sender.running  # nothing can send it: it waits on disk for the next start
    assert len(got) == 1
    await sender.stop()
    assert len(TelemetryQueue(tmp_path)) == 1
