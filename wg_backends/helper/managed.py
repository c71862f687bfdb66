"""The helper's own, strict reading of the organisation's managed settings.

The helper decides about always-on, break-glass and the controller's address from the
managed settings *it* reads, never from a caller. ``wg_backends`` must not import
``core``, so this is a tiny reader of the same files ``core.settings`` reads on Linux and
macOS — ``<managed_dir>/managed.json`` then ``managed.d/*.json`` in name order, a later
file overriding an earlier one key by key — for the keys the helper needs:
``always_on``, ``allow_break_glass``, ``controller_url`` and ``policy_trust_anchors`` (the
organisation's policy root keys: with them, the helper takes tunnels only from bundles it
verifies itself, see :mod:`wg_backends.helper.bundles`).

It is stricter than the client's reader, because a file only counts if it speaks for
the organisation: the directory and every file must be owned by root and writable by
no one else (no group/other write bit), files are opened without following symlinks and
must be regular, at most 256 KiB, one JSON object, UTF-8, without duplicate keys; a
value of the wrong type rejects the whole file. A rejected file is logged and counts as
absent. Nothing here takes a path from the environment: the directory comes from the
helper's ``--managed-dir`` (default ``/etc/rustronaut``). On Windows, without a managed
directory, the policy registry key is read instead (``state.read_always_on_registry``,
:func:`read_anchors_registry`: ``policy_trust_anchors`` as REG_MULTI_SZ).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wg_backends.signed.anchors import MAX_ANCHORS, parse_anchor

__all__ = ["DEFAULT_MANAGED_DIR", "MAX_MANAGED", "HelperManaged", "ManagedFileError", "read"]

_log = logging.getLogger("rustronaut.helper")
DEFAULT_MANAGED_DIR = Path("/etc/rustronaut")
MAX_MANAGED = 256 * 1024
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BOOL_KEYS = ("always_on", "allow_break_glass")


class ManagedFileError(ValueError):
    """A managed file that cannot speak for the organisation (owner, mode, content)."""


@dataclass(frozen=True, slots=True)
class HelperManaged:
    """What the helper takes from managed settings (defaults when nothing is managed)."""

    always_on: bool = False
    allow_break_glass: bool = True
    controller_url: str | None = None
    policy_trust_anchors: tuple[str, ...] = ()
    """The organisation's policy root keys (base64url of raw Ed25519 keys), each checked
    with :func:`wg_backends.signed.anchors.parse_anchor`; empty: not managed."""


def _trusted(st: os.stat_result, what: str) -> None:
    if os.name != "posix":
        return
    if st.st_uid != 0:
        raise ManagedFileError(f"{what} is owned by uid {st.st_uid}, not root")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ManagedFileError(f"{what} is writable by group or others")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ManagedFileError(f"key {key!r} given twice")
        out[key] = value
    return out


def read_file(path: Path) -> dict[str, Any] | None:
    """The helper's keys of one managed file; ``None`` if absent.

    Raises :class:`ManagedFileError` for a file that does not count (owner, mode, type,
    size, encoding, JSON, duplicate key, a known key of the wrong type).
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symlink
        raise ManagedFileError(f"cannot open: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ManagedFileError("not a regular file")
        _trusted(st, "the file")
        data = fh.read(MAX_MANAGED + 1)
    if len(data) > MAX_MANAGED:
        raise ManagedFileError(f"larger than {MAX_MANAGED} bytes")
    try:
        doc = json.loads(data.decode("utf-8-sig"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise ManagedFileError("not UTF-8") from None
    except RecursionError:
        raise ManagedFileError("nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ManagedFileError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise ManagedFileError("not a JSON object")
    out: dict[str, Any] = {}
    for key in _BOOL_KEYS:
        if key in doc:
            if not isinstance(doc[key], bool):
                raise ManagedFileError(f"{key} is not true or false")
            out[key] = doc[key]
    if "controller_url" in doc:
        if not isinstance(doc["controller_url"], str):
            raise ManagedFileError("controller_url is not a string")
        out["controller_url"] = doc["controller_url"]
    if "policy_trust_anchors" in doc:
        out["policy_trust_anchors"] = _anchors(doc["policy_trust_anchors"])
    return out


def _anchors(value: Any) -> tuple[str, ...]:
    """The anchors of one file: a list of distinct, valid keys, or the file is refused
    (a bad anchor must not leave the others — or none — quietly in force)."""
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ManagedFileError("policy_trust_anchors is not a list of strings")
    if len(value) > MAX_ANCHORS:
        raise ManagedFileError(f"policy_trust_anchors lists more than {MAX_ANCHORS} keys")
    for index, anchor in enumerate(value):
        try:
            parse_anchor(anchor)
        except ValueError as exc:
            raise ManagedFileError(f"policy_trust_anchors[{index}]: {exc}") from None
    if len(set(value)) != len(value):
        raise ManagedFileError("policy_trust_anchors lists the same key twice")
    return tuple(value)


def _files(managed_dir: Path) -> list[Path]:
    try:
        _trusted(os.stat(managed_dir), f"{managed_dir}")
    except FileNotFoundError:
        return []
    except (OSError, ManagedFileError) as exc:
        _log.warning("managed settings directory not trusted, ignored: %s", exc)
        return []
    files = [managed_dir / "managed.json"]
    dropins = managed_dir / "managed.d"
    try:
        _trusted(os.stat(dropins), f"{dropins}")
        files += sorted(p for p in dropins.iterdir() if p.name.endswith(".json"))
    except FileNotFoundError:
        pass
    except (OSError, ManagedFileError) as exc:
        _log.warning("managed drop-in directory not trusted, ignored: %s", exc)
    return files


RegistryRead = Callable[[], bool]
RegistryQuery = Callable[[str, str], object]
"""``query(key_path, value_name)``: the value's data (a list of strings for REG_MULTI_SZ),
``None`` when the key or value is missing."""


def read_anchors_registry(query: RegistryQuery | None = None) -> tuple[str, ...]:
    """``policy_trust_anchors`` (REG_MULTI_SZ) from ``HKLM\\SOFTWARE\\Policies\\
    Rustronaut\\Client``, checked as in a managed file. Never raises: a value of another
    type or with a bad anchor is logged and counts as absent."""
    from wg_backends.helper.state import POLICY_KEY

    try:
        value = (query or _multi_sz_query)(POLICY_KEY, "policy_trust_anchors")
    except (OSError, ImportError) as exc:
        _log.warning("managed policy_trust_anchors unreadable, ignored: %s", exc)
        return ()
    if value is None:
        return ()
    try:
        return _anchors(value)
    except ManagedFileError as exc:
        _log.warning("managed policy_trust_anchors in the registry ignored: %s", exc)
        return ()


def registry_query(key_path: str, name: str, kind: str) -> object:  # pragma: no cover
    """The machine policy value ``name`` under HKLM\\``key_path`` when it has registry
    type ``kind`` ("REG_MULTI_SZ" as a list, "REG_DWORD" as an int); None when absent;
    a "<registry type N>" string (refused by the callers' checks) for any other type.
    Windows only."""
    winreg: Any = importlib.import_module("winreg")
    access = winreg.KEY_READ | getattr(winreg, "KEY_WOW64_64KEY", 0)
    try:
        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key_path, 0, access)
    except FileNotFoundError:
        return None
    with key:
        try:
            data, found = winreg.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
    if found != getattr(winreg, kind):
        return f"<registry type {found}>"
    return list(data) if kind == "REG_MULTI_SZ" else data


def _multi_sz_query(key_path: str, name: str) -> object:  # pragma: no cover - Windows only
    return registry_query(key_path, name, "REG_MULTI_SZ")


def read(
    managed_dir: Path | None = None,
    *,
    registry: RegistryRead | None = None,
    registry_anchors: Callable[[], tuple[str, ...]] | None = None,
) -> HelperManaged:
    """The managed settings as the helper sees them now. Never raises (problems logged).

    ``managed_dir`` defaults to ``/etc/rustronaut``; on Windows, when it is not given,
    the policy registry key is read instead: ``registry()`` (default: ``always_on``) and
    ``registry_anchors()`` (default: :func:`read_anchors_registry`).
    """
    if managed_dir is None and sys.platform == "win32":
        from wg_backends.helper.state import read_always_on_registry

        return HelperManaged(
            always_on=(registry or read_always_on_registry)(),
            policy_trust_anchors=(registry_anchors or read_anchors_registry)(),
        )
    values: dict[str, Any] = {}
    for path in _files(managed_dir or DEFAULT_MANAGED_DIR):
        try:
            found = read_file(path)
        except ManagedFileError as exc:
            _log.warning("managed file %s ignored: %s", path, exc)
            continue
        if found:
            values.update(found)
    with contextlib.suppress(TypeError):
        return HelperManaged(**values)
    return HelperManaged()  # pragma: no cover - read_file only returns known keys
