"""Linux desktop backend: NetworkManager through ``nmcli``.

``nmcli connection import type wireguard file <dir>/<name>.conf`` creates a connection
named after the file (NetworkManager keeps its own 0600 copy, so ours is removed at once);
it is switched to manual (``connection.autoconnect no``) and activated with
``nmcli connection up``. ``down`` deactivates and deletes it. NetworkManager applies
addresses, routes and DNS itself. Status: the connection's state from the terse listing
``nmcli -t -f NAME,UUID,TYPE,DEVICE,STATE connection show`` plus counters from
``wg show <if> dump`` when ``wg`` is installed.

Split DNS (``dns_suffixes``): the imported config has no ``DNS =`` line; the connection
gets ``ipv4.dns``, ``ipv4.dns-search ~suffix…`` and ``ipv4.dns-priority 50`` (and the
``ipv6.`` ones for IPv6 servers) before activation, so NetworkManager hands them to its
DNS backend as routing-only domains. ``update`` is hitless for peers, allowed IPs and
split DNS (see :meth:`NetworkManagerBackend.update`).
"""

from __future__ import annotations

import contextlib
import re
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
from wg_backends.dns import DnsRecord, load_record, record_key, remove_record, save_record, spec_key
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

__all__ = [
    "NetworkManagerBackend",
    "NmConnection",
    "dns_properties",
    "parse_nmcli_import",
    "parse_nmcli_terse",
]

DEFAULT_CONFIG_DIR = Path("/run/rustronaut/nm-import")
_IMPORTED = re.compile(r"Connection '(?P<name>.*)' \((?P<uuid>[0-9a-f-]{36})\) successfully added")
_LIST_FIELDS = "NAME,UUID,TYPE,DEVICE,STATE"


