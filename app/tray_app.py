"""The composition root of the UI: ``TrayApp`` = bridge + actions + tray around one engine.

Kept apart from ``app.main`` so that start-up can show its first tray icon before this
module (and with it ``core``) is imported. GUI thread only.
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from app import autostart as autostart_mod
from app.actions import Actions
from app.bridge import EngineBridge
from app.notify import RateLimiter
from app.tray import Tray
from core.aio import spawn
from core.engine.api import EngineAPI
from core.engine.state import SessionState

__all__ = ["NO_TRAY_NOTICE", "TrayApp"]

NO_TRAY_NOTICE = (
    "No system tray was found on this desktop, so Rustronaut shows this window instead. "
    "Closing it keeps you connected; start Rustronaut again to come back here. "
    "On GNOME, the AppIndicator extension adds the tray icon."
)


class TrayApp(QObject):
    """The composition root: bridge, actions and tray around one engine.

    ``engine`` may be None: the UI then shows "Starting…" until ``attach_engine``.
    ``icon`` adopts a tray icon already shown by start-up (so it never flickers).
    ``start()`` shows the tray (or the main window when there is no tray) and starts the
    engine (once attached) in the background; returns True if the tray icon is visible.
    Must be called on the GUI thread with the qasync loop running.
    """

    def __init__(
        self,
        engine: EngineAPI | None,
        *,
        autostart: autostart_mod.Autostart | None = None,
        limiter: RateLimiter | None = None,
        open_signin_when_signed_out: bool = True,
        icon: QSystemTrayIcon | None = None,
    ) -> None:
        super().__init__()
        # A tray app lives on with no window open; closing a dialog must not quit it.
        QApplication.setQuitOnLastWindowClosed(False)
        self.bridge = EngineBridge(engine, self)
        self.actions = Actions(self.bridge, autostart=autostart, parent=self)
        self.tray = Tray(self.bridge, self.actions, limiter=limiter, icon=icon, parent=self)
        self._open_signin = open_signin_when_signed_out
        self._tray_poll = QTimer(self)
        self._tray_poll.setInterval(2000)
        self._tray_poll.timeout.connect(self._poll_tray)
        self._polls = 0
        self.engine_task: asyncio.Task[None] | None = None
        self._started = False

    def start(self, *, tray_available: bool | None = None) -> bool:
        """Show the tray (or the main window with the reason) and start the engine."""
        has_tray = Tray.available() if tray_available is None else tray_available
        if has_tray:
            self.tray.show()
        else:
            from app.windows.main_window import MainWindow

            window = self.actions.show_window("main")
            assert isinstance(window, MainWindow)
            window.show_notice(NO_TRAY_NOTICE)
            self._tray_poll.start()  # a tray host may start after us (login races)
        self._started = True
        if self.bridge.engine is not None:
            self._start_engine(self.bridge.engine)
        return has_tray

    def attach_engine(self, engine: EngineAPI) -> None:
        """Give the (already visible) UI its engine and start it in the background."""
        self.bridge.attach(engine)
        if self._started:
            self._start_engine(engine)

    def _start_engine(self, engine: EngineAPI) -> None:
        self.engine_task = spawn(self._run_start(engine), name="ui.engine_start")

    async def _run_start(self, engine: EngineAPI) -> None:
        await engine.start()
        if self._open_signin and engine.snapshot.state is SessionState.SIGNED_OUT:
            self.actions.show_window("signin")

    def _poll_tray(self) -> None:
        self._polls += 1
        if Tray.available():
            self.tray.show()
            self._tray_poll.stop()
        elif self._polls >= 30:
            self._tray_poll.stop()

    def shutdown(self) -> None:
        """Hide the tray, close windows, stop listening to the engine. Idempotent."""
        self._tray_poll.stop()
        self.tray.hide()
        for w in self.actions.windows.values():
            w.close()
        self.bridge.close()
