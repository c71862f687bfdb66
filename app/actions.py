"""Everything the employee can *do*, in one dispatcher: ``Actions``.

The tray menu, window buttons and notification clicks all go through ``Actions.run`` or
its named methods. Each engine call is started with ``core.aio.spawn`` and returns at
once with the task, so the GUI thread never waits on the network, the helper or the disk.
Windows are created lazily on first use (keeps cold start to tray-visible short) and then
raised. No business logic: under always-on the engine decides whether a reason is needed;
the UI only asks for one when the snapshot says ``always_on``. GUI thread only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QStandardPaths, Signal
from PySide6.QtWidgets import QWidget

from app.activity_model import ActivityModel
from app.autostart import Autostart
from app.bridge import EngineBridge
from app.presenter import Action
from core.aio import spawn
from core.engine.api import EngineAPI

__all__ = ["WINDOWS", "Actions"]

_log = logging.getLogger(__name__)

#: Notification titles when the engine refuses an intent.
_TITLES = {
    "sign_in": "Sign-in failed",
    "sign_out": "Sign-out failed",
    "connect": "Could not connect",
    "disconnect": "Could not disconnect",
    "recheck_posture": "Device check failed",
}

#: Window names ``Actions.show_window`` accepts.
WINDOWS = ("main", "posture", "activity", "settings", "signin", "about")


def default_diagnostics_dir() -> Path:
    """Where "Collect diagnostics" saves: Downloads, else Documents, else home."""
    for loc in (
        QStandardPaths.StandardLocation.DownloadLocation,
        QStandardPaths.StandardLocation.DocumentsLocation,
    ):
        path = QStandardPaths.writableLocation(loc)
        if path and Path(path).is_dir():
            return Path(path)
    return Path.home()


class Actions(QObject):
    """Dispatches user intents to engine coroutines and windows.

    Signals: ``diagnostics_saved(str path)``, ``diagnostics_failed(str message)``,
    ``action_failed(str title, str message)`` when the engine refuses an intent.
    ``prefs`` caches the effective settings the UI acts on itself (``refresh_prefs``).
    ``quit_requested`` is emitted after ``engine.stop()`` finished (or failed).
    """

    diagnostics_saved = Signal(str)
    diagnostics_failed = Signal(str)
    action_failed = Signal(str, str)  # title, message
    quit_requested = Signal()

    def __init__(
        self,
        bridge: EngineBridge,
        *,
        autostart: Autostart | None = None,
        diagnostics_dir: Callable[[], Path] = default_diagnostics_dir,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.autostart = autostart
        self._diagnostics_dir = diagnostics_dir
        self.windows: dict[str, QWidget] = {}
        self._quitting = False
        # Recorded from start-up on so decisions before the window opens are kept.
        self.activity = ActivityModel(parent=self)
        bridge.decision.connect(self.activity.add_event)
        self.prefs: dict[str, object] = {}
        bridge.attached.connect(lambda _engine: self.refresh_prefs())
        if bridge.engine is not None:
            self.refresh_prefs()

    @property
    def engine(self) -> EngineAPI | None:
        """The engine, or None while it is still loading (intents are then ignored)."""
        return self.bridge.engine

    # -- intents ---------------------------------------------------------------------
    def run(self, action: Action) -> None:
        """Perform a menu/notification ``action``. Returns immediately."""
        handlers: dict[Action, Callable[[], Any]] = {
            Action.SIGN_IN: lambda: self.show_window("signin"),
            Action.EXTEND: self.extend_session,
            Action.SIGN_OUT: self.sign_out,
            Action.CONNECT: self.connect_session,
            Action.DISCONNECT: self.disconnect_session,
            Action.OPEN_MAIN: lambda: self.show_window("main"),
            Action.POSTURE: lambda: self.show_window("posture"),
            Action.ACTIVITY: lambda: self.show_window("activity"),
            Action.SETTINGS: lambda: self.show_window("settings"),
            Action.DIAGNOSTICS: self.collect_diagnostics,
            Action.ABOUT: lambda: self.show_window("about"),
            Action.QUIT: self.quit,
        }
        handlers[action]()

    def _run(self, coro: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        """Start ``coro`` in the background; a refusal becomes ``action_failed``."""
        return spawn(self._guarded(coro, what), name=f"ui.{what}")

    async def _guarded(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the engine's errors carry a user-readable message
            _log.warning("%s refused: %s", what, exc)
            self.action_failed.emit(_TITLES.get(what, "Rustronaut"), str(exc) or repr(exc))

    def sign_in(self, *, device_code: bool = False) -> asyncio.Task[None] | None:
        """Start the browser (or device-code) sign-in in the background."""
        if (engine := self.engine) is None:
            return None
        return self._run(engine.sign_in(device_code=device_code), "sign_in")

    def extend_session(self) -> asyncio.Task[None] | None:
        """Sign in again right away (the "Extend" notification); progress in the window."""
        self.show_window("signin")
        return self.sign_in()

    def sign_out(self) -> asyncio.Task[None] | None:
        """Sign out in the background."""
        if (engine := self.engine) is None:
            return None
        return self._run(engine.sign_out(), "sign_out")

    def connect_session(self) -> asyncio.Task[None] | None:
        """Connect in the background."""
        if (engine := self.engine) is None:
            return None
        return self._run(engine.connect(), "connect")

    def disconnect_session(self) -> asyncio.Task[None] | None:
        """Disconnect; under always-on open the break-glass dialog instead (returns None)."""
        if (engine := self.engine) is None:
            return None
        if self.bridge.snapshot.always_on:
            if not self.break_glass_allowed:
                self.action_failed.emit(
                    "Cannot disconnect", "Your organization does not allow disconnecting."
                )
                return None
            from app.windows.breakglass import BreakGlassDialog

            dialog = BreakGlassDialog(self.bridge.snapshot.organization, self._support_url())
            dialog.reason_given.connect(self.disconnect_with_reason)
            self.windows["breakglass"] = dialog
            dialog.open()  # window-modal without a nested event loop: the loop keeps running
            dialog.raise_()
            dialog.activateWindow()
            return None
        return self._run(engine.disconnect(), "disconnect")

    def disconnect_with_reason(self, reason: str) -> asyncio.Task[None] | None:
        """Break-glass disconnect with the employee's ``reason`` (always-on)."""
        if (engine := self.engine) is None:
            return None
        return self._run(engine.disconnect(break_glass_reason=reason), "disconnect")

    def recheck_posture(self) -> asyncio.Task[None] | None:
        """Collect posture again in the background."""
        if (engine := self.engine) is None:
            return None
        return self._run(engine.recheck_posture(), "recheck_posture")

    def collect_diagnostics(self, destination: Path | None = None) -> asyncio.Task[Path] | None:
        """Write the diagnostics zip (default: Downloads); emits saved/failed when done."""
        if (engine := self.engine) is None:
            self.diagnostics_failed.emit("Rustronaut is still starting; try again in a moment.")
            return None
        dest = destination if destination is not None else self._diagnostics_dir()
        return spawn(self._collect(engine, dest), name="ui.diagnostics")

    async def _collect(self, engine: EngineAPI, dest: Path) -> Path:
        try:
            path = await engine.collect_diagnostics(dest)
        except Exception as exc:
            self.diagnostics_failed.emit(f"Could not save diagnostics: {exc}")
            raise
        self.diagnostics_saved.emit(str(path))
        return path

    def set_setting(self, key: str, value: object) -> str | None:
        """Change a user setting; returns None on success or the error message to show.

        The engine validates; a refused value leaves the previous one in force.
        """
        if (engine := self.engine) is None:
            return "Rustronaut is still starting; try again in a moment."
        try:
            engine.set_setting(key, value)
        except Exception as exc:  # the engine's settings errors are user-readable
            return str(exc) or type(exc).__name__
        self.refresh_prefs()
        return None

    # -- preferences the UI itself acts on -------------------------------------------
    def refresh_prefs(self) -> None:
        """Re-read the settings the UI uses itself (autostart, notifications, break-glass)
        and make the autostart entry match the effective ``autostart`` setting."""
        engine = self.engine
        if engine is None:
            return
        try:
            self.prefs = {s.key: s.value for s in engine.settings()}
        except Exception as exc:
            _log.warning("could not read settings: %s", exc)
            return
        wanted = self.prefs.get("autostart")
        if isinstance(wanted, bool) and self.autostart is not None:
            try:
                if self.autostart.enabled() != wanted:
                    self.autostart.set_enabled(wanted)
            except OSError as exc:
                _log.warning("could not change start at login: %s", exc)

    @property
    def notifications_enabled(self) -> bool:
        """The ``notifications`` setting (on unless set off)."""
        return self.prefs.get("notifications", True) is not False

    @property
    def break_glass_allowed(self) -> bool:
        """The ``allow_break_glass`` setting (allowed unless set off)."""
        return self.prefs.get("allow_break_glass", True) is not False

    def set_autostart(self, enabled: bool) -> str | None:
        """Turn start-at-login on/off; returns None or the error message to show."""
        if self.autostart is None:
            return "Start at login is not supported on this system."
        try:
            self.autostart.set_enabled(enabled)
        except OSError as exc:
            return f"Could not change start at login: {exc}"
        return None

    def quit(self) -> None:
        """Stop the engine in the background, then emit ``quit_requested``. Idempotent."""
        if self._quitting:
            return
        self._quitting = True
        spawn(self._stop(self.engine), name="ui.quit")

    async def _stop(self, engine: EngineAPI | None) -> None:
        try:
            if engine is not None:
                await engine.stop()
        finally:
            self.quit_requested.emit()

    # -- windows ---------------------------------------------------------------------
    def show_window(self, name: str) -> QWidget:
        """Create (once) and raise window ``name`` (one of ``WINDOWS``); returns it."""
        window = self.windows.get(name)
        if window is None:
            window = self._create(name)
            self.windows[name] = window
        window.show()
        window.raise_()
        window.activateWindow()
        return window

    def _create(self, name: str) -> QWidget:
        # Imported lazily so start-up only loads what the tray needs.
        if name == "main":
            from app.windows.main_window import MainWindow

            return MainWindow(self.bridge, self)
        if name == "posture":
            from app.windows.posture import PostureWindow

            return PostureWindow(self.bridge, self)
        if name == "activity":
            from app.windows.activity import ActivityWindow

            return ActivityWindow(self.bridge, self)
        if name == "settings":
            from app.windows.settings import SettingsWindow

            return SettingsWindow(self.bridge, self)
        if name == "signin":
            from app.windows.signin import SignInWindow

            return SignInWindow(self.bridge, self)
        if name == "about":
            from app.windows.about import AboutWindow

            return AboutWindow(self.bridge, self)
        raise KeyError(f"unknown window {name!r}; expected one of {', '.join(WINDOWS)}")

    def _support_url(self) -> str | None:
        return support_url(self.engine)


def support_url(engine: EngineAPI | None) -> str | None:
    """The organization's support link from (managed) settings, if any."""
    if engine is None:
        return None
    try:
        for s in engine.settings():
            if s.key == "support_url" and isinstance(s.value, str) and s.value:
                return s.value
    except Exception:
        return None
    return None
