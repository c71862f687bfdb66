"""macOS managed settings: the managed preferences plists of ``com.rustronaut.client``.

An MDM profile (see ``installers/mdm/macos``) makes macOS write
``/Library/Managed Preferences/com.rustronaut.client.plist`` (device) and
``/Library/Managed Preferences/<user>/com.rustronaut.client.plist`` (user). Both are read
with ``plistlib`` (XML or binary); the user-level file applies on top of the device one,
as macOS itself orders forced preferences.
"""

from __future__ import annotations

import getpass
import plistlib
from collections.abc import Hashable, Sequence
from pathlib import Path

from core.settings.managed import ManagedLayer
from core.settings.managed._files import read_managed_file, stat_token

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
    ) -> None:
        self.root = root
        self.user = user if user is not None else _current_user()
        self.domain = domain

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
        """One layer per existing plist; problems for unreadable or malformed ones."""
        layers = []
        for path in self.files():
            data, problem = read_managed_file(path)
            if problem is not None:
                layers.append(ManagedLayer(origin=str(path), problems=(problem,)))
            elif data is not None:
                layers.append(parse_plist_layer(str(path), data))
        return layers

    def fingerprint(self) -> Hashable:
        """Changes when a plist is added, removed, replaced or modified."""
        return stat_token(self.files())


def _current_user() -> str:
    """The login name, or "" (device-level only) when the OS cannot tell."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


def parse_plist_layer(origin: str, data: bytes) -> ManagedLayer:
    """Parse a managed preferences plist (XML or binary) holding a dictionary."""
    try:
        doc = plistlib.loads(data)
    except Exception as exc:  # plistlib raises several unrelated types on bad input
        return ManagedLayer(
            origin=origin, problems=(f"{origin}: not a valid property list ({exc}) — ignored",)
        )
    if not isinstance(doc, dict):
        return ManagedLayer(
            origin=origin,
            problems=(f"{origin}: expected a dictionary of settings, got {type(doc).__name__}",),
        )
    # macOS and some MDMs add bookkeeping keys (PayloadUUID, …) to managed plists.
    values = {str(k): v for k, v in doc.items() if not str(k).startswith("Payload")}
    return ManagedLayer(origin=origin, values=values)
