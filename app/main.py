"""Start-up: one instance per user, the qasync loop, the tray first, the engine behind it.

``main()`` (console script ``rustronaut-tray``) → ``run()``:

1. ``QApplication`` and its language (``app.i18n``: the system's, ``RUSTRONAUT_LANG``
   overrides); a second launch only knocks on the first (``SingleInstance``), which
   raises its main window, and exits 0. A second launch with a join link hands it over
   instead: the running tray shows it in its onboarding, or says in a notification why
   it is not used (a controller is already set, IT manages it, or the link is invalid).
2. A ``qasync.QEventLoop`` so engine coroutines and Qt share the GUI thread.
3. The tray icon is shown at once ("Starting…"), drawn by ``app.icons`` alone: nothing
   of ``core`` is imported yet, so it appears as fast as a bare Qt tray icon.
4. The UI (``app.tray_app``) and the engine's modules are imported on a worker thread
   while the loop keeps the icon painted; ``TrayApp`` adopts the icon. Without any
   system tray the main window opens instead and says why.
5. The engine from ``make_engine()`` (the one factory): the tray is a client of the
   session's engine. It attaches to the running one (the agent, or another front end
   hosting it); if none runs it starts the agent and attaches; only where no agent can
   run does the tray host the engine itself (engine lock, ``build_engine``, and the local
   API server, so the CLI still shares the session). Then ``engine.start()`` runs in the
   background.
   With no controller configured and none managed, the onboarding window
   (``app.windows.onboarding``) comes first: the employee's work email, the
   organisation's address or a join link (``rustronaut-tray rustronaut://join?…``, the
   desktop's URL handler) finds the controller; once confirmed and saved, the engine is
   built and sign-in starts (even in a tray started at login).
6. Quit (menu, SIGTERM, SIGINT) detaches from the agent (the connection stays up) or,
   when the tray hosts the engine, stops it (under always-on the menu's Quit asks for a
   break-glass reason first); then the loop ends. If the agent goes away the tray says
   "Rustronaut is not running" and its Restart runs the factory again.

Errors: ``EngineUnavailable`` when the engine cannot be created; ``run`` logs it and shows
the reason in words with a next step and Retry (``app.windows.startup_error``); Quit
there returns 1.
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
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from app import icons
from core.aio import cancel_and_wait, spawn
from core.errors import UserFacing
from core.i18n import QT_TRANSLATE_NOOP, translate

if TYPE_CHECKING:
    # Qt is imported in ``run`` only: ``rustronaut-tray agent`` runs the headless agent
    # through ``main`` and must not load a GUI toolkit into the process owning the session.
    from PySide6.QtWidgets import QSystemTrayIcon

    from app.link import ClientEngine, EngineLink
    from app.single_instance import JoinAnswer, SingleInstance
    from app.tray_app import TrayApp
    from core.engine.api import EngineAPI

__all__ = [
    "AGENT_TIMEOUT_S",
    "ENGINE_MODULE",
    "EngineUnavailable",
    "main",
    "make_engine",
    "needs_onboarding",
    "run",
]

_log = logging.getLogger(__name__)

#: Where the real engine is wired (imported lazily, see ``make_engine``).
ENGINE_MODULE = "core.engine.wiring"

#: How long start-up waits for an agent it started to serve before hosting the engine.
AGENT_TIMEOUT_S = 10.0

#: Whatever ``run``'s engine factory may return: a link, or a bare engine it owns.
Made: TypeAlias = "EngineLink | EngineAPI"

#: The start-up error's next step when nothing more specific is known (shown translated).
REINSTALL = QT_TRANSLATE_NOOP("app.main", "Reinstall Rustronaut or contact IT.")


class EngineUnavailable(RuntimeError):
    """The engine could not be created (not installed, or its set-up failed).

    ``next_step`` says what to do (shown under the message in the start-up dialog);
    by default: reinstall or contact IT.
    """

    def __init__(self, message: str, next_step: str | None = None) -> None:
        super().__init__(message)
        self.next_step = translate("app.main", REINSTALL) if next_step is None else next_step


async def build_engine() -> EngineAPI:
    """Build the real engine: ``await core.engine.wiring.build_engine()``.

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
            translate(
                "app.main", "The Rustronaut engine is not installed ({module} is missing)."
            ).format(module=ENGINE_MODULE)
        ) from exc
    try:
        engine: EngineAPI = await wiring.build_engine()
    except Exception as exc:  # the boundary: any set-up failure becomes one clear message
        _log.error("the engine could not be built: %r", exc)
        raise _unavailable(exc) from exc
    return engine


