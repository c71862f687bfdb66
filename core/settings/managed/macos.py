"""macOS managed settings: the managed preferences plists of ``com.rustronaut.client``.

An MDM profile (see ``installers/mdm/macos``) makes macOS write
``/Library/Managed Preferences/com.rustronaut.client.plist`` (device) and
``/Library/Managed Preferences/<user>/com.rustronaut.client.plist`` (user). Both are read
with ``plistlib`` (XML or binary); the user-level file applies on top of the device one,
as macOS itself orders forced preferences. The user's folder is named after the account
of this process's uid (``pwd.getpwuid(os.getuid())``), never after ``USER`` or
``LOGNAME``, which the user sets. The folders and files must be owned by root and
writable by neither group nor others (``_trust``).
"""

from __future__ import annotations

import os
import plistlib
from collections.abc import Hashable, Sequence
from pathlib import Path

from core.settings.managed import ManagedLayer
from core.settings.managed._files import read_managed_file, stat_token
from core.settings.managed._trust import check_dir, trusted_owners

__all__ = ["DOMAIN", "MANAGED_PREFERENCES", "MacManagedSource", "parse_plist_layer"]

DOMAIN = "com.rustronaut.client"
MANAGED_PREFERENCES = Path("/Library/Managed Preferences")


class MacManagedSource:
    """Reads the device-level then the user-level managed preferences plist."""

    def __init__(
        self,
        *,
        root: Path = MANAGED_PREFERENCES,
        user: str | None = None,
        domain: str = DOMAIN,
        owners: frozenset[int] | None = None,
    ) -> None:
        self.root = root
        self.user = user if user is not None else _current_user()
        self.domain = domain
        self.owners = trusted_owners() if owners is None else owners

    def files(self) -> list[Path]:
        """Device-level plist, then the user's (increasing precedence)."""
        name = f"{self.domain}.plist"
        out = [self.root / name]
        if self.user:
            out.append(self.root / self.user / name)
        return out

    def describe(self) -> str:
        """The plists read, in order."""
        return " and ".join(str(p) for p in self.files())

    def read(self) -> Sequence[ManagedLayer]:
        """One layer per existing plist; problems for untrusted, unreadable or malformed ones."""
        layers = []
        for path in self.files():
            problem = check_dir(path.parent, self.owners)
            if problem is not None:
                layers.append(ManagedLayer(origin=str(path.parent), problems=(problem,)))
                continue
            data, problem = read_managed_file(path, self.owners)
            if problem is not None:
                layers.append(ManagedLayer(origin=str(path), problems=(problem,)))
            elif data is not None:
                layers.append(parse_plist_layer(str(path), data))
        return layers

    def fingerprint(self) -> Hashable:
        """Changes when a plist or its folder is added, removed, replaced, modified,
        ``chmod``-ed or ``chown``-ed."""
        files = self.files()
        return stat_token([*dict.fromkeys(p.parent for p in files), *files])


def _current_user() -> str:
    """The account name of this process's uid, or "" (device-level only) when unknown.

    From the password database by uid: ``USER``/``LOGNAME`` are the user's to set, and
    naming another account's folder would apply that account's (weaker) settings.
    """
    try:
        import pwd
    except ImportError:  # not a POSIX system: no per-user managed preferences
        return ""
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return ""
    # A name that is not one plain path component cannot be a managed preferences folder.
    return "" if not name or name in (".", "..") or "/" in name or "\x00" in name else name


def parse_plist_layer(origin: str, data: bytes) -> ManagedLayer:
    """Parse a managed preferences plist (XML or binary) holding a dictionary."""
    try:
        doc = plistlib.loads(data)
    except Exception as exc:  # plistlib raises several unrelated types on bad input
        return ManagedLayer(
            origin=origin,
            problems=(f"{origin}: not a valid property list ({type(exc).__name__}) — rejected",),
        )
    if not isinstance(doc, dict):
        return ManagedLayer(
            origin=origin,
            problems=(f"{origin}: expected a dictionary of settings, got {type(doc).__name__}",),
        )
    # macOS and some MDMs add bookkeeping keys (PayloadUUID, …) to managed plists.
    # Only those (``Payload`` followed by a capital letter, as Apple names them) are
    # skipped; every other key is checked against the model.
    values = {str(k): v for k, v in doc.items() if not _is_payload_key(str(k))}
    return ManagedLayer(origin=origin, values=values)


def _is_payload_key(key: str) -> bool:
    return key.startswith("Payload") and key[7:8].isupper()
