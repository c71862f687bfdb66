"""The helper as the Windows service ``RustronautHelper`` (pywin32 ``ServiceFramework``).

The installer (installers/windows/rustronaut.nsi) registers ``rustronaut-helper.exe
--backend windows --state-dir "C:\\ProgramData\\Rustronaut\\helper"`` with ``sc.exe`` as
an automatic LocalSystem service; :func:`sc_create_argv` and friends build the same
command lines as data. When the SCM starts that binary, ``__main__.main`` calls
:func:`dispatch_service`, which hosts :func:`make_service_class`'s class in this process
(``StartServiceCtrlDispatcher``); from a console the dispatcher fails with error 1063 and
the helper runs in the foreground instead.

Start/stop sequence: the framework reports ``SERVICE_RUNNING`` and calls ``SvcDoRun`` on
the service thread, which runs the helper's asyncio loop (:class:`ServiceRunner`) until
``SvcStop`` / ``SvcShutdown`` (on the SCM's control thread) reports
``SERVICE_STOP_PENDING`` with a wait hint and sets the stop event thread-safely; the
server then closes its pipe and brings its tunnels down — unless managed settings say
``always_on``, in which case they stay up. A helper that fails to start makes ``SvcDoRun``
raise, so the SCM records a failure and applies the restart policy.

pywin32 modules are imported lazily (:func:`load_service_modules`) and can be injected,
so everything here is importable and tested on Linux.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import logging.handlers
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_INSTALL_DIR",
    "DESCRIPTION",
    "DISPLAY_NAME",
    "SERVICE_NAME",
    "ServiceRunner",
    "dispatch_service",
    "load_service_modules",
    "make_service_class",
    "parse_service_args",
    "sc_config_argv",
    "sc_create_argv",
    "sc_description_argv",
    "sc_failure_argv",
    "service_command_line",
]

_log = logging.getLogger("rustronaut.helper")

SERVICE_NAME: Final = "RustronautHelper"
DISPLAY_NAME: Final = "Rustronaut WireGuard helper"
DESCRIPTION: Final = "Brings the Rustronaut WireGuard tunnel up and down for the tray app."
DEFAULT_INSTALL_DIR: Final = r"C:\Program Files\Rustronaut"
DEFAULT_DATA_DIR: Final = r"C:\ProgramData\Rustronaut"
STOP_WAIT_HINT_MS: Final = 30_000  # close() waits up to 10 s for handlers, then tunnels down
ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: Final = 1063
_MODULES = ("win32serviceutil", "win32service", "servicemanager", "pywintypes")


# ----- registration (argv as data) -----------------------------------------------------


def service_command_line(
    install_dir: str = DEFAULT_INSTALL_DIR, data_dir: str = DEFAULT_DATA_DIR
) -> str:
    """The service's ``binPath``: the frozen helper exe with its arguments (quoted)."""
    exe = install_dir.rstrip("\\") + "\\rustronaut-helper.exe"
    state = data_dir.rstrip("\\") + "\\helper"
    return f'"{exe}" --backend windows --state-dir "{state}"'


def _common(install_dir: str, data_dir: str) -> list[str]:
    return [
        "binPath=",
        service_command_line(install_dir, data_dir),
        "start=",
        "auto",
        "DisplayName=",
        DISPLAY_NAME,
    ]


def sc_create_argv(
    install_dir: str = DEFAULT_INSTALL_DIR, data_dir: str = DEFAULT_DATA_DIR, sc: str = "sc.exe"
) -> list[str]:
    """``sc.exe create`` as the installer runs it (first install)."""
    return [sc, "create", SERVICE_NAME, *_common(install_dir, data_dir), "obj=", "LocalSystem"]


def sc_config_argv(
    install_dir: str = DEFAULT_INSTALL_DIR, data_dir: str = DEFAULT_DATA_DIR, sc: str = "sc.exe"
) -> list[str]:
    """``sc.exe config`` as the installer runs it (upgrade)."""
    return [sc, "config", SERVICE_NAME, *_common(install_dir, data_dir)]


def sc_description_argv(sc: str = "sc.exe") -> list[str]:
    """``sc.exe description``."""
    return [sc, "description", SERVICE_NAME, DESCRIPTION]


def sc_failure_argv(sc: str = "sc.exe") -> list[str]:
    """``sc.exe failure``: restart after 1 s, then 5 s; counter reset after 60 s."""
    return [sc, "failure", SERVICE_NAME, "reset=", "60", "actions=", "restart/1000/restart/5000//"]


# ----- running -------------------------------------------------------------------------


