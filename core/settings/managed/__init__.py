"""Managed (MDM) settings readers: one small interface, one module per OS.

A :class:`ManagedSource` reads what the organization deployed — ``linux`` (JSON files
under ``/etc/rustronaut``), ``windows`` (``HKLM\\SOFTWARE\\Policies\\Rustronaut\\Client``)
or ``macos`` (managed preferences plists) — and returns :class:`ManagedLayer` objects
holding plain values, lowest precedence first. Readers never validate against the model
and never raise for bad input: unreadable or malformed places become ``problems`` of a
layer, and ``core.settings.loader`` validates every key. :func:`default_sources` picks the
reader for the running OS (lazy imports, so ``winreg`` is touched only on Windows).
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["ManagedLayer", "ManagedSource", "default_sources"]


@dataclass(frozen=True, slots=True)
class ManagedLayer:
    """What one managed place (a file, a registry key) holds.

    ``values`` maps key names to plain values (bool, int, str, list of str, or whatever
    the place held — the loader rejects wrong types). ``notes`` adds a per-key hint to
    error messages (e.g. the registry type). ``int_bools`` says 0/1 integers stand for
    booleans here (registry DWORDs).
    """

    origin: str
    values: Mapping[str, object] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    notes: Mapping[str, str] = field(default_factory=dict)
    int_bools: bool = False


class ManagedSource(Protocol):
    """A reader of managed settings. Implementations are cheap to build and stateless."""

    def describe(self) -> str:
        """Where this source reads from, for people (``rustronaut config path``)."""
        ...

    def read(self) -> Sequence[ManagedLayer]:
        """Read every layer, lowest precedence first. Never raises for bad input."""
        ...

    def fingerprint(self) -> Hashable:
        """A cheap token that changes whenever ``read`` could return something new."""
        ...


def default_sources() -> tuple[ManagedSource, ...]:
    """The managed sources of the running OS (empty on an unknown OS)."""
    platform: str = sys.platform  # a plain str, so type checkers keep every branch
    if platform.startswith("win"):
        from core.settings.managed.windows import WindowsManagedSource

        return (WindowsManagedSource(),)
    if platform == "darwin":
        from core.settings.managed.macos import MacManagedSource

        return (MacManagedSource(),)
    if platform.startswith("linux") or "bsd" in platform:
        from core.settings.managed.linux import LinuxManagedSource

        return (LinuxManagedSource(),)
    return ()
