"""The tray and the main window say when the organization's managed settings were rejected.

Finding (issue 16): a bad managed payload showed only in ``rustronaut config show``.
Real widgets, offscreen, driven by the scripted engine; the reason is shown as plain text.
"""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import Qt

from app.presenter import Action, managed_line, menu_model
from core.engine.state import SessionState
from tests.fakes.scripted_engine import ScriptedEngine, demo_snapshot

pytestmark = [pytest.mark.ui, pytest.mark.broken_mdm]

REASON = (
    '/etc/rustronaut/managed.json: always_on: expected true or false, got string "yes" '
    "— the previous managed settings stay in force"
)


def test_the_menu_has_a_rejection_entry_that_opens_the_main_window() -> None:
    snap = demo_snapshot(SessionState.CONNECTED, managed_rejected=REASON)
    (entry,) = [e for e in menu_model(snap) if e.text == "Managed configuration rejected"]
    assert entry.action is Action.OPEN_MAIN
    assert entry.tooltip == f"Managed configuration rejected — {REASON}"
    accepted = dataclasses.replace(snap, managed_rejected=None)
    assert all("Managed" not in e.text for e in menu_model(accepted))
    assert managed_line(accepted) is None


async def test_main_window_shows_the_reason_as_plain_text(engine: ScriptedEngine, make_app) -> None:
    hostile = REASON + " <b>bold</b> <a href='https://evil.example'>reset</a>"
    engine.publish(demo_snapshot(SessionState.CONNECTED, managed_rejected=hostile))
    app = make_app(engine)
    assert ("Managed configuration rejected", True) in app.tray.entries()
    w = app.actions.show_window("main")
    assert w.managed.isVisibleTo(w)
    assert w.managed.text() == f"Managed configuration rejected — {hostile}"
    assert w.managed.textFormat() is Qt.TextFormat.PlainText

    engine.publish(dataclasses.replace(engine.snapshot, managed_rejected=None))
    assert not w.managed.isVisibleTo(w)
