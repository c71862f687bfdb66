"""The composition root of the UI: ``TrayApp`` = bridge + actions + tray around one engine.

The engine is held through an ``app.link.EngineLink``: attached to the agent (Quit only
detaches) or hosted here (Quit stops it). When an attached engine goes away the views say
"Rustronaut is not running" and Restart runs the ``connector`` again (which starts the
agent). Kept apart from ``app.main`` so that start-up can show its first tray icon before
this module (and with it ``core``) is imported. GUI thread only.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QSystemTrayIcon, QWidget

from app import autostart as autostart_mod
from app.actions import Actions
from app.bridge import EngineBridge
from app.link import EngineLink, as_link
from app.notify import Notice, RateLimiter
from app.tray import Tray
from core.aio import spawn
from core.engine.api import EngineAPI
from core.engine.state import SessionState
from core.i18n import QT_TRANSLATE_NOOP, translate

__all__ = ["NO_TRAY_NOTICE", "Connector", "TrayApp"]

_log = logging.getLogger(__name__)

#: Makes the engine link again (Restart): attach to the agent, starting it if needed.
Connector = Callable[[], "EngineLink | EngineAPI | Awaitable[EngineLink | EngineAPI]"]

#: Shown in the main window when the desktop has no tray (English; shown translated).
NO_TRAY_NOTICE = QT_TRANSLATE_NOOP(
    "app.tray_app",
    "No system tray was found on this desktop, so Rustronaut shows this window instead. "
    "Closing it keeps you connected; start Rustronaut again to come back here. "
    "On GNOME, the AppIndicator extension adds the tray icon.",
)


class TrayApp(QObject):
    """The composition root: bridge, actions and tray around one engine.

    ``engine`` (an ``EngineLink``, or a bare engine this process owns) may be None: the UI
    then shows "Starting…" until ``attach_engine``. ``icon`` adopts a tray icon already
    shown by start-up (so it never flickers). ``connector`` makes a new link for Restart
    after the engine went away. ``start()`` shows the tray (or the main window when there
    is no tray) and starts the engine (once attached) in the background; returns True if
    the tray icon is visible. Must be called on the GUI thread with the qasync loop running.
    """

    #: The link's engine went away (emitted from its ``on_lost`` callback, any thread).
    engine_lost = Signal(object)

    def __init__(
        self,
        engine: EngineLink | EngineAPI | None,
        *,
        autostart: autostart_mod.Autostart | None = None,
        limiter: RateLimiter | None = None,
        open_signin_when_signed_out: bool = True,
        ask_autostart: bool = True,
        icon: QSystemTrayIcon | None = None,
        connector: Connector | None = None,
    ) -> None:
        super().__init__()
        # A tray app lives on with no window open; closing a dialog must not quit it.
        QApplication.setQuitOnLastWindowClosed(False)
        self.bridge = EngineBridge(None, self)
        self.actions = Actions(self.bridge, autostart=autostart, parent=self)
        self.tray = Tray(self.bridge, self.actions, limiter=limiter, icon=icon, parent=self)
        self.connector = connector
        self.restart_task: asyncio.Task[None] | None = None
        self.engine_lost.connect(self._on_lost)
        self.actions.restart_requested.connect(self.restart)
        self._open_signin = open_signin_when_signed_out
        self._ask_autostart = ask_autostart
        self._tray_poll = QTimer(self)
        self._tray_poll.setInterval(2000)
        self._tray_poll.timeout.connect(self._poll_tray)
        self._polls = 0
        self.engine_task: asyncio.Task[None] | None = None
        self._started = False
        if engine is not None:
            self._attach(engine)

    @property
    def open_signin_when_signed_out(self) -> bool:
        """Whether the sign-in window opens by itself when the engine starts signed out.

        False for a tray started at login (no window wanted); start-up sets it once the
        employee finished onboarding, so the sign-in follows at once. Takes effect at
        the next engine start (``attach_engine``, Restart).
        """
        return self._open_signin

    @open_signin_when_signed_out.setter
    def open_signin_when_signed_out(self, value: bool) -> None:
        self._open_signin = value

    @property
    def link(self) -> EngineLink | None:
        """How the engine is held now (None while starting or after it was lost)."""
        return self.actions.link

    def start(self, *, tray_available: bool | None = None) -> bool:
        """Show the tray (or the main window with the reason) and start the engine."""
        has_tray = Tray.available() if tray_available is None else tray_available
        if has_tray:
            self.tray.show()
        else:
            from app.windows.main_window import MainWindow

            window = self.actions.show_window("main")
            assert isinstance(window, MainWindow)
            window.show_notice(translate("app.tray_app", NO_TRAY_NOTICE))
            self._tray_poll.start()  # a tray host may start after us (login races)
        self._started = True
        if self.bridge.engine is not None:
            self._start_engine(self.bridge.engine)
        return has_tray

    def attach_engine(self, engine: EngineLink | EngineAPI) -> None:
        """Give the (already visible) UI its engine and start it in the background."""
        link = self._attach(engine)
        if self._started:
            self._start_engine(link.engine)

    def _attach(self, made: EngineLink | EngineAPI) -> EngineLink:
        link = as_link(made)
        self.actions.link = link
        self.bridge.attach(link.engine)
        link.on_lost(functools.partial(self.engine_lost.emit, link))
        _log.info("engine attached (hosted by %s)", link.hosted_by)
        return link

    def _on_lost(self, link: EngineLink) -> None:
        if self.actions.quitting or link is not self.actions.link:
            return  # our own detach, or a link already replaced
        _log.warning("the engine went away (%s)", link.hosted_by)
        self.actions.link = None
        self.bridge.mark_lost()

    def restart(self) -> asyncio.Task[None] | None:
        """Make the link again with ``connector`` (starts the agent); None if running."""
        if self.connector is None or not self.bridge.lost:
            return None
        if self.restart_task is not None and not self.restart_task.done():
            return self.restart_task
        self.restart_task = spawn(self._restart(self.connector), name="ui.restart")
        return self.restart_task

    async def _restart(self, connector: Connector) -> None:
        try:
            made = connector()
            link = await made if inspect.isawaitable(made) else made
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.actions.report_refusal("restart", exc)
            return
        if self.actions.quitting:  # quit while restarting: let go at once
            await as_link(link).close()
            return
        self.attach_engine(link)

    def _start_engine(self, engine: EngineAPI) -> None:
        self.engine_task = spawn(self._run_start(engine), name="ui.engine_start")

    async def _run_start(self, engine: EngineAPI) -> None:
        await engine.start()
        if self._open_signin and engine.snapshot.state is SessionState.SIGNED_OUT:
            self.actions.show_window("signin")
        if self._ask_autostart:
            self.actions.refresh_prefs()
            self.ask_autostart()

    def _ask_after_menu(self) -> None:
        QTimer.singleShot(0, self.ask_autostart)

    def ask_autostart(self) -> QMessageBox | None:
        """Ask once whether to start at login, unless already chosen (by the employee or
        by IT) or unsupported; returns the question (not modal), else None. The
        answer becomes the user setting, so it is never asked again."""
        if not self.actions.autostart_unasked or "autostart" in self.actions.windows:
            return None
        if self.tray.menu.isVisible():
            # Never over an open menu (it would close it): ask once the menu is closed.
            self.tray.menu.aboutToHide.connect(
                self._ask_after_menu, Qt.ConnectionType.SingleShotConnection
            )
            return None
        box = QMessageBox(
            QMessageBox.Icon.Question,
            translate("app.tray_app", "Start at login"),
            translate("app.tray_app", "Start Rustronaut when you log in?"),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setInformativeText(
            translate(
                "app.tray_app",
                "It then reconnects you to your work resources after each login. "
                "You can change this later in Settings.",
            )
        )
        box.setDefaultButton(QMessageBox.StandardButton.Yes)
        box.finished.connect(
            lambda result: (
                self.actions.answer_autostart(result == QMessageBox.StandardButton.Yes.value)
                if result
                in (QMessageBox.StandardButton.Yes.value, QMessageBox.StandardButton.No.value)
                else None
            )
        )
        self.actions.windows["autostart"] = box
        # Not modal: a parentless modal dialog would block the tray menu and every window.
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.show()
        return box

    def tell(self, key: str, title: str, message: str, severity: str = "info") -> QWidget | None:
        """Tell the employee something they just caused (e.g. a join link they opened).

        A notification from the tray icon when there is a tray; otherwise (no tray host)
        a small non-modal message window, returned, kept under ``windows["told"]``.
        ``title`` and ``message`` are shown as plain text. Never rate-limited.
        """
        if Tray.available() and self.tray.icon.isVisible():
            self.tray.notifier.show(Notice(key, title, message, severity))
            return None
        old = self.actions.windows.pop("told", None)
        if old is not None:
            old.close()
        icon = {
            "warning": QMessageBox.Icon.Warning,
            "critical": QMessageBox.Icon.Critical,
        }.get(severity, QMessageBox.Icon.Information)
        box = QMessageBox(icon, title, message, QMessageBox.StandardButton.Ok)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setWindowModality(Qt.WindowModality.NonModal)
        self.actions.windows["told"] = box
        box.show()
        box.raise_()
        return box

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