def needs_onboarding() -> bool:
    """True when no controller is configured and the organisation manages no settings.

    Blocking file I/O (run it off the GUI thread). Managed settings skip onboarding: a
    managed configuration without a controller is IT's to fix (the start-up error says so).
    """
    from core.settings import load

    settings = load()
    managed = bool(settings.managed.values) or settings.managed_rejected is not None
    return not settings.controller_url and not managed


async def _ensure_agent(timeout: float, path: Path | None) -> ClientEngine:  # noqa: ASYNC109
    from core.engine.localapi.agent import ensure_agent

    return await ensure_agent(timeout, path=path, client="tray")


async def make_engine(
    *,
    path: Path | None = None,
    agent_timeout: float = AGENT_TIMEOUT_S,
    ensure_agent: Callable[[float, Path | None], Awaitable[ClientEngine]] = _ensure_agent,
    build: Callable[[], Awaitable[EngineAPI]] = build_engine,
) -> EngineLink:
    """The session's engine for this tray: attached to the agent, or hosted here.

    ``ensure_agent(timeout, path)`` attaches to the engine serving on ``path`` (default:
    the user's local API socket), starting the agent when none runs. Where no agent can
    run (it cannot be started, or does not serve within ``agent_timeout`` s), the tray
    hosts the engine: it takes the engine lock, builds the engine with ``build`` and
    serves it with ``LocalApiServer(engine, hosted_by="tray")``. If another process took
    the lock meanwhile (an agent that was slow to start), the tray attaches to it instead.
    Raises ``EngineUnavailable`` with a user-readable cause when nothing works.
    """
    from app.link import AttachedLink
    from core.engine.localapi.errors import EngineAlreadyRunningError, LocalApiError

    try:
        client = await ensure_agent(agent_timeout, path)
    except (LocalApiError, OSError) as exc:  # no agent here: the tray hosts the engine
        _log.warning("no agent could be started (%s); the tray hosts the engine", exc)
    else:
        return AttachedLink(client, _hosted_by(client))
    try:
        return await host_engine(path=path, build=build)
    except EngineAlreadyRunningError as exc:
        _log.info("%s; attaching to it", exc)
    except (LocalApiError, OSError) as exc:  # e.g. an unsafe runtime directory
        raise _unavailable(exc) from exc
    try:  # another process owns the session: it is starting its server
        client = await ensure_agent(agent_timeout, path)
    except (LocalApiError, OSError) as exc:
        raise _unavailable(exc) from exc
    return AttachedLink(client, _hosted_by(client))


def _unavailable(exc: Exception) -> EngineUnavailable:
    """``exc`` in the employee's words, as the reason the tray cannot start."""
    from app.actions import refusal_words
    from core.controlplane.errors import ControllerUnreachableError

    if type(exc) is ControllerUnreachableError:  # its detail is technical (URL, errno)
        return EngineUnavailable(
            translate("app.main", "Rustronaut could not reach your organisation's controller."),
            translate(
                "app.main",
                "Check your network connection, then choose Retry. If it keeps failing, tell IT.",
            ),
        )
    could_not = translate("app.main", "Rustronaut could not start: {reason}")
    if isinstance(exc, UserFacing):
        return EngineUnavailable(could_not.format(reason=exc.detail), exc.next_step)
    return EngineUnavailable(could_not.format(reason=refusal_words(exc)))


