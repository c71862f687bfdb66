"""WireGuard backends behind one small interface, chosen at run time by a factory.

Each platform has its own module (``wgquick``: Linux wg-quick; ``networkmanager``: nmcli;
``windows``: WireGuard for Windows; ``macos``: wg-quick with the package's own wireguard-go). A
backend is synchronous and blocking (the helper calls it from a worker thread), takes an
injected :class:`~wg_backends.runner.CommandRunner`, and implements
:class:`WireGuardBackend`. :func:`select_backend` imports only the candidate modules of
the current platform (lazily) and returns the best available one, in rank order.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Protocol, runtime_checkable

from wg_backends.errors import BackendUnavailable
from wg_backends.runner import CommandRunner, SubprocessRunner
from wg_backends.spec import TunnelSpec
from wg_backends.status import TunnelStatus

__all__ = ["RANKING", "WireGuardBackend", "backend_class", "select_backend"]


@runtime_checkable
class WireGuardBackend(Protocol):
    """What every backend offers. All methods block; none is thread-safe per interface.

    - ``available()``: whether the tools exist and can be used here; never raises.
    - ``up(spec)``: bring the tunnel up, all-or-nothing: on any failure whatever it made is
      torn down before :class:`~wg_backends.errors.BackendError` is raised. Refuses (with
      ``TunnelStateError``) an interface name that already exists.
    - ``update(spec)``: apply a changed spec to the tunnel that is up under
      ``spec.interface`` *without* restarting it (hitless: peers through ``wg syncconf``,
      routes, addresses, MTU and DNS diffed in place), and return its status. The
      handshake of a kept peer survives. Raises ``TunnelStateError`` when no tunnel of
      that name is up (use ``up``), :class:`~wg_backends.errors.SpecError` for an invalid
      spec, ``BackendError`` when applying failed (what was changed is rolled back as far
      as the OS allows). Where a change cannot be applied in place (documented per
      backend, e.g. wg-quick between a split and a full tunnel) it falls back to ``down``
      + ``up``.
    - ``down(interface)``: remove the tunnel, its routes, DNS and config. Idempotent.
    - ``status(interface)``: a :class:`TunnelStatus`; ``up=False`` if there is none.
    """

    name: str

    def available(self) -> bool: ...

    def up(self, spec: TunnelSpec) -> None: ...

    def update(self, spec: TunnelSpec) -> TunnelStatus: ...

    def down(self, interface: str) -> None: ...

    def status(self, interface: str) -> TunnelStatus: ...


# Per platform, best first: module and class name, imported only when considered.
RANKING: dict[str, tuple[tuple[str, str, str], ...]] = {
    "linux": (
        ("wg-quick", "wg_backends.backends.wgquick", "WgQuickBackend"),
        ("networkmanager", "wg_backends.backends.networkmanager", "NetworkManagerBackend"),
    ),
    "darwin": (("macos", "wg_backends.backends.macos", "MacOSBackend"),),
    "win32": (("windows", "wg_backends.backends.windows", "WindowsBackend"),),
}


def backend_class(name: str) -> type[WireGuardBackend]:
    """The backend class registered as ``name`` on any platform. Raises ``KeyError``."""
    for entries in RANKING.values():
        for key, module, cls in entries:
            if key == name:
                found: type[WireGuardBackend] = getattr(importlib.import_module(module), cls)
                return found
    raise KeyError(name)


def select_backend(
    preferred: str | None = None,
    *,
    runner: CommandRunner | None = None,
    config_dir: Path | None = None,
    platform: str = sys.platform,
) -> WireGuardBackend:
    """Return the best available backend for ``platform`` (``preferred`` first if given).

    Raises :class:`BackendUnavailable` naming what was tried. Blocks briefly (probes tools).
    """
    run = runner or SubprocessRunner()
    entries = list(RANKING.get(platform, ()))
    if preferred is not None:
        entries.sort(key=lambda e: e[0] != preferred)
    tried = []
    for key, module, cls in entries:
        klass = getattr(importlib.import_module(module), cls)
        backend: WireGuardBackend = (
            klass(run) if config_dir is None else klass(run, config_dir=config_dir)
        )
        if backend.available():
            return backend
        tried.append(key)
    raise BackendUnavailable(
        f"no WireGuard backend available on {platform} (tried: {', '.join(tried) or 'none'})"
    )
