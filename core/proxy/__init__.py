"""Local policy-checked forwarding proxy: SOCKS5 and HTTP CONNECT/forwarding on loopback.

Apps reach company resources through ``ProxyServer`` on 127.0.0.1/::1. Each connection
is attributed at accept to a local process (``peer``: netlink sock_diag on Linux, psutil
elsewhere) and its owner account (``Owner``: uid on Linux/macOS, SID or "DOMAIN\\user"
on Windows); processes of another account, or whose owner is unknown, are closed there,
before a byte is read. When a policy rule is pinned to an executable's hash, the app's
SHA-256 is computed and cached by file identity (``apphash``). The
destination is normalised (``normalize``) and decided by the policy engine's
``Decider`` as a name and as its resolved addresses; allowed connections are reached
through the injected resolver and connector (``dial``) and relayed (``relay``: splice or
a buffered protocol), denied ones get a protocol-correct refusal (``answers``). The
protocol parsers (``socks5``, ``http``) are sans-IO. Decisions become ``ProxyEvent``s,
traffic becomes ``ProxyCounters``; ``reevaluate()`` withdraws access from open
connections when the bundle or posture changes; ``pac`` renders the browser PAC file.

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
    from core.proxy.dial import Connector, Resolver, system_connector
    from core.proxy.errors import DestinationError, ProxyConfigError, ProxyError, ProxyStartError
    from core.proxy.model import EventKind, Limits, ProxyCounters, ProxyEvent, ResourceCounters
    from core.proxy.normalize import normalize_host, normalize_port
    from core.proxy.peer import Owner, PeerInfo, PeerLookup, current_owner, default_lookup
    from core.proxy.server import EventCallback, ProxyServer

__all__ = [
    "Connector",
    "DestinationError",
    "EventCallback",
    "EventKind",
    "Limits",
    "Owner",
    "PeerInfo",
    "PeerLookup",
    "ProxyConfigError",
    "ProxyCounters",
    "ProxyError",
    "ProxyEvent",
    "ProxyServer",
    "ProxyStartError",
    "Resolver",
    "ResourceCounters",
    "current_owner",
    "default_lookup",
    "normalize_host",
    "normalize_port",
    "system_connector",
]

# Exports load on first use (PEP 562): importing one submodule (``core.proxy.errors``…)
# or the package does not pull in every submodule and its third-party dependencies.
_LAZY: dict[str, str] = {
    "Connector": "core.proxy.dial",
    "DestinationError": "core.proxy.errors",
    "EventCallback": "core.proxy.server",
    "EventKind": "core.proxy.model",
    "Limits": "core.proxy.model",
    "Owner": "core.proxy.peer",
    "PeerInfo": "core.proxy.peer",
    "PeerLookup": "core.proxy.peer",
    "ProxyConfigError": "core.proxy.errors",
    "ProxyCounters": "core.proxy.model",
    "ProxyError": "core.proxy.errors",
    "ProxyEvent": "core.proxy.model",
    "ProxyServer": "core.proxy.server",
    "ProxyStartError": "core.proxy.errors",
    "Resolver": "core.proxy.dial",
    "ResourceCounters": "core.proxy.model",
    "current_owner": "core.proxy.peer",
    "default_lookup": "core.proxy.peer",
    "normalize_host": "core.proxy.normalize",
    "normalize_port": "core.proxy.normalize",
    "system_connector": "core.proxy.dial",
}


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)
