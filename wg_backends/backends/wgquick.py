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
with the package's own tools.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec

from wg_backends.backends._diff import (
    allowed_nets,
    config_lines,
    full_families,
    ip_proto,
    route_order,
    strip_config,
)
from wg_backends.dns import (
    DnsPaths,
    DnsRecord,
    apply_split_dns,
    load_record,
    record_key,
    remove_record,
    revert_interface,
    revert_recorded,
    save_record,
    spec_key,
)
from wg_backends.errors import BackendError, CommandError, TunnelStateError
from wg_backends.render import (
    remove_config,
    render_wg_quick,
    render_wg_set,
    write_config,
    write_private_file,
)
from wg_backends.runner import CommandRunner
from wg_backends.spec import IPNetwork, TunnelSpec
from wg_backends.status import TunnelStatus, parse_wg_dump

__all__ = ["DEFAULT_CONFIG_DIR", "WgQuickBackend"]

DEFAULT_CONFIG_DIR = Path("/run/rustronaut/tunnels")
RESOLVCONF_ORDER = Path("/etc/resolvconf/interface-order")
_PREFIX_LINE = re.compile(r"([A-Za-z0-9-]+)\*")
_ADDR = re.compile(r"\sinet6?\s+(\S+)")
_MTU = re.compile(r"\smtu\s+(\d+)")


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
        dns_platform: str = "linux",
        dns_paths: DnsPaths | None = None,
    ) -> None:
        self._run = runner
        self.config_dir = config_dir
        self._wg_quick = wg_quick
        self._wg = wg
        self._env = dict(env) if env else None
        self._dns_platform = dns_platform
        self._dns_paths = dns_paths or DnsPaths()

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
            self._apply_dns(spec)
        except (BackendError, OSError) as exc:
            self._teardown(spec.interface)
            if isinstance(exc, OSError):
                raise BackendError(f"cannot record the tunnel's DNS: {exc}") from None
            raise

    def dns_record(self, interface: str) -> DnsRecord | None:
        """What split DNS was applied for ``interface`` (``None``: none). Never raises."""
        return load_record(self.config_dir, interface)

    def _apply_dns(self, spec: TunnelSpec) -> None:
        """Split DNS for the OS (after ``wg-quick up``, the link must exist); recorded."""
        if not spec.suffixes():
            return
        record = apply_split_dns(
            self._run, spec, platform=self._dns_platform, paths=self._dns_paths
        )
        try:
            save_record(self.config_dir, record)
        except OSError:
            revert_recorded(self._run, record, paths=self._dns_paths)
            raise

    def _revert_dns(self, interface: str) -> None:
        record = load_record(self.config_dir, interface)
        if record is not None:
            revert_recorded(self._run, record, paths=self._dns_paths)
        remove_record(self.config_dir, interface)

    def update(self, spec: TunnelSpec) -> TunnelStatus:
        """Apply ``spec`` to the running tunnel in place (see the protocol); its status.

        Peers, keys and allowed IPs: ``wg syncconf`` with the stripped config (0600, in the
        config directory, removed after), carrying the live listen port and fwmark, which
        ``syncconf`` would otherwise reset. Then routes (``ip route replace`` for new
        allowed IPs, ``ip route del`` for removed ones), addresses and MTU are changed in
        place and the config file is rewritten so that ``down`` undoes the new state.
        Split DNS (``dns_suffixes``) is switched first when servers or suffixes changed:
        the old record reverted, the new applied and recorded (the old one back on
        failure).

        Falls back to ``down`` + ``up`` (the handshake restarts) only when the change
        cannot be made in place: a family's ``/0`` added or removed (wg-quick's full-tunnel
        policy routing, fwmark table and nft rules are made by ``up`` only), or the global
        ``DNS`` of a spec without ``dns_suffixes`` changed (wg-quick feeds it to
        ``resolvconf`` itself). On a failure after ``syncconf`` the previous config is
        synced back and the route changes undone (best effort) before the error is raised.
        """
        spec.validate(require_private_key=True)
        interface = spec.interface
        before = self.status(interface)
        path = self._conf(interface)
        if not before.up or not path.exists():
            raise TunnelStateError(f"no tunnel {interface} is up here; bring it up instead")
        try:
            old_text = path.read_text(encoding="ascii")
        except (OSError, UnicodeError) as exc:
            raise BackendError(f"cannot read the tunnel config: {exc}") from None
        old_nets = allowed_nets([ip for p in before.peers for ip in p.allowed_ips])
        new_nets = {n for p in spec.peers for n in p.networks()}
        new_text = render_wg_quick(spec)
        restart = ("DNS", *self._restart_keys)
        if full_families(old_nets) != full_families(new_nets) or config_lines(
            old_text, *restart
        ) != config_lines(new_text, *restart):
            self.down(interface)
            self.up(spec)
            return self.status(interface)
        old_dns = load_record(self.config_dir, interface)
        dns_changed = record_key(old_dns) != spec_key(spec)
        if dns_changed:
            self._switch_dns(interface, old_dns, spec)
        try:
            device = self._device(interface)
            fwmark = self._fwmark(device)
            wg_text = render_wg_set(spec, listen_port=before.listen_port, fwmark=fwmark)
            self._syncconf(device, wg_text)
        except BackendError:
            if dns_changed:
                self._restore_dns(interface, old_dns, spec)
            raise
        added = sorted((n for n in new_nets - old_nets if n.prefixlen), key=route_order)
        keep = {i.network for i in spec.interfaces()}
        removed = sorted(
            (n for n in old_nets - new_nets if n.prefixlen and n not in keep), key=route_order
        )
        done: list[IPNetwork] = []
        try:
            for net in added:
                self._run(self._route_add(net, device))
                done.append(net)
            for net in removed:  # gone already (a covering route was used) is fine
                self._run(self._route_del(net, device), check=False)
            self._set_link(device, spec)
            write_private_file(self.config_dir, f"{interface}.conf", new_text)
        except (BackendError, OSError) as exc:
            self._rollback(device, old_text, before.listen_port, fwmark, done, removed)
            if dns_changed:
                self._restore_dns(interface, old_dns, spec)
            if isinstance(exc, OSError):
                raise BackendError(f"cannot write the tunnel config: {exc}") from None
            raise
        return self.status(interface)

    # Hooks of ``update`` (macOS overrides them): the device ``wg``/routes act on, its
    # fwmark, the route commands, addresses/MTU, and the config keys that need a restart.
    _restart_keys: tuple[str, ...] = ()

    def _device(self, interface: str) -> str:
        return interface

    def _fwmark(self, device: str) -> int | None:
        return self.routing_table(device)

    def _route_add(self, net: IPNetwork, device: str) -> list[str]:
        return ["ip", ip_proto(net), "route", "replace", str(net), "dev", device]

    def _route_del(self, net: IPNetwork, device: str) -> list[str]:
        return ["ip", ip_proto(net), "route", "del", str(net), "dev", device]

    def _set_link(self, device: str, spec: TunnelSpec) -> None:
        self._set_addresses(device, spec)
        if spec.mtu is not None and self._mtu(device) != spec.mtu:
            self._run(["ip", "link", "set", "mtu", str(spec.mtu), "up", "dev", device])

    def _switch_dns(self, interface: str, old: DnsRecord | None, spec: TunnelSpec) -> None:
        """Replace the OS split DNS of ``old`` by ``spec``'s; on failure the old is back."""
        if old is not None:
            revert_recorded(self._run, old, paths=self._dns_paths)
        remove_record(self.config_dir, interface)
        try:
            self._apply_dns(spec)
        except (BackendError, OSError) as exc:
            self._restore_dns(interface, old, spec)
            if isinstance(exc, OSError):
                raise BackendError(f"cannot record the tunnel's DNS: {exc}") from None
            raise

    def _restore_dns(self, interface: str, old: DnsRecord | None, spec: TunnelSpec) -> None:
        """Best effort: the split DNS of ``old`` again instead of whatever is there now."""
        self._revert_dns(interface)
        if old is None or old.method == "none":
            return
        with contextlib.suppress(BackendError, OSError, ValueError):
            self._apply_dns(
                msgspec.structs.replace(
                    spec, dns=old.servers, dns_suffixes=old.applied + old.skipped
                )
            )

    def _syncconf(self, interface: str, text: str) -> None:
        # The private runtime directory, never /tmp: the file holds the private key.
        name = f".{interface}.sync.{os.getpid()}.conf"
        try:
            tmp = write_private_file(self.config_dir, name, text)
        except OSError as exc:
            raise BackendError(f"cannot write the tunnel config: {exc}") from None
        try:
            self._run([self._wg, "syncconf", interface, str(tmp)], env=self._env)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _rollback(
        self,
        interface: str,
        old_text: str,
        listen_port: int | None,
        fwmark: int | None,
        added: Sequence[IPNetwork],
        removed: Sequence[IPNetwork],
    ) -> None:
        """Best effort: the old peers back (from our own old config), route changes undone."""
        with contextlib.suppress(BackendError, ValueError):
            self._syncconf(interface, strip_config(old_text, listen_port, fwmark))
        for net in added:
            self._run(self._route_del(net, interface), check=False)
        for net in removed:
            self._run(self._route_add(net, interface), check=False)

    def _set_addresses(self, interface: str, spec: TunnelSpec) -> None:
        res = self._run(["ip", "-o", "address", "show", "dev", interface], timeout=10)
        live = set()
        for m in _ADDR.finditer(res.stdout):
            with contextlib.suppress(ValueError):
                live.add(ipaddress.ip_interface(m.group(1)))
        want = set(spec.interfaces())
        for addr in sorted(want - live, key=str):  # add first: never without an address
            self._run(["ip", ip_proto(addr), "address", "add", str(addr), "dev", interface])
        for addr in sorted(live - want, key=str):
            if addr.is_link_local:
                continue
            self._run(["ip", ip_proto(addr), "address", "del", str(addr), "dev", interface])

    def _mtu(self, interface: str) -> int | None:
        res = self._run(["ip", "-o", "link", "show", "dev", interface], check=False, timeout=10)
        m = _MTU.search(res.stdout)
        return int(m.group(1)) if m else None

    def _teardown(self, interface: str) -> None:
        self._revert_dns(interface)
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
        self._revert_dns(interface)
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
        self._revert_dns(interface)  # split DNS from its record, then from the name alone
        revert_interface(
            self._run,
            interface,
            platform=self._dns_platform,
            paths=self._dns_paths,
            resolvconf=False,  # done above, under both of wg-quick's names
        )
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
