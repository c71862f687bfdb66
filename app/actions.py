"""Everything the employee can *do*, in one dispatcher: ``Actions``.

The tray menu, window buttons and notification clicks all go through ``Actions.run`` or
its named methods. Each engine call is started with ``core.aio.spawn`` and returns at
once with the task, so the GUI thread never waits on the network, the helper or the disk.
Windows are created lazily on first use (keeps cold start to tray-visible short) and then
raised. No business logic: under always-on the engine decides whether a reason is needed;
the UI only asks for one when the snapshot says ``always_on`` (one dialog for Disconnect,
Sign out and Quit when this process hosts the engine) and shows the engine's own words
when it refuses. Our own words are in the installed language (``core.i18n``, context
``app.actions``). GUI thread only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QStandardPaths, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QWidget

from app.activity_model import ActivityModel
from app.autostart import Autostart
from app.bridge import EngineBridge
from app.link import EngineLink
from app.plain import clean
from app.presenter import CONNECTED_STATES, Action
from core.aio import spawn
from core.engine.api import EngineAPI, OpenUrl
from core.engine.state import SessionState
from core.errors import UserFacing
from core.i18n import QT_TRANSLATE_NOOP, translate

if TYPE_CHECKING:
    from app.windows.breakglass import Exit

__all__ = ["NO_BROWSER", "WINDOWS", "Actions", "open_folder", "open_in_browser", "refusal_words"]

_log = logging.getLogger(__name__)

#: Notification titles when the engine refuses an intent (translated where shown).
_TITLES = {
    "sign_in": QT_TRANSLATE_NOOP("app.actions", "Sign-in failed"),
    "sign_out": QT_TRANSLATE_NOOP("app.actions", "Sign-out failed"),
    "connect": QT_TRANSLATE_NOOP("app.actions", "Could not connect"),
    "disconnect": QT_TRANSLATE_NOOP("app.actions", "Could not disconnect"),
    "quit": QT_TRANSLATE_NOOP("app.actions", "Could not quit"),
    "recheck_posture": QT_TRANSLATE_NOOP("app.actions", "Device check failed"),
    "restart": QT_TRANSLATE_NOOP("app.actions", "Could not start Rustronaut"),
    "retry": QT_TRANSLATE_NOOP("app.actions", "Still offline"),
}

#: States in which the session is up or on its way (an always-on exit needs a reason).
_SESSION_UP = CONNECTED_STATES | {
    SessionState.OFFLINE,
    SessionState.CONNECTING,
    SessionState.CHECKING_POSTURE,
    SessionState.ENROLLING,
}


def refusal_words(exc: BaseException) -> str:
    """The engine's words for a refusal or failure: what happened, then what to do.

    Errors carrying ``core.errors.UserFacing`` words are shown as they are; anything else
    by its message (never a class name unless it has no message at all). The words may
    be the controller's: each part is escaped (``app.plain.clean``), one per line.
    """
    if isinstance(exc, UserFacing):
        head = exc.detail or exc.title
        return "\n".join(clean(p) for p in (head, exc.next_step) if p)
    return clean(str(exc)) or translate("app.actions", "Rustronaut could not do that.")


#: Said when the desktop has no browser to open for a sign-in (English; shown translated).
NO_BROWSER = QT_TRANSLATE_NOOP(
    "app.actions",
    "Rustronaut could not open a web browser for the sign-in. "
    "Choose \u201cUse a code instead\u201d in the sign-in window.",
)

#: Said when an intent arrives before the engine is loaded.
_STILL_STARTING = QT_TRANSLATE_NOOP(
    "app.actions", "Rustronaut is still starting; try again in a moment."
)


def open_in_browser(url: str) -> bool:
    """Open ``url`` in the desktop's browser; False when no browser could be opened."""
    opened = QDesktopServices.openUrl(QUrl(url))
    if not opened:
        _log.warning("could not open the browser for the sign-in page")
    return opened


#: Window names ``Actions.show_window`` accepts.
WINDOWS = ("main", "posture", "activity", "settings", "signin", "about")


