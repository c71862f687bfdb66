"""The diagnostics bundle IT asks for: one zip, every secret redacted.

Contents: versions, effective settings with sources, the current snapshot, the state
history, recent decisions, the tunnel's status and the client's log files. Every text
member passes through ``core.logs.redact`` before it is written, and the zip is created
0600 — a test proves no token or key survives in it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.engine.engine import Engine

__all__ = ["write_diagnostics"]

_MAX_LOG_BYTES = 2 * 1024 * 1024


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _members(engine: Engine, tunnel: Any) -> dict[str, str]:
    from core.cli.commands.version import versions

    settings = [
        {"key": s.key, "value": _jsonable(s.value), "source": s.source, "locked": s.locked}
        for s in engine.settings()
    ]
    decisions = [
        {
            "time": e.time,
            "app": e.app,
            "destination": e.destination,
            "effect": e.decision.effect.value if e.decision else None,
            "rule": e.decision.rule_id if e.decision else None,
            "reason": e.message,
        }
        for e in engine.decisions
    ]
    members = {
        "versions.json": versions(),
        "settings.json": settings,
        "snapshot.json": _jsonable(engine.snapshot),
        "state-history.json": [{"time": t, "state": s} for t, s in engine.history],
        "decisions.json": decisions,
        "tunnel-status.json": _jsonable(tunnel),
    }
    return {name: json.dumps(body, indent=2, default=str) for name, body in members.items()}


def _log_files() -> list[Path]:
    try:
        from core.paths import log_dir
    except ImportError:  # pragma: no cover - paths always present in a full install
        return []
    directory = Path(log_dir())
    return sorted(p for p in directory.glob("*.log*") if p.is_file()) if directory.is_dir() else []


async def write_diagnostics(engine: Engine, destination: Path) -> Path:
    """Write ``rustronaut-diagnostics-<time>.zip`` into ``destination`` (a directory) or
    to ``destination`` itself when it ends in ``.zip``; returns the path. Never includes
    a secret: every member is redacted."""
    from core.logs import redact

    tunnel: Any
    try:
        tunnel = await engine._tunnel.status()  # the helper's view, not the cached one
    except Exception as exc:
        tunnel = {"error": str(exc)}
    members = _members(engine, tunnel)
    logs = {f"logs/{p.name}": p for p in _log_files()}
    if destination.suffix == ".zip":
        path = destination
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = destination / f"rustronaut-diagnostics-{stamp}.zip"

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, text in members.items():
                zf.writestr(name, redact(text))
            for name, log in logs.items():
                data = log.read_bytes()[-_MAX_LOG_BYTES:]
                zf.writestr(name, redact(data.decode("utf-8", "replace")))

    await asyncio.to_thread(write)
    return path
