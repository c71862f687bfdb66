"""``rustronaut status | up | down | diag``: the session, through the running engine.

When an engine runs (the tray app, or an earlier ``rustronaut up``), these commands talk to
it over its control socket, so there is only ever one session. ``up`` with no engine
running starts one in the foreground and stays until Ctrl-C (the proxy lives in that
process). Exit codes: 0 ok, 1 failed, 3 refused (always-on), 4 no engine running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from core.engine.control import ControlClient, ControlServer, EngineNotRunningError

__all__ = ["format_status", "register"]

_ICONS = {True: "✔", False: "✘"}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "no handshake yet"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    return f"{seconds / 60:.0f} min ago"


def format_status(snap: dict[str, Any]) -> str:
    """Human summary of a snapshot (as JSON from the control socket)."""
    lines = [f"State:     {snap['state'].replace('_', ' ')}"]
    if snap.get("user"):
        lines.append(f"User:      {snap['user']}")
    if snap.get("device_id"):
        lines.append(f"Device:    {snap['device_id']}")
    if snap.get("organization"):
        lines.append(
            f"Managed by {snap['organization']}" + (" (always-on)" if snap.get("always_on") else "")
        )
    tunnel = snap.get("tunnel")
    if tunnel:
        lines.append(
            f"Tunnel:    {tunnel['interface']} → {tunnel['gateway']}, handshake "
            f"{_age(tunnel['handshake_age_s'])}, "
            f"rx {tunnel['rx_bytes']} B / tx {tunnel['tx_bytes']} B"
        )
    if snap.get("proxy_address"):
        lines.append(f"Proxy:     socks5/http://{snap['proxy_address']}")
    if snap.get("policy_version") is not None:
        left = (snap.get("policy_expires_at") or 0) - time.time()
        lines.append(f"Policy:    v{snap['policy_version']}, valid for {max(0, left) / 60:.0f} min")
    if snap.get("risk"):
        lines.append(f"Risk:      {snap['risk']}/100 ({', '.join(snap.get('risk_signals') or [])})")
    error = snap.get("error")
    if error:
        lines += [
            f"Problem:   {error['title']}: {error['detail']}",
            f"Next step: {error['next_step']}",
        ]
    resources = snap.get("resources") or []
    if resources:
        lines.append("Resources:")
        for r in resources:
            why = f" — {r['reason']}" if r.get("reason") else ""
            fix = f" (fix: {r['fix']})" if r.get("fix") else ""
            lines.append(f"  {_ICONS[bool(r['reachable'])]} {r['name']} ({r['address']}){why}{fix}")
    return "\n".join(lines)


async def _status(args: argparse.Namespace) -> int:
    try:
        answer = await ControlClient().request("status")
    except EngineNotRunningError:
        if args.json:
            print(json.dumps({"state": "not_running"}))
        else:
            print("Rustronaut is not running. Start the tray app, or run: rustronaut up")
        return 4
    snap = answer["snapshot"]
    print(json.dumps(snap, indent=2) if args.json else format_status(snap))
    return 0


async def _up(args: argparse.Namespace) -> int:
    client = ControlClient()
    try:
        answer = await client.request("connect")
    except EngineNotRunningError:
        return await _run_foreground(args)
    if not answer.get("ok"):
        print(f"Could not connect: {answer.get('error')}", file=sys.stderr)
        return 1
    snap = answer["snapshot"]
    print(json.dumps(snap, indent=2) if args.json else format_status(snap))
    return 0 if snap["state"] in ("connected", "degraded", "offline") else 1


async def _run_foreground(args: argparse.Namespace) -> int:
    """Run an engine in this process until Ctrl-C/SIGTERM, printing what happens."""
    from core.engine.wiring import EngineSetupError, build_engine

    try:
        engine = await build_engine()
    except EngineSetupError as exc:
        print(f"{exc} {exc.next_step}", file=sys.stderr)
        return 1
    server = ControlServer(engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    last_state = [""]

    def show(event: Any) -> None:
        state = event.snapshot.state.value
        if args.json:
            print(
                json.dumps({"kind": event.kind.value, "state": state, "message": event.message}),
                flush=True,
            )
        elif event.kind.value == "state" and state != last_state[0]:
            last_state[0] = state
            print(f"… {state.replace('_', ' ')}", flush=True)
        elif event.kind.value in ("notice", "error") and event.message:
            print(f"• {event.message}", flush=True)
        elif event.kind.value == "decision" and event.decision is not None:
            print(
                f"  {event.decision.effect.value:<5} {event.app} → {event.destination}: "
                f"{event.message}",
                flush=True,
            )

    engine.subscribe(show)
    await server.start()
    try:
        await engine.start()
        if args.device_code and engine.snapshot.user is None:
            await engine.sign_in(device_code=True)
        else:
            await engine.connect()
        from core.engine.control import to_jsonable

        if not args.json:
            print(format_status(to_jsonable(engine.snapshot)), flush=True)
            print("Running; press Ctrl-C to disconnect.", flush=True)
        await stop.wait()
    finally:
        await server.stop()
        await engine.stop()
    return 0


async def _down(args: argparse.Namespace) -> int:
    try:
        answer = await ControlClient().request("disconnect", reason=args.reason)
    except EngineNotRunningError:
        print("Rustronaut is not running; nothing to disconnect.")
        return 0
    if not answer.get("ok"):
        print(f"Disconnect refused: {answer.get('error')}", file=sys.stderr)
        return 3
    print(format_status(answer["snapshot"]))
    return 0


async def _diag(args: argparse.Namespace) -> int:
    out: Path = args.out
    try:
        answer = await ControlClient().request("diagnostics", path=str(out))
    except EngineNotRunningError:
        from core.engine.wiring import EngineSetupError, build_engine

        try:
            engine = await build_engine()
        except EngineSetupError as exc:
            print(f"{exc} {exc.next_step}", file=sys.stderr)
            return 1
        path = await engine.collect_diagnostics(out)
        print(f"Diagnostics written to {path} (the client was not running)")
        return 0
    if not answer.get("ok"):
        print(f"Could not write diagnostics: {answer.get('error')}", file=sys.stderr)
        return 1
    print(f"Diagnostics written to {answer['path']}")
    return 0


def _absolute(text: str) -> Path:
    # The engine may run in another process with another working directory.
    return Path(os.path.abspath(text))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``status``, ``up``, ``down`` and ``diag``."""
    p = sub.add_parser("status", help="state, user, device, tunnel and resources")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_status)
    p = sub.add_parser("up", help="connect (runs in the foreground if the app is not running)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--device-code", action="store_true", help="sign in with a device code if needed"
    )
    p.set_defaults(func=_up)
    p = sub.add_parser("down", help="disconnect")
    p.add_argument("--reason", help="break-glass reason (required under managed always-on)")
    p.set_defaults(func=_down)
    p = sub.add_parser("diag", help="write a redacted diagnostics zip for IT")
    p.add_argument(
        "--out", default=".", type=_absolute, help="directory (or .zip path) to write to"
    )
    p.set_defaults(func=_diag)
