"""Linux backend: ``wg-quick`` (kernel WireGuard, or ``wireguard-go`` in user space).

Configs live in a root-owned directory (default ``/run/rustronaut/tunnels``: tmpfs, gone
after a reboot like the interfaces themselves — and with the runtime directory when
systemd restarts the helper). ``wg-quick`` sets addresses, routes, MTU and DNS (through
``resolvconf``) and undoes them on ``down``. Because ``wg-quick down`` needs both the
config and the live interface, :meth:`WgQuickBackend.purge` undoes the same things from
the interface name and the recorded fwmark table alone: the resolvconf record
(``<prefix><if>``), the interface, the ``ip rule``s of the table (``not fwmark T
lookup T`` and, when no other wg-quick full tunnel is left, ``suppress_prefixlength
0``), and the nft tables ``ip/ip6 wg-quick-<if>``. The macOS backend reuses this class
with Homebrew paths.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from pathlib import Path

from wg_backends.errors import BackendError, CommandError, TunnelStateError
from wg_backends.render import remove_config, write_config
from wg_backends.runner import CommandRunner
from wg_backends.spec import TunnelSpec
from wg_backends.status import TunnelStatus, parse_wg_dump

__all__ = ["DEFAULT_CONFIG_DIR", "WgQuickBackend"]

DEFAULT_CONFIG_DIR = Path("/run/rustronaut/tunnels")
RESOLVCONF_ORDER = Path("/etc/resolvconf/interface-order")
_PREFIX_LINE = re.compile(r"([A-Za-z0-9-]+)\*")


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
        else:  # the config is gone (or the interface): undo what wg-quick did without it
            self.purge(interface)
        with contextlib.suppress(OSError):
            remove_config(self.config_dir, interface)

    def routing_table(self, interface: str) -> int | None:
        """wg-quick's fwmark routing table of a full tunnel (``None`` otherwise). Never raises."""
        res = self._run([self._wg, "show", interface, "fwmark"], check=False, timeout=10)
        value = res.stdout.strip()
        if res.returncode != 0 or not value or value == "off":
            return None
        try:
            return int(value, 0)
        except ValueError:
            return None

    def _resolvconf_names(self, interface: str) -> list[str]:
        # wg-quick names its record "<prefix><if>", the prefix being the first "name*"
        # line of resolvconf's interface-order (Debian: "tun."); try that and the bare name.
        names = [interface]
        with contextlib.suppress(OSError):
            for line in RESOLVCONF_ORDER.read_text().splitlines():
                m = _PREFIX_LINE.fullmatch(line.strip())
                if m:
                    names.insert(0, f"{m.group(1)}.{interface}".replace("..", "."))
                    break
        return names

    def purge(self, interface: str, table: int | None = None) -> None:
        """Remove the tunnel and everything wg-quick made for it, from the name and the
        recorded fwmark ``table`` alone (no config needed). Idempotent; best effort: each
        step runs even if an earlier one failed or its tool is missing. Raises nothing.
        """
        with contextlib.suppress(CommandError):
            if self.status(interface).up:
                table = self.routing_table(interface) or table
                path = self._conf(interface)
                if path.exists():  # the normal way first, while it can still work
                    self._run([self._wg_quick, "down", str(path)], check=False, env=self._env)
        for name in self._resolvconf_names(interface):
            with contextlib.suppress(CommandError):  # -f: no error for a missing record
                self._run(["resolvconf", "-d", name, "-f"], check=False, env=self._env)
        with contextlib.suppress(CommandError):
            if self._exists(interface):
                self._run(["ip", "link", "delete", "dev", interface], check=False)
        if table is not None:
            for proto in ("-4", "-6"):
                with contextlib.suppress(CommandError):
                    self._delete_rules(proto, table)
        with contextlib.suppress(CommandError):
            listed = self._run(["nft", "list", "tables"], check=False, timeout=10).stdout
            for family in ("ip", "ip6"):
                if f"table {family} wg-quick-{interface}" in listed.splitlines():
                    self._run(
                        ["nft", "delete", "table", family, f"wg-quick-{interface}"], check=False
                    )
        with contextlib.suppress(OSError):
            remove_config(self.config_dir, interface)

    def _delete_rules(self, proto: str, table: int) -> None:
        for _ in range(8):  # wg-quick adds one per full-tunnel route; bounded, never a spin
            rules = self._run(["ip", proto, "rule", "show"], check=False, timeout=10).stdout
            if f"lookup {table}" not in rules:
                break
            self._run(["ip", proto, "rule", "delete", "table", str(table)], check=False)
        rules = self._run(["ip", proto, "rule", "show"], check=False, timeout=10).stdout
        if "not from all fwmark" in rules:
            return  # another wg-quick full tunnel still needs the shared rule
        for _ in range(8):
            if "from all lookup main suppress_prefixlength 0" not in rules:
                break
            self._run(
                ["ip", proto, "rule", "delete", "table", "main", "suppress_prefixlength", "0"],
                check=False,
            )
            rules = self._run(["ip", proto, "rule", "show"], check=False, timeout=10).stdout

    def status(self, interface: str) -> TunnelStatus:
        """``wg show <if> dump`` parsed; ``up=False`` if there is no such WireGuard interface."""
        res = self._run([self._wg, "show", interface, "dump"], check=False, timeout=10)
        if res.returncode != 0:
            return TunnelStatus(interface=interface, up=False, backend=self.name)
        return parse_wg_dump(res.stdout, interface=interface, backend=self.name)
