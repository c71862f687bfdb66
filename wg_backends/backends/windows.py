"""Windows backend: WireGuard for Windows' tunnel services.

``wireguard.exe /installtunnelservice <C:\\path\\name.conf>`` installs and starts the
service ``WireGuardTunnel$<name>`` (the config's file name is the tunnel name);
``/uninstalltunnelservice <name>`` stops and removes it together with its adapter, routes
and DNS. Status comes from ``sc query`` (service state) and ``wg.exe show <name> dump``
(same format as everywhere).

``update`` is hitless: the tunnel service may be "queried and modified at runtime using
the standard wg(8)" (WireGuard for Windows, docs/enterprise.md), so peers change with
``wg.exe syncconf <name> <file>`` and routes with ``New-NetRoute``/``Remove-NetRoute`` on
the tunnel's adapter (the service sets its routes only at start); the config file is
rewritten so a service restart comes back in the new state. ``wireguard.exe /update`` is
the app's own updater, not a tunnel verb. Changes the service makes only at start —
addresses, MTU, its global ``DNS``, a ``/0`` (its kill-switch firewall) — fall back to
``down`` + ``up``. Split DNS (``dns_suffixes``) is NRPT rules (:mod:`wg_backends.dns`).

The config directory must be ACL'd to Administrators and
SYSTEM only (the installer does that; see resources/helper/windows-service.md).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec

from wg_backends.backends._diff import (
    allowed_nets,
    config_lines,
    full_families,
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
from wg_backends.dns.nrpt import powershell
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

__all__ = ["WindowsBackend", "parse_sc_query", "route_script"]

PROGRAM_DIR = r"C:\Program Files\WireGuard"
DEFAULT_CONFIG_DIR = Path(r"C:\ProgramData\Rustronaut\tunnels")
_STATE = re.compile(r"^\s*STATE\s*:\s*\d+\s+(\w+)", re.MULTILINE)
SERVICE_MISSING = 1060  # ERROR_SERVICE_DOES_NOT_EXIST, sc's exit code


def route_script(name: str, add: Sequence[IPNetwork], remove: Sequence[IPNetwork]) -> str:
    """PowerShell adding on-link routes ``add`` to the adapter ``name`` and removing
    ``remove`` (gone already is fine). Values are validated; quoted anyway."""
    alias = "'" + name.replace("'", "''") + "'"
    parts = ["$ErrorActionPreference = 'Stop'"]
    parts += [
        f"New-NetRoute -InterfaceAlias {alias} -DestinationPrefix '{net}' -RouteMetric 0 "
        "-PolicyStore ActiveStore | Out-Null"
        for net in add
    ]
    parts += [
        f"Remove-NetRoute -InterfaceAlias {alias} -DestinationPrefix '{net}' -Confirm:$false "
        "-ErrorAction SilentlyContinue"
        for net in remove
    ]
    return "; ".join(parts)


def parse_sc_query(text: str) -> str | None:
    """The ``STATE`` word (``RUNNING``, ``STOPPED``, ``START_PENDING``…) of ``sc query``."""
    m = _STATE.search(text)
    return m.group(1) if m else None


class WindowsBackend:
    """WireGuard for Windows. See :class:`~wg_backends.backends.WireGuardBackend`."""

    name = "windows"

    def __init__(
        self,
        runner: CommandRunner,
        *,
        config_dir: Path = DEFAULT_CONFIG_DIR,
        program_dir: str = PROGRAM_DIR,
        start_timeout: float = 10.0,
        dns_paths: DnsPaths | None = None,
    ) -> None:
        self._run = runner
        self._dns_paths = dns_paths or DnsPaths()
        self.config_dir = config_dir
        self._wireguard = f"{program_dir}\\wireguard.exe"
        self._wg = f"{program_dir}\\wg.exe"
        self._start_timeout = start_timeout

    @staticmethod
    def service(interface: str) -> str:
        """The Windows service name of a tunnel."""
        return f"WireGuardTunnel${interface}"

    def available(self) -> bool:
        """True if ``wg.exe`` runs. Never raises."""
        try:
            self._run([self._wg, "--version"], timeout=10)
        except CommandError:
            return False
        return True

    def _service_state(self, interface: str) -> str | None:
        res = self._run(["sc", "query", self.service(interface)], check=False, timeout=10)
        if res.returncode != 0:
            return None
        return parse_sc_query(res.stdout)

    def up(self, spec: TunnelSpec) -> None:
        """Install the tunnel service and wait until it runs; all-or-nothing."""
        spec.validate(require_private_key=True)
        if self._service_state(spec.interface) is not None:
            raise TunnelStateError(f"tunnel service {self.service(spec.interface)} exists")
        try:
            path = write_config(spec, self.config_dir)
        except OSError as exc:
            raise BackendError(f"cannot write the tunnel config: {exc}") from None
        try:
            self._run([self._wireguard, "/installtunnelservice", str(path)])
            deadline = time.monotonic() + self._start_timeout
            while (state := self._service_state(spec.interface)) != "RUNNING":
                if state in (None, "STOPPED") or time.monotonic() > deadline:
                    raise BackendError(
                        f"tunnel service {self.service(spec.interface)} did not start ({state})"
                    )
                time.sleep(0.2)
            self._apply_dns(spec)
        except (BackendError, OSError) as exc:
            self._revert_dns(spec.interface)
            self._run([self._wireguard, "/uninstalltunnelservice", spec.interface], check=False)
            with contextlib.suppress(OSError):
                remove_config(self.config_dir, spec.interface)
            if isinstance(exc, OSError):
                raise BackendError(f"cannot record the tunnel's DNS: {exc}") from None
            raise

    def dns_record(self, interface: str) -> DnsRecord | None:
        """The NRPT split DNS applied for ``interface`` (``None``: none). Never raises."""
        return load_record(self.config_dir, interface)

    def _apply_dns(self, spec: TunnelSpec) -> None:
        if not spec.suffixes():
            return
        record = apply_split_dns(self._run, spec, platform="win32", paths=self._dns_paths)
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
        """Apply ``spec`` to the running tunnel service in place (see the module); status.

        Raises ``TunnelStateError`` when no such tunnel of ours runs, ``SpecError`` for a
        bad spec, ``BackendError`` when a step fails (the old peers, routes, config file
        and NRPT rules are put back first, best effort).
        """
        spec.validate(require_private_key=True)
        name = spec.interface
        before = self.status(name)
        path = self.config_dir / f"{name}.conf"
        if not before.up or not path.exists():
            raise TunnelStateError(f"no tunnel {name} is up here; bring it up instead")
        try:
            old_text = path.read_text(encoding="ascii")
        except (OSError, UnicodeError) as exc:
            raise BackendError(f"cannot read the tunnel config: {exc}") from None
        new_text = render_wg_quick(spec)
        old_nets = allowed_nets([ip for p in before.peers for ip in p.allowed_ips])
        new_nets = {n for p in spec.peers for n in p.networks()}
        at_start = ("Address", "MTU", "DNS")  # what the service applies only when it starts
        if full_families(old_nets) != full_families(new_nets) or config_lines(
            old_text, *at_start
        ) != config_lines(new_text, *at_start):
            self.down(name)
            self.up(spec)
            return self.status(name)
        old_dns = load_record(self.config_dir, name)
        dns_changed = record_key(old_dns) != spec_key(spec)
        added = sorted((n for n in new_nets - old_nets if n.prefixlen), key=route_order)
        removed = sorted((n for n in old_nets - new_nets if n.prefixlen), key=route_order)
        synced = False
        try:
            self._syncconf(name, render_wg_set(spec, listen_port=before.listen_port))
            synced = True
            if added or removed:
                self._run(powershell(route_script(name, added, removed)), timeout=60)
            write_config(spec, self.config_dir)
            if dns_changed:
                self._revert_dns(name)
                self._apply_dns(spec)
        except (BackendError, OSError) as exc:
            if synced:
                with contextlib.suppress(BackendError, OSError):
                    self._syncconf(name, strip_config(old_text, before.listen_port, None))
                self._run(powershell(route_script(name, removed, added)), check=False)
                with contextlib.suppress(OSError):
                    write_private_file(self.config_dir, f"{name}.conf", old_text)
            if dns_changed:
                self._revert_dns(name)
                if old_dns is not None:
                    with contextlib.suppress(BackendError, OSError):
                        old = msgspec.structs.replace(
                            spec, dns=old_dns.servers, dns_suffixes=old_dns.applied
                        )
                        self._apply_dns(old)
            if isinstance(exc, OSError):
                raise BackendError(f"cannot update the tunnel: {exc}") from None
            raise
        return self.status(name)

    def _syncconf(self, name: str, text: str) -> None:
        # The ACL'd config directory, never %TEMP%: the file holds the private key.
        tmp = write_private_file(self.config_dir, f".{name}.sync.conf", text)
        try:
            self._run([self._wg, "syncconf", name, str(tmp)])
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def down(self, interface: str) -> None:
        """Remove its NRPT rules, uninstall the tunnel service, remove the config.

        Idempotent; the rules are found by their comment even without a record (the
        helper's crash recovery calls this with the name alone).
        """
        if load_record(self.config_dir, interface) is not None:
            self._revert_dns(interface)
        else:  # no record (a crash lost it, or no split DNS): find rules by their comment
            revert_interface(self._run, interface, platform="win32", paths=self._dns_paths)
        if self._service_state(interface) is not None:
            self._run([self._wireguard, "/uninstalltunnelservice", interface])
        with contextlib.suppress(OSError):
            remove_config(self.config_dir, interface)

    def status(self, interface: str) -> TunnelStatus:
        """Service state plus ``wg.exe show <name> dump``; ``up`` only while RUNNING."""
        state = self._service_state(interface)
        if state != "RUNNING":
            return TunnelStatus(interface=interface, up=False, backend=self.name, state=state or "")
        res = self._run([self._wg, "show", interface, "dump"], check=False, timeout=10)
        if res.returncode != 0:
            return TunnelStatus(interface=interface, up=False, backend=self.name, state=state)
        parsed = parse_wg_dump(res.stdout, interface=interface, backend=self.name)
        return TunnelStatus(
            interface=interface,
            up=True,
            backend=self.name,
            public_key=parsed.public_key,
            listen_port=parsed.listen_port,
            peers=parsed.peers,
            state=state,
        )
