"""Driving the gateway's WireGuard interface (``wg set``) and its filter (``nft -f -``).

The controller adds a device as a peer when it enrolls (allowed IPs: its tunnel address
only): a WireGuard peer's allowed IPs are the *source* addresses the gateway accepts from
it. Which destinations a device may reach through the gateway is the per-device filter
(``apply_filter``, rendered by ``controller.gateway_filter``): the coarse outer fence,
while the client decides per app. When posture fails (nothing reachable) or the device is
revoked, the peer is removed, so no packet from it enters the gateway. Peers get
``persistent-keepalive`` from the gateway's side too, so a client can tell a silent
gateway from an idle tunnel by its receive counter. argv is built as data; errors carry
argv, exit code and stderr.

A runner is ``runner(argv) -> CommandResult``; the filter needs one that also takes the
script on standard input (``runner(argv, input=text)``, like ``subprocess_runner``). A
runner without ``input`` keeps driving peers, and ``apply_filter`` raises ``GatewayError``
saying so (the caller logs it and retries, as for any failing gateway).

Errors::

    GatewayError     ``wg``/``nft`` failed (argv, returncode, stderr in the message)
    FilterError      a grant is not valid (raised before anything is run)
"""

from __future__ import annotations

import inspect
import logging
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from controller.gateway_filter import (
    HEADER,
    FilterError,
    command_interface,
    render_filter,
    table_name,
)

__all__ = [
    "CommandResult",
    "FilterError",
    "Gateway",
    "GatewayError",
    "GatewayGroup",
    "Runner",
    "command_interface",
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


#: ``runner(argv)``; runners that can feed standard input take ``input=<text>`` too.
Runner = Callable[..., CommandResult]


class GatewayError(RuntimeError):
    """``wg`` or ``nft`` failed; the message carries argv, exit code and stderr."""


def subprocess_runner(argv: Sequence[str], *, input: str | None = None) -> CommandResult:
    """Run ``argv`` (no shell, ``input`` on stdin), 10 s timeout; never raises for a
    non-zero exit."""
    try:
        proc = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CommandResult(tuple(argv), 127, "", str(exc))
    return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


def _takes_input(runner: Runner) -> bool:
    try:
        params = inspect.signature(runner).parameters
    except (TypeError, ValueError):
        return False
    return "input" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class Gateway:
    """Peers and filter of one WireGuard interface. Methods are idempotent; one thread.

    ``keepalive_s`` (None or 0: off) is set on every peer as ``persistent-keepalive``.
    ``filtered=False``: ``apply_filter``/``remove_filter`` do nothing (another firewall
    enforces the grants there).
    """

    def __init__(
        self,
        interface: str,
        runner: Runner = subprocess_runner,
        *,
        wg: str = "wg",
        nft: str = "nft",
        keepalive_s: int | None = None,
        filtered: bool = True,
    ) -> None:
        self.interface = interface
        self.filtered = filtered
        self._run = runner
        self._wg = wg
        self._nft = nft
        self.keepalive_s = keepalive_s

    def _check(self, argv: list[str], stdin: str | None = None) -> CommandResult:
        if stdin is None:
            result = self._run(argv)
        elif _takes_input(self._run):
            result = self._run(argv, input=stdin)
        else:
            raise GatewayError(
                f"{' '.join(argv)}: the gateway's command runner cannot pass standard input"
            )
        if result.returncode != 0:
            raise GatewayError(
                f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def set_peer(self, public_key: str, allowed_ips: Sequence[str]) -> None:
        """Add or update the peer with exactly ``allowed_ips`` (replaces previous ones)
        and the gateway's keepalive."""
        argv = [
            self._wg,
            "set",
            self.interface,
            "peer",
            public_key,
            "allowed-ips",
            ",".join(allowed_ips),
        ]
        if self.keepalive_s:
            argv += ["persistent-keepalive", str(self.keepalive_s)]
        self._check(argv)

    def apply_filter(self, grants: Mapping[str, Iterable[str]], always: Iterable[str] = ()) -> str:
        """Replace the interface's filter with exactly ``grants`` (device address →
        networks) plus ``always`` (open to every device), atomically (``nft -f -``).

        Returns the applied script. ``FilterError`` before anything runs when a value is
        invalid; ``GatewayError`` when ``nft`` fails (the previous filter stays whole).
        """
        script = render_filter(self.interface, grants, always)
        if self.filtered:
            self._check([self._nft, "-f", "-"], stdin=script)
        return script

    def remove_filter(self) -> None:
        """Delete the interface's filter table (no error if there is none)."""
        if not self.filtered:
            return
        table = table_name(self.interface)
        script = f"{HEADER}{self.interface}\ntable inet {table}\ndelete table inet {table}\n"
        self._check([self._nft, "-f", "-"], stdin=script)

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

    def _each(self, action: Callable[[Gateway], object]) -> None:
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

    def apply_filter(self, grants: Mapping[str, Iterable[str]], always: Iterable[str] = ()) -> str:
        """Apply the same grants on every member (each filters its own interface)."""
        frozen = {k: tuple(v) for k, v in grants.items()}
        always_t = tuple(always)
        for member in self.members:  # validate once, before any member is touched
            render_filter(member.interface, frozen, always_t)
        self._each(lambda m: m.apply_filter(frozen, always_t))
        return render_filter(self.members[0].interface, frozen, always_t)

    def remove_filter(self) -> None:
        """Delete every member's filter table."""
        self._each(lambda m: m.remove_filter())

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
