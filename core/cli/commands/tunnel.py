"""``rustronaut tunnel …``: diagnostics of the privileged helper and the tunnel.

- ``tunnel hello``: is the helper there, which version, protocol and backend;
- ``tunnel check SPEC.json``: validate a TunnelSpec and print its redacted config;
- ``tunnel status IFACE``: live status (handshake age, rx/tx, endpoint) of a helper tunnel
  (an interface the helper does not have is an error, not "down");
- ``tunnel up SPEC.json --key-file F``: bring a tunnel up and hold it until Ctrl-C (the
  helper removes it when this command ends, unless always-on is managed);
- ``tunnel down IFACE``: bring a helper tunnel down.

The helper is found where the engine finds it (``core.engine.wiring``):
``--socket``, else ``$RUSTRONAUT_HELPER_SOCKET`` (when not empty), else
``/run/rustronaut/helper.sock``.

Exit codes: 0 ok, 1 refused, failed or no such tunnel (message on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import msgspec

from core.engine.errors import explain
from core.text import safe_json, safe_line
from core.tunnel import (
    DEFAULT_SOCKET,
    HELPER_SOCKET_ENV,
    TunnelClient,
    TunnelStatus,
    helper_socket,
)
from wg_backends.errors import HelperRefused, WgError
from wg_backends.helper.client import HelperClient
from wg_backends.render import render_wg_quick
from wg_backends.spec import TunnelSpec, parse_spec

__all__ = ["HELPER_SOCKET_ENV", "format_status", "helper_socket", "register"]


#: The variable the engine's wiring reads for the helper socket (the test bed sets it).
class NoSuchTunnel(Exception):
    """The helper has no tunnel of that name (its status answered ``up=False``)."""

    def __init__(self, interface: str) -> None:
        super().__init__(interface)
        self.interface = interface


def format_status(st: TunnelStatus, *, now: float | None = None) -> str:
    """A human summary of ``st`` (one line per fact); the helper's strings as text."""
    state = safe_line(st.state)
    if not st.up:
        return f"{safe_line(st.interface or 'tunnel')}: down" + (f" ({state})" if state else "")
    age = st.handshake_age
    lines = [
        f"interface   {safe_line(st.interface)} ({safe_line(st.backend)})"
        + (f" [{state}]" if state else ""),
        f"endpoint    {safe_line(st.endpoint or '-')}",
        f"handshake   {'never' if age is None else f'{age:.0f} s ago'}",
        f"received    {st.rx_bytes} B",
        f"sent        {st.tx_bytes} B",
    ]
    return "\n".join(lines)


def _load_spec(path: str) -> TunnelSpec:
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    return parse_spec(data)


async def _hello(args: argparse.Namespace) -> int:
    client = TunnelClient(helper_socket(args.socket))
    try:
        info = await client.hello()
    finally:
        await client.close()
    fields = {"helper": info.helper, "version": info.version, "protocol": info.protocol}
    print(safe_json(json.dumps({**fields, "backend": info.backend}, indent=2)))
    return 0


async def _status(args: argparse.Namespace) -> int:
    async with HelperClient(helper_socket(args.socket)) as client:
        st = await client.status(args.interface)
    if not st.up:
        # The helper says "up: false" only for a tunnel it does not have: not "down".
        raise NoSuchTunnel(args.interface)
    print(
        safe_json(json.dumps(msgspec.to_builtins(st), indent=2)) if args.json else format_status(st)
    )
    return 0


async def _down(args: argparse.Namespace) -> int:
    async with HelperClient(helper_socket(args.socket)) as client:
        await client.down(args.interface)
    print(f"{safe_line(args.interface)}: down")
    return 0


def _up(args: argparse.Namespace) -> object:
    key = Path(args.key_file).read_text().strip()
    return _hold(_load_spec(args.spec).with_private_key(key), helper_socket(args.socket))


async def _hold(spec: TunnelSpec, socket: Path) -> int:
    client = TunnelClient(socket)
    try:
        st = await client.up(spec)
        print(format_status(st), flush=True)
        print("holding the tunnel; Ctrl-C to bring it down", file=sys.stderr, flush=True)
        await asyncio.Event().wait()  # until cancelled by Ctrl-C
        return 0
    finally:
        await client.down()
        await client.close()


def _check(args: argparse.Namespace) -> int:
    spec = _load_spec(args.spec)
    text = render_wg_quick(spec.with_private_key(_PLACEHOLDER_KEY))
    print(text.replace(_PLACEHOLDER_KEY, "<private key>"), end="")
    return 0


_PLACEHOLDER_KEY = "A" * 43 + "="  # renders the shape only; never a real key


def _guard(func: object) -> object:
    def run(args: argparse.Namespace) -> int:
        started = time.monotonic()
        try:
            result = func(args)  # type: ignore[operator]
            if asyncio.iscoroutine(result):
                result = asyncio.run(result)
            return int(result)
        except WgError as exc:
            # In words, with what to do next (no class name, no errno).
            info = explain(exc, during="talking to the helper")
            # The helper's own code, for whoever reads docs/helper-protocol.md.
            code = f" [{exc.helper_code}]" if isinstance(exc, HelperRefused) else ""
            # The helper's words may quote a caller's spec: shown as text.
            print(
                f"rustronaut tunnel: {safe_line(info.title)}: {safe_line(info.detail)}"
                f"{safe_line(code)}",
                file=sys.stderr,
            )
            print(f"  Next step: {safe_line(info.next_step)}", file=sys.stderr)
            return 1
        except NoSuchTunnel as exc:
            print(
                f"rustronaut tunnel: No tunnel named {safe_line(exc.interface)}: the helper "
                "has no such tunnel.",
                file=sys.stderr,
            )
            print(
                "  Next step: check the name ('rustronaut status' shows the session's "
                "tunnel), or bring one up with 'rustronaut tunnel up SPEC.json'.",
                file=sys.stderr,
            )
            return 1
        except OSError as exc:  # reading the spec or key file
            where = f" ({safe_line(exc.filename)})" if exc.filename else ""
            print(f"rustronaut tunnel: {safe_line(exc.strerror or exc)}{where}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"stopped after {time.monotonic() - started:.0f} s", file=sys.stderr)
            return 0

    return run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tunnel`` and its subcommands."""
    p = sub.add_parser("tunnel", help="helper and tunnel diagnostics")
    p.add_argument(
        "--socket",
        type=Path,
        default=None,
        help=f"helper socket (default: ${HELPER_SOCKET_ENV}, else {DEFAULT_SOCKET})",
    )
    actions = p.add_subparsers(dest="tunnel_command", metavar="ACTION", required=True)
    a = actions.add_parser("hello", help="is the helper there; version and backend")
    a.set_defaults(func=_guard(_hello))
    a = actions.add_parser("check", help="validate a TunnelSpec JSON file ('-' for stdin)")
    a.add_argument("spec")
    a.set_defaults(func=_guard(_check))
    a = actions.add_parser("status", help="live status of a helper tunnel")
    a.add_argument("interface")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=_guard(_status))
    a = actions.add_parser("up", help="bring a spec up and hold it until Ctrl-C")
    a.add_argument("spec")
    a.add_argument("--key-file", required=True, help="file holding the base64 private key")
    a.set_defaults(func=_guard(_up))
    a = actions.add_parser("down", help="bring a helper tunnel down")
    a.add_argument("interface")
    a.set_defaults(func=_guard(_down))
