"""The diagnostics bundle IT asks for: one zip, every secret redacted.

Contents: versions, effective settings with sources, the current snapshot, the state
history, recent decisions, the tunnel's status and the client's log files. Redaction is
two-layered: structured data is redacted leaf by leaf *before* it is serialised (a
setting or mapping key that names a secret masks its whole value; every string passes
through ``core.logs.redact`` while its quotes are still unescaped), then every member's
text passes through ``redact`` again. The zip is written 0600 (also over an existing
file) and a symlink at the destination is refused. tests/core/engine/test_diag.py
plants real-shaped secrets everywhere and proves none survives.
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
_MASK = "[REDACTED]"


def _names_secret(key: str) -> bool:
    """Whether a setting/mapping key names a secret (``auth.refresh_token``).

    Asks ``redact`` itself, on its last dotted segment as a JSON member, so the list of
    secret names stays in one place (core.logs).
    """
    from core.logs import redact

    name = key.rsplit(".", 1)[-1].replace(".", "_")
    probe = f'"{name}": "x"'
    return redact(probe) != probe


def _jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data with every secret masked (see the module docstring)."""
    from core.logs import redact

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {
            str(k): _MASK if _names_secret(str(k)) and v not in (None, "") else _jsonable(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


def _members(engine: Engine, tunnel: Any) -> dict[str, str]:
    from core.cli.commands.version import versions

    settings = [
        {
            "key": s.key,
            "value": _MASK if _names_secret(s.key) and s.value else _jsonable(s.value),
            "source": s.source,
            "locked": s.locked,
        }
        for s in engine.settings()
    ]
    decisions = [
        {
            "time": e.time,
            "app": _jsonable(e.app),
            "destination": _jsonable(e.destination),
            "effect": e.decision.effect.value if e.decision else None,
            "rule": e.decision.rule_id if e.decision else None,
            "reason": _jsonable(e.message),
        }
        for e in engine.decisions
    ]
    members = {
        "versions.json": versions(),
        "settings.json": settings,
        "snapshot.json": _jsonable(engine.snapshot),
        "state-history.json": [{"time": t, "state": _jsonable(s)} for t, s in engine.history],
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
    a secret: every member is redacted.

    The file is created (or truncated) 0600 whatever the umask or its old mode; a
    symlink at the target is refused (``OSError``) rather than followed. Raises
    ``OSError`` when the destination cannot be written. Runs the file I/O in a worker
    thread; call from the engine's loop."""
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
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, 0o600)
        try:
            # O_CREAT's mode applies only to a new file: an existing one keeps its mode.
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
        except OSError:
            os.close(fd)
            raise
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, text in members.items():
                zf.writestr(name, redact(text))
            for name, log in logs.items():
                data = log.read_bytes()[-_MAX_LOG_BYTES:]
                zf.writestr(name, redact(data.decode("utf-8", "replace")))

    await asyncio.to_thread(write)
    return path
