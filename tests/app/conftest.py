"""Fixtures for the tray tests: a scripted engine and the app wired around it.

The scripted engine lives in ``tests/fakes`` (test-only, never in ``app/``), shared by
these tests, the tray benchmark and the screenshot script.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.autostart import XdgAutostart
from app.notify import RateLimiter
from app.tray_app import TrayApp
from tests.fakes.scripted_engine import ScriptedEngine, demo_settings


@pytest.fixture
def engine() -> ScriptedEngine:
    """A signed-out engine with managed demo settings."""
    return ScriptedEngine(settings=demo_settings())


@pytest.fixture
def make_app(qapp: object, tmp_path: Path) -> Iterator[object]:
    """Factory: ``make_app(engine) -> TrayApp``; every app is shut down after the test."""
    apps: list[TrayApp] = []

    def factory(eng: ScriptedEngine, **kwargs: object) -> TrayApp:
        kwargs.setdefault("autostart", XdgAutostart(tmp_path / "config", ["rustronaut-tray"]))
        # Never drop a notice in tests unless a test passes its own limiter.
        kwargs.setdefault("limiter", RateLimiter(per_key_s=0, burst=10_000))
        kwargs.setdefault("open_signin_when_signed_out", False)
        kwargs.setdefault("ask_autostart", False)
        tray_app = TrayApp(eng, **kwargs)  # type: ignore[arg-type]
        # Never start a real browser from a test: record the pages the tray would open.
        opened: list[str] = []
        tray_app.actions.open_url = opened.append
        tray_app.opened = opened  # type: ignore[attr-defined]
        apps.append(tray_app)
        return tray_app

    yield factory
    for a in apps:
        a.shutdown()
        for w in a.actions.windows.values():
            w.deleteLater()
