"""Test doubles: a scripted command runner and an in-memory backend."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec

from wg_backends.errors import BackendError, CommandError, TunnelStateError
from wg_backends.runner import CommandResult
from wg_backends.spec import TunnelSpec
from wg_backends.status import TunnelStatus

P = ParamSpec("P")
DATA = Path(__file__).resolve().parents[1] / "data" / "wg"


def data(name: str) -> str:
    return (DATA / name).read_text()


@dataclass
class ScriptedRunner:
    """Answers commands from a script of (argv prefix → result) and records every call.

    ``script`` entries are matched in order against the *full* argv; the first match is
    used (and consumed if ``once``). Unmatched commands fail with exit 127.
    """

    script: list[tuple[tuple[str, ...], int, str, str]] = field(default_factory=list)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    envs: list[Mapping[str, str] | None] = field(default_factory=list)

    def on(self, argv: Sequence[str], rc: int = 0, stdout: str = "", stderr: str = "") -> None:
        self.script.append((tuple(argv), rc, stdout, stderr))

    def __call__(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        argv = tuple(argv)
        self.calls.append(argv)
        self.envs.append(env)
        match = next((i for i, entry in enumerate(self.script) if entry[0] == argv), None)
        if match is None:
            rc, out, err = 127, "", f"unscripted: {argv}"
        else:
            _, rc, out, err = self.script.pop(match)
        if check and rc != 0:
            raise CommandError(argv, rc, err)
        return CommandResult(argv, rc, out, err)


@dataclass
class FakeBackend:
    """In-memory backend; ``gate`` (if set) blocks ``up`` until released, for busy tests."""

    name: str = "wg-quick"
    up_ifaces: dict[str, TunnelSpec] = field(default_factory=dict)
    fail_up: bool = False
    gate: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)
    downs: list[str] = field(default_factory=list)

    def available(self) -> bool:
        return True

    def up(self, spec: TunnelSpec) -> None:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if spec.interface in self.up_ifaces:
            raise TunnelStateError("exists")
        if self.fail_up:
            raise BackendError("wg-quick up failed")
        self.up_ifaces[spec.interface] = spec

    def down(self, interface: str) -> None:
        self.downs.append(interface)
        self.up_ifaces.pop(interface, None)

    def status(self, interface: str) -> TunnelStatus:
        return TunnelStatus(interface=interface, up=interface in self.up_ifaces, backend=self.name)


def plain_asyncio(fn: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test body on a fresh plain asyncio loop instead of the qasync one.

    These tests need no Qt; keeping their many short-lived sockets off the Qt event loop
    keeps them independent of qasync's socket notifiers.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper
