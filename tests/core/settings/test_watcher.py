"""Live reload: changes to managed or user settings reach subscribers without a restart."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from core import settings
from core.settings import EffectiveSettings, SettingsWatcher
from core.settings import watcher as watcher_module

pytestmark = pytest.mark.unit

WriteJson = Callable[[Path, object], Path]


def replace_json(path: Path, doc: object) -> None:
    """Write like configuration tools do: a new file renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


async def test_poll_notifies_only_on_effective_change(managed_dir: Path) -> None:
    w = SettingsWatcher(interval=60)
    seen: list[EffectiveSettings] = []
    w.subscribe(seen.append)
    assert await w.poll() is False

    replace_json(managed_dir / "managed.json", {"always_on": True})
    assert await w.poll() is True
    assert len(seen) == 1
    assert seen[0].always_on is True
    assert seen[0].locked("always_on")
    assert w.current is seen[0]

    # Same content in a new file: the fingerprint moves but nothing effective changed.
    replace_json(managed_dir / "managed.json", {"always_on": True})
    assert await w.poll() is False
    assert len(seen) == 1

    # A problem appearing is a change too (the UI shows it).
    replace_json(managed_dir / "managed.json", {"always_on": True, "proxy_port": 1})
    assert await w.poll() is True
    assert seen[-1].problems

    (managed_dir / "managed.json").unlink()
    assert await w.poll() is True
    assert seen[-1].always_on is False
    assert not seen[-1].locked("always_on")


async def test_user_changes_through_set_user_are_seen(user_file: Path) -> None:
    w = SettingsWatcher(interval=60)
    seen: list[EffectiveSettings] = []
    w.subscribe(seen.append)
    settings.set_user("proxy_port", 9555)
    assert await w.poll() is True
    assert seen[-1].proxy_port == 9555
    assert seen[-1].source("proxy_port") == "user"


async def test_a_failing_subscriber_does_not_stop_the_others(managed_dir: Path) -> None:
    w = SettingsWatcher(interval=60)
    seen: list[int] = []

    def broken(_: EffectiveSettings) -> None:
        raise RuntimeError("subscriber bug")

    w.subscribe(broken)
    unsubscribe = w.subscribe(lambda s: seen.append(s.proxy_port))
    replace_json(managed_dir / "managed.json", {"proxy_port": 9001})
    assert await w.poll() is True
    assert seen == [9001]
    unsubscribe()
    unsubscribe()  # idempotent
    replace_json(managed_dir / "managed.json", {"proxy_port": 9002})
    assert await w.poll() is True
    assert seen == [9001]


async def test_forced_reload_catches_changes_the_fingerprint_misses(
    managed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = managed_dir / "managed.json"
    replace_json(path, {"proxy_port": 9001})
    w = SettingsWatcher(interval=60)
    st = path.stat()
    path.write_text(json.dumps({"proxy_port": 9002}))  # same size, in place
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
    monkeypatch.setattr(watcher_module, "FORCE_EVERY", 3)
    results = [await w.poll() for _ in range(3)]
    assert results == [False, False, True]
    assert w.current.proxy_port == 9002


async def test_background_task_delivers_changes(managed_dir: Path) -> None:
    w = SettingsWatcher(interval=0.02)
    changed = asyncio.Event()
    got: list[EffectiveSettings] = []

    def on_change(s: EffectiveSettings) -> None:
        got.append(s)
        changed.set()

    w.subscribe(on_change)
    w.start()
    w.start()  # idempotent
    try:
        replace_json(managed_dir / "managed.json", {"log_level": "debug"})
        await asyncio.wait_for(changed.wait(), 5)
        assert got[-1].log_level == "debug"
        assert got[-1].source("log_level") == "managed"
    finally:
        await w.stop()
        await w.stop()
    assert w._task is None


async def test_registry_policy_changes_are_picked_up() -> None:
    from core.settings.managed.windows import POLICY_KEY, REG_DWORD, WindowsManagedSource

    class Registry:
        def __init__(self) -> None:
            self.values: dict[str, tuple[object, int]] = {}

        def read_values(self, key_path: str) -> dict[str, tuple[object, int]] | None:
            assert key_path == POLICY_KEY
            return dict(self.values) if self.values else None

    registry = Registry()
    w = SettingsWatcher(interval=60, managed_sources=[WindowsManagedSource(registry)])
    seen: list[EffectiveSettings] = []
    w.subscribe(seen.append)
    registry.values["always_on"] = (1, REG_DWORD)  # Group Policy refresh sets the value
    assert await w.poll() is True
    assert seen[-1].always_on is True
    assert seen[-1].locked("always_on")
    assert await w.poll() is False
    registry.values.clear()  # the policy is removed
    assert await w.poll() is True
    assert seen[-1].source("always_on") == "default"
