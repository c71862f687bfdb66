"""Linux managed settings: ``/etc/rustronaut/managed.json`` then ``managed.d/*.json``.

Files apply in order — ``managed.json`` first, then the drop-ins sorted by name — and a
later file overrides an earlier one key by key (like systemd drop-ins), so a
configuration tool can own one drop-in without editing the others. Each file must hold
one JSON object. ``RUSTRONAUT_MANAGED_DIR`` replaces ``/etc/rustronaut`` (a test hook:
the client runs as the user, so this is not a security boundary — the controller and the
helper enforce what matters).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Hashable, Sequence
from pathlib import Path

from core.settings.managed import ManagedLayer
from core.settings.managed._files import read_managed_file, stat_token

__all__ = ["DEFAULT_DIR", "ENV_DIR", "LinuxManagedSource", "parse_json_layer"]

DEFAULT_DIR = Path("/etc/rustronaut")
ENV_DIR = "RUSTRONAUT_MANAGED_DIR"


class LinuxManagedSource:
    """Reads the managed JSON files of one directory (default: env or ``/etc/rustronaut``)."""

    def __init__(self, directory: Path | None = None) -> None:
        env = os.environ.get(ENV_DIR)
        self.directory = directory or (Path(env) if env else DEFAULT_DIR)

    def describe(self) -> str:
        """The two places read, in order."""
        return f"{self.directory / 'managed.json'} and {self.directory / 'managed.d'}/*.json"

    def files(self) -> list[Path]:
        """The files that would be read now, in order of increasing precedence."""
        out = [self.directory / "managed.json"]
        dropins = self.directory / "managed.d"
        with contextlib.suppress(OSError):  # no drop-in directory is the usual case
            out += sorted(p for p in dropins.iterdir() if p.name.endswith(".json"))
        return out

    def read(self) -> Sequence[ManagedLayer]:
        """One layer per existing file; problems for unreadable or malformed ones."""
        layers = []
        for path in self.files():
            data, problem = read_managed_file(path)
            if problem is not None:
                layers.append(ManagedLayer(origin=str(path), problems=(problem,)))
            elif data is not None:
                layers.append(parse_json_layer(str(path), data))
        return layers

    def fingerprint(self) -> Hashable:
        """Changes when a file is added, removed, replaced or modified."""
        return stat_token(self.files())


def parse_json_layer(origin: str, data: bytes) -> ManagedLayer:
    """Parse one managed JSON document (an object of key → value) into a layer."""
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        seen: dict[str, object] = {}
        for key, value in items:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    try:
        doc = json.loads(data.decode("utf-8-sig"), object_pairs_hook=pairs)
    except UnicodeDecodeError:
        return ManagedLayer(origin=origin, problems=(f"{origin}: not UTF-8 text — ignored",))
    except json.JSONDecodeError as exc:
        return ManagedLayer(
            origin=origin,
            problems=(
                f"{origin}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}) — ignored",
            ),
        )
    if not isinstance(doc, dict):
        return ManagedLayer(
            origin=origin,
            problems=(f"{origin}: expected a JSON object of settings, got {type(doc).__name__}",),
        )
    problems = tuple(f"{origin}: {key}: given twice; the last one applies" for key in duplicates)
    return ManagedLayer(origin=origin, values=doc, problems=problems)
