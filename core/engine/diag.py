"""The diagnostics bundle IT asks for: one zip, every secret redacted, and it works exactly
when things are broken.

Contents: versions, effective settings with sources, the current snapshot, the state
history, recent decisions, the tunnel's status, what failed and why (``failure.json``)
and the client's (and, when readable, the helper's) log files. Two ways in:

- :func:`write_diagnostics` asks a running engine. Each section is read on its own: a
  part that fails (the helper gone, the keyring locked, a settings reader broken) writes
  its failure, in words, into ``failure.json`` instead of stopping the bundle.
- :func:`write_offline_diagnostics` builds no engine and contacts nothing (no controller,
  no helper, no keyring): for ``rustronaut diag`` when no engine runs, or when building
  one failed (pass that ``error``).

Redaction is two-layered: structured data is redacted leaf by leaf *before* it is
serialised (a setting or mapping key that names a secret masks its whole value; every
string passes through ``core.logs.redact`` while its quotes are still unescaped), then
every member's text passes through ``redact`` again. The zip is written 0600 (also over
an existing file) and a symlink at the destination is refused. tests/core/engine/
test_diag.py plants real-shaped secrets everywhere and proves none survives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
import traceback
import zipfile
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.engine.errors import explain
from core.i18n import translate
from core.logs import redact
from core.versions import versions

if TYPE_CHECKING:
    from core.engine.engine import Engine
    from core.settings import EffectiveSettings

__all__ = ["write_diagnostics", "write_offline_diagnostics"]

_MAX_LOG_BYTES = 2 * 1024 * 1024
_MASK = "[REDACTED]"
#: How long the helper may take to tell the tunnel's status before the section is skipped.
_TUNNEL_TIMEOUT_S = 5.0


def _names_secret(key: str) -> bool:
    """Whether a setting/mapping key names a secret (``auth.refresh_token``).

    Asks ``redact`` itself, on its last dotted segment as a JSON member, so the list of
    secret names stays in one place (core.logs).
    """
    name = key.rsplit(".", 1)[-1].replace(".", "_")
    probe = f'"{name}": "x"'
    return redact(probe) != probe


def _jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data with every secret masked (see the module docstring)."""
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


