"""``python -m controller.relay --config F``: run the relay until SIGTERM or SIGINT.

Exit codes: 0 after a clean stop (every stream got ERROR ``shutdown``), 2 for a config
error or a listener / certificate that cannot be used.
"""

from __future__ import annotations

import argparse
import logging
import signal
import ssl
import sys
import threading
from pathlib import Path
from types import FrameType

from controller.relay.config import ConfigError, load_config, read_token
from controller.relay.server import RelayServer

__all__ = ["main"]

log = logging.getLogger("controller.relay")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rustronaut-relay", description=__doc__)
    p.add_argument("--config", required=True, help="the relay's JSON config file")
    p.add_argument("--stats-file", help="write the relay's counters here every second (JSON)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return p


def _raise_fd_limit() -> None:
    # Each stream holds a TLS socket, a UDP socket and a wake-up pipe.
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def run(args: argparse.Namespace) -> int:
    """Run the relay with parsed ``args``; returns the exit code."""
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=args.log_level, format="%(message)s")
    # httpx logs every request at INFO: one line per poll, twice a second.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        cfg = load_config(Path(args.config))
        token = read_token(cfg)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    _raise_fd_limit()
    try:
        server = RelayServer(cfg, token)
        host, port = server.start()
    except (OSError, ssl.SSLError) as exc:
        print(f"relay {cfg.name}: cannot start: {exc}", file=sys.stderr)
        return 2
    # "listening" is logged once devices can get in (the first device list arrived).
    log.info(
        "relay %s bound to port %d; fetching the device list from %s",
        cfg.name,
        port,
        cfg.controller_url,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    announced = False
    try:
        while not stop.is_set():
            if not announced and server.wait_ready(0):
                shown = f"[{host}]" if ":" in host else host
                log.info("relay %s listening on %s:%d", cfg.name, shown, port)
                announced = True
            if args.stats_file:
                server.write_stats(args.stats_file)
            stop.wait(0.1 if not announced else 1.0)
    finally:
        log.info("relay %s stopping", cfg.name)
        server.stop()
        if args.stats_file:
            server.write_stats(args.stats_file)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return run(_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
