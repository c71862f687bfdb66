"""Effective settings: defaults, then the user's file, then managed layers on top.

``load`` never raises for bad input. In the user's file a bad key becomes a readable
problem in ``EffectiveSettings.problems`` and keeps its lower-precedence value. The
organization's managed configuration is validated **as a whole** (every layer of every
source): one invalid, unknown or wrongly typed key, or one unreadable, malformed or
untrusted file, rejects all of it — ``EffectiveSettings.managed_rejected`` says why, and
the last good managed payload (``last_good``; the watcher passes the one in force) stays
in force, so a typo never silently unlocks or switches off what IT enforces.
``set_user``/``unset_user`` rewrite the user's file atomically (mode 0600) and refuse
keys the organization manages.

Words for the employee (a setting's title and description, a refusal) are in the
installed language (``core.i18n``). The framing of a managed configuration's problems
stays English (it is reported to IT as the ``client.managed_rejected`` fact, and logged);
a refused value's own words (``SettingSpec.validate``) follow the installed language.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core import paths
from core.i18n import translate
from core.settings.errors import SettingLockedError, SettingsFileError, SettingValueError
from core.settings.managed import ManagedLayer, ManagedSource, default_sources
from core.settings.managed.linux import parse_json_layer
from core.settings.model import SPECS, Kind, Settings, SettingSpec

__all__ = [
    "EffectiveSettings",
    "ManagedPayload",
    "SettingItem",
    "Source",
    "as_json",
    "load",
    "set_user",
    "spec_for",
    "unset_user",
]

_log = logging.getLogger(__name__)

Source = Literal["default", "user", "managed"]
MAX_USER_FILE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class SettingItem:
    """One effective setting as the UI and CLI show it (satisfies ``SettingView``)."""

    key: str
    value: Any
    source: Source
    locked: bool
    description: str
    title: str
    origin: str | None  # the file or registry key the value came from; None for defaults


@dataclass(frozen=True, slots=True)
class ManagedPayload:
    """A validated managed configuration: typed values and the place each came from.

    Only ever built from a payload whose every key passed validation (or empty).
    """

    values: Mapping[str, Any] = field(default_factory=dict)
    origins: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EffectiveSettings:
    """An immutable snapshot of every setting with its source. Safe to share between threads.

    Attribute access works for each key (``s.proxy_port``); ``values`` is the typed
    :class:`~core.settings.model.Settings`. Two snapshots are equal when every value,
    source, origin and problem is.

    ``managed`` is the managed payload in force; ``managed_rejected`` is ``None`` when
    the managed configuration as read now was accepted, else one line saying why it was
    rejected and what applies instead (the previous payload, or none at start).
    """

    values: Settings
    sources: Mapping[str, Source]
    origins: Mapping[str, str | None]
    problems: tuple[str, ...]
    user_path: Path
    managed_sources: tuple[ManagedSource, ...] = field(default=(), compare=False, repr=False)
    managed: ManagedPayload = field(default_factory=ManagedPayload)
    managed_rejected: str | None = None

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not fields: forward setting keys to ``values``.
        if name in SPECS:
            return getattr(self.values, name)
        raise AttributeError(name)

    def get(self, key: str) -> Any:
        """The effective value of ``key``; raises :class:`SettingValueError` if unknown."""
        return getattr(self.values, spec_for(key).key)

    def source(self, key: str) -> Source:
        """Where the value of ``key`` comes from: ``default``, ``user`` or ``managed``."""
        return self.sources[spec_for(key).key]

    def locked(self, key: str) -> bool:
        """True when the organization sets ``key`` (the user cannot change it)."""
        return self.source(key) == "managed"

    def origin(self, key: str) -> str | None:
        """The file or registry key the value came from (``None`` for a default)."""
        return self.origins[spec_for(key).key]

    def item(self, key: str) -> SettingItem:
        """The view of one key."""
        spec = spec_for(key)
        return SettingItem(
            key=spec.key,
            value=getattr(self.values, spec.key),
            source=self.sources[spec.key],
            locked=self.sources[spec.key] == "managed",
            description=spec.help(),
            title=spec.label(),
            origin=self.origins[spec.key],
        )

    def items(self) -> Iterator[SettingItem]:
        """Every setting in model order."""
        return (self.item(key) for key in SPECS)

    def reload(self) -> EffectiveSettings:
        """Read everything again from the same places; this snapshot's managed payload
        stays in force if the fresh one is rejected. Blocking file/registry I/O."""
        return load(
            managed_sources=self.managed_sources, user_path=self.user_path, last_good=self.managed
        )


def spec_for(key: str) -> SettingSpec:
    """The spec of ``key``; raises :class:`SettingValueError` naming close matches."""
    spec = SPECS.get(key)
    if spec is None:
        raise SettingValueError(_unknown(key), key=key)
    return spec


def _unknown(key: str) -> str:
    close = difflib.get_close_matches(key, list(SPECS), n=1)
    hint = f" — did you mean {close[0]}?" if close else ""
    return f"unknown setting {key!r}{hint}"


def load(
    *,
    managed_sources: Sequence[ManagedSource] | None = None,
    user_path: Path | None = None,
    last_good: ManagedPayload | None = None,
) -> EffectiveSettings:
    """Read defaults, the user's file and the managed sources into one snapshot.

    ``managed_sources`` defaults to the running OS's readers (pass ``()`` for none);
    ``user_path`` to ``core.paths.user_settings_file()``. ``last_good`` is the managed
    payload that stays in force if the one read now is rejected (``None``: nothing
    managed applies then). Never raises for bad input; blocking I/O (call it off the
    event loop, or accept a few small file reads).
    """
    sources = tuple(default_sources() if managed_sources is None else managed_sources)
    path = user_path if user_path is not None else paths.user_settings_file()
    values: dict[str, Any] = {key: spec.default for key, spec in SPECS.items()}
    where: dict[str, Source] = dict.fromkeys(SPECS, "default")
    origins: dict[str, str | None] = dict.fromkeys(SPECS)
    problems: list[str] = []

    layer, _ = _read_user_layer(path)
    _apply(layer, "user", values, where, origins, problems)
    payload, managed_problems = read_managed(sources)
    rejected: str | None = None
    if managed_problems:
        payload = last_good if last_good is not None else ManagedPayload()
        rejected = _rejection(managed_problems, payload)
        problems.extend(managed_problems)
        _log.warning("managed configuration rejected: %s", rejected)
    for key, value in payload.values.items():
        values[key] = value
        where[key] = "managed"
        origins[key] = payload.origins.get(key)
    return EffectiveSettings(
        values=Settings(**values),
        sources=where,
        origins=origins,
        problems=tuple(problems),
        user_path=path,
        managed_sources=sources,
        managed=payload,
        managed_rejected=rejected,
    )


MAX_SHOWN_PROBLEMS = 3  # in ``managed_rejected``
MAX_KEPT_PROBLEMS = 50  # in ``problems``


def _rejection(problems: Sequence[str], in_force: ManagedPayload) -> str:
    shown = "; ".join(problems[:MAX_SHOWN_PROBLEMS])
    more = len(problems) - MAX_SHOWN_PROBLEMS
    if more > 0:
        shown += f" (and {more} more)"
    if in_force.values:
        return f"{shown} — the previous managed settings stay in force"
    return f"{shown} — no managed settings apply until it is fixed"


def read_managed(sources: Sequence[ManagedSource]) -> tuple[ManagedPayload, list[str]]:
    """Read and validate every managed layer of ``sources`` as one payload.

    Returns the payload (later layers override earlier ones key by key) and the problems
    found; when there is any problem the payload must not be used — no part of it.
    Never raises for bad input (a reader that raises becomes a problem).
    """
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    problems: list[str] = []
    for source in sources:
        try:
            layers = source.read()
        except Exception as exc:  # a reader bug must not take the client down
            _log.exception("managed settings reader %s failed", source.describe())
            problems.append(f"{source.describe()}: cannot read managed settings: {exc}")
            continue
        for layer in layers:
            problems.extend(layer.problems)
            for raw_key, raw in layer.values.items():
                # Registry value names are case-insensitive; elsewhere keys are exact.
                key = raw_key.lower() if layer.int_bools else raw_key
                spec = SPECS.get(key)
                if spec is None:
                    shown = raw_key if len(raw_key) <= 80 else raw_key[:60] + "…"
                    problems.append(f"{layer.origin}: {_unknown(shown)}")
                    continue
                candidate = raw
                if (
                    layer.int_bools
                    and spec.kind is Kind.BOOL
                    and type(raw) is int
                    and raw in (0, 1)
                ):
                    candidate = bool(raw)  # a REG_DWORD 1/0 is the registry's boolean
                try:
                    values[key] = spec.validate(candidate)
                except SettingValueError as exc:
                    note = layer.notes.get(raw_key)
                    problems.append(f"{layer.origin}: {exc}" + (f" ({note})" if note else ""))
                    continue
                origins[key] = layer.origin
    if len(problems) > MAX_KEPT_PROBLEMS:  # a huge broken payload: keep memory bounded
        more = len(problems) - MAX_KEPT_PROBLEMS
        problems[MAX_KEPT_PROBLEMS:] = [f"… and {more} more problems"]
    return ManagedPayload(values=values, origins=origins), problems


def _apply(
    layer: ManagedLayer,
    source: Source,
    values: dict[str, Any],
    where: dict[str, Source],
    origins: dict[str, str | None],
    problems: list[str],
) -> None:
    problems.extend(layer.problems)
    for raw_key, raw in layer.values.items():
        # Registry value names are case-insensitive; elsewhere keys are exact.
        key = raw_key.lower() if layer.int_bools else raw_key
        spec = SPECS.get(key)
        if spec is None:
            problems.append(f"{layer.origin}: {_unknown(raw_key)} — ignored")
            continue
        candidate = raw
        if layer.int_bools and isinstance(raw, int) and spec.kind is Kind.BOOL and raw in (0, 1):
            candidate = bool(raw)
        try:
            values[key] = spec.validate(candidate)
        except SettingValueError as exc:
            note = layer.notes.get(raw_key)
            suffix = f" ({note})" if note else ""
            problems.append(f"{layer.origin}: {exc}{suffix} — ignored")
            continue
        where[key] = source
        origins[key] = layer.origin


def _read_user_layer(path: Path) -> tuple[ManagedLayer, dict[str, object] | None]:
    """The user's file as a layer, and its raw object (``None`` if absent or unusable)."""
    origin = str(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_USER_FILE_BYTES + 1)
    except FileNotFoundError:
        return ManagedLayer(origin=origin), None
    except OSError as exc:
        return ManagedLayer(origin=origin, problems=(f"{origin}: cannot read: {exc}",)), None
    if len(data) > MAX_USER_FILE_BYTES:
        problem = f"{origin}: larger than {MAX_USER_FILE_BYTES} bytes — ignored"
        return ManagedLayer(origin=origin, problems=(problem,)), None
    layer = parse_json_layer(origin, data)
    if layer.problems and not layer.values:
        return layer, None
    return layer, dict(layer.values)


