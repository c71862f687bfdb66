"""PostureMonitor: initial collection, drift → event from a watcher tick, schedule, stop."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import PostureConfigError
from core.posture.linux import firewall, screen_lock
from core.posture.model import FactChange, diff_facts
from core.posture.monitor import PostureMonitor
from core.posture.runner import SubprocessRunner
from core.wire.posture import Fact
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.integration


def _nft(ns: str, ruleset: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-f", "-"], input=ruleset, text=True, check=True
    )


@pytest.mark.root
@pytest.mark.netns
async def test_real_firewall_drift_is_reported_by_a_watcher_tick(netns: str) -> None:
    events: asyncio.Queue[tuple[FactChange, ...]] = asyncio.Queue()
    ctx = CollectContext(runner=SubprocessRunner(prefix=("ip", "netns", "exec", netns)))
    monitor = PostureMonitor(
        [firewall.COLLECTOR],
        full_interval_s=3600,
        watch_interval_s=0.2,
        on_change=events.put_nowait,
        context=ctx,
    )
    await monitor.start()
    try:
        first = events.get_nowait()  # start reports every fact as new
        assert [(c.name, c.old, c.new.value if c.new else None) for c in first] == [
            ("firewall.enabled", None, False)
        ]
        _nft(
            netns,
            "table inet rtp {\n  chain input {\n"
            "    type filter hook input priority 0; policy drop;\n  }\n}\n",
        )
        # bound only so a broken monitor fails instead of hanging
        changes = await asyncio.wait_for(events.get(), 20)
        assert len(changes) == 1
        change = changes[0]
        assert change.name == "firewall.enabled"
        assert change.old is not None
        assert (change.old.value, change.new.value if change.new else None) == (False, True)
        assert monitor.full_runs == 1, "the change came from a watcher, not a full run"
        assert monitor.watch_runs >= 1
        assert monitor.facts["firewall.enabled"].value is True
    finally:
        await monitor.stop()
    assert not monitor.running


class Flip:
    """A collector whose answer the test sets; counts its runs."""

    def __init__(self, name: str, *, cheap: bool) -> None:
        self.value: Answer = False
        self.runs = 0
        self.collector = Collector(f"flip-{name}", (name,), self._fn, cheap=cheap)
        self.name = name

    async def _fn(self, ctx: CollectContext) -> Mapping[str, Answer]:
        self.runs += 1
        return {self.name: self.value}


async def test_full_runs_pick_up_non_watched_facts_and_handler_errors_are_contained() -> None:
    cheap, slow = Flip("firewall.enabled", cheap=True), Flip("updates.auto", cheap=False)
    seen: list[tuple[str, ...]] = []

    async def handler(changes: tuple[FactChange, ...]) -> None:
        seen.append(tuple(c.name for c in changes))
        if len(seen) == 2:
            raise RuntimeError("a broken subscriber must not stop the monitor")

    monitor = PostureMonitor(
        [cheap.collector, slow.collector],
        full_interval_s=0.3,
        watch_interval_s=0.05,
        on_change=handler,
        context=CollectContext(runner=SubprocessRunner()),
    )
    await monitor.start()
    await monitor.start()  # idempotent
    try:
        assert seen == [("firewall.enabled", "updates.auto")]
        cheap.value = True
        slow.value = True
        await async_wait_until(lambda: len(seen) >= 3, what="both changes reported")
        assert ("firewall.enabled",) in seen
        assert ("updates.auto",) in seen
        assert monitor.running
        assert cheap.runs > slow.runs >= 2
    finally:
        await monitor.stop()
        await monitor.stop()  # idempotent
    runs = cheap.runs
    # On purpose: let many watch intervals pass (nothing to wait for when nothing happens).
    await asyncio.sleep(0.15)
    assert cheap.runs == runs, "no collection after stop"


async def test_tick_and_refresh_on_demand() -> None:
    cheap = Flip("screen_lock.enabled", cheap=True)
    got: list[tuple[FactChange, ...]] = []
    monitor = PostureMonitor(
        [cheap.collector],
        full_interval_s=60,
        watch_interval_s=30,
        on_change=got.append,
        context=CollectContext(runner=SubprocessRunner()),
    )
    assert await monitor.refresh()  # first run: everything new
    assert await monitor.tick() == ()  # nothing changed
    cheap.value = Unknown("gsettings: not installed")
    (change,) = await monitor.tick()
    assert change.new is not None
    assert not change.new.known
    assert len(got) == 2


@pytest.mark.parametrize(("full", "watch"), [(10, 0), (10, -1), (1, 5)])
def test_bad_intervals_refused(full: float, watch: float) -> None:
    with pytest.raises(PostureConfigError, match="intervals"):
        PostureMonitor([], full_interval_s=full, watch_interval_s=watch, on_change=print)


def test_diff_ignores_time_and_reason_wording() -> None:
    a = {"os.name": Fact.of("os.name", "linux", 1)}
    b = {"os.name": Fact.of("os.name", "linux", 2)}
    assert diff_facts(a, b) == ()
    u1 = {"disk.encrypted": Fact.unknown("disk.encrypted", "lsblk: timed out after 5s", 1)}
    u2 = {"disk.encrypted": Fact.unknown("disk.encrypted", "lsblk: timed out after 9s", 2)}
    assert diff_facts(u1, u2) == ()
    gone = diff_facts(b, {})
    assert [(c.name, c.new) for c in gone] == [("os.name", None)]
    assert diff_facts(b, {}, partial=True) == ()


async def test_stop_during_the_first_collection_wins() -> None:
    gate = asyncio.Event()
    collecting = asyncio.Event()

    async def slow(ctx: CollectContext) -> Mapping[str, Answer]:
        collecting.set()
        await gate.wait()
        return {"firewall.enabled": True}

    monitor = PostureMonitor(
        [Collector("slow", ("firewall.enabled",), slow, cheap=True)],
        full_interval_s=1,
        watch_interval_s=0.01,
        on_change=lambda changes: None,
        context=CollectContext(runner=SubprocessRunner()),
    )
    starting = asyncio.ensure_future(monitor.start())
    await asyncio.wait_for(collecting.wait(), 5)  # the first collection is under way
    await monitor.stop()  # the engine shut down while posture was still collecting
    gate.set()
    await starting
    assert not monitor.running
    assert monitor.facts["firewall.enabled"].value is True


async def test_real_screen_lock_drift_is_reported(tmp_path: Path) -> None:
    env = {"GSETTINGS_BACKEND": "keyfile", "XDG_CONFIG_HOME": str(tmp_path)}
    if shutil.which("gsettings") is None or _gset(env, "lock-enabled", "true").returncode:
        pytest.skip("needs gsettings with the GNOME desktop schemas")
    events: asyncio.Queue[tuple[FactChange, ...]] = asyncio.Queue()
    monitor = PostureMonitor(
        [screen_lock.COLLECTOR],
        full_interval_s=3600,
        watch_interval_s=0.2,
        on_change=events.put_nowait,
        context=CollectContext(runner=SubprocessRunner(env=env)),
    )
    await monitor.start()
    try:
        events.get_nowait()
        assert monitor.facts["screen_lock.enabled"].value is True
        _gset(env, "lock-enabled", "false")
        changes = await asyncio.wait_for(events.get(), 20)
        assert {c.name for c in changes} == {"screen_lock.enabled", "screen_lock.timeout_s"}
        assert monitor.facts["screen_lock.enabled"].value is False
        assert monitor.full_runs == 1
    finally:
        await monitor.stop()


def _gset(env: dict[str, str], key: str, value: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["gsettings", "set", "org.gnome.desktop.screensaver", key, value],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
