"""Who is on the other end of a loopback connection: pid, owner account and executable.

The proxy asks ``PeerLookup.lookup(peer, local)`` with the accepted socket's two
endpoints and gets a ``PeerInfo`` (or None when the peer cannot be identified, which the
proxy treats as a refusal: fail closed). Implementations, chosen by ``default_lookup()``:

- Linux: ``netlink.SockDiagLookup`` — one NETLINK_SOCK_DIAG request by the exact 4-tuple
  returns uid and socket inode in microseconds; ``procfs.InodePidIndex`` maps the inode to
  a pid through a cached ``/proc/<pid>/fd`` scan that tries recently seen processes first.
- Linux fallback / benchmark peer: ``procfs.ProcNetTcpLookup`` (parses /proc/net/tcp*).
- Windows and macOS: ``psutil_source.PsutilLookup`` over an injectable connection source.

The owner (``owner.Owner``) is what the proxy compares with the host's own account
(``owner.current_owner()``): the uid on Linux and macOS, the token SID or "DOMAIN\\user"
name on Windows, which has no uids. All lookups are synchronous, called on the proxy's
loop thread, and never raise.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol

from core.proxy.peer.owner import Owner, current_owner, uid_owner

__all__ = [
    "Owner",
    "PeerInfo",
    "PeerLookup",
    "SplitLookup",
    "current_owner",
    "default_lookup",
]


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """The local process behind a connection. ``pid``/``exe`` may be unknown (None/"").

    ``uid`` is None where the OS has no uids (Windows). ``owner`` is the account the
    proxy compares with its host's; when omitted it is derived from ``uid``, so it is
    None only when neither is known — and the proxy then refuses.
    """

    uid: int | None
    pid: int | None
    exe: str
    owner: Owner | None = None

    def __post_init__(self) -> None:
        if self.owner is None and self.uid is not None and self.uid >= 0:
            object.__setattr__(self, "owner", uid_owner(self.uid))


class PeerLookup(Protocol):
    """Identifies the process owning the client end of an accepted loopback connection."""

    def lookup(self, peer: tuple[str, int], local: tuple[str, int]) -> PeerInfo | None:
        """``peer`` is the client's address (getpeername), ``local`` the address the
        client's socket is connected to: the proxy's (getsockname), or for a connection
        the transparent listener accepted, its original destination (the app's socket
        runs from ``peer`` to there; the redirect is invisible to it). Returns None when
        the peer cannot be identified. Never raises."""
        ...


class SplitLookup(PeerLookup, Protocol):
    """A ``PeerLookup`` in two steps: ``uid_inode`` (the owner, at accept: enough to
    refuse another account) and ``finish`` (pid and executable, when the proxy needs
    them). ``lookup`` is both at once."""

    def uid_inode(self, peer: tuple[str, int], local: tuple[str, int]) -> tuple[int, int] | None:
        """(uid, inode) of the client's socket, or None. Never raises."""
        ...

    def finish(self, uid: int, inode: int) -> PeerInfo:
        """The peer of ``uid_inode``'s answer (pid None when no process holds the inode
        any more). Never raises."""
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
