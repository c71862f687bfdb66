"""Linux managed settings: ``/etc/rustronaut/managed.json`` then ``managed.d/*.json``.

Files apply in order — ``managed.json`` first, then the drop-ins sorted by name — and a
later file overrides an earlier one key by key (like systemd drop-ins), so a
configuration tool can own one drop-in without editing the others. Each file must hold
one JSON object. The directory, ``managed.d`` and every file must be owned by root and
writable by neither group nor others (``_trust``); a place that fails is reported and
rejects the managed configuration as a whole (``core.settings.loader``).
``RUSTRONAUT_MANAGED_DIR`` replaces ``/etc/rustronaut`` in test builds only (see
``core.settings.managed._trust``): anywhere else any user could point it at an empty
directory and unlock every managed key.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Hashable, Sequence
from pathlib import Path

from core.settings.managed import ManagedLayer
from core.settings.managed._files import read_managed_file, stat_token
from core.settings.managed._trust import check_dir, env_override, trusted_owners

__all__ = ["DEFAULT_DIR", "ENV_DIR", "LinuxManagedSource", "parse_json_layer"]

DEFAULT_DIR = Path("/etc/rustronaut")
ENV_DIR = "RUSTRONAUT_MANAGED_DIR"


class LinuxManagedSource:
    """Reads the managed JSON files of one directory (default ``/etc/rustronaut``; in test
    builds ``$RUSTRONAUT_MANAGED_DIR`` when set).

    ``owners`` are the uids whose files are trusted (default: root, plus the test account
    in test builds).
    """

    def __init__(
        self, directory: Path | None = None, *, owners: frozenset[int] | None = None
    ) -> None:
        env = env_override(ENV_DIR)
        self.directory = directory or (Path(env) if env else DEFAULT_DIR)
        self.owners = trusted_owners() if owners is None else owners

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
        """One layer per existing file; problems for untrusted, unreadable or malformed ones.

        An untrusted directory yields one layer holding only its problem: nothing under
        it is read.
        """
        for folder in (self.directory, self.directory / "managed.d"):
            problem = check_dir(folder, self.owners)
            if problem is not None:
                return [ManagedLayer(origin=str(folder), problems=(problem,))]
        layers = []
        for path in self.files():
            data, problem = read_managed_file(path, self.owners)
            if problem is not None:
                layers.append(ManagedLayer(origin=str(path), problems=(problem,)))
            elif data is not None:
                layers.append(parse_json_layer(str(path), data))
        return layers

    def fingerprint(self) -> Hashable:
        """Changes when a file or directory is added, removed, replaced, modified,
        ``chmod``-ed or ``chown``-ed."""
        return stat_token([self.directory, self.directory / "managed.d", *self.files()])


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
        return ManagedLayer(origin=origin, problems=(f"{origin}: not UTF-8 text — rejected",))
    except json.JSONDecodeError as exc:
        return ManagedLayer(
            origin=origin,
            problems=(
                f"{origin}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}) — rejected",
            ),
        )
    except RecursionError:
        return ManagedLayer(origin=origin, problems=(f"{origin}: nested too deeply — rejected",))
    except ValueError as exc:  # e.g. a number with more digits than Python converts
        return ManagedLayer(
            origin=origin, problems=(f"{origin}: not valid JSON ({exc}) — rejected",)
        )
    if not isinstance(doc, dict):
        return ManagedLayer(
            origin=origin,
            problems=(f"{origin}: expected a JSON object of settings, got {type(doc).__name__}",),
        )
    # json.dumps escapes control and non-ASCII characters: a key is shown, never interpreted.
    problems = tuple(f"{origin}: {json.dumps(key)[1:-1]}: given twice" for key in duplicates)
    return ManagedLayer(origin=origin, values=doc, problems=problems)
