"""``rustronaut agent``: run the engine for this user session, headless, until stopped.

The agent owns the session: the tray and the other CLI commands are its clients over the
local API (docs/local-api.md). Installers start it at log-in (systemd user unit, macOS
LaunchAgent, Windows Run key); ``rustronaut up`` and the tray start it when none runs.
Quitting the tray leaves it (and the connection) up; stopping it ends the session unless
managed always-on keeps the tunnel. It logs every state change, notice and error to
stderr (and its log file). Its words for the employee (errors, notices) are in the
system locale's language (``RUSTRONAUT_LANG`` overrides it), read from the shipped ``.ts``
files; the lines it prints itself stay English.

Exit codes: 0 stopped by SIGTERM/SIGINT; 3 another engine already runs for this user.
"""

from __future__ import annotations

import argparse
import sys

from core.engine.localapi.errors import EngineAlreadyRunningError, LocalApiError
from core.engine.state import Event, EventKind
from core.i18n import install_from_ts

__all__ = ["register"]


def _clean(text: str) -> str:
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class _Printer:
    """Prints what changes, one line each, to stderr (the journal, when run by systemd)."""

    def __init__(self) -> None:
        self._state = ""

    def __call__(self, event: Event) -> None:
        state = event.snapshot.state.value
        if event.kind is EventKind.STATE and state != self._state:
            self._state = state
            line = f"state: {state.replace('_', ' ')}"
            if event.snapshot.error is not None:
                err = event.snapshot.error
                line += f" — {err.title}: {err.detail} (next step: {err.next_step})"
        elif event.kind in (EventKind.NOTICE, EventKind.ERROR) and event.message:
            line = f"{event.kind.value}: {event.message}"
        elif event.kind is EventKind.SETTINGS:
            line = "settings changed"
        else:
            return
        print(f"rustronaut agent: {_clean(line)}", file=sys.stderr, flush=True)


async def _agent(args: argparse.Namespace) -> int:
    from core.engine.localapi.agent import run_agent

    # The agent's words reach the employee (the tray shows its errors and notices): they
    # follow the system locale. Only here: the CLI's own output stays English.
    language = install_from_ts()
    if language != "en":
        print(f"rustronaut agent: language {language}", file=sys.stderr, flush=True)

    try:
        await run_agent(on_event=_Printer())
    except EngineAlreadyRunningError as exc:
        print(f"rustronaut agent: {exc.title}: {exc.detail}", file=sys.stderr)
        print(f"  Next step: {exc.next_step}", file=sys.stderr)
        return 3
    except LocalApiError as exc:  # e.g. an unsafe runtime directory
        print(f"rustronaut agent: {exc.title}: {exc.detail}", file=sys.stderr)
        print(f"  Next step: {exc.next_step}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``agent``."""
    p = sub.add_parser(
        "agent", help="run the engine for this session in the background (the tray's owner)"
    )
    p.set_defaults(func=_agent)
