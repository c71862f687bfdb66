"""The decider's route into the tunnel, swapped by the engine as tunnels come and go.

The proxy runs on its own thread and is built once; the tunnel it must dial through is
not. ``DeciderRoute`` is the one object the proxy's connector, resolver, reverse look-up
and ranges consult: the engine's loop replaces the current ``TunnelPath`` (and the
split-DNS resolver made for its spec) with a single attribute swap, which the proxy's
thread reads atomically (no lock on the per-connection path).

With no path (no tunnel, or the helper cannot fence one) ``take`` raises
``NoTunnelSockets``: the decider refuses, it never falls back to the OS's routes. Only a
helper that cannot fence at all (another OS, an older helper) — ``fenced=False`` at
construction of the route's state — lets the proxy use the OS's routes, the previous
behaviour, said so in the snapshot (``AccessView.fenced``).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from core.dns import TunnelResolver
from core.engine.ports import Network, TunnelPath
from core.proxy.dial import system_resolver
from wg_backends.errors import NoTunnelSockets
from wg_backends.spec import TunnelSpec

__all__ = ["DeciderRoute"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Current:
    path: TunnelPath | None
    resolver: TunnelResolver | None
    #: the DNS servers and suffixes ``resolver`` was made for
    dns: tuple[tuple[str, ...], tuple[str, ...]] | None
    #: dial with the OS's routes (a helper that cannot fence: the old behaviour)
    unfenced: bool


class DeciderRoute:
    """What the proxy dials through and resolves with; see the module docstring."""

    def __init__(self) -> None:
        self._now = _Current(path=None, resolver=None, dns=None, unfenced=False)

    def set(self, path: TunnelPath | None, spec: TunnelSpec | None, *, unfenced: bool) -> None:
        """Dial through ``path`` and resolve ``spec``'s DNS suffixes through its servers.

        ``unfenced``: the tunnel is up but the helper cannot fence it (the proxy then uses
        the OS's routes). Engine loop only.
        """
        resolver, dns = None, None
        if path is not None and spec is not None and spec.suffixes() and spec.dns:
            dns = (tuple(str(a) for a in spec.dns_servers()), tuple(spec.suffixes()))
            if dns == self._now.dns:
                # Same DNS: keep its cache and the names it gave (apps keep the
                # addresses they were told; transparent decisions still know the name).
                resolver = self._now.resolver
            else:
                resolver = TunnelResolver(dns[0], dns[1], sock_factory=self.take)
        self._now = _Current(
            path=path,
            resolver=resolver,
            dns=dns,
            unfenced=unfenced and path is None and spec is not None,
        )

    @property
    def unfenced(self) -> bool:
        """Whether the proxy may dial with the OS's routes (no fence on this system)."""
        return self._now.unfenced

    def take(self, family: int, kind: str) -> socket.socket:
        """A marked socket into the tunnel; ``NoTunnelSockets`` when there is none."""
        path = self._now.path
        if path is None:
            raise NoTunnelSockets("the tunnel is down")
        return path.take(family, kind)

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        """Company names through the tunnel's DNS; other names through the OS resolver."""
        resolver = self._now.resolver
        if resolver is None:
            return await system_resolver(host, port)
        return await resolver.resolve(host, port)

    def reverse(self, address: str) -> str | None:
        """The company name the tunnel's DNS last gave for ``address``, if any."""
        resolver = self._now.resolver
        return None if resolver is None else resolver.names_for(address)

    def ranges(self) -> Sequence[Network]:
        """The networks the tunnel carries (empty: no tunnel)."""
        path = self._now.path
        return () if path is None else path.ranges


def parse_ranges(ranges: Sequence[str]) -> tuple[Network, ...]:
    """The helper's CIDR strings as networks (an unparsable one is logged and skipped)."""
    out: list[Network] = []
    for text in ranges:
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            _log.warning("the helper reported an unusable range %r", text)
    return tuple(out)
