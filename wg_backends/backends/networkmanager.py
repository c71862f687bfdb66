"""Linux desktop backend: NetworkManager through ``nmcli``.

``nmcli connection import type wireguard file <dir>/<name>.conf`` creates a connection
named after the file (NetworkManager keeps its own 0600 copy, so ours is removed at once);
it is switched to manual (``connection.autoconnect no``) and activated with
``nmcli connection up``. ``down`` deactivates and deletes it. NetworkManager applies
addresses, routes and DNS itself. Status: the connection's state from the terse listing
``nmcli -t -f NAME,UUID,TYPE,DEVICE,STATE connection show`` plus counters from
``wg show <if> dump`` when ``wg`` is installed.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import msgspec

from wg_backends.errors import BackendError, CommandError, TunnelStateError
from wg_backends.render import remove_config, write_config
from wg_backends.runner import CommandRunner
from wg_backends.spec import TunnelSpec
from wg_backends.status import TunnelStatus, parse_wg_dump

__all__ = ["NetworkManagerBackend", "NmConnection", "parse_nmcli_import", "parse_nmcli_terse"]

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
                ["nmcli", "connection", "modify", "uuid", uuid, "connection.autoconnect", "no"]
            )
            self._run(["nmcli", "connection", "up", "uuid", uuid])
        except BackendError:
            if uuid is not None:
                self._run(["nmcli", "connection", "delete", "uuid", uuid], check=False)
            raise
        finally:
            with contextlib.suppress(OSError):
                remove_config(self.config_dir, spec.interface)

    def update(self, spec: TunnelSpec) -> TunnelStatus:
        """Apply ``spec`` to the running tunnel. First version: ``down`` + ``up`` (not
        hitless yet). Raises ``TunnelStateError`` when no such tunnel is up."""
        spec.validate(require_private_key=True)
        if not self.status(spec.interface).up:
            raise TunnelStateError(f"no tunnel {spec.interface} is up here; bring it up instead")
        self.down(spec.interface)
        self.up(spec)
        return self.status(spec.interface)

    def down(self, interface: str) -> None:
        """Deactivate and delete the connection. Idempotent. Raises :class:`CommandError`."""
        conn = self._find(interface)
        if conn is None:
            return
        if conn.state:
            self._run(["nmcli", "connection", "down", "uuid", conn.uuid], check=False)
        self._run(["nmcli", "connection", "delete", "uuid", conn.uuid])

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
