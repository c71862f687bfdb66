"""Linux backend: ``wg-quick`` (kernel WireGuard, or ``wireguard-go`` in user space).

Configs live in a root-owned directory (default ``/run/rustronaut/tunnels``: tmpfs, gone
after a reboot like the interfaces themselves). ``wg-quick`` sets addresses, routes, MTU
and DNS (through ``resolvconf``) and undoes them on ``down``. The macOS backend reuses this
class with Homebrew paths.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

from wg_backends.errors import BackendError, CommandError, TunnelStateError
from wg_backends.render import remove_config, write_config
from wg_backends.runner import CommandRunner
from wg_backends.spec import TunnelSpec
from wg_backends.status import TunnelStatus, parse_wg_dump

__all__ = ["DEFAULT_CONFIG_DIR", "WgQuickBackend"]

DEFAULT_CONFIG_DIR = Path("/run/rustronaut/tunnels")


class WgQuickBackend:
    """wg-quick on Linux. See :class:`~wg_backends.backends.WireGuardBackend` for contracts."""

    name = "wg-quick"

    def __init__(
        self,
        runner: CommandRunner,
        *,
        config_dir: Path = DEFAULT_CONFIG_DIR,
        wg_quick: str = "wg-quick",
        wg: str = "wg",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._run = runner
        self.config_dir = config_dir
        self._wg_quick = wg_quick
        self._wg = wg
        self._env = dict(env) if env else None

    def available(self) -> bool:
        """True if ``wg-quick`` and ``wg`` run. Never raises."""
        try:
            self._run([self._wg, "--version"], timeout=10)
            res = self._run([self._wg_quick], check=False, timeout=10)
        except CommandError:
            return False
        return "Usage:" in res.stderr or "Usage:" in res.stdout

    def _exists(self, interface: str) -> bool:
        res = self._run(["ip", "link", "show", "dev", interface], check=False, timeout=10)
        return res.returncode == 0

    def _conf(self, interface: str) -> Path:
        return self.config_dir / f"{interface}.conf"

    def up(self, spec: TunnelSpec) -> None:
        """Write the config and run ``wg-quick up``; all-or-nothing (see the protocol)."""
        spec.validate(require_private_key=True)
        if self._exists(spec.interface):
            raise TunnelStateError(f"interface {spec.interface} already exists")
        try:
            path = write_config(spec, self.config_dir)
        except OSError as exc:
            raise BackendError(f"cannot write the tunnel config: {exc}") from None
        try:
            self._run([self._wg_quick, "up", str(path)], env=self._env)
        except CommandError:
            self._teardown(spec.interface)
            raise

    def _teardown(self, interface: str) -> None:
        path = self._conf(interface)
        if path.exists():
            self._run([self._wg_quick, "down", str(path)], check=False, env=self._env)
        if self._exists(interface):
            self._run(["ip", "link", "delete", "dev", interface], check=False)
        with contextlib.suppress(OSError):
            remove_config(self.config_dir, interface)

    def down(self, interface: str) -> None:
        """Run ``wg-quick down`` and remove the config. Idempotent.

        Without a config (lost after a crash) a WireGuard interface of that name is deleted
        directly, which also removes its routes. Raises :class:`CommandError` if
        ``wg-quick down`` fails while the interface exists.
        """
        path = self._conf(interface)
        if path.exists() and self.status(interface).up:
            self._run([self._wg_quick, "down", str(path)], env=self._env)
        elif self.status(interface).up:
            self._run(["ip", "link", "delete", "dev", interface])
        with contextlib.suppress(OSError):
            remove_config(self.config_dir, interface)

    def status(self, interface: str) -> TunnelStatus:
        """``wg show <if> dump`` parsed; ``up=False`` if there is no such WireGuard interface."""
        res = self._run([self._wg, "show", interface, "dump"], check=False, timeout=10)
        if res.returncode != 0:
            return TunnelStatus(interface=interface, up=False, backend=self.name)
        return parse_wg_dump(res.stdout, interface=interface, backend=self.name)
