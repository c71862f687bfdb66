"""The agent: the one process per user session that owns the engine.

``rustronaut agent`` (:func:`run_agent`) takes the engine lock, builds the engine, serves
it on the local API and runs until SIGTERM/SIGINT. The tray and the CLI are its clients;
quitting them leaves the session up. Installers start it at log-in (systemd user unit
``rustronaut-agent.service``, LaunchAgent ``com.rustronaut.agent``, the Windows Run key);
a front end that finds none starts one (:func:`start_agent`) and attaches
(:func:`ensure_agent`).

When the engine cannot be built (no controller URL, the controller unreachable with
nothing cached), the agent still serves the API: every command is answered with the
setup error in words and a next step, the snapshot is ``ERROR`` with the same words, and
the next ``connect``/``sign_in``/``set_setting`` tries to build the engine again (so
setting ``controller_url`` fixes it without a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from core.engine.api import EngineAPI, OpenUrl, Setting, Unsubscribe
from core.engine.errors import explain
from core.engine.localapi.client import RemoteEngine
from core.engine.localapi.errors import EngineNotRunningError
from core.engine.localapi.lock import EngineLock
from core.engine.localapi.server import LocalApiServer
from core.engine.localapi.transport import default_lock_path, default_socket_path
from core.engine.state import ErrorInfo, Event, EventKind, SessionState, Snapshot
from core.i18n import translate

__all__ = [
    "AGENT_LABEL",
    "AGENT_UNIT",
    "SetupFailedEngine",
    "agent_command",
    "ensure_agent",
    "run_agent",
    "start_agent",
]

_log = logging.getLogger(__name__)

AGENT_UNIT = "rustronaut-agent.service"
AGENT_LABEL = "com.rustronaut.agent"
_UNIT_DIRS = (
    Path("/etc/systemd/user"),
    Path("/usr/lib/systemd/user"),
    Path("/lib/systemd/user"),
    Path("/usr/local/lib/systemd/user"),
)

Builder = Callable[[], Awaitable[EngineAPI]]


# ------------------------------------------------------------------- setup failures
class SetupFailedEngine:
    """An ``EngineAPI`` for an agent whose engine could not be built.

    Every command raises the setup error (so each front end shows it with its next step);
    ``connect``, ``sign_in`` and ``set_setting`` first try to build the engine again and,
    when that works, hand over to it (``on_ready``) and carry the command out there.
    """

    def __init__(
        self,
        error: BaseException,
        *,
        rebuild: Builder,
        on_ready: Callable[[EngineAPI], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rebuild = rebuild
        self._on_ready = on_ready
        self._clock = clock
        self._subscribers: list[Callable[[Event], None]] = []
        self._error = error
        self._snapshot = Snapshot(state=SessionState.ERROR, error=self._info(error))
        self._ready: EngineAPI | None = None
        self._lock = asyncio.Lock()

    @staticmethod
    def _info(exc: BaseException) -> ErrorInfo:
        info = explain(exc, during=translate("core.engine.localapi.agent", "starting"))
        user_message = getattr(type(exc), "user_message", None)
        if isinstance(user_message, str) and not info.code:
            # ``EngineSetupError`` before the class-keyed table knows it: its own words.
            return ErrorInfo(
                title=user_message,
                detail=str(exc),
                next_step=str(getattr(exc, "next_step", info.next_step)),
                code="internal",
            )
        return info

    @property
    def error(self) -> BaseException:
        """Why the engine could not be built (the latest attempt)."""
        return self._error

    @property
    def snapshot(self) -> Snapshot:
        """``ERROR`` with the setup failure in words."""
        return self._snapshot

    def subscribe(self, callback: Callable[[Event], None]) -> Unsubscribe:
        """Events: only a new ``ERROR`` snapshot after a failed retry."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def settings(self) -> list[Setting]:
        """The effective settings, read from the settings files (no engine needed)."""
        from core.engine.wiring import settings_view
        from core.settings import load

        try:
            return settings_view(load())
        except Exception as exc:  # unreadable settings: say nothing rather than fail
            _log.warning("settings unreadable: %s", exc)
            return []

    async def set_setting(self, key: str, value: object) -> None:
        """Store a user setting, then try to build the engine again."""
        from core.settings import set_user

        await asyncio.to_thread(set_user, key, value)
        self._emit(
            EventKind.SETTINGS,
            translate("core.engine.localapi.agent", "Setting '{key}' changed").format(key=key),
        )
        await self._retry()

    async def _retry(self) -> EngineAPI:
        async with self._lock:
            if self._ready is not None:
                return self._ready
            try:
                engine = await self._rebuild()
            except Exception as exc:
                self._error = exc
                info = self._info(exc)
                if info != self._snapshot.error:
                    self._snapshot = Snapshot(state=SessionState.ERROR, error=info)
                    self._emit(EventKind.STATE)
                raise
            self._ready = engine
            await self._on_ready(engine)
            return engine

    def _emit(self, kind: EventKind, message: str = "") -> None:
        event = Event(kind=kind, snapshot=self._snapshot, time=self._clock(), message=message)
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                _log.exception("event subscriber failed")

    async def start(self) -> None:
        """Nothing to start."""

    async def sign_in(self, *, device_code: bool = False, open_url: OpenUrl | None = None) -> None:
        """Build the engine (or raise why not), then sign in there."""
        engine = await self._retry()
        await engine.sign_in(device_code=device_code, open_url=open_url)

    async def connect(self) -> None:
        """Build the engine (or raise why not), then connect there."""
        engine = await self._retry()
        await engine.connect()

    async def sign_out(self, *, break_glass_reason: str | None = None) -> None:
        """Refused: there is no session."""
        raise self._error

    async def disconnect(self, *, break_glass_reason: str | None = None) -> None:
        """Nothing is connected: done."""

    async def recheck_posture(self) -> None:
        """Refused: there is no session."""
        raise self._error

    async def collect_diagnostics(self, destination: Path) -> Path:
        """The offline diagnostics (settings, logs, the setup error), without an engine."""
        from core.engine.diag import write_offline_diagnostics

        return await write_offline_diagnostics(destination, error=self._error)

    async def stop(self) -> None:
        """Nothing to stop."""