def _current(settings: EffectiveSettings | None) -> EffectiveSettings:
    return settings if settings is not None else load()


def set_user(
    key: str, value: object, *, settings: EffectiveSettings | None = None
) -> EffectiveSettings:
    """Store ``value`` for ``key`` in the user's file and return the new snapshot.

    ``value`` is either text as typed by a person (parsed per the key's type) or an
    already-typed value. ``settings`` is the snapshot whose managed locks and user file
    apply (default: a fresh ``load()``). Raises :class:`SettingValueError` (unknown key or
    invalid value), :class:`SettingLockedError` (the organization sets the key) or
    :class:`SettingsFileError` (cannot write). The file is replaced atomically, so a
    failure leaves the previous file untouched. Blocking I/O.
    """
    spec = spec_for(key)
    current = _current(settings)
    if current.locked(spec.key):
        text = translate(
            "core.settings.loader",
            "{key} is set by your organization ({origin}) and cannot be changed here",
        )
        raise SettingLockedError(
            text.format(key=spec.key, origin=current.origin(spec.key)), key=spec.key
        )
    parsed = spec.parse_text(value) if isinstance(value, str) else spec.validate(value)
    raw = _user_object_for_writing(current.user_path)
    raw[spec.key] = spec.to_json(parsed)
    _write_user_file(current.user_path, raw)
    return current.reload()


