"""``rustronaut-helper``: parse the command line, set up logging, run the server.

Everything the helper is configured with comes from its own command line (written by the
service unit or, on Windows, the service's ``binPath``), never from a caller. On Linux and
macOS it runs until SIGTERM/SIGINT, then brings its tunnels down and removes its socket.
On Windows, started by the service control manager, it runs as the ``RustronautHelper``
service (``winservice``); started from a console it runs until Ctrl+C.

Before anything else it refuses to run, with one log line per problem and exit code 5
(:data:`~wg_backends.helper.selfcheck.EXIT_UNSAFE`), when a non-administrator can change
its files or state directory (:mod:`~wg_backends.helper.selfcheck`); ``--check-install``
runs only that check (the Windows installer does, before it registers the service).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from wg_backends.backends import select_backend
from wg_backends.errors import WgError
from wg_backends.helper.selfcheck import EXIT_UNSAFE, UnsafeInstallError, verify_helper_paths
from wg_backends.helper.server import HelperConfig, HelperServer
from wg_backends.helper.winpipe import DEFAULT_GROUP, PIPE_NAME
from wg_backends.runner import SubprocessRunner

__all__ = [
    "build_parser",
    "build_server",
    "check_install",
    "config_from_args",
    "main",
    "run_helper",
]

_log = logging.getLogger("rustronaut.helper")
WINDOWS_STATE_DIR = Path(r"C:\ProgramData\Rustronaut\helper")


def build_parser(platform: str = sys.platform) -> argparse.ArgumentParser:
    """The helper's argument parser (defaults differ on Windows: group, state dir)."""
    win = platform == "win32"
    ap = argparse.ArgumentParser(prog="rustronaut-helper", description=__doc__)
    ap.add_argument("--socket", type=Path, default=HelperConfig.socket_path)
    ap.add_argument("--pipe", default=PIPE_NAME, help="named pipe (Windows)")
    ap.add_argument(
        "--state-dir", type=Path, default=WINDOWS_STATE_DIR if win else HelperConfig.state_dir
    )
    ap.add_argument("--config-dir", type=Path, default=None, help="where tunnel configs go")
    ap.add_argument(
        "--group",
        default=DEFAULT_GROUP if win else None,
        help="group whose members may call the helper (Unix group or Windows local group)",
    )
    ap.add_argument("--allow-uid", type=int, action="append", default=[], help="allowed uid")
    ap.add_argument("--allow-sid", action="append", default=[], help="allowed user SID (Windows)")
    ap.add_argument("--managed-dir", type=Path, default=None, help="managed settings dir")
    ap.add_argument("--backend", default=None, help="preferred backend (wg-quick, ...)")
    ap.add_argument(
        "--decider-group", default=None, help="macOS: the group the decider runs as (pf rules)"
    )
    ap.add_argument("--log-level", default="INFO")
    ap.add_argument(
        "--check-install",
        action="store_true",
        help="only check that no non-administrator can change the helper's files and state "
        f"directory: exit 0, or {EXIT_UNSAFE} with one line per problem (the installers run it)",
    )
    return ap


def config_from_args(args: argparse.Namespace) -> HelperConfig:
    """The server configuration a parsed command line describes."""
    return HelperConfig(
        socket_path=args.socket,
        state_dir=args.state_dir,
        group=args.group,
        allowed_uids=frozenset(args.allow_uid),
        managed_dir=args.managed_dir,
        pipe_name=args.pipe,
        allowed_sids=frozenset(args.allow_sid),
        decider_group=args.decider_group,
    )


def build_server(args: argparse.Namespace) -> HelperServer:
    """Select the backend (blocking: probes tools) and build the server.

    Raises :class:`~wg_backends.errors.WgError` when no backend is usable, and
    :class:`~wg_backends.helper.selfcheck.UnsafeInstallError` (checked first) when a
    non-administrator can change the helper's files or state directory.
    """
    runner = SubprocessRunner()
    verify_helper_paths(args.state_dir, runner)
    backend = select_backend(args.backend, runner=runner, config_dir=args.config_dir)
    return HelperServer(config_from_args(args), backend, runner)


async def run_helper(
    server: HelperServer, stop: asyncio.Event, *, keep_always_on: bool = False
) -> int:
    """Start ``server``, serve until ``stop`` is set, then close it. Returns 0.

    ``keep_always_on`` is passed to ``close`` (the Windows service stop). Raises
    ``OSError`` if the listener cannot start.
    """
    await server.start()
    serving = asyncio.ensure_future(server.serve_forever())
    try:
        await stop.wait()
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        await server.close(keep_always_on=keep_always_on)
    return 0


def _refuse(exc: UnsafeInstallError) -> int:
    for problem in exc.problems:
        _log.error("refusing to run: a non-administrator can change %s", problem)
    return EXIT_UNSAFE


def check_install(args: argparse.Namespace) -> int:
    """``--check-install``: 0 if the helper may run from here, else :data:`EXIT_UNSAFE`."""
    try:
        verify_helper_paths(args.state_dir, SubprocessRunner())
    except UnsafeInstallError as exc:
        return _refuse(exc)
    return 0


async def _run(args: argparse.Namespace) -> int:
    try:
        server = await asyncio.to_thread(build_server, args)
    except UnsafeInstallError as exc:
        return _refuse(exc)
    except WgError as exc:
        _log.error("%s", exc)
        return 3
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Windows' event loops have no add_signal_handler: Ctrl+C raises KeyboardInterrupt
        # out of asyncio.run, which still runs the finally below via cancellation.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return await run_helper(server, stop)


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Console script entry point. Returns the exit code."""
    if sys.platform == "win32" and argv is None:  # pragma: no cover - Windows only
        from wg_backends.helper.winservice import dispatch_service

        try:
            if dispatch_service(sys.argv[1:]):
                return 0  # ran as the service until the SCM stopped it
        except ImportError as exc:
            print(f"rustronaut-helper: pywin32 is required on Windows ({exc})", file=sys.stderr)
            return 4
    args = build_parser().parse_args(argv)
    _logging(args.log_level)
    if args.check_install:
        return check_install(args)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
