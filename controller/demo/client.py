"""The demo's client process: the real engine, signed in by the robot browser.

Run inside the client namespace (``ip netns exec``) with its own keyring session and
XDG directories. It writes the given settings as the user's (without ``--controller``,
the profile's own ``controller_url`` is used: the one the onboarding saved), builds the real engine
(``core.engine.wiring``), serves the engine's local API, signs in and connects,
prints every engine event as one JSON line on stdout, and runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

import msgspec

from controller.demo.robot import RobotBrowser
from core.engine.localapi.server import LocalApiServer
from core.engine.state import Event
from core.engine.wiring import build_engine
from core.logs import setup
from core.settings import load, set_user


def _line(event: Event) -> None:
    body: dict[str, object] = {
        "kind": event.kind.value,
        "state": event.snapshot.state.value,
        "message": event.message,
        "app": event.app,
        "destination": event.destination,
        "details": event.details,
    }
    if event.decision is not None:
        body["effect"] = event.decision.effect.value
        body["rule"] = event.decision.rule_id
    print(json.dumps(body), flush=True)


async def run(args: argparse.Namespace) -> int:
    settings = load()
    given = () if args.controller is None else (("controller_url", args.controller),)
    for key, value in (
        *given,
        ("proxy_port", args.proxy_port),
        ("posture_watch_seconds", args.watch_seconds),
        ("auto_connect", False),
    ):
        settings = set_user(key, value, settings=settings)
    engine = await build_engine(
        settings,
        open_url=RobotBrowser(args.user, args.password),
        helper_socket=Path(args.helper_socket),
    )
    engine.subscribe(_line)
    server = LocalApiServer(engine, Path(args.control_socket), hosted_by="cli")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        await engine.start()
        if engine.snapshot.user is None:
            await engine.sign_in()
        else:
            await engine.connect()
        print(
            json.dumps({"kind": "ready", "snapshot": msgspec.to_builtins(engine.snapshot)}),
            flush=True,
        )
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await server.stop()
        await engine.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run until signalled."""
    p = argparse.ArgumentParser(prog="python -m controller.demo.client")
    p.add_argument("--controller", help="the controller URL (default: the profile's own)")
    p.add_argument("--helper-socket", required=True)
    p.add_argument("--control-socket", required=True)
    p.add_argument("--user", default="alice")
    p.add_argument("--password", required=True)
    p.add_argument("--proxy-port", type=int, default=9080)
    p.add_argument("--watch-seconds", type=int, default=1)
    args = p.parse_args(argv)
    setup("cli", level="info")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