def _hosted_by(client: ClientEngine) -> str:
    from core.engine.localapi.client import RemoteEngine

    return client.hosted_by if isinstance(client, RemoteEngine) and client.hosted_by else "agent"


async def host_engine(
    *, path: Path | None = None, build: Callable[[], Awaitable[EngineAPI]] = build_engine
) -> EngineLink:
    """Host the engine in this process: lock, engine, local API server (for the CLI).

    Raises ``EngineAlreadyRunningError`` when another process holds the engine lock, and
    ``EngineUnavailable`` when the engine or its server cannot be set up. Nothing is left
    held on failure.
    """
    from app.link import HostedLink
    from core.engine.localapi.lock import EngineLock
    from core.engine.localapi.server import LocalApiServer
    from core.engine.localapi.transport import default_lock_path

    lock = EngineLock(default_lock_path(path) if path is not None else None)
    lock.acquire()
    try:
        engine = await build()
        server = LocalApiServer(engine, path, hosted_by="tray")
        try:
            await server.start()
        except OSError as exc:
            await engine.stop()
            raise EngineUnavailable(
                translate(
                    "app.main",
                    "Rustronaut could not open its local connection for the command line: {reason}",
                ).format(reason=exc)
            ) from exc
    except BaseException:
        lock.release()
        raise
    _log.info("the tray hosts the engine (local API on %s)", server.address)
    return HostedLink(engine, server=server, lock=lock)


def _install_language() -> None:
    """Install the tray's language (the system's; ``RUSTRONAUT_LANG`` overrides)."""
    from app import i18n as app_i18n

    try:
        lang = app_i18n.install()
    except Exception:  # translations must never keep the tray from starting
        _log.exception("the translations could not be installed: English it is")
        return
    _log.info("language: %s", lang)


def _second_launch_words(single: SingleInstance, link: str | None) -> tuple[str, int]:
    """What a later launch prints after knocking, and its exit code."""
    if link is None:
        if single.brought_forward:
            said = translate(
                "app.main", "Rustronaut is already running; its window was brought forward."
            )
        else:
            said = translate("app.main", "Rustronaut is already running.")
        return said, 0
    answers: dict[str | None, tuple[str, int]] = {
        "opened": (
            translate(
                "app.main", "Rustronaut is already running; it opened the join link for you."
            ),
            0,
        ),
        "told": (
            translate(
                "app.main",
                "Rustronaut is already running and did not use the join link; it shows why.",
            ),
            0,
        ),
        "refused": (
            translate(
                "app.main",
                "Rustronaut is already running and refused the join link; it shows why.",
            ),
            1,
        ),
    }
    not_ready = (
        translate(
            "app.main",
            "Rustronaut is already running but cannot take the join link yet. "
            "Open the link again in a moment.",
        ),
        1,
    )
    return answers.get(single.answer, not_ready)


def _join_verdict(link: str) -> tuple[JoinAnswer, str, str]:
    """Whether ``link`` is a join link that may be used: (answer, title, words).

    ``OPENED`` when it is valid (the caller decides where it goes), else ``REFUSED`` with
    the reason in words (not https, control characters, too long, not a join link).
    """
    from app.actions import refusal_words
    from app.single_instance import JoinAnswer
    from core.controlplane.onboard import parse_join_link

    try:
        parse_join_link(link)
    except Exception as exc:  # the boundary: every refusal said in words
        _log.warning("a join link was refused: %s", exc)
        title = translate("app.main", "Join link not used")
        return JoinAnswer.REFUSED, title, refusal_words(exc)
    return JoinAnswer.OPENED, "", ""


