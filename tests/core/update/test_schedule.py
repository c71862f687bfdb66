"""The scheduled check: when it runs, what the employee hears (an update started, then
installed or not), and the engine running it. Time moves only by hand: the schedule's
``sleep`` is a gate the test opens, its clock a number the test sets."""

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
from core.update import AnswerLost, PendingUpdate, SeenFloor, UpdateConfig, Updater
from core.update import schedule as schedule_module
from core.update.pending import SETTLE, Pending
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
from wg_backends.errors import HelperRefused

pytestmark = pytest.mark.unit


class Installer:
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.error: Exception | None = None

    async def install_update(self, manifest: str) -> Mapping[str, Any]:
        self.asked.append(manifest)
        if self.error is not None:
            raise self.error
        return {"version": "0.2.0"}


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


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
    """A schedule for a client running 0.1.0 whose update server offers ``body``."""

    def __init__(self, tmp_path: Path, pending: PendingUpdate | None = None) -> None:
        self.body = b""
        self.status = 200
        self.installer = Installer()
        self.reports: list[tuple[str, dict[str, str]]] = []
        self.gate = Gate()
        self.clock = Clock()
        self.floor = SeenFloor(tmp_path / "update-floor.json")
        self.pending = pending or PendingUpdate(tmp_path / "update-pending.json", clock=self.clock)
        self.schedule = UpdateSchedule(
            self.make,
            lambda text, details: self.reports.append((text, dict(details))),
            sleep=self.gate.sleep,
            rand=lambda: 0.5,
            pending=self.pending,
            running="0.1.0",
            clock=self.clock,
        )

    async def started(self) -> None:
        self.schedule.start()
        await async_wait_until(lambda: self.gate.asked, what="the first sleep")

    async def wake(self) -> None:
        """Let the time the schedule asked for pass, and its loop run once."""
        self.clock.now += self.gate.asked[-1]
        await self.gate.release()

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
            clock=self.clock,
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


async def test_checks_after_start_then_every_interval_and_says_installing(
    tmp_path: Path,
) -> None:
    bed = Bed(tmp_path)
    bed.body = token(payload("0.2.0")).encode()
    await bed.started()
    assert bed.gate.asked == [FIRST_DELAY * 1.5]
    assert bed.installer.asked == []  # nothing before the first delay
    await bed.wake()
    assert len(bed.installer.asked) == 1
    # started, not done: the installer has yet to replace this build
    assert bed.reports == [
        ("Installing update 0.2.0…", {"code": "update_started", "version": "0.2.0"})
    ]
    assert bed.pending.read() == Pending("0.2.0", NOW + FIRST_DELAY * 1.5)
    assert bed.gate.asked[1] == SETTLE  # wakes when the installer's time is up
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


async def test_the_engine_runs_the_schedule_and_shows_its_news_as_notices(
    tmp_path: Path,
) -> None:
    bed = Bed(tmp_path)
    bed.pending.record("0.1.0")  # what an earlier run (or rustronaut update) asked for
    bed.body = token(payload("0.2.0")).encode()
    engine = _engine(bed.schedule)
    bed.schedule._report = engine.announce
    events: list[Any] = []
    engine.subscribe(events.append)
    await engine.start()
    await async_wait_until(lambda: bed.gate.asked, what="the schedule started")
    await bed.wake()
    await engine.settled()
    notices = [e for e in events if e.kind is EventKind.NOTICE]
    assert [n.message for n in notices] == ["Updated to 0.1.0", "Installing update 0.2.0…"]
    assert notices[0].details["code"] == "update_installed"
    assert notices[1].details["version"] == "0.2.0"
    await engine.stop()
    assert bed.schedule._task is None  # stopped with the engine


async def test_at_the_agents_start_an_installed_update_is_told_once(tmp_path: Path) -> None:
    bed = Bed(tmp_path)
    bed.pending.record("0.1.0")  # the build now running is the one asked for
    bed.clock.now += 300
    await bed.started()
    assert bed.reports == [("Updated to 0.1.0", {"code": "update_installed", "version": "0.1.0"})]
    assert bed.pending.read() is None
    await bed.schedule.stop()
    again = Bed(tmp_path)  # the next start: nothing more to say
    await again.started()
    assert again.reports == []
    await again.schedule.stop()