class NmConnection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One row of ``nmcli -t -f NAME,UUID,TYPE,DEVICE,STATE connection show``."""

    name: str
    uuid: str
    type: str
    device: str
    state: str  # activated, activating, deactivating, or "" when inactive


def _split_terse(line: str) -> list[str]:
    """Split one ``nmcli -t`` line on ':' honouring ``\\:`` and ``\\\\`` escapes."""
    out, cur, i = [], [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            cur.append(line[i + 1])
            i += 2
            continue
        if ch == ":":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def dns_properties(spec: TunnelSpec) -> list[str]:
    """``nmcli connection modify`` arguments for split DNS (empty without suffixes).

    ``~suffix`` entries are routing-only domains (systemd-resolved / dnsmasq); priority
    50 (NetworkManager's VPN default) and never negative, which would make this
    connection's servers exclusive — the global takeover split DNS is meant to avoid.
    """
    if not spec.suffixes():
        return []
    v4 = [str(a) for a in spec.dns_servers() if a.version == 4]
    v6 = [str(a) for a in spec.dns_servers() if a.version == 6]
    search = ",".join(f"~{s}" for s in spec.suffixes())
    props = ["ipv4.dns", ",".join(v4), "ipv4.dns-search", search, "ipv4.dns-priority", "50"]
    if v6:
        props += ["ipv6.dns", ",".join(v6), "ipv6.dns-search", search, "ipv6.dns-priority", "50"]
    return props


def parse_nmcli_terse(text: str) -> tuple[NmConnection, ...]:
    """Parse the terse connection listing. Raises :class:`BackendError` on a malformed row."""
    rows: list[NmConnection] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        f = _split_terse(line)
        if len(f) != 5:
            raise BackendError(f"nmcli: expected 5 fields, got {len(f)} in {line[:80]!r}")
        rows.append(NmConnection(name=f[0], uuid=f[1], type=f[2], device=f[3], state=f[4]))
    return tuple(rows)


def parse_nmcli_import(text: str) -> str:
    """The new connection's UUID from ``nmcli connection import`` output."""
    m = _IMPORTED.search(text)
    if m is None:
        raise BackendError(f"nmcli import: unexpected output {text.strip()[:120]!r}")
    return m.group("uuid")


class NetworkManagerBackend:
    """NetworkManager via nmcli. See :class:`~wg_backends.backends.WireGuardBackend`."""

    name = "networkmanager"

    def __init__(self, runner: CommandRunner, *, config_dir: Path = DEFAULT_CONFIG_DIR) -> None:
        self._run = runner
        self.config_dir = config_dir

    def available(self) -> bool:
        """True if NetworkManager is running (``nmcli -t -f RUNNING general``). Never raises."""
        try:
            res = self._run(["nmcli", "-t", "-f", "RUNNING", "general"], timeout=10)
        except CommandError:
            return False
        return res.stdout.strip() == "running"

    def _find(self, interface: str) -> NmConnection | None:
        res = self._run(["nmcli", "-t", "-f", _LIST_FIELDS, "connection", "show"], timeout=15)
        return next(
            (
                c
                for c in parse_nmcli_terse(res.stdout)
                if c.name == interface and c.type == "wireguard"
            ),
            None,
        )

    def up(self, spec: TunnelSpec) -> None:
        """Import, make manual, activate; all-or-nothing (the connection is deleted on failure)."""
        spec.validate(require_private_key=True)
        if self._find(spec.interface) is not None:
            raise TunnelStateError(f"a NetworkManager connection {spec.interface} exists")
        try:
            path = write_config(spec, self.config_dir)
        except OSError as exc:
            raise BackendError(f"cannot write the tunnel config: {exc}") from None
        uuid: str | None = None
        try:
            res = self._run(
                ["nmcli", "connection", "import", "type", "wireguard", "file", str(path)]
            )
            uuid = parse_nmcli_import(res.stdout)
            self._run(
                [
                    "nmcli", "connection", "modify", "uuid", uuid,
                    "connection.autoconnect", "no", *dns_properties(spec),
                ]
            )  # fmt: skip
            self._run(["nmcli", "connection", "up", "uuid", uuid])
            write_private_file(
                self.config_dir, self._applied(spec.interface).name, render_wg_quick(spec)
            )
            self._record_dns(spec)
        except (BackendError, OSError) as exc:
            if uuid is not None:
                self._run(["nmcli", "connection", "delete", "uuid", uuid], check=False)
            self._forget(spec.interface)
            if isinstance(exc, OSError):
                raise BackendError(f"cannot record the tunnel config: {exc}") from None
            raise
        finally:
            with contextlib.suppress(OSError):
                remove_config(self.config_dir, spec.interface)

    def update(self, spec: TunnelSpec) -> TunnelStatus:
        """Apply ``spec`` to the active connection in place; its status.

        In place: split DNS (``nmcli connection modify`` + ``nmcli device reapply``,
        before the peers change, so NetworkManager's re-sync of the device pushes the
        peers that are live), then peers and allowed IPs with ``wg syncconf`` on the
        device NetworkManager made (live listen port and fwmark kept) and their routes
        with ``ip route replace``/``del``. NetworkManager's stored peers are not edited
        (nmcli has no per-peer properties); the connection lives only while the tunnel
        is up and ``down`` deletes it. Falls back to ``down`` + ``up`` when addresses, MTU,
        global DNS or a ``/0`` change, or the applied config is not on record. Raises
        ``TunnelStateError`` when the connection is not active, ``SpecError``, or
        ``BackendError`` (after putting the old peers and routes back, best effort).
        """
        spec.validate(require_private_key=True)
        name = spec.interface
        conn = self._find(name)
        if conn is None or conn.state != "activated":
            raise TunnelStateError(f"no tunnel {name} is up here; bring it up instead")
        before = self.status(name)
        try:
            old_text: str | None = self._applied(name).read_text(encoding="ascii")
        except (OSError, UnicodeError):
            old_text = None
        new_text = render_wg_quick(spec)
        new_nets = {n for p in spec.peers for n in p.networks()}
        old_nets = allowed_nets([ip for p in before.peers for ip in p.allowed_ips])
        at_start = ("Address", "MTU", "DNS")
        if (
            old_text is None
            or full_families(old_nets) != full_families(new_nets)
            or config_lines(old_text, *at_start) != config_lines(new_text, *at_start)
        ):
            self.down(name)
            self.up(spec)
            return self.status(name)
        if record_key(load_record(self.config_dir, name)) != spec_key(spec):
            self._run(["nmcli", "connection", "modify", "uuid", conn.uuid, *dns_properties(spec)])
            self._run(["nmcli", "device", "reapply", name])
            self._record_dns(spec)
        fwmark = self._fwmark(name)
        added = sorted((n for n in new_nets - old_nets if n.prefixlen), key=route_order)
        removed = sorted((n for n in old_nets - new_nets if n.prefixlen), key=route_order)
        port = before.listen_port
        self._syncconf(name, render_wg_set(spec, listen_port=port, fwmark=fwmark))
        done: list[IPNetwork] = []
        try:
            for net in added:
                self._run(["ip", ip_proto(net), "route", "replace", str(net), "dev", name])
                done.append(net)
            for net in removed:
                self._run(["ip", ip_proto(net), "route", "del", str(net), "dev", name], check=False)
            write_private_file(self.config_dir, self._applied(name).name, new_text)
        except (BackendError, OSError) as exc:
            with contextlib.suppress(BackendError):
                self._syncconf(name, strip_config(old_text, port, fwmark))
            for net in done:
                self._run(["ip", ip_proto(net), "route", "del", str(net), "dev", name], check=False)
            for net in removed:
                self._run(
                    ["ip", ip_proto(net), "route", "replace", str(net), "dev", name], check=False
                )
            if isinstance(exc, OSError):
                raise BackendError(f"cannot record the tunnel config: {exc}") from None
            raise
        return self.status(name)

    def _applied(self, name: str) -> Path:
        """The config last applied to ``name`` (kept 0600 while it is up, for ``update``)."""
        return self.config_dir / f"{name}.applied.conf"

    def _record_dns(self, spec: TunnelSpec) -> None:
        if spec.suffixes():
            servers = tuple(str(a) for a in spec.dns_servers())
            record = DnsRecord(spec.interface, "networkmanager", servers, spec.suffixes())
            with contextlib.suppress(OSError):
                save_record(self.config_dir, record)
        else:
            remove_record(self.config_dir, spec.interface)

    def _fwmark(self, name: str) -> int | None:
        res = self._run(["wg", "show", name, "fwmark"], check=False, timeout=10)
        value = res.stdout.strip()
        if res.returncode != 0 or value in ("", "off"):
            return None
        try:
            return int(value, 0)
        except ValueError:
            return None

    def _syncconf(self, name: str, text: str) -> None:
        try:
            tmp = write_private_file(self.config_dir, f".{name}.sync.conf", text)
        except OSError as exc:
            raise BackendError(f"cannot write the tunnel config: {exc}") from None
        try:
            self._run(["wg", "syncconf", name, str(tmp)])
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _forget(self, interface: str) -> None:
        with contextlib.suppress(OSError):
            self._applied(interface).unlink()
        remove_record(self.config_dir, interface)

    def down(self, interface: str) -> None:
        """Deactivate and delete the connection (its DNS goes with it). Idempotent.

        Raises :class:`CommandError`.
        """
        conn = self._find(interface)
        if conn is None:
            self._forget(interface)
            return
        if conn.state:
            self._run(["nmcli", "connection", "down", "uuid", conn.uuid], check=False)
        self._run(["nmcli", "connection", "delete", "uuid", conn.uuid])
        self._forget(interface)

    def status(self, interface: str) -> TunnelStatus:
        """Connection state plus counters; ``up`` only while ``activated``."""
        conn = self._find(interface)
        if conn is None or conn.state != "activated":
            state = conn.state if conn else ""
            return TunnelStatus(interface=interface, up=False, backend=self.name, state=state)
        try:
            res = self._run(["wg", "show", interface, "dump"], check=False, timeout=10)
        except CommandError:
            res = None
        if res is None or res.returncode != 0:
            return TunnelStatus(interface=interface, up=True, backend=self.name, state=conn.state)
        parsed = parse_wg_dump(res.stdout, interface=interface, backend=self.name)
        return msgspec.structs.replace(parsed, state=conn.state)
