"""Local policy-checked forwarding proxy: SOCKS5 and HTTP CONNECT/forwarding on loopback.

Apps reach company resources through ``ProxyServer`` on 127.0.0.1/::1. Each connection
is attributed at accept to a local process (``peer``: netlink sock_diag on Linux, psutil
elsewhere) and its owner account (``Owner``: uid on Linux/macOS, SID or "DOMAIN\\user"
on Windows); processes of another account, or whose owner is unknown, are closed there,
before a byte is read. When a policy rule is pinned to an executable's hash, the app's
SHA-256 is computed and cached by file identity (``apphash``). The
destination is normalised (``normalize``) and decided by the policy engine's
``Decider`` as a name and as its resolved addresses; allowed connections are reached
through the injected resolver and connector (``dial``; ``tunnel_connector`` dials only
with sockets the helper bound to the tunnel, never the OS's routes), the addresses a
name resolved to checked against the resource's networks (``destinations``), and
relayed (``relay``: splice or a buffered protocol); denied ones get a protocol-correct
refusal (``answers``). The protocol parsers (``socks5``, ``http``) are sans-IO. The
transparent listener (``transparent``) takes the connections the helper's nftables
rules redirect, reads their original destination and decides it like a port forward.
Decisions become ``ProxyEvent``s, traffic becomes ``ProxyCounters``; ``reevaluate()``
withdraws access from open connections when the bundle or posture changes; ``pac``
renders the browser PAC file.

``ProxyServer`` (``server``) is built from layers, one module each, that together do
all the I/O: ``bookkeeping`` (counters, events, open relays) → ``serving`` (peer check,
decide, connect, relay start) → ``handshake`` (callback-driven handshake reading) →
``listeners`` (listening sockets, accept, port forwards) → ``server`` (constructor,
start/stop). ``thread`` runs a ``ProxyServer`` on its own thread.

Exceptions (``errors``)::

    ProxyError
    ├── DestinationError     bad host/port (also a ValueError)
    ├── ProxyConfigError     bad API input: PAC targets, forwards, limits (a ValueError)
    └── ProxyStartError      a listener could not be opened (an OSError)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:
    from core.proxy.destinations import Network, RangesSource
    from core.proxy.dial import (
        TUNNEL_DOWN,
        Connector,
        Resolver,
        SocketSource,
        TunnelDown,
        system_connector,
        tunnel_connector,
    )
    from core.proxy.errors import DestinationError, ProxyConfigError, ProxyError, ProxyStartError
    from core.proxy.model import EventKind, Limits, ProxyCounters, ProxyEvent, ResourceCounters
    from core.proxy.normalize import normalize_host, normalize_port
    from core.proxy.peer import Owner, PeerInfo, PeerLookup, current_owner, default_lookup
    from core.proxy.server import EventCallback, ProxyServer
    from core.proxy.serving import PROTOCOL_TRANSPARENT, ReverseLookup

__all__ = [
    "PROTOCOL_TRANSPARENT",
    "TUNNEL_DOWN",
    "Connector",
    "DestinationError",
    "EventCallback",
    "EventKind",
    "Limits",
    "Network",
    "Owner",
    "PeerInfo",
    "PeerLookup",
    "ProxyConfigError",
    "ProxyCounters",
    "ProxyError",
    "ProxyEvent",
    "ProxyServer",
    "ProxyStartError",
    "RangesSource",
    "Resolver",
    "ResourceCounters",
    "ReverseLookup",
    "SocketSource",
    "TunnelDown",
    "current_owner",
    "default_lookup",
    "normalize_host",
    "normalize_port",
    "system_connector",
    "tunnel_connector",
]

# Exports load on first use (PEP 562): importing one submodule (``core.proxy.errors``…)
# or the package does not pull in every submodule and its third-party dependencies.
_LAZY: dict[str, str] = {
    "PROTOCOL_TRANSPARENT": "core.proxy.serving",
    "TUNNEL_DOWN": "core.proxy.dial",
    "Connector": "core.proxy.dial",
    "DestinationError": "core.proxy.errors",
    "EventCallback": "core.proxy.server",
    "EventKind": "core.proxy.model",
    "Limits": "core.proxy.model",
    "Network": "core.proxy.destinations",
    "Owner": "core.proxy.peer",
    "PeerInfo": "core.proxy.peer",
    "PeerLookup": "core.proxy.peer",
    "ProxyConfigError": "core.proxy.errors",
    "ProxyCounters": "core.proxy.model",
    "ProxyError": "core.proxy.errors",
    "ProxyEvent": "core.proxy.model",
    "ProxyServer": "core.proxy.server",
    "ProxyStartError": "core.proxy.errors",
    "RangesSource": "core.proxy.destinations",
    "Resolver": "core.proxy.dial",
    "ResourceCounters": "core.proxy.model",
    "ReverseLookup": "core.proxy.serving",
    "SocketSource": "core.proxy.dial",
    "TunnelDown": "core.proxy.dial",
    "current_owner": "core.proxy.peer",
    "default_lookup": "core.proxy.peer",
    "normalize_host": "core.proxy.normalize",
    "normalize_port": "core.proxy.normalize",
    "system_connector": "core.proxy.dial",
    "tunnel_connector": "core.proxy.dial",
}


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)