# ------------------------------------------------------------------------ the agent
async def run_agent(
    *,
    path: Path | None = None,
    hosted_by: str = "agent",
    build: Builder | None = None,
    stop: asyncio.Event | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> None:
    """Own the engine for this user session until SIGTERM/SIGINT (or ``stop`` is set).

    Takes the lock first (raises ``EngineAlreadyRunningError`` naming the running pid),
    then builds the engine (``build``, default ``core.engine.wiring.build_engine``),
    serves it and starts it. A failed build is served as :class:`SetupFailedEngine`.
    ``on_event`` sees every event (``rustronaut agent`` prints them). On the way out the
    server stops first (front ends are told by the closed connection), then the engine
    (always-on keeps the tunnel), then the lock is released.
    """
    socket_path = path or (None if sys.platform == "win32" else default_socket_path())
    lock = EngineLock(default_lock_path(socket_path))
    lock.acquire()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    builder = build or _default_builder
    server: LocalApiServer | None = None
    unsubscribe: list[Unsubscribe] = []

    async def ready(engine: EngineAPI) -> None:
        assert server is not None
        if on_event is not None:
            for undo in unsubscribe:
                undo()
            unsubscribe[:] = [engine.subscribe(on_event)]
        server.replace_engine(engine)
        await engine.start()
        _log.info("engine built after an earlier setup failure")

    engine: EngineAPI
    try:
        try:
            engine = await builder()
        except Exception as exc:
            engine = SetupFailedEngine(exc, rebuild=builder, on_ready=ready)
            _log.error(
                "the engine could not be set up: %s; serving the error to front ends",
                engine.snapshot.error.detail if engine.snapshot.error else exc,
            )
        if on_event is not None:
            unsubscribe.append(engine.subscribe(on_event))
        server = LocalApiServer(engine, socket_path, hosted_by)
        await server.start()
        await engine.start()
        _log.info("agent running (pid %d)", os.getpid())
        await stop.wait()
        _log.info("agent stopping")
    finally:
        if server is not None:
            await server.stop()
            with contextlib.suppress(Exception):
                await server.engine.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)
        lock.release()


async def _default_builder() -> EngineAPI:
    from core.engine.wiring import build_engine

    return await build_engine()


# ------------------------------------------------------------------ starting one
def agent_command() -> list[str]:
    """The command line that runs the agent in this installation.

    Frozen (the installed bundle): the CLI executable beside this one (``rustronaut``,
    ``rustronaut.exe``: it loads no Qt), else this executable (``rustronaut-tray agent``
    runs the agent too). Detached on Windows with ``CREATE_NO_WINDOW``, so no console
    window shows. From source: this interpreter with ``-m core.cli.main``.
    """
    if getattr(sys, "frozen", False):
        exe = Path(sys.executable)
        cli = exe.with_name("rustronaut" + exe.suffix)
        return [str(cli if cli.is_file() else exe), "agent"]
    return [sys.executable, "-m", "core.cli.main", "agent"]


