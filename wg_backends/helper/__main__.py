"""``rustronaut-helper``: parse the command line, set up logging, run the server.

Everything the helper is configured with comes from its own command line (written by the
service unit), never from a caller. Runs until SIGTERM/SIGINT, then brings its tunnels
down and removes its socket.
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
from wg_backends.helper.server import HelperConfig, HelperServer
from wg_backends.runner import SubprocessRunner

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The helper's argument parser."""
    ap = argparse.ArgumentParser(prog="rustronaut-helper", description=__doc__)
    ap.add_argument("--socket", type=Path, default=HelperConfig.socket_path)
    ap.add_argument("--state-dir", type=Path, default=HelperConfig.state_dir)
    ap.add_argument("--config-dir", type=Path, default=None, help="where tunnel configs go")
    ap.add_argument("--group", default=None, help="group whose members may call the helper")
    ap.add_argument("--allow-uid", type=int, action="append", default=[], help="allowed uid")
    ap.add_argument("--managed-dir", type=Path, default=None, help="managed settings dir")
    ap.add_argument("--backend", default=None, help="preferred backend (wg-quick, ...)")
    ap.add_argument("--log-level", default="INFO")
    return ap


async def _run(args: argparse.Namespace) -> int:
    runner = SubprocessRunner()
    try:
        backend = await asyncio.to_thread(
            select_backend, args.backend, runner=runner, config_dir=args.config_dir
        )
    except WgError as exc:
        logging.getLogger("rustronaut.helper").error("%s", exc)
        return 3
    config = HelperConfig(
        socket_path=args.socket,
        state_dir=args.state_dir,
        group=args.group,
        allowed_uids=frozenset(args.allow_uid),
        managed_dir=args.managed_dir,
    )
    server = HelperServer(config, backend, runner)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.ensure_future(server.serve_forever())
    try:
        await stop.wait()
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        await server.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console script entry point. Returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
