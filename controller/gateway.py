"""Driving the gateway's WireGuard interface with ``wg set`` through a command runner.

The controller adds a device as a peer when it enrolls (allowed IPs: its tunnel address
only, until posture is known), narrows/widens nothing else: a WireGuard peer's allowed
IPs are the *source* addresses the gateway accepts from it, so the device's own address
is what matters; which destinations it may reach is enforced by the client's proxy and
the policy. When posture fails (nothing reachable) or the device is revoked, the peer
is removed, so no packet from it enters the gateway. argv is built as data; errors carry
argv, exit code and stderr.

Errors::

    GatewayError     ``wg`` failed (argv, returncode, stderr in the message)
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "CommandResult",
    "Gateway",
    "GatewayError",
    "GatewayGroup",
    "Runner",
    "subprocess_runner",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str]], CommandResult]


class GatewayError(RuntimeError):
    """``wg`` failed; the message carries argv, exit code and stderr."""


def subprocess_runner(argv: Sequence[str]) -> CommandResult:
    """Run ``argv`` (no shell), 10 s timeout; never raises for a non-zero exit."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CommandResult(tuple(argv), 127, "", str(exc))
    return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


class Gateway:
    """Peers of one local WireGuard interface. Methods are idempotent; call from one thread."""

    def __init__(
        self, interface: str, runner: Runner = subprocess_runner, *, wg: str = "wg"
    ) -> None:
        self.interface = interface
        self._run = runner
        self._wg = wg

    def _check(self, argv: list[str]) -> CommandResult:
        result = self._run(argv)
        if result.returncode != 0:
            raise GatewayError(
                f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def set_peer(self, public_key: str, allowed_ips: Sequence[str]) -> None:
        """Add or update the peer with exactly ``allowed_ips`` (replaces previous ones)."""
        self._check(
            [
                self._wg,
                "set",
                self.interface,
                "peer",
                public_key,
                "allowed-ips",
                ",".join(allowed_ips),
            ]
        )

    def remove_peer(self, public_key: str) -> None:
        """Remove the peer (no error if it is not there: ``wg`` ignores unknown peers)."""
        self._check([self._wg, "set", self.interface, "peer", public_key, "remove"])

    def peers(self) -> dict[str, list[str]]:
        """Current peers and their allowed IPs, from ``wg show <if> allowed-ips``."""
        out = self._check([self._wg, "show", self.interface, "allowed-ips"]).stdout
        return parse_allowed_ips(out)


class GatewayGroup(Gateway):
    """Several gateways driven as one: every device is a peer of each (failover).

    Same methods as ``Gateway``. ``set_peer``/``remove_peer`` apply to every member
    (the first failure raises after the others were tried, so one dead gateway does not
    stop the rest from converging). ``peers`` reports a key's allowed IPs only where
    every member agrees, and ``[]`` otherwise, so ``reconcile`` re-sets it everywhere.
    """

    def __init__(self, members: Sequence[Gateway]) -> None:
        if not members:
            raise ValueError("a gateway group needs at least one gateway")
        self.members = tuple(members)
        super().__init__(",".join(m.interface for m in self.members), members[0]._run)

    def _each(self, action: Callable[[Gateway], None]) -> None:
        first: GatewayError | None = None
        for member in self.members:
            try:
                action(member)
            except GatewayError as exc:
                _log.warning("gateway %s: %s", member.interface, exc)
                first = first or exc
        if first is not None:
            raise first

    def set_peer(self, public_key: str, allowed_ips: Sequence[str]) -> None:
        """Add or update the peer on every member."""
        self._each(lambda m: m.set_peer(public_key, allowed_ips))

    def remove_peer(self, public_key: str) -> None:
        """Remove the peer from every member."""
        self._each(lambda m: m.remove_peer(public_key))

    def peers(self) -> dict[str, list[str]]:
        """Union of the members' peers; ``[]`` for a key the members disagree on."""
        views = [m.peers() for m in self.members]
        out: dict[str, list[str]] = {}
        for key in {k for view in views for k in view}:
            ips = [view.get(key) for view in views]
            first = ips[0]
            out[key] = first if first is not None and all(i == first for i in ips) else []
        return out


def parse_allowed_ips(text: str) -> dict[str, list[str]]:
    """Parse ``wg show <if> allowed-ips`` (``<key>\\t<ip> <ip>...`` or ``(none)``)."""
    peers: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, _, rest = line.partition("\t")
        ips = [] if rest.strip() in ("", "(none)") else rest.split()
        peers[key.strip()] = ips
    return peers