def _setting_rows(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Settings (the engine's ``Setting`` or the loader's ``SettingItem``) as rows."""
    return [
        {
            "key": s.key,
            "value": _MASK if _names_secret(s.key) and s.value else _jsonable(s.value),
            "source": s.source,
            "locked": s.locked,
        }
        for s in items
    ]


class _Report:
    """The members of one bundle, each section guarded: a failing section is recorded."""

    def __init__(self) -> None:
        self.members: dict[str, Any] = {}
        self.failures: list[dict[str, Any]] = []

    def failed(self, section: str, exc: BaseException, *, during: str | None = None) -> None:
        """Record that ``section`` failed: the employee's words and, for IT, the trace."""
        # ``explain`` words it in the agent's language: ``during`` is in it too
        during = during or translate("core.engine.diag", "reading {section}").format(
            section=section
        )
        self.failures.append({"section": section, **_words(exc, during)})

    def add(self, name: str, read: Callable[[], Any]) -> None:
        """``members[name] = read()``, or a recorded failure if ``read`` raises."""
        try:
            self.members[name] = read()
        except Exception as exc:
            self.failed(name, exc)

    async def add_async(self, name: str, read: Callable[[], Awaitable[Any]]) -> None:
        """As :meth:`add`, for a coroutine, bounded by a timeout (a hung helper)."""
        try:
            self.members[name] = await asyncio.wait_for(read(), _TUNNEL_TIMEOUT_S)
        except Exception as exc:
            self.failed(name, exc)

    def texts(self) -> dict[str, str]:
        """Every member as (not yet redacted) JSON text, ``failure.json`` included."""
        body = dict(self.members)
        body["failure.json"] = {**body.get("failure.json", {}), "sections": self.failures}
        out: dict[str, str] = {}
        for name, value in body.items():
            try:
                out[name] = json.dumps(value, indent=2, default=str)
            except (TypeError, ValueError) as exc:
                during = translate("core.engine.diag", "writing {section}").format(section=name)
                out[name] = json.dumps({"error": explain(exc, during=during).detail})
        return out


def _decision_rows(engine: Engine) -> list[dict[str, Any]]:
    return [
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


def _words(exc: BaseException, during: str) -> dict[str, str]:
    """The employee's words for ``exc`` and, for IT, its trace; each string redacted now,
    while its quotes are unescaped (see the module docstring)."""
    info = explain(exc, during=during)
    words = {
        "during": during,
        "title": info.title,
        "detail": info.detail,
        "next_step": info.next_step,
        "error_code": info.code,  # under the key "code" ``redact`` would mask it (OAuth)
        "traceback": "".join(traceback.format_exception(exc)),
    }
    return {key: redact(text) for key, text in words.items()}


def _error_member(error: BaseException | None, during: str) -> dict[str, Any]:
    """What failed and why (``failure.json``'s ``error``), or nothing."""
    return {} if error is None else {"error": _words(error, during)}


def _log_files() -> dict[str, Path]:
    """The client's log files and, when this user may read them, the helper's."""
    import core.paths  # looked up at call time: tests point log_dir elsewhere

    found: dict[str, Path] = {}
    for prefix, directory in (
        ("logs", core.paths.log_dir()),
        ("logs/system", core.paths.system_log_dir()),
    ):
        try:
            if directory.is_dir():
                for p in sorted(directory.glob("*.log*")):
                    if p.is_file() and os.access(p, os.R_OK):
                        found[f"{prefix}/{p.name}"] = p
        except OSError:  # an unreadable directory is simply not part of the bundle
            continue
    return found


def _target(destination: Path) -> Path:
    if destination.suffix == ".zip":
        return destination
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return destination / f"rustronaut-diagnostics-{stamp}.zip"


async def _write_zip(destination: Path, report: _Report) -> Path:
    """Write ``report`` and the log files, redacted, to a 0600 zip; return its path.

    Raises ``OSError`` only when the zip itself cannot be written; a log file that cannot
    be read is recorded in ``failure.json`` instead.
    """
    path = _target(destination)
    logs = _log_files()

    def write() -> None:
        log_texts: dict[str, str] = {}
        for name, log in logs.items():
            try:
                with log.open("rb") as f:
                    size = f.seek(0, os.SEEK_END)
                    f.seek(max(0, size - _MAX_LOG_BYTES))
                    data = f.read()
                log_texts[name] = data.decode("utf-8", "replace")
            except OSError as exc:
                report.failed(name, exc)
        members = report.texts()
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
            for name, text in log_texts.items():
                zf.writestr(name, redact(text))

    await asyncio.to_thread(write)
    return path


async def write_diagnostics(engine: Engine, destination: Path) -> Path:
    """Write ``rustronaut-diagnostics-<time>.zip`` into ``destination`` (a directory) or
    to ``destination`` itself when it ends in ``.zip``; returns the path. Never includes
    a secret: every member is redacted.

    Never fails because a part is broken: each section (settings, snapshot, history,
    decisions, the helper's tunnel status, each log file) is read on its own and a
    failure is written into ``failure.json`` in words (with the trace for IT). The
    snapshot's own error, if any, is there too.

    The file is created (or truncated) 0600 whatever the umask or its old mode; a
    symlink at the target is refused (``OSError``) rather than followed. Raises
    ``OSError`` only when the destination cannot be written. Runs the file I/O in a
    worker thread; call from the engine's loop."""
    report = _Report()
    report.add("versions.json", versions)
    report.add("settings.json", lambda: _setting_rows(engine.settings()))
    report.add("snapshot.json", lambda: _jsonable(engine.snapshot))
    report.add(
        "state-history.json",
        lambda: [{"time": t, "state": _jsonable(s)} for t, s in engine.history],
    )
    report.add("decisions.json", lambda: _decision_rows(engine))

    async def tunnel_status() -> Any:
        return _jsonable(await engine._tunnel.status())  # the helper's view, not a cache

    await report.add_async("tunnel-status.json", tunnel_status)
    if "tunnel-status.json" not in report.members:  # say so where IT looks for it
        report.members["tunnel-status.json"] = {"error": report.failures[-1]["detail"]}
    return await _write_zip(destination, report)


async def write_offline_diagnostics(
    destination: Path,
    *,
    settings: EffectiveSettings | None = None,
    error: BaseException | None = None,
) -> Path:
    """Write the diagnostics zip without an engine: builds nothing, contacts nothing.

    For ``rustronaut diag`` when no engine runs (or building one failed: pass that
    ``error``, it is written to ``failure.json`` in words and with its trace). Contains
    versions, the effective ``settings`` (read from disk when None; a failure to read
    them is recorded, not raised) with their problems, and the log files. Same naming,
    redaction and 0600/no-symlink rules as :func:`write_diagnostics`; raises ``OSError``
    only when the destination cannot be written.
    """
    report = _Report()
    report.members["failure.json"] = _error_member(error, "starting")
    report.add("versions.json", versions)
    effective = settings
    if effective is None:
        try:
            from core.settings import load

            effective = await asyncio.to_thread(load)
        except Exception as exc:
            report.failed(
                "settings.json", exc, during=translate("core.engine.diag", "reading the settings")
            )
    if effective is not None:
        loaded = effective
        report.add("settings.json", lambda: _setting_rows(loaded.items()))
        report.add("settings-problems.json", lambda: [redact(p) for p in loaded.problems])
    report.members["snapshot.json"] = {"state": "not_running"}
    return await _write_zip(destination, report)