class ServiceRunner:
    """Runs ``main(stop_event)`` on a fresh asyncio loop in the calling thread.

    ``run`` blocks (the service thread); ``request_stop`` may be called from any thread,
    before, during or after ``run``, any number of times.
    """

    def __init__(self, main: Callable[[asyncio.Event], Awaitable[int]]) -> None:
        self._main = main
        self._lock = threading.Lock()
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def run(self) -> int:
        """Run until stopped; returns ``main``'s exit code. Raises what ``main`` raises."""

        async def go() -> int:
            event = asyncio.Event()
            with self._lock:
                self._loop, self._event = asyncio.get_running_loop(), event
                if self._stop_requested:
                    event.set()
            try:
                return await self._main(event)
            finally:
                with self._lock:
                    self._loop = self._event = None

        return asyncio.run(go())

    def request_stop(self) -> None:
        """Ask ``run`` to finish (thread-safe, idempotent)."""
        with self._lock:
            self._stop_requested = True
            loop, event = self._loop, self._event
        if loop is not None and event is not None:
            # RuntimeError: the loop closed in between, so run is already ending.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)


def load_service_modules() -> dict[str, Any]:
    """Import pywin32's service modules. Raises ``ImportError`` off Windows."""
    return {name: importlib.import_module(name) for name in _MODULES}


def _helper_main(argv: Sequence[str]) -> Callable[[asyncio.Event], Awaitable[int]]:
    from wg_backends.helper import __main__ as cli

    args = cli.build_parser().parse_args(list(argv))

    async def main(stop: asyncio.Event) -> int:
        # First the install check (issue 19): a state directory a user planted must not
        # get even a log file written into it by LocalSystem before the refusal.
        if (code := await asyncio.to_thread(cli.check_install, args)) != 0:
            return code
        # A service has no console: log to a rotating file in the (SYSTEM/Admins-only)
        # state directory.
        args.state_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            args.state_dir / "helper.log", maxBytes=1_000_000, backupCount=3
        )
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(args.log_level.upper())
        server = await asyncio.to_thread(cli.build_server, args)
        return await cli.run_helper(server, stop, keep_always_on=True)

    return main


def make_service_class(
    modules: Mapping[str, Any],
    runner_factory: Callable[[], ServiceRunner],
) -> type:
    """The ``ServiceFramework`` subclass hosting the helper (built at run time).

    ``runner_factory`` is called once per service start (in the class's ``__init__``).
    """
    sutil, svc, sm = modules["win32serviceutil"], modules["win32service"], modules["servicemanager"]

    class HelperService(sutil.ServiceFramework):  # type: ignore[misc, name-defined]
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = DISPLAY_NAME
        _svc_description_ = DESCRIPTION

        def __init__(self, args: Any) -> None:
            super().__init__(args)
            self.runner = runner_factory()

        def SvcDoRun(self) -> None:
            sm.LogInfoMsg(f"{SERVICE_NAME}: starting")
            try:
                code = self.runner.run()
            except Exception as exc:
                sm.LogErrorMsg(f"{SERVICE_NAME}: failed: {exc}")
                raise
            if code != 0:
                sm.LogErrorMsg(f"{SERVICE_NAME}: exited with {code}")
                # Raising makes the framework report a failure, so the restart policy applies.
                raise RuntimeError(f"helper exited with {code}")
            sm.LogInfoMsg(f"{SERVICE_NAME}: stopped")

        def SvcStop(self) -> None:
            self.ReportServiceStatus(svc.SERVICE_STOP_PENDING, waitHint=STOP_WAIT_HINT_MS)
            self.runner.request_stop()

        def SvcShutdown(self) -> None:
            self.SvcStop()

    return HelperService


def dispatch_service(
    argv: Sequence[str],
    modules: Mapping[str, Any] | None = None,
    runner_factory: Callable[[], ServiceRunner] | None = None,
) -> bool:
    """Run as the service if the SCM started us. Blocks until the service stops.

    Returns ``False`` (at once) when not started by the SCM (a console), so the caller runs
    the helper in the foreground. Raises ``ImportError`` without pywin32, ``SystemExit``
    (exit 2) for a bad command line, and pywin32 errors other than "not a service".
    """
    mods = modules if modules is not None else load_service_modules()
    if runner_factory is None:
        helper = _helper_main(argv)  # parse now: a bad binPath fails before the SCM waits

        def runner_factory() -> ServiceRunner:
            return ServiceRunner(helper)

    sm = mods["servicemanager"]
    cls = make_service_class(mods, runner_factory)
    sm.Initialize()
    sm.PrepareToHostSingle(cls)
    try:
        sm.StartServiceCtrlDispatcher()
    except mods["pywintypes"].error as exc:
        if getattr(exc, "winerror", None) == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT:
            return False
        raise
    return True


def parse_service_args(argv: Sequence[str]) -> argparse.Namespace:
    """The helper's Windows command line parsed as the service will (for checks/tests)."""
    from wg_backends.helper import __main__ as cli

    return cli.build_parser("win32").parse_args(list(argv))
