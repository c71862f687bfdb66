"""The scheduled check: when it runs, what the employee hears, and the engine running it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from core.engine.engine import Engine, EngineConfig
from core.engine.state import EventKind
from core.engine.wiring import _update_schedule
from core.settings.model import Settings
from core.update import SeenFloor, UpdateConfig, Updater
from core.update import schedule as schedule_module
from core.update.schedule import FIRST_DELAY, INTERVAL, UpdateSchedule, applies
from tests.core.engine.ports import (
    Auth,
    Control,
    Device,
    ManualTicks,
    Policy,
    Posture,
    Proxy,
    Tunnel,
)
from tests.core.update.kit import KEYS, NOW, OTHER_KEY, payload, token
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.unit


class Installer:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def install_update(self, manifest: str) -> Mapping[str, Any]:
        self.asked.append(manifest)
        return {"version": "0.2.0"}


class Gate:
    """``sleep`` that returns only when the test releases it; records each delay."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self._waiting: list[asyncio.Future[None]] = []

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        await future

    async def release(self) -> None:
        """Wake the sleeper and wait until the loop sleeps again (one check done)."""
        count = len(self.asked)
        self._waiting.pop(0).set_result(None)
        await async_wait_until(lambda: len(self.asked) > count, what="the next sleep")


class Bed:
    def __init__(self, tmp_path: Path) -> None:
        self.body = b""
        self.status = 200
        self.installer = Installer()
        self.reports: list[tuple[str, dict[str, str]]] = []
        self.gate = Gate()
        self.floor = SeenFloor(tmp_path / "update-floor.json")
        self.schedule = UpdateSchedule(
            self.make,
            lambda text, details: self.reports.append((text, dict(details))),
            sleep=self.gate.sleep,
            rand=lambda: 0.5,
        )

    def answer(self, _request: httpx.Request) -> httpx.Response:
        return httpx.Response(self.status, content=self.body)

    def make(self) -> Updater:
        return Updater(
            UpdateConfig(update_url="https://updates.example.com/stable.jws", update_keys=KEYS),
            self.installer,
            self.floor,
            transport=httpx.MockTransport(
                lambda _r: httpx.Response(self.status, content=self.body)
            ),
            clock=lambda: float(NOW),
            platform="windows-x86_64",
            installed="0.1.0",
        )


def test_only_windows_and_macos_update_themselves() -> None:
    assert applies("win32")
    assert applies("darwin")
    assert not applies("linux")


def test_the_delays_are_jittered_around_the_interval() -> None:
    draws = iter([0.0, 1.0])
    schedule = UpdateSchedule(lambda: None, lambda *_: None, rand=lambda: next(draws))  # type: ignore[arg-type,return-value]
    first, interval = schedule.delays()
    assert first == FIRST_DELAY
    assert interval == pytest.approx(INTERVAL * 1.1)


async def test_checks_after_start_then_every_interval_and_says_updated(tmp_path: Path) -> None:
    bed = Bed(tmp_path)
    bed.body = token(payload("0.2.0")).encode()
    bed.schedule.start()
    await async_wait_until(lambda: bed.gate.asked, what="the first sleep")
    assert bed.gate.asked == [FIRST_DELAY * 1.5]
    assert bed.installer.asked == []  # nothing before the first delay
    await bed.gate.release()
    assert len(bed.installer.asked) == 1
    assert bed.reports == [("Updated to 0.2.0", {"code": "update_installed", "version": "0.2.0"})]
    assert bed.gate.asked[1] == pytest.approx(INTERVAL)
    await bed.schedule.stop()
    await bed.schedule.stop()  # idempotent


async def test_a_refusal_is_told_once_with_its_next_step(tmp_path: Path) -> None:
    bed = Bed(tmp_path)
    bed.body = token(payload("0.2.0", issued_at=NOW - 9 * 86400, expires_at=NOW - 86400)).encode()
    bed.schedule.start()
    await async_wait_until(lambda: bed.gate.asked, what="the first sleep")
    await bed.gate.release()
    await bed.gate.release()  # the same stale manifest six hours later: not told again
    assert [r[0] for r in bed.reports] == [
        "Update refused: its signed manifest has expired (an old release was offered)"
    ]
    assert bed.reports[0][1]["code"] == "update_stale"
    assert bed.reports[0][1]["next"].startswith("Nothing was installed. Tell IT")
    bed.body = token(payload("0.2.0"), OTHER_KEY).encode()
    await bed.gate.release()
    assert bed.reports[-1][0] == (
        "Update refused: it is not signed by your organization's update key"
    )
    assert bed.installer.asked == []
    await bed.schedule.stop()


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, b""), (200, token(payload("0.1.0")).encode())],
    ids=["server down", "up to date"],
)
async def test_transient_failures_and_no_news_are_only_logged(
    tmp_path: Path, status: int, body: bytes
) -> None:
    bed = Bed(tmp_path)
    bed.status, bed.body = status, body
    assert await bed.schedule.check_once() in (None, schedule_module.Outcome("current", "0.1.0"))
    assert bed.reports == []


async def test_a_broken_check_never_stops_the_schedule(tmp_path: Path) -> None:
    def broken() -> Updater:
        raise RuntimeError("settings unreadable")

    schedule = UpdateSchedule(broken, lambda *_: None)
    assert await schedule.check_once() is None


def _engine(schedule: UpdateSchedule) -> Engine:
    class Clock:
        now = float(NOW)

    clock = Clock()
    return Engine(
        auth=Auth(None),
        device=Device(),
        control=Control(),
        posture=Posture(),
        policy=Policy(clock),
        tunnel=Tunnel(clock),
        proxy=Proxy(),
        config=EngineConfig(),
        ticks=ManualTicks(clock),
        updates=schedule,
    )


async def test_the_engine_runs_the_schedule_and_shows_its_news_as_one_notice(
    tmp_path: Path,
) -> None:
    bed = Bed(tmp_path)
    bed.body = token(payload("0.2.0")).encode()
    engine = _engine(bed.schedule)
    bed.schedule._report = engine.announce
    events: list[Any] = []
    engine.subscribe(events.append)
    await engine.start()
    await async_wait_until(lambda: bed.gate.asked, what="the schedule started")
    await bed.gate.release()
    await engine.settled()
    notices = [e for e in events if e.kind is EventKind.NOTICE]
    assert [n.message for n in notices] == ["Updated to 0.2.0"]
    assert notices[0].details["version"] == "0.2.0"
    await engine.stop()
    assert bed.schedule._task is None  # stopped with the engine


def test_the_wiring_schedules_updates_only_where_they_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher: Any = SimpleNamespace(current=Settings())  # what the engine's watcher holds
    monkeypatch.setattr("core.engine.wiring.applies", lambda: False)
    assert _update_schedule(watcher, tmp_path / "helper.sock", lambda *_: None) is None
    monkeypatch.setattr("core.engine.wiring.applies", lambda: True)
    monkeypatch.setattr("core.engine.wiring.data_dir", lambda: tmp_path)
    schedule = _update_schedule(watcher, tmp_path / "helper.sock", lambda *_: None)
    assert isinstance(schedule, UpdateSchedule)
    updater = schedule._make()
    assert updater.config == UpdateConfig()  # from the watcher's settings: off until set