async def test_an_installer_that_never_replaced_the_build_is_told_after_its_time(
    tmp_path: Path,
) -> None:
    """The installer stopped this agent and failed: the old build starts again; while the
    installer may still be at work no check starts, then one notice with a next step."""
    bed = Bed(tmp_path)
    bed.pending.record("0.2.0")
    bed.clock.now += 100
    bed.body = token(payload("0.2.0")).encode()
    await bed.started()
    assert bed.reports == []
    assert bed.gate.asked == [FIRST_DELAY * 1.5]
    await bed.wake()  # the first check: the installer still has time
    assert bed.installer.asked == []
    assert bed.gate.asked[-1] == SETTLE - 100 - FIRST_DELAY * 1.5
    await bed.wake()
    assert len(bed.reports) == 1
    text, details = bed.reports[0]
    assert text == "The update to 0.2.0 did not install"
    assert details["code"] == "update_install"
    assert details["version"] == "0.2.0"
    assert "rustronaut diag" in details["next"]
    assert bed.pending.read() is None
    assert bed.gate.asked[-1] == pytest.approx(INTERVAL - (SETTLE - 100 - FIRST_DELAY * 1.5))
    await bed.wake()  # the next check tries again (and says so)
    assert bed.installer.asked != []
    assert bed.reports[-1][0] == "Installing update 0.2.0…"
    await bed.schedule.stop()


async def test_an_install_started_in_this_run_that_leaves_it_running_did_not_install(
    tmp_path: Path,
) -> None:
    """Both installers stop the running agent: one still running when the installer's
    time is up was not replaced."""
    bed = Bed(tmp_path)
    bed.body = token(payload("0.2.0")).encode()
    await bed.started()
    await bed.wake()
    assert [r[0] for r in bed.reports] == ["Installing update 0.2.0…"]
    assert bed.gate.asked[-1] == SETTLE
    await bed.wake()
    assert [r[0] for r in bed.reports] == [
        "Installing update 0.2.0…",
        "The update to 0.2.0 did not install",
    ]
    await bed.schedule.stop()


async def test_a_helper_refusal_leaves_nothing_pending(tmp_path: Path) -> None:
    bed = Bed(tmp_path)
    bed.body = token(payload("0.2.0")).encode()
    bed.installer.error = HelperRefused("update_install", "the installer did not start")
    assert await bed.schedule.check_once() is None
    assert bed.pending.read() is None
    assert [r[0] for r in bed.reports] == ["Update refused: the installer failed"]


async def test_a_lost_answer_may_be_an_install_under_way(tmp_path: Path) -> None:
    """The installer stopped the helper before it answered: the record stays and tells."""
    bed = Bed(tmp_path)
    bed.body = token(payload("0.2.0")).encode()
    bed.installer.error = AnswerLost("lost the helper: connection reset")
    outcome = await bed.schedule.check_once()
    assert outcome == schedule_module.Outcome("started", "0.2.0")
    assert bed.pending.read() == Pending("0.2.0", float(NOW))
    assert bed.floor.read() == "0.2.0"
    assert [r[0] for r in bed.reports] == ["Installing update 0.2.0…"]


async def test_a_record_that_cannot_be_removed_is_told_once_and_the_loop_goes_on(
    tmp_path: Path,
) -> None:
    class Stuck(PendingUpdate):
        def clear(self) -> None:  # a file the employee made read-only, say
            pass

    clock = Clock()
    stuck = Stuck(tmp_path / "update-pending.json", clock=clock)
    bed = Bed(tmp_path, pending=stuck)
    bed.clock = clock
    bed.schedule._clock = clock
    bed.status = 404  # no news from the update server
    stuck.record("0.1.0")
    await bed.started()
    assert bed.gate.asked == [FIRST_DELAY * 1.5]  # no busy loop on the record left behind
    await bed.wake()
    assert [r[0] for r in bed.reports] == ["Updated to 0.1.0"]
    await bed.schedule.stop()


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
