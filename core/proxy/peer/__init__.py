"""Who is on the other end of a loopback connection: pid, uid and executable.

The proxy asks ``PeerLookup.lookup(peer, local)`` with the accepted socket's two
endpoints and gets a ``PeerInfo`` (or None when the peer cannot be identified, which the
proxy treats as a refusal: fail closed). Implementations, chosen by ``default_lookup()``:

- Linux: ``netlink.SockDiagLookup`` — one NETLINK_SOCK_DIAG request by the exact 4-tuple
  returns uid and socket inode in microseconds; ``procfs.InodePidIndex`` maps the inode to
  a pid through a cached ``/proc/<pid>/fd`` scan that tries recently seen processes first.
- Linux fallback / benchmark peer: ``procfs.ProcNetTcpLookup`` (parses /proc/net/tcp*).
- Windows and macOS: ``psutil_source.PsutilLookup`` over an injectable connection source.

All lookups are synchronous, called on the proxy's loop thread, and never raise.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol

__all__ = ["PeerInfo", "PeerLookup", "default_lookup"]


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """The local process behind a connection. ``pid``/``exe`` may be unknown (None/"")."""

    uid: int
    pid: int | None
    exe: str


class PeerLookup(Protocol):
    """Identifies the process owning the client end of an accepted loopback connection."""

    def lookup(self, peer: tuple[str, int], local: tuple[str, int]) -> PeerInfo | None:
        """``peer`` is the client's address (getpeername), ``local`` the proxy's
        (getsockname). Returns None when the peer cannot be identified. Never raises."""
        ...


def default_lookup(platform: str = sys.platform) -> PeerLookup:
    """The fastest lookup that works on ``platform`` (netlink on Linux, else psutil)."""
    if platform.startswith("linux"):
        from core.proxy.peer.netlink import SockDiagLookup
        from core.proxy.peer.procfs import ProcNetTcpLookup

        try:
            return SockDiagLookup()
        except OSError:
            return ProcNetTcpLookup()
    from core.proxy.peer.psutil_source import PsutilLookup

    return PsutilLookup()
