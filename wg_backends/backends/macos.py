"""macOS backend: ``wg-quick`` with the package's own ``wireguard-go``, ``wg`` and ``bash``.

macOS has no kernel WireGuard: ``wg-quick`` always runs ``wireguard-go`` on a ``utunN``
device and records the mapping in ``/var/run/wireguard/<name>.name``. The root helper runs
these tools only from :data:`TOOLS_PREFIX` ``/bin``, where the pkg installs them (root:wheel,
0755; ``installers/macos/build-pkg.sh``), never from Homebrew, whose prefix belongs to the
user who installed it; wg-quick needs bash 4+ (macOS has 3.2), so the package ships one
and puts it first on ``PATH``. :meth:`MacOSBackend.available` is False, and logs why, when
a non-administrator can change any of the tools or a directory above them
(:func:`~wg_backends.helper.selfcheck.check_posix`). Tunnels of
the WireGuard App Store app are Network Extension VPNs, visible only through
``scutil --nc list``: :meth:`MacOSBackend.app_tunnels` reports them so the client can
warn about a second, competing tunnel.

``update`` is wg-quick's hitless one on the ``utunN`` device (``wg syncconf`` there,
``route -q -n add/delete -inet[6] <cidr> -interface utunN`` for the routes, as wg-quick's
darwin script does); split DNS is ``/etc/resolver`` files (:mod:`wg_backends.dns.macos`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import msgspec

from wg_backends.backends.wgquick import WgQuickBackend
from wg_backends.dns import DnsPaths
from wg_backends.errors import CommandError, TunnelStateError
from wg_backends.helper.selfcheck import check_posix
from wg_backends.runner import CommandRunner
from wg_backends.spec import IPNetwork, TunnelSpec

__all__ = ["TOOLS", "TOOLS_PREFIX", "AppTunnel", "MacOSBackend", "parse_scutil_nc_list"]

_log = logging.getLogger(__name__)
# The package's own tools, in <prefix>/bin (admin-only; never a Homebrew prefix).
TOOLS_PREFIX = "/Library/Application Support/Rustronaut"
TOOLS = ("wg-quick", "wg", "wireguard-go", "bash")
DEFAULT_CONFIG_DIR = Path("/var/run/rustronaut/tunnels")
RUN_DIR = Path("/var/run/wireguard")  # wg-quick's <name>.name: the utun device of a tunnel
_UTUN = re.compile(r"utun[0-9]{1,4}")
# `* (Connected)    UUID VPN (com.wireguard.macos) "name"    [VPN/com.wireguard.macos]`
_NC_LINE = re.compile(
    r"^(?P<enabled>[* ])\s*\((?P<state>[^)]*)\)\s+(?P<uuid>[0-9A-Fa-f-]{36})\s+"
    r'(?P<kind>\S+)\s+\((?P<provider>[^)]*)\)\s+"(?P<name>[^"]*)"'
)


class AppTunnel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A tunnel of the WireGuard app seen through ``scutil --nc list``."""

    name: str
    uuid: str
    state: str  # Connected, Disconnected, Connecting, Disconnecting, Invalid
    enabled: bool


def parse_scutil_nc_list(text: str) -> tuple[AppTunnel, ...]:
    """The WireGuard app's tunnels (provider ``com.wireguard.macos``) from ``scutil --nc list``.

    Other VPN services and unparseable lines are skipped. Pure.
    """
    out: list[AppTunnel] = []
    for line in text.splitlines():
        m = _NC_LINE.match(line)
        if m and m.group("provider").startswith("com.wireguard."):
            out.append(
                AppTunnel(
                    name=m.group("name"),
                    uuid=m.group("uuid"),
                    state=m.group("state"),
                    enabled=m.group("enabled") == "*",
                )
            )
    return tuple(out)


class MacOSBackend(WgQuickBackend):
    """wg-quick with the package's tools, from ``<prefix>/bin`` (default :data:`TOOLS_PREFIX`)."""

    name = "macos"

    def __init__(
        self,
        runner: CommandRunner,
        *,
        config_dir: Path = DEFAULT_CONFIG_DIR,
        prefix: str | None = None,
        dns_paths: DnsPaths | None = None,
        run_dir: Path = RUN_DIR,
    ) -> None:
        self.run_dir = run_dir
        self.prefix = prefix or TOOLS_PREFIX
        self.bin_dir = bin_dir = f"{self.prefix}/bin"
        super().__init__(
            runner,
            config_dir=config_dir,
            wg_quick=f"{bin_dir}/wg-quick",
            wg=f"{bin_dir}/wg",
            env={
                "PATH": f"{bin_dir}:/usr/bin:/bin:/usr/sbin:/sbin",
                "WG_QUICK_USERSPACE_IMPLEMENTATION": f"{bin_dir}/wireguard-go",
            },
            dns_platform="darwin",
            dns_paths=dns_paths,
        )

    def available(self) -> bool:
        """True if the tools are admin-only (see the module docstring) and run. Never raises."""
        problems = check_posix([Path(self.bin_dir, tool) for tool in TOOLS], platform="darwin")
        for problem in problems:
            _log.error("not running WireGuard tools a non-administrator can change: %s", problem)
        return not problems and super().available()

    def _exists(self, interface: str) -> bool:
        # The name maps to a utunN device only through wireguard-go's socket.
        return self.status(interface).up

    # ``update`` (inherited) acts on the utun device wg-quick recorded; routes with
    # ``route``; an address or MTU change needs ``down`` + ``up`` (wg-quick sets them with
    # ifconfig at start and its ``down`` removes exactly those).
    _restart_keys = ("Address", "MTU")

    def _device(self, interface: str) -> str:
        try:
            real = (self.run_dir / f"{interface}.name").read_text(encoding="ascii").strip()
        except (OSError, UnicodeError):
            raise TunnelStateError(f"no utun device recorded for {interface}") from None
        if not _UTUN.fullmatch(real):
            raise TunnelStateError(f"{interface}: unexpected device name {real[:20]!r}")
        return real

    def _fwmark(self, device: str) -> int | None:
        return None  # no fwmark on macOS

    def _route_add(self, net: IPNetwork, device: str) -> list[str]:
        family = "-inet6" if net.version == 6 else "-inet"
        return ["route", "-q", "-n", "add", family, str(net), "-interface", device]

    def _route_del(self, net: IPNetwork, device: str) -> list[str]:
        family = "-inet6" if net.version == 6 else "-inet"
        return ["route", "-q", "-n", "delete", family, str(net), "-interface", device]

    def _set_link(self, device: str, spec: TunnelSpec) -> None:
        return None  # unchanged by construction: a change of either restarts (above)

    def app_tunnels(self) -> tuple[AppTunnel, ...]:
        """Tunnels of the WireGuard app (empty if ``scutil`` is missing). Never raises."""
        try:
            res = self._run(["scutil", "--nc", "list"], check=False, timeout=10)
        except CommandError:
            return ()
        return parse_scutil_nc_list(res.stdout) if res.returncode == 0 else ()
