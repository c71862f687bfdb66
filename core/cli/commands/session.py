"""``rustronaut status | up | down | diag``: the session, through the agent.

One engine runs per user session, in the agent (``rustronaut agent``, started at log-in
or by the tray) or in the tray where no agent can run. These commands are clients of its
local API (``core.engine.localapi``), so the CLI and the tray always show and act on the
same session: ``up`` starts the agent when none runs, then connects; ``down`` and
``status`` act on the running one and never build an engine of their own. ``diag`` works
without an engine too (offline diagnostics).

Exit codes: 0 ok; 1 failed (the message says why and what next); 3 refused (always-on,
a reason too short, a locked setting); 4 Rustronaut is not running.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import webbrowser
from pathlib import Path

import msgspec

from core.aio import spawn
from core.clock import sign_in_words, skew_words
from core.engine.api import MIN_REASON_LENGTH, OpenUrl
from core.engine.errors import ReasonTooShortError
from core.engine.localapi.client import RemoteEngine
from core.engine.localapi.errors import EngineNotRunningError, LocalApiError
from core.engine.state import (
    POSTURE_STATUS_WORDS,
    Event,
    SessionState,
    Snapshot,
    TunnelView,
    posture_summary,
)
from core.text import safe_json, safe_line

__all__ = [
    "EXIT_FAILED",
    "EXIT_NOT_RUNNING",
    "EXIT_OK",
    "EXIT_REFUSED",
    "check_reason",
    "exit_code",
    "format_status",
    "print_device_code",
    "print_error",
    "register",
    "transport_words",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 3
EXIT_NOT_RUNNING = 4

#: Error codes that mean "not allowed" rather than "it failed".
REFUSALS = frozenset({"always_on", "reason_too_short", "setting_locked", "engine_already_running"})
#: States in which ``up`` succeeded.
UP_STATES = frozenset({SessionState.CONNECTED, SessionState.DEGRADED, SessionState.OFFLINE})
_ICONS = {True: "✔", False: "✘"}
_NOT_RUNNING = "Rustronaut is not running. Start the Rustronaut app, or run: rustronaut up"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "no handshake yet"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    return f"{seconds / 60:.0f} min ago"


#: Why the tunnel travels as it does (the helper's reason codes), for ``Transport:``.
_TRANSPORT_WHY = {
    "udp_blocked": "this network blocks UDP",
    "udp_silent": "UDP stopped getting through on this network",
    "relay_failed": "the previous relay stopped answering",
    "udp_back": "UDP works again",
    "no_certificate": "no relay certificate yet",
    "relays_down": "no relay answers",
}


def transport_words(tunnel: TunnelView) -> str | None:
    """The ``Transport:`` line of a tunnel with relays ("relay relay1 — this network
    blocks UDP (since 12:01:07)", "UDP (direct)"); None for a plain UDP tunnel."""
    if not tunnel.transport:
        return None
    why = _TRANSPORT_WHY.get(tunnel.transport_reason, "")
    since = (
        f" (since {time.strftime('%H:%M:%S', time.localtime(tunnel.transport_since))})"
        if tunnel.transport_since
        else ""
    )
    if tunnel.transport_state == "no_path":
        return f"none — neither UDP nor any relay gets through{f' ({why})' if why else ''}{since}"
    if tunnel.transport == "relay":
        name = safe_line(tunnel.relay or "?")
        return f"relay {name}" + (f" — {why}" if why else "") + since
    if tunnel.transport_state == "trying":
        return "UDP (trying another path)" + since
    return "UDP (direct)" + (f" — {why}" if tunnel.transport_reason == "udp_back" else "")


_STATE_WORDS = {
    SessionState.BLOCKED: "connected, access blocked",
    SessionState.DEGRADED: "connected, some resources blocked",
}


def format_status(snap: Snapshot, *, now: float | None = None) -> str:
    """A human summary of a snapshot (one line per fact)."""
    now = time.time() if now is None else now
    state = _STATE_WORDS.get(snap.state, snap.state.value.replace("_", " "))
    lines = [f"State:     {state}"]
    clock = skew_words(snap.clock_skew_s)
    if clock is not None:
        lines.append(f"Clock:     {clock[0].lower()}{clock[1:]}")
    if snap.controller_problem is not None:
        problem = snap.controller_problem
        lines.append(
            f"Controller: {safe_line(problem.title)}: {safe_line(problem.detail)} "
            "(the last good policy stays in force)"
        )
    if snap.policy_trust_notice:
        lines.append(f"Trust:     {safe_line(snap.policy_trust_notice)}")
    if snap.user:
        lines.append(f"User:      {safe_line(snap.user)}")
        signed_in = sign_in_words(snap.session_expires_at, snap.session_renewable, now=now)
        if signed_in is not None:
            lines.append(f"Session:   {signed_in}")
    if snap.device_id:
        lines.append(f"Device:    {safe_line(snap.device_id)}")
    if snap.organization:
        lines.append(
            f"Managed by {safe_line(snap.organization)}"
            + (" (always-on)" if snap.always_on else "")
        )
    elif snap.always_on:
        lines.append("Always-on: required by your organization")
    tunnel = snap.tunnel
    if tunnel is not None:
        lines.append(
            f"Tunnel:    {safe_line(tunnel.interface)} → {safe_line(tunnel.gateway)}, handshake "
            f"{_age(tunnel.handshake_age_s)}, rx {tunnel.rx_bytes} B / tx {tunnel.tx_bytes} B"
        )
        transport = transport_words(tunnel)
        if transport is not None:
            lines.append(f"Transport: {transport}")
    if snap.proxy_address:
        lines.append(f"Proxy:     socks5/http://{safe_line(snap.proxy_address)}")
    access = snap.access
    if access is not None:
        if access.mode == "transparent":
            how = "transparent: every app's connections are decided, no proxy settings needed"
        else:
            how = "proxy only: apps must use the proxy or the PAC file"
        if not access.fenced:
            how += " (no kill switch on this system)"
        lines.append(f"Apps:      {how}")
        if access.dns_suffixes:
            names = ", ".join(safe_line(x) for x in access.dns_suffixes)
            lines.append(f"DNS:       {names} through the tunnel")
    if snap.policy_version is not None:
        # Expiry is the controller's time: compare it with the controller's "now".
        left = (snap.policy_expires_at or 0) - (now - (snap.clock_skew_s or 0.0))
        lines.append(f"Policy:    v{snap.policy_version}, valid for {max(0, left) / 60:.0f} min")
    if snap.risk:
        signals = ", ".join(safe_line(s) for s in snap.risk_signals)
        lines.append(f"Risk:      {snap.risk}/100" + (f" ({signals})" if signals else ""))
    if snap.posture:
        # The posture window's words: only required checks count; each one not passing
        # is named with its value and fix.
        lines.append(f"Checks:    {posture_summary(snap.posture)}")
        for p in snap.posture:
            if p.required and p.status != "pass":
                word = POSTURE_STATUS_WORDS.get(p.status, POSTURE_STATUS_WORDS["unknown"])
                lines.append(f"  {word}: {safe_line(p.label)} — {safe_line(p.value)}")
                if p.fix:
                    lines.append(f"    fix: {safe_line(p.fix)}")
    if snap.error is not None:
        lines += [
            f"Problem:   {safe_line(snap.error.title)}: {safe_line(snap.error.detail)}",
            f"Next step: {safe_line(snap.error.next_step)}",
        ]
    if snap.resources:
        lines.append("Resources:")
        for r in snap.resources:
            why = f" — {safe_line(r.reason)}" if r.reason else ""
            fix = f" (fix: {safe_line(r.fix)})" if r.fix else ""
            lines.append(
                f"  {_ICONS[r.reachable]} {safe_line(r.name)} ({safe_line(r.address)}){why}{fix}"
            )
    return "\n".join(lines)


def snapshot_json(snap: Snapshot) -> str:
    """The snapshot as the local API carries it (msgspec JSON), indented; C1 and bidi
    characters written as escapes (``core.text.safe_json``) so a terminal shows them."""
    return safe_json(msgspec.json.format(msgspec.json.encode(snap), indent=2).decode())


def print_error(exc: LocalApiError, *, doing: str = "") -> None:
    """The refusal or failure in words: title, detail and next step (stderr)."""
    head = safe_line(exc.title)
    detail = safe_line(exc.detail)
    print(
        f"rustronaut: {head}" + (f": {detail}" if detail and detail != head else ""),
        file=sys.stderr,
    )
    print(f"  Next step: {safe_line(exc.next_step)}", file=sys.stderr)


def exit_code(exc: LocalApiError) -> int:
    """The exit status for a local API error (documented in docs/reference.md)."""
    if isinstance(exc, EngineNotRunningError):
        return EXIT_NOT_RUNNING
    return EXIT_REFUSED if exc.code in REFUSALS else EXIT_FAILED


def check_reason(reason: str | None) -> str | None:
    """Refuse a break-glass reason that is too short, before asking the agent.

    Same minimum and words as the engine (``MIN_REASON_LENGTH``, ``ReasonTooShortError``).
    Returns the trimmed reason (or None when none was given).
    """
    if reason is None:
        return None
    text = reason.strip()
    if len(text) < MIN_REASON_LENGTH:
        raise ReasonTooShortError()
    return text


def _refuse_reason(exc: ReasonTooShortError) -> int:
    print(f"rustronaut: {exc.title}: {exc.detail}", file=sys.stderr)
    print(f"  Next step: {exc.next_step}", file=sys.stderr)
    return EXIT_REFUSED


async def open_in_browser(url: str) -> None:
    """Print the sign-in link (for a terminal without a browser) and try to open it."""
    print(
        f"Opening your browser to sign in. If it does not open, visit:\n  {safe_line(url)}",
        flush=True,
    )
    await asyncio.to_thread(webbrowser.open, url)


async def _status(args: argparse.Namespace) -> int:
    try:
        engine = await RemoteEngine.attach(client="cli")
    except EngineNotRunningError:
        if args.json:
            print('{"state": "not_running"}')
        else:
            print(_NOT_RUNNING)
        return EXIT_NOT_RUNNING
    except LocalApiError as exc:
        print_error(exc)
        return exit_code(exc)
    try:
        snap = engine.snapshot
    finally:
        await engine.stop()
    print(snapshot_json(snap) if args.json else format_status(snap))
    return EXIT_OK


async def _up(args: argparse.Namespace) -> int:
    from core.engine.localapi.agent import ensure_agent

    try:
        engine = await ensure_agent(client="cli")
    except LocalApiError as exc:
        print_error(exc)
        return exit_code(exc)
    try:
        if engine.snapshot.state is SessionState.SIGNED_OUT:
            engine.subscribe(print_device_code)
            await engine.sign_in(device_code=args.device_code, open_url=_opener())
        else:
            await engine.connect()
        snap = await engine.refresh()
    except LocalApiError as exc:
        print_error(exc)
        return exit_code(exc)
    finally:
        await engine.stop()
    print(snapshot_json(snap) if args.json else format_status(snap))
    return EXIT_OK if snap.state in UP_STATES else EXIT_FAILED


def _opener() -> OpenUrl:
    """Open the sign-in page from this terminal (called on the loop by RemoteEngine)."""

    def open_url(url: str) -> None:
        spawn(open_in_browser(url), name="cli-open-browser")

    return open_url


def print_device_code(event: Event) -> None:
    """Print a device-code prompt from the engine's notice (the CLI's sign-in)."""
    code = event.details.get("user_code")
    uri = event.details.get("verification_uri")
    if code and uri:
        print(
            f"To sign in, open {safe_line(uri)}\nand enter the code:  {safe_line(code)}", flush=True
        )
        print("Waiting for the sign-in to be approved…", flush=True)


async def _down(args: argparse.Namespace) -> int:
    try:
        reason = check_reason(args.reason)
    except ReasonTooShortError as exc:
        return _refuse_reason(exc)
    try:
        engine = await RemoteEngine.attach(client="cli")
    except EngineNotRunningError:
        print("Rustronaut is not running; nothing to disconnect.")
        return EXIT_OK
    except LocalApiError as exc:
        print_error(exc)
        return exit_code(exc)
    try:
        await engine.disconnect(break_glass_reason=reason)
        snap = engine.snapshot
    except LocalApiError as exc:
        print_error(exc)
        return exit_code(exc)
    finally:
        await engine.stop()
    print(format_status(snap))
    return EXIT_OK


async def _diag(args: argparse.Namespace) -> int:
    out: Path = args.out
    try:
        engine = await RemoteEngine.attach(client="cli")
    except LocalApiError:
        engine = None
    failure: LocalApiError | None = None
    if engine is not None:
        try:
            path = await engine.collect_diagnostics(out)
        except LocalApiError as exc:
            # Diagnostics matter most when things are broken: fall back to the offline
            # ones (with this failure in them) rather than give up.
            print_error(exc)
            failure = exc
        else:
            print(f"Diagnostics written to {safe_line(path)}")
            return EXIT_OK
        finally:
            await engine.stop()
    # No engine (or it could not write them): what can be known without one (builds and
    # contacts nothing).
    from core.engine.diag import write_offline_diagnostics

    try:
        path = await write_offline_diagnostics(out, error=failure)
    except OSError as exc:
        print(
            f"rustronaut: could not write the diagnostics: {safe_line(exc.strerror or exc)}",
            file=sys.stderr,
        )
        print("  Next step: choose a writable folder with --out.", file=sys.stderr)
        return EXIT_FAILED
    why = "the agent could not write them" if failure else "Rustronaut was not running"
    print(f"Diagnostics written to {safe_line(path)} ({why})")
    return EXIT_OK


def _absolute(text: str) -> Path:
    # The engine runs in another process with another working directory.
    return Path(os.path.abspath(text))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``status``, ``up``, ``down`` and ``diag``."""
    p = sub.add_parser("status", help="state, user, device, tunnel and resources")
    p.add_argument("--json", action="store_true", help="the snapshot as JSON (docs/local-api.md)")
    p.set_defaults(func=_status)
    p = sub.add_parser("up", help="connect (starts the agent if it is not running)")
    p.add_argument("--json", action="store_true", help="the snapshot as JSON")
    p.add_argument(
        "--device-code", action="store_true", help="sign in with a device code if needed"
    )
    p.set_defaults(func=_up)
    p = sub.add_parser("down", help="disconnect")
    p.add_argument(
        "--reason",
        help=f"break-glass reason, at least {MIN_REASON_LENGTH} characters "
        "(required under managed always-on; IT is told)",
    )
    p.set_defaults(func=_down)
    p = sub.add_parser("diag", help="write a redacted diagnostics zip for IT")
    p.add_argument(
        "--out", default=".", type=_absolute, help="directory (or .zip path) to write to"
    )
    p.set_defaults(func=_diag)
