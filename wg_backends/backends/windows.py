"""Windows backend: WireGuard for Windows' tunnel services.

``wireguard.exe /installtunnelservice <C:\\path\\name.conf>`` installs and starts the
service ``WireGuardTunnel$<name>`` (the config's file name is the tunnel name);
``/uninstalltunnelservice <name>`` stops and removes it together with its adapter, routes
and DNS. Status comes from ``sc query`` (service state) and ``wg.exe show <name> dump``
(same format as everywhere). The config directory must be ACL'd to Administrators and
SYSTEM only (the installer does that; see resources/helper/windows-service.md).
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

from wg_backends.errors import BackendError, CommandError, TunnelStateError
from wg_backends.render import remove_config, write_config
from wg_backends.runner import CommandRunner
from wg_backends.spec import TunnelSpec
from wg_backends.status import TunnelStatus, parse_wg_dump

__all__ = ["WindowsBackend", "parse_sc_query"]

PROGRAM_DIR = r"C:\Program Files\WireGuard"
DEFAULT_CONFIG_DIR = Path(r"C:\ProgramData\Rustronaut\tunnels")
_STATE = re.compile(r"^\s*STATE\s*:\s*\d+\s+(\w+)", re.MULTILINE)
SERVICE_MISSING = 1060  # ERROR_SERVICE_DOES_NOT_EXIST, sc's exit code


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
    ) -> None:
        self._run = runner
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
        except BackendError:
            self._run([self._wireguard, "/uninstalltunnelservice", spec.interface], check=False)
            with contextlib.suppress(OSError):
                remove_config(self.config_dir, spec.interface)
            raise

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
        """Uninstall the tunnel service and remove the config. Idempotent."""
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
