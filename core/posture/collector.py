"""Collectors and how they are run: each on its own, bounded, failures become unknowns.

A ``Collector`` names the facts it produces and an async function that returns a value
(or an ``Unknown`` with a reason) per fact. ``run_collector`` turns that into ``Fact``
objects stamped with the context's clock and maps every failure — a missing tool, a
timeout, odd output, even a bug — into unknown facts with a reason, so one failure never
sinks the report. ``collect`` runs many collectors concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.posture.errors import (
    CommandError,
    ParseError,
    PostureConfigError,
    ToolFailedError,
    ToolMissingError,
)
from core.posture.runner import CommandResult, CommandRunner
from core.wire.posture import Fact, FactValue, file_fact, process_fact

__all__ = [
    "CollectContext",
    "CollectFn",
    "Collector",
    "PostureConfig",
    "Unknown",
    "collect",
    "run_collector",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Unknown:
    """A collector's answer "cannot tell" for one fact, with the reason shown to people."""

    reason: str


@dataclass(frozen=True, slots=True)
class PostureConfig:
    """What IT configures: process and file checks, extra AV/EDR process names.

    Build with ``PostureConfig.create`` to validate; raises ``PostureConfigError``.
    """

    processes: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    av_processes: tuple[str, ...] = ()
    client_version: str = ""

    @classmethod
    def create(
        cls,
        *,
        processes: Iterable[str] = (),
        files: Iterable[str] = (),
        av_processes: Iterable[str] = (),
        client_version: str = "",
    ) -> PostureConfig:
        """Validate and build; every name must make a valid fact name."""
        procs, paths = tuple(processes), tuple(files)
        try:
            for p in procs:
                process_fact(p)
            for f in paths:
                file_fact(f)
        except ValueError as exc:
            raise PostureConfigError(str(exc)) from exc
        for name in av_processes:
            if not name or len(name) > 255 or not name.isprintable():
                raise PostureConfigError(f"bad AV process name {name!r}")
        return cls(procs, paths, tuple(av_processes), client_version)


@dataclass(frozen=True, slots=True)
class CollectContext:
    """Everything a collector may use: the runner, the clock, a timeout, the FS root.

    ``root`` prefixes the absolute paths collectors read (``/etc/os-release``, sysfs), so
    tests can point a collector at a captured tree; it is ``/`` in production.
    ``clock`` returns Unix seconds.
    """

    runner: CommandRunner
    config: PostureConfig = field(default_factory=PostureConfig)
    timeout_s: float = 5.0
    root: Path = Path("/")
    clock: Callable[[], float] = time.time

    def path(self, absolute: str) -> Path:
        """``absolute`` under ``root``."""
        return self.root / absolute.lstrip("/")

    async def run(self, argv: Sequence[str], *, ok_codes: Iterable[int] = (0,)) -> CommandResult:
        """Run a tool with the context's timeout; a non-zero exit outside ``ok_codes``
        raises ``ToolFailedError``. Also raises ``ToolMissingError``/``ToolTimeoutError``.
        """
        result = await self.runner.run(argv, timeout_s=self.timeout_s)
        if result.returncode not in tuple(ok_codes):
            raise ToolFailedError(argv, result.returncode, result.stderr or result.stdout)
        return result


Answer = FactValue | list[str] | Unknown
CollectFn = Callable[[CollectContext], Awaitable[Mapping[str, Answer]]]


@dataclass(frozen=True, slots=True)
class Collector:
    """One fact family on one OS.

    ``facts`` are the names it answers (for config-driven families, computed by
    ``facts_of``); ``cheap`` marks collectors fast enough to be watchers (run every few
    seconds). ``fn`` may raise any ``PostureError``; ``run_collector`` handles it.
    """

    name: str
    facts: tuple[str, ...]
    fn: CollectFn
    cheap: bool = False
    facts_of: Callable[[PostureConfig], tuple[str, ...]] | None = None

    def fact_names(self, config: PostureConfig) -> tuple[str, ...]:
        """The fact names this collector answers under ``config``."""
        return self.facts_of(config) if self.facts_of is not None else self.facts


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ToolMissingError):
        return f"{exc.tool}: not installed"
    if isinstance(exc, CommandError):
        return f"{exc.tool}: {exc}"
    if isinstance(exc, ParseError):
        return f"unexpected output: {exc}"
    if isinstance(exc, TimeoutError):
        return "collector timed out"
    return f"collector failed: {type(exc).__name__}: {exc}"


async def run_collector(collector: Collector, ctx: CollectContext) -> dict[str, Fact]:
    """Run one collector and return its facts by name. Never raises (except cancel).

    A fact the collector did not answer, or answered with a value of the wrong kind,
    is unknown with a reason. The whole collector is bounded by a safety timeout of
    six times the per-call timeout (a collector makes at most five calls in a row).
    """
    names = collector.fact_names(ctx.config)
    try:
        answers: Mapping[str, Answer] = await asyncio.wait_for(collector.fn(ctx), ctx.timeout_s * 6)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if not isinstance(exc, (CommandError, ParseError, TimeoutError)):
            _log.warning("posture collector %s failed", collector.name, exc_info=True)
        at = ctx.clock()
        reason = _reason(exc)
        return {n: Fact.unknown(n, reason, at) for n in names}
    at = ctx.clock()
    out: dict[str, Fact] = {}
    for n in names:
        answer = answers.get(n, Unknown(f"not reported by {collector.name}"))
        if isinstance(answer, Unknown):
            out[n] = Fact.unknown(n, answer.reason, at)
            continue
        try:
            out[n] = Fact.of(n, answer, at)
        except (ValueError, TypeError) as exc:
            out[n] = Fact.unknown(n, f"collector {collector.name} gave a bad value: {exc}", at)
    return out


async def collect(collectors: Iterable[Collector], ctx: CollectContext) -> dict[str, Fact]:
    """Run ``collectors`` concurrently; facts by name (a later collector wins a clash).

    Never raises except on cancellation. Call on the loop's thread.
    """
    results = await asyncio.gather(*(run_collector(c, ctx) for c in collectors))
    merged: dict[str, Fact] = {}
    for facts in results:
        merged.update(facts)
    return merged