def _systemd_unit_installed() -> bool:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime or shutil.which("systemctl") is None:
        return False
    if not (Path(runtime) / "systemd" / "private").exists():  # no user manager running
        return False
    home = Path.home() / ".config" / "systemd" / "user"
    return any((d / AGENT_UNIT).is_file() for d in (home, *_UNIT_DIRS))


def _launch_agent_installed() -> bool:
    return sys.platform == "darwin" and any(
        (d / f"{AGENT_LABEL}.plist").is_file()
        for d in (Path("/Library/LaunchAgents"), Path.home() / "Library" / "LaunchAgents")
    )


Runner = Callable[[Sequence[str]], int]


def _run(argv: Sequence[str]) -> int:
    return subprocess.run(list(argv), capture_output=True, timeout=15, check=False).returncode


def start_agent(
    *, runner: Runner = _run, spawner: Callable[[list[str]], object] | None = None
) -> str:
    """Start the agent the way this installation does; return how ("systemd", …).

    The systemd user unit when it is installed and a user manager runs; the LaunchAgent
    on macOS when installed; else a detached ``rustronaut agent`` process (which exits
    at once, harmlessly, if another agent took the lock first). Never waits for it to
    serve: see :func:`ensure_agent`.
    """
    if _systemd_unit_installed() and runner(["systemctl", "--user", "start", AGENT_UNIT]) == 0:
        return "systemd"
    if _launch_agent_installed():
        target = f"gui/{os.getuid()}/{AGENT_LABEL}"
        if runner(["launchctl", "kickstart", target]) == 0:
            return "launchd"
    child = (spawner or _spawn_detached)(agent_command())
    if isinstance(child, subprocess.Popen):
        _children.append(child)
    return "process"


#: Agents this process started as detached children (to notice one that exits at once).
_children: list[subprocess.Popen[bytes]] = []


def _child_failure() -> str | None:
    """Why a detached agent we started has already exited, if it has (not for "refused":
    another agent took the lock first, and that one will serve)."""
    for child in list(_children):
        code = child.poll()
        if code is None:
            continue
        _children.remove(child)
        if code not in (0, _EXIT_REFUSED):
            return f"the agent exited at once (exit code {code}); its log says why"
    return None


_EXIT_REFUSED = 3


def _spawn_detached(argv: list[str]) -> subprocess.Popen[bytes]:
    kwargs: dict[str, object] = {}
    if sys.platform == "win32":
        # DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW
        kwargs["creationflags"] = 0x00000008 | 0x00000200 | 0x08000000
    else:
        kwargs["start_new_session"] = True  # not killed with the terminal or the tray
    proc: subprocess.Popen[bytes] = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        **kwargs,  # type: ignore[call-overload]
    )
    return proc


async def ensure_agent(
    timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for starting, not one call
    *,
    path: Path | None = None,
    client: str = "",
    start: Callable[[], object] = start_agent,
) -> RemoteEngine:
    """Attach to the running engine, starting the agent first when none runs.

    Raises :class:`EngineNotRunningError` when no engine serves within ``timeout`` s.
    """
    try:
        return await RemoteEngine.attach(path, client=client)
    except EngineNotRunningError:
        pass
    how = start()
    _log.info("started the agent (%s)", how)
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            return await RemoteEngine.attach(path, client=client)
        except EngineNotRunningError as exc:
            failure = _child_failure()
            if failure is not None:
                raise EngineNotRunningError(
                    translate(
                        "core.engine.localapi.agent",
                        "The Rustronaut agent could not start: {reason}.",
                    ).format(reason=failure),
                    next_step=translate(
                        "core.engine.localapi.agent",
                        "Run 'rustronaut agent' in a terminal to see why.",
                    ),
                ) from None
            if time.monotonic() + delay > deadline:
                raise EngineNotRunningError(
                    translate(
                        "core.engine.localapi.agent",
                        "The Rustronaut agent did not start within {seconds} s ({reason}).",
                    ).format(seconds=f"{timeout:.0f}", reason=exc),
                    next_step=translate(
                        "core.engine.localapi.agent",
                        "Run 'rustronaut agent' in a terminal to see why.",
                    ),
                ) from None
        await asyncio.sleep(delay)  # polling a socket that is not there yet
        delay = min(delay * 2, 0.5)
