"""About says what this device reports to IT about its access decisions."""

from __future__ import annotations

import pytest

from core.engine.api import Setting
from tests.fakes.scripted_engine import ScriptedEngine, demo_settings, demo_snapshot

pytestmark = pytest.mark.ui


def _engine(level: str | None, hashed: bool = True) -> ScriptedEngine:
    settings = demo_settings()
    if level is not None:
        settings += [
            Setting("telemetry_level", level, "managed", True, "Decision reports to IT"),
            Setting("telemetry_hash_app", hashed, "managed", True, "Hide app paths"),
        ]
    return ScriptedEngine(demo_snapshot(), settings)


@pytest.mark.parametrize(
    ("level", "hashed", "words"),
    [
        ("off", True, "Off: nothing about your connections is sent"),
        ("counts", True, "Counts only: how many connections"),
        ("full", True, "apps only as a hash"),
        ("full", False, "Every decision: time, app, destination, rule and reason"),
        (None, True, "Counts only"),  # the engine does not say: the default level
    ],
)
async def test_about_shows_the_telemetry_level(
    make_app, level: str | None, hashed: bool, words: str
) -> None:
    app = make_app(_engine(level, hashed))
    w = app.actions.show_window("about")
    assert words in w.telemetry.text()