def unset_user(key: str, *, settings: EffectiveSettings | None = None) -> EffectiveSettings:
    """Remove ``key`` from the user's file (back to the default) and return the new snapshot.

    Idempotent. Allowed for managed keys too (it only forgets the user's own value; the
    managed one keeps applying). Raises :class:`SettingValueError` for an unknown key or
    :class:`SettingsFileError` if the file cannot be written. Blocking I/O.
    """
    spec = spec_for(key)
    current = _current(settings)
    raw = _user_object_for_writing(current.user_path)
    if spec.key in raw:
        del raw[spec.key]
        _write_user_file(current.user_path, raw)
    return current.reload()


def _user_object_for_writing(path: Path) -> dict[str, object]:
    """The user's file as a dict to update; an unusable file is set aside, not lost."""
    layer, raw = _read_user_layer(path)
    if raw is not None:
        return raw
    if layer.problems and path.exists():
        backup = path.with_name(f"{path.name}.invalid-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(path, backup)
        except OSError as exc:
            raise SettingsFileError(
                f"{path} is unreadable and could not be set aside: {exc}"
            ) from exc
        _log.warning("user settings file %s was invalid; kept as %s", path, backup)
    return {}


def _write_user_file(path: Path, raw: Mapping[str, object]) -> None:
    try:
        paths.ensure_private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise SettingsFileError(f"cannot write {path}: {exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(raw, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise SettingsFileError(f"cannot write {path}: {exc}") from exc


def as_json(settings: EffectiveSettings) -> dict[str, object]:
    """The snapshot as plain JSON data (for ``config show --json`` and diagnostics)."""
    return {
        "settings": [
            {
                "key": item.key,
                "value": SPECS[item.key].to_json(item.value),
                "source": item.source,
                "locked": item.locked,
                "origin": item.origin,
                "description": item.description,
            }
            for item in settings.items()
        ],
        "problems": list(settings.problems),
        "managed_rejected": settings.managed_rejected,
        "user_file": str(settings.user_path),
    }
