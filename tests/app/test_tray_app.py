"""``TrayApp``: the sign-in after onboarding in a tray started at login, words for what
the employee just did, and settings changed elsewhere shown live (issue 18)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QCheckBox, QMessageBox

from app.link import AttachedLink
from core.engine.localapi.client import RemoteEngine
from core.engine.localapi.server import LocalApiServer
from core.engine.state import SessionState
from tests.fakes.scripted_engine import ScriptedEngine, demo_settings, demo_snapshot
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.ui


@pytest.mark.parametrize("asked", [True, False])
async def test_a_tray_started_at_login_opens_the_sign_in_once_asked_to(
    make_app, asked: bool
) -> None:
    """Started at login, the tray opens no window by itself; start-up asks for the sign-in
    once the employee finished onboarding (``open_signin_when_signed_out``)."""
    engine = ScriptedEngine(settings=demo_settings())  # signed out
    app = make_app(engine, open_signin_when_signed_out=False)
    assert app.open_signin_when_signed_out is False
    app.open_signin_when_signed_out = asked
    assert app.open_signin_when_signed_out is asked
    app.start(tray_available=False)
    assert app.engine_task is not None
    await app.engine_task
    assert engine.snapshot.state is SessionState.SIGNED_OUT
    window = app.actions.windows.get("signin")
    assert bool(window is not None and window.isVisible()) is asked


async def test_tell_without_a_tray_shows_plain_words_in_a_window(make_app) -> None:
    app = make_app(ScriptedEngine(settings=demo_settings()))
    box = app.tell("join", "Join link not used", "<b>bold</b>\nnext step", "warning")
    assert isinstance(box, QMessageBox)
    assert box.isVisible()
    assert box.windowTitle() == "Join link not used"
    assert box.text() == "<b>bold</b>\nnext step"
    assert box.icon() is QMessageBox.Icon.Warning
    again = app.tell("join", "Rustronaut is already set up", "words")
    assert again is not box
    assert app.actions.windows["told"] is again
    assert not box.isVisible()  # one at a time


@pytest.mark.skipif(sys.platform == "win32", reason="Unix socket transport")
async def test_settings_changed_in_the_agent_show_in_the_open_settings_window(
    make_app, tmp_path: Path
) -> None:
    """``rustronaut config set`` writes the user's settings file; the agent's watcher
    reloads it and the engine announces the change. The tray, a client of that agent over
    the real local API, shows the new value in the Settings window already open."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    sock = run / "engine.sock"
    engine = ScriptedEngine(demo_snapshot(SessionState.CONNECTED), demo_settings(managed=False))
    server = LocalApiServer(engine, sock, hosted_by="agent")
    await server.start()
    client = await RemoteEngine.attach(sock, client="tray")
    try:
        app = make_app(AttachedLink(client))
        window = app.actions.show_window("settings")
        box = window.editors["notifications"]
        assert isinstance(box, QCheckBox)
        assert box.isChecked()
        await engine.set_setting("notifications", False)  # what the agent announces

        def unchecked() -> bool:
            now = window.editors["notifications"]
            return isinstance(now, QCheckBox) and not now.isChecked()

        await async_wait_until(unchecked, what="the Settings window to show the new value")
        assert app.actions.prefs["notifications"] is False  # the tray's own use, too
    finally:
        await client.stop()
        await server.stop()