def _already_set_up(link: str) -> tuple[JoinAnswer, str, str]:
    """The words for a valid join link when Rustronaut already has its controller."""
    from app.plain import clean
    from app.single_instance import JoinAnswer
    from core.controlplane.onboard import parse_join_link
    from core.settings import load

    url = parse_join_link(link)
    title = translate("app.main", "Rustronaut is already set up")
    try:
        settings = load()
    except Exception as exc:  # unreadable settings: the link is not used either way
        _log.warning("settings unreadable while a join link was opened: %s", exc)
        current, managed = "", False
    else:
        current = settings.controller_url or ""
        managed = bool(settings.managed.values) or settings.managed_rejected is not None
    if managed:
        words = translate(
            "app.main",
            "Your organisation manages Rustronaut's settings, so the join link was not used.",
        )
    elif not current:  # not onboarding, yet no controller: the start-up error says why
        words = translate(
            "app.main",
            "Rustronaut could not use the join link while it is starting. "
            "Open the link again once it has started.",
        )
    elif current.rstrip("/") == url.rstrip("/"):
        words = translate(
            "app.main", "Rustronaut already uses the controller this link names: {url}"
        ).format(url=clean(url))
    else:
        words = translate(
            "app.main",
            "Rustronaut already uses the controller {current}, so the join link for {url} "
            "was not used. To change organisation, ask IT.",
        ).format(current=clean(current), url=clean(url))
    _log.info("a join link for %s was not used (controller already set)", url)
    return JoinAnswer.TOLD, title, words


def preload_ui_and_engine() -> None:
    """Import the UI modules and the engine's module tree (any thread). Never raises."""
    for name in ("app.tray_app", ENGINE_MODULE):
        try:
            importlib.import_module(name)
        except Exception:  # reported properly on the GUI thread when really used
            _log.debug("module %s not preloaded", name, exc_info=True)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rustronaut-tray", description="Rustronaut tray app")
    p.add_argument("--autostart", action="store_true", help="started at login: stay quiet")
    p.add_argument("--show", action="store_true", help="open the main window at start")
    p.add_argument("--debug", action="store_true", help="verbose logging to stderr")
    p.add_argument(
        "link", nargs="?", default=None, help="a join link: rustronaut://join?controller=…"
    )
    return p.parse_args(list(argv))