def open_folder(path: Path) -> bool:
    """Open ``path`` (a folder) in the desktop's file manager; False when it could not."""
    opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
    if not opened:
        _log.warning("could not open the folder %s", path)
    return opened


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
    ``prefs`` caches the effective settings the UI acts on itself (``refresh_prefs``, on
    every ``SETTINGS`` event); ``prefs_changed`` follows each refresh.
    ``link`` says how the engine is held (``app.link``): Quit detaches from an agent's
    engine and stops a hosted one. ``quit_requested`` is emitted after that finished (or
    failed). ``restart_requested`` asks ``TrayApp`` to start the agent again.
    ``open_url`` opens the sign-in page (default: the desktop's browser; when there is
    none, ``action_failed`` says to use a code instead); ``sign_in_page(str url)`` names
    the page each browser sign-in opened, for the sign-in window's Copy link/Open again.
    """

    diagnostics_saved = Signal(str)
    diagnostics_failed = Signal(str)
    action_failed = Signal(str, str)  # title, message
    prefs_changed = Signal()
    quit_requested = Signal()
    restart_requested = Signal()
    sign_in_page = Signal(str)  # the page a browser sign-in opened

    def __init__(
        self,
        bridge: EngineBridge,
        *,
        autostart: Autostart | None = None,
        diagnostics_dir: Callable[[], Path] = default_diagnostics_dir,
        open_url: OpenUrl | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.autostart = autostart
        self.link: EngineLink | None = None
        self.open_url: OpenUrl = open_url or self._open_in_browser
        self._diagnostics_dir = diagnostics_dir
        #: the last diagnostics file saved ("Show in folder" opens its folder)
        self.last_diagnostics: Path | None = None
        #: opens a folder in the desktop's file manager (tests record it instead)
        self.open_folder: Callable[[Path], object] = open_folder
        self.windows: dict[str, QWidget] = {}
        self._quitting = False
        # Recorded from start-up on so decisions before the window opens are kept.
        self.activity = ActivityModel(parent=self)
        bridge.decision.connect(self.activity.add_event)
        self.prefs: dict[str, object] = {}
        self.pref_sources: dict[str, str] = {}
        bridge.settings_changed.connect(self.refresh_prefs)
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
            Action.RESTART: self.restart_requested.emit,
            Action.EXTEND: self.extend_session,
            Action.RETRY: self.retry_now,
            Action.SIGN_OUT: self.sign_out,
            Action.CONNECT: self.connect_session,
            Action.DISCONNECT: self.disconnect_session,
            Action.OPEN_MAIN: lambda: self.show_window("main"),
            Action.POSTURE: lambda: self.show_window("posture"),
            Action.ACTIVITY: lambda: self.show_window("activity"),
            Action.SETTINGS: lambda: self.show_window("settings"),
            Action.DIAGNOSTICS: self.collect_diagnostics,
            Action.SHOW_DIAGNOSTICS: self.show_diagnostics,
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
            self.report_refusal(what, exc)

    @property
    def quitting(self) -> bool:
        """True once Quit is under way (and not withdrawn)."""
        return self._quitting

    def report_refusal(self, what: str, exc: BaseException) -> None:
        """Tell the employee (``action_failed``) in the engine's words why ``what`` failed."""
        _log.warning("%s refused: %s", what, exc)
        title = clean(exc.title) if isinstance(exc, UserFacing) and exc.title else None
        ours = translate("app.actions", _TITLES[what]) if what in _TITLES else "Rustronaut"
        self.action_failed.emit(title or ours, refusal_words(exc))

    def sign_in(self, *, device_code: bool = False) -> asyncio.Task[None] | None:
        """Start the browser (or device-code) sign-in in the background.

        The sign-in page opens in this desktop's browser (``open_url``), even when the
        engine runs in the agent.
        """
        if (engine := self.engine) is None:
            return None
        return self._run(
            engine.sign_in(device_code=device_code, open_url=self._open_sign_in_page), "sign_in"
        )

    def _open_sign_in_page(self, url: str) -> None:
        # Told before opening: with no browser the window still offers the link.
        self.sign_in_page.emit(url)
        self.open_url(url)

    def extend_session(self) -> asyncio.Task[None] | None:
        """Sign in again right away (the "Extend" notification); progress in the window."""
        self.show_window("signin")
        return self.sign_in()

    def _open_in_browser(self, url: str) -> None:
        if not open_in_browser(url):
            self.action_failed.emit(
                translate("app.actions", "No web browser"), translate("app.actions", NO_BROWSER)
            )

    def sign_out(self) -> asyncio.Task[None] | None:
        """Sign out; under always-on ask for a reason first (then returns None)."""
        from app.windows.breakglass import Exit

        if self.engine is None:
            return None
        if self.bridge.snapshot.always_on:
            self._ask_reason(Exit.SIGN_OUT, self.sign_out_with_reason, "sign_out")
            return None
        return self.sign_out_with_reason(None)

    def sign_out_with_reason(self, reason: str | None) -> asyncio.Task[None] | None:
        """Sign out with the employee's break-glass ``reason`` (always-on) or none."""
        if (engine := self.engine) is None:
            return None
        return self._run(engine.sign_out(break_glass_reason=reason), "sign_out")

    def connect_session(self) -> asyncio.Task[None] | None:
        """Connect in the background."""
        if (engine := self.engine) is None:
            return None
        return self._run(engine.connect(), "connect")

    def retry_now(self) -> asyncio.Task[None] | None:
        """Try again at once ("Retry now": offline, or a problem while signed in) instead
        of at the engine's next attempt. With the tunnel up on the last policy, asking the
        controller again is a posture report (its answer brings a fresh policy and ends
        OFFLINE): a connect would find the session already up and do nothing. Otherwise,
        connect."""
        if (engine := self.engine) is None:
            return None
        snap = self.bridge.snapshot
        if snap.state is SessionState.OFFLINE and snap.tunnel is not None:
            return self._run(engine.recheck_posture(), "retry")
        return self._run(engine.connect(), "retry")

    def disconnect_session(self) -> asyncio.Task[None] | None:
        """Disconnect; under always-on open the break-glass dialog instead (returns None)."""
        from app.windows.breakglass import Exit

        if self.engine is None:
            return None
        if self.bridge.snapshot.always_on:
            self._ask_reason(Exit.DISCONNECT, self.disconnect_with_reason, "disconnect")
            return None
        return self.disconnect_with_reason(None)

    def disconnect_with_reason(self, reason: str | None) -> asyncio.Task[None] | None:
        """Disconnect with the employee's break-glass ``reason`` (always-on) or none."""
        if (engine := self.engine) is None:
            return None
        return self._run(engine.disconnect(break_glass_reason=reason), "disconnect")

    def _ask_reason(self, exit: Exit, proceed: Callable[[str | None], object], what: str) -> None:
        """Ask for the break-glass reason, then ``proceed(reason)``.

        Where the organization allows no break-glass, the engine is asked without a reason
        so the employee reads the engine's own refusal (nothing changes).
        """
        if not self.break_glass_allowed:
            proceed(None)
            return
        from app.windows.breakglass import BreakGlassDialog

        old = self.windows.pop("breakglass", None)
        if old is not None:
            old.close()
        dialog = BreakGlassDialog(self.bridge.snapshot.organization, self._support_url(), exit=exit)
        dialog.reason_given.connect(proceed)
        dialog.rejected.connect(lambda: self._reason_withdrawn(what))
        self.windows["breakglass"] = dialog
        dialog.open()  # window-modal without a nested event loop: the loop keeps running
        dialog.raise_()
        dialog.activateWindow()

    def _reason_withdrawn(self, what: str) -> None:
        if what == "quit":  # "stay connected": the tray keeps running
            self._quitting = False

    def recheck_posture(self) -> asyncio.Task[None] | None:
        """Collect posture again in the background."""
        if (engine := self.engine) is None:
            return None
        return self._run(engine.recheck_posture(), "recheck_posture")

    def collect_diagnostics(self, destination: Path | None = None) -> asyncio.Task[Path] | None:
        """Write the diagnostics zip (default: Downloads); emits saved/failed when done."""
        if (engine := self.engine) is None:
            self.diagnostics_failed.emit(translate("app.actions", _STILL_STARTING))
            return None
        dest = destination if destination is not None else self._diagnostics_dir()
        return spawn(self._collect(engine, dest), name="ui.diagnostics")

    async def _collect(self, engine: EngineAPI, dest: Path) -> Path:
        try:
            path = await engine.collect_diagnostics(dest)
        except Exception as exc:
            self.diagnostics_failed.emit(
                translate("app.actions", "Could not save diagnostics: {error}").format(
                    error=clean(str(exc))
                )
            )
            raise
        self.last_diagnostics = Path(path)
        self.diagnostics_saved.emit(str(path))
        return path

    def show_diagnostics(self) -> None:
        """Show the folder of the last diagnostics file ("Show in folder"); nothing when
        none was saved yet."""
        if self.last_diagnostics is not None:
            self.open_folder(self.last_diagnostics.parent)

    def set_setting(self, key: str, value: object) -> asyncio.Task[str | None]:
        """Change a user setting in the background; the task's result is None on success
        or the engine's words for the refusal (to show next to the setting).

        The engine validates; a refused value leaves the previous one in force.
        """
        return spawn(self._set_setting(key, value), name="ui.set_setting")

    async def _set_setting(self, key: str, value: object) -> str | None:
        if (engine := self.engine) is None:
            return translate("app.actions", _STILL_STARTING)
        try:
            await engine.set_setting(key, value)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the engine's settings errors are user-readable
            _log.info("setting %s refused: %s", key, exc)
            return refusal_words(exc)
        self.refresh_prefs()
        return None

    # -- preferences the UI itself acts on -------------------------------------------
    def refresh_prefs(self) -> None:
        """Re-read the settings the UI uses itself (autostart, notifications, break-glass)
        and make the autostart entry match the ``autostart`` setting once it was chosen:
        by the employee (``user``) or by IT (``managed``). Its default never switches
        start-at-login on by itself: ``autostart_unasked`` says the employee is to be
        asked (once; the answer becomes the user setting)."""
        engine = self.engine
        if engine is None:
            return
        try:
            settings = list(engine.settings())
        except Exception as exc:
            _log.warning("could not read settings: %s", exc)
            return
        self.prefs = {s.key: s.value for s in settings}
        self.pref_sources = {s.key: s.source for s in settings}
        wanted = self.prefs.get("autostart")
        chosen = self.pref_sources.get("autostart") in {"user", "managed"}
        if isinstance(wanted, bool) and chosen and self.autostart is not None:
            try:
                if self.autostart.enabled() != wanted:
                    self.autostart.set_enabled(wanted)
            except OSError as exc:
                _log.warning("could not change start at login: %s", exc)
        self.prefs_changed.emit()

    @property
    def autostart_unasked(self) -> bool:
        """True while start-at-login is neither chosen by the employee nor set by IT (the
        ``autostart`` setting is at its default), is off, and this system supports it."""
        if self.autostart is None or self.pref_sources.get("autostart") != "default":
            return False
        try:
            # Already starting at login (the employee chose it in the desktop's own
            # settings, or an earlier version switched it on): nothing to ask.
            return not self.autostart.enabled()
        except OSError:
            return False

    def answer_autostart(self, enabled: bool) -> asyncio.Task[str | None]:
        """The employee's answer to "Start Rustronaut when you log in?": kept as the user
        setting (so never asked again); the entry follows on the ``SETTINGS`` event."""
        return self.set_setting("autostart", enabled)

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
            return translate("app.actions", "Start at login is not supported on this system.")
        try:
            self.autostart.set_enabled(enabled)
        except OSError as exc:
            return translate("app.actions", "Could not change start at login: {error}").format(
                error=clean(str(exc))
            )
        return None

    @property
    def quit_stops_engine(self) -> bool:
        """True when quitting ends the session (this process hosts the engine)."""
        return self.link is not None and self.link.hosted

    def quit(self, *, interactive: bool = True) -> None:
        """Leave the tray, then emit ``quit_requested``. Idempotent.

        Attached to the agent, this only detaches: the connection stays up. Hosting the
        engine, it stops it; under always-on with the session up, an ``interactive`` quit
        first asks for a break-glass reason and disconnects with it (or shows the engine's
        refusal and keeps running). A non-interactive quit (SIGTERM: the desktop session
        is ending) stops the engine as it is: always-on keeps the tunnel.
        """
        from app.windows.breakglass import Exit

        if self._quitting:
            return
        self._quitting = True
        snap = self.bridge.snapshot
        if (
            interactive
            and self.quit_stops_engine
            and snap.always_on
            and snap.state in _SESSION_UP
            and self.engine is not None
        ):
            self._ask_reason(Exit.QUIT, self._quit_with_reason, "quit")
            return
        spawn(self._stop(self.link), name="ui.quit")

    def _quit_with_reason(self, reason: str | None) -> None:
        spawn(self._disconnect_then_stop(reason), name="ui.quit")

    async def _disconnect_then_stop(self, reason: str | None) -> None:
        engine, link = self.engine, self.link
        if engine is not None:
            try:
                await engine.disconnect(break_glass_reason=reason)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused: say why and keep running
                self._quitting = False
                self.report_refusal("quit", exc)
                return
        await self._stop(link)

    async def _stop(self, link: EngineLink | None) -> None:
        try:
            if link is not None:
                await link.close()
        except Exception:
            _log.warning("could not let go of the engine cleanly", exc_info=True)
        finally:
            self.quit_requested.emit()

    # -- windows ---------------------------------------------------------------------
    def show_window(self, name: str) -> QWidget:
        """Create (once), show, restore (if minimised) and raise window ``name`` (one of
        ``WINDOWS``); returns it. A maximised window stays maximised."""
        window = self.windows.get(name)
        if window is None:
            window = self._create(name)
            self.windows[name] = window
        if window.isMinimized():
            state = window.windowState() & ~Qt.WindowState.WindowMinimized
            window.setWindowState(state | Qt.WindowState.WindowActive)
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
