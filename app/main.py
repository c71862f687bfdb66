"""Start-up: one instance per user, the qasync loop, the tray first, the engine behind it.

``main()`` (console script ``rustronaut-tray``) → ``run()``:

1. ``QApplication``; a second launch only knocks on the first (``SingleInstance``),
   which raises its main window, and exits 0.
2. A ``qasync.QEventLoop`` so engine coroutines and Qt share the GUI thread.
3. ``TrayApp`` shows the tray icon at once, reading "Starting…". Without any system
   tray the main window opens instead and says why (the tray appears if a host shows up).
4. Only then the engine: its modules are imported on a worker thread, ``make_engine()``
   (the one factory) builds it on the GUI thread, and ``engine.start()`` runs in the
   background, so the icon appears before any import, keyring, network or helper work.
5. Quit (menu, SIGTERM, SIGINT) stops the engine, then the loop.

Errors: ``EngineUnavailable`` when the engine cannot be created; ``run`` reports it in a
dialog and returns 1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app import autostart as autostart_mod
from app.actions import Actions
from app.bridge import EngineBridge
from app.notify import RateLimiter
from app.qtcompat import binding_leaks
from app.single_instance import SingleInstance
from app.tray import Tray
from core.aio import spawn
from core.engine.api import EngineAPI
from core.engine.state import SessionState

__all__ = ["NO_TRAY_NOTICE", "EngineUnavailable", "TrayApp", "main", "make_engine", "run"]

_log = logging.getLogger(__name__)

NO_TRAY_NOTICE = (
    "No system tray was found on this desktop, so Rustronaut shows this window instead. "
    "Closing it keeps you connected; start Rustronaut again to come back here. "
    "On GNOME, the AppIndicator extension adds the tray icon."
)


#: Where the real engine is wired (imported lazily, see ``make_engine``).
ENGINE_MODULE = "core.engine.wiring"


class EngineUnavailable(RuntimeError):
    """The engine could not be created (not installed, or its set-up failed)."""


async def make_engine(**options: Any) -> EngineAPI:
    """Build the real engine: ``await core.engine.wiring.build_engine(**options)``.

    The import is lazy (and ``run`` preloads it on a worker thread after the tray is up).
    ``build_engine`` reads the effective settings and may contact the controller, so this
    is a coroutine on the GUI loop. Raises ``EngineUnavailable`` with a user-readable
    cause if the engine is not installed or cannot be set up (e.g. no controller URL).
    """
    try:
        wiring = importlib.import_module(ENGINE_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name not in {ENGINE_MODULE, "core.engine"}:
            raise
        raise EngineUnavailable(
            f"The Rustronaut engine is not installed ({ENGINE_MODULE} is missing)."
        ) from exc
    try:
        engine: EngineAPI = await wiring.build_engine(**options)
    except Exception as exc:  # the boundary: any set-up failure becomes one clear message
        raise EngineUnavailable(f"Rustronaut could not start: {exc}") from exc
    return engine


def preload_engine_module() -> None:
    """Import the engine's module tree if it exists (any thread). Never raises."""
    try:
        importlib.import_module(ENGINE_MODULE)
    except Exception:  # make_engine reports it properly on the GUI thread
        _log.debug("engine module not preloaded", exc_info=True)


class TrayApp(QObject):
    """The composition root: bridge, actions and tray around one engine.

    ``engine`` may be None: the UI then shows "Starting…" until ``attach_engine``.
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
    ) -> None:
        super().__init__()
        # A tray app lives on with no window open; closing a dialog must not quit it.
        QApplication.setQuitOnLastWindowClosed(False)
        self.bridge = EngineBridge(engine, self)
        self.actions = Actions(self.bridge, autostart=autostart, parent=self)
        self.tray = Tray(self.bridge, self.actions, limiter=limiter, parent=self)
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


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rustronaut-tray", description="Rustronaut tray app")
    p.add_argument("--autostart", action="store_true", help="started at login: stay quiet")
    p.add_argument("--show", action="store_true", help="open the main window at start")
    p.add_argument("--debug", action="store_true", help="verbose logging to stderr")
    return p.parse_args(list(argv))


def run(
    argv: Sequence[str] | None = None,
    *,
    engine_factory: Callable[[], EngineAPI | Awaitable[EngineAPI]] = make_engine,
    instance_name: str | None = None,
    on_ready: Callable[[TrayApp], None] | None = None,
) -> int:
    """Run the tray app until Quit; returns the process exit code.

    ``engine_factory`` builds the engine, returning it or an awaitable of it (tests and
    benchmarks inject their own);
    ``on_ready`` is called once the tray (or window) is visible, before the engine has
    finished starting.
    """
    import PySide6
    import qasync

    args = _parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("Rustronaut")
    app.setApplicationDisplayName("Rustronaut")
    app.setOrganizationName("Rustronaut")
    app.setDesktopFileName("com.rustronaut.Client")
    app.setQuitOnLastWindowClosed(False)  # the tray keeps running with no window open

    single = SingleInstance(instance_name)
    try:
        first = single.acquire()
    except RuntimeError as exc:
        _log.warning("single-instance lock unavailable, continuing: %s", exc)
        first = True
    if not first:
        print("Rustronaut is already running; its window was brought forward.")
        return 0

    if leaks := binding_leaks():
        _log.error(
            "this Qt binding (PySide6 %s) leaks references to %s on every call and will "
            "crash; install PySide6-Essentials 6.11.x",
            PySide6.__version__,
            " and ".join(leaks),
        )
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    tray_app = TrayApp(
        None,
        autostart=autostart_mod.for_platform(),
        open_signin_when_signed_out=not args.autostart,
    )
    single.activated.connect(lambda: tray_app.actions.show_window("main"))
    done: asyncio.Future[None] = loop.create_future()
    status = 0

    def finish() -> None:
        tray_app.shutdown()
        single.release()
        if not done.done():
            done.set_result(None)

    tray_app.actions.quit_requested.connect(finish)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: tray_app.actions.quit())
    # Python runs signal handlers only when the interpreter gets control; a cheap timer
    # hands it control twice a second while Qt sits in its C++ loop.
    wake = QTimer()
    wake.start(500)
    wake.timeout.connect(lambda: None)

    async def session() -> None:
        nonlocal status
        # 1. The tray first ("Starting…"), inside the running loop.
        tray_app.start()
        if args.show:
            tray_app.actions.show_window("main")
        if on_ready is not None:
            on_ready(tray_app)
        # 2. Then the engine: its module tree (auth, controller client, crypto) is
        #    imported on a worker thread so the tray keeps painting; built on this thread.
        await asyncio.to_thread(preload_engine_module)
        try:
            made = engine_factory()
            engine = await made if inspect.isawaitable(made) else made
        except EngineUnavailable as exc:
            status = 1
            box = QMessageBox(
                QMessageBox.Icon.Critical,
                "Rustronaut",
                f"{exc}\n\nReinstall Rustronaut or contact IT.",
            )
            box.finished.connect(lambda _result: tray_app.actions.quit())
            box.open()  # no nested event loop
        else:
            tray_app.attach_engine(engine)
        await done

    with loop:
        loop.run_until_complete(session())
    return status


def main() -> None:
    """Console entry point ``rustronaut-tray``."""
    sys.exit(run())


if __name__ == "__main__":
    main()