def run(
    argv: Sequence[str] | None = None,
    *,
    engine_factory: Callable[[], Made | Awaitable[Made]] = make_engine,
    instance_name: str | None = None,
    on_ready: Callable[[TrayApp], None] | None = None,
    on_tray: Callable[[QSystemTrayIcon], None] | None = None,
    onboarding: Callable[[], bool] | None = None,
) -> int:
    """Run the tray app until Quit; returns the process exit code.

    ``engine_factory`` attaches to or builds the engine, returning an ``app.link`` link (a
    bare engine counts as hosted here) or an awaitable of one (tests and benchmarks inject
    their own); Restart calls it again after the engine went away;
    ``on_tray`` is called with the start-up tray icon as soon as it is shown (before any
    ``core`` import); ``on_ready`` with the ``TrayApp`` once the UI is built, before the
    engine exists. ``onboarding()`` says whether the onboarding window comes first
    (blocking, run on a worker thread); by default :func:`needs_onboarding` with the real
    factory, never with an injected one.
    """
    import PySide6
    import qasync
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

    from app.qtcompat import binding_leaks
    from app.single_instance import SingleInstance

    args = _parse(sys.argv[1:] if argv is None else argv)
    from core.logs import setup as setup_logging

    try:  # rotating, redacted app.log in the user's log dir; stderr too with --debug
        setup_logging(
            "app",
            level="debug" if args.debug else "info",
            console=args.debug,
            console_level=logging.DEBUG,
        )
    except OSError as exc:
        logging.basicConfig(level=logging.INFO)
        _log.warning("cannot write the log file: %s", exc)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    _install_language()
    app.setApplicationName("Rustronaut")
    app.setApplicationDisplayName("Rustronaut")
    app.setOrganizationName("Rustronaut")
    app.setDesktopFileName("com.rustronaut.Client")
    app.setQuitOnLastWindowClosed(False)  # the tray keeps running with no window open

    single = SingleInstance(instance_name)
    try:
        first = single.acquire(link=args.link)
    except RuntimeError as exc:
        _log.warning("single-instance lock unavailable, continuing: %s", exc)
        first = True
    if not first:
        said, code = _second_launch_words(single, args.link)
        print(said)
        return code

    if leaks := binding_leaks():
        _log.error(
            "this Qt binding (PySide6 %s) leaks references to %s on every call and will "
            "crash; install PySide6-Essentials 6.11.x",
            PySide6.__version__,
            " and ".join(leaks),
        )
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    # 1. The tray icon first, drawn from app.icons alone (no core import yet).
    early: QSystemTrayIcon | None = None
    if QSystemTrayIcon.isSystemTrayAvailable():
        early = QSystemTrayIcon(icons.icon(icons.IconKind.BUSY))
        early.setToolTip(translate("app.main", "Rustronaut — Starting…"))
        early.show()
        if on_tray is not None:
            on_tray(early)

    done: asyncio.Future[None] = loop.create_future()
    status = 0
    holder: list[TrayApp] = []
    holder_windows: list[QWidget] = []  # keeps the onboarding or error window alive
    builders: list[asyncio.Task[None]] = []
    if onboarding is None:
        onboarding = needs_onboarding if engine_factory is make_engine else lambda: False

    def finish() -> None:
        for tray_app in holder:
            tray_app.shutdown()
        single.release()
        if not done.done():
            done.set_result(None)

    def quit_now() -> None:
        # The desktop session (or a terminal) asks us to go: no dialog. Attached, this
        # detaches; hosting, the engine stops as it is (always-on keeps the tunnel).
        if holder:
            holder[0].actions.quit(interactive=False)
        else:
            finish()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: quit_now())
    # Python runs signal handlers only when the interpreter gets control; a cheap timer
    # hands it control twice a second while Qt sits in its C++ loop.
    wake = QTimer()
    wake.start(500)
    wake.timeout.connect(lambda: None)

    async def session() -> None:
        # 2. Let the icon dock and paint before the heavy imports compete for the GIL
        #    (XEmbed gives it a geometry when docked; SNI hosts may not: capped wait).
        if early is not None:
            for _ in range(30):
                if early.geometry().width() > 0:
                    break
                await asyncio.sleep(0.01)
        # 3. The UI and engine modules load on a worker thread while the loop keeps the
        #    icon painted; widgets are then built here, on the GUI thread.
        await asyncio.to_thread(preload_ui_and_engine)
        from app import autostart as autostart_mod
        from app.tray_app import TrayApp

        tray_app = TrayApp(
            None,
            autostart=autostart_mod.for_platform(),
            open_signin_when_signed_out=not args.autostart,
            icon=early,
            connector=engine_factory,
        )
        holder.append(tray_app)
        tray_app.actions.quit_requested.connect(finish)
        single.raise_window = lambda: come_forward(tray_app)
        tray_app.start(tray_available=early is not None)
        if on_ready is not None:
            on_ready(tray_app)
        # 4. Then the engine, built (and maybe awaited: it may contact the controller) in
        #    its own task, so Quit works even while that is still pending. With nothing
        #    configured, the onboarding window finds the controller first.
        try:
            first_run = await asyncio.to_thread(onboarding)
        except Exception:  # unreadable settings: the build below explains it
            _log.exception("could not tell whether onboarding is needed")
            first_run = False
        if first_run:  # the onboarding window, not an empty main window, comes first
            onboard(tray_app, args.link)
        else:
            if args.link:
                _log.info("a join link was opened but a controller is already configured")
                open_join(tray_app, args.link)
            if args.show:
                tray_app.actions.show_window("main")
            start_build(tray_app)
        # From now on a join link opened by a later launch comes here.
        single.on_join = lambda link: open_join(tray_app, link)
        try:
            await done
        finally:
            for builder in builders:
                await cancel_and_wait(builder)

    def come_forward(tray_app: TrayApp) -> bool:
        # A second launch: the onboarding or start-up error window, while one is open,
        # is what the employee needs to see; otherwise the main window. Whether one is on
        # screen goes back to the second launch, which says so only then.
        for window in reversed(holder_windows):
            if window.isVisible():
                window.showNormal()
                window.raise_()
                window.activateWindow()
                return True
        shown = tray_app.actions.show_window("main")
        return shown.isVisible()

    def start_build(tray_app: TrayApp) -> None:
        builders.append(spawn(build(tray_app), name="ui.build_engine"))

    def onboard(tray_app: TrayApp, link: str | None) -> None:
        from app.windows.onboarding import OnboardingWindow

        _log.info("no controller is configured: onboarding")
        window = OnboardingWindow(link=link)
        holder_windows.append(window)
        window.confirmed.connect(lambda _url: onboarded(tray_app))
        window.closed.connect(tray_app.actions.quit)
        window.show()
        window.raise_()
        window.activateWindow()

    def onboarded(tray_app: TrayApp) -> None:
        # The employee just chose their controller: the sign-in comes next, even in a
        # tray started at login (which otherwise opens no window by itself).
        tray_app.open_signin_when_signed_out = True
        start_build(tray_app)

    def open_join(tray_app: TrayApp, link: str) -> JoinAnswer:
        # A join link (from a later launch, or this one with a controller already set).
        # It is data from anywhere (a web page can open it): checked before any use.
        from app.single_instance import JoinAnswer
        from app.windows.onboarding import OnboardingWindow

        answer, title, words = _join_verdict(link)
        if answer is JoinAnswer.OPENED:
            for window in reversed(holder_windows):
                if isinstance(window, OnboardingWindow) and window.isVisible():
                    _log.info("a join link was forwarded: onboarding shows its controller")
                    window.change()
                    window.field.setText(link)
                    window.look_up()
                    window.showNormal()
                    window.raise_()
                    window.activateWindow()
                    return answer
            answer, title, words = _already_set_up(link)
        severity = "warning" if answer is JoinAnswer.REFUSED else "info"
        tray_app.tell("join", title, words, severity)
        return answer

    async def build(tray_app: TrayApp) -> None:
        from app.link import as_link

        nonlocal status
        try:
            try:
                made = engine_factory()
                link = as_link(await made if inspect.isawaitable(made) else made)
            except (EngineUnavailable, asyncio.CancelledError):
                raise
            except Exception as exc:  # the boundary: never sit on "Starting…" for ever
                _log.exception("the engine could not be reached or built")
                raise _unavailable(exc) from exc
        except EngineUnavailable as exc:
            from app.windows.startup_error import StartupErrorWindow

            _log.error("start-up failed: %s (next step: %s)", exc, exc.next_step)
            # The cause may quote the controller or the agent: plain, escaped text.
            box = StartupErrorWindow(str(exc), exc.next_step)
            box.retry_requested.connect(lambda: retry(tray_app, box))
            box.quit_requested.connect(lambda: quit_failed(tray_app))
            holder_windows.append(box)
            box.open()  # no nested event loop
            return
        if done.done():  # quit while we were building: let go of it at once
            await link.close()
            return
        tray_app.attach_engine(link)

    def retry(tray_app: TrayApp, box: QWidget) -> None:
        _log.info("start-up: Retry")
        if box in holder_windows:
            holder_windows.remove(box)
        box.deleteLater()
        start_build(tray_app)

    def quit_failed(tray_app: TrayApp) -> None:
        nonlocal status
        status = 1
        tray_app.actions.quit()

    with loop:
        loop.run_until_complete(session())
    return status


def main() -> None:
    """Console entry point ``rustronaut-tray``.

    ``rustronaut-tray agent …`` runs the headless agent (``rustronaut agent``) instead: a
    frozen tray starts the agent from its own executable (``sys.executable agent``, see
    ``core.engine.localapi.agent.agent_command``).
    """
    if sys.argv[1:2] == ["agent"]:
        from core.cli.main import main as cli_main

        sys.exit(cli_main(sys.argv[1:]))
    sys.exit(run())


if __name__ == "__main__":
    main()
