"""psutil-based peer lookup for Windows and macOS (and a benchmark peer on Linux).

``psutil.net_connections`` lists every TCP socket of the machine (tens of milliseconds),
so this is only the fallback where the OS has no per-socket query we use. The two
sources — the connection table and per-pid facts — are injectable so the matching logic
is tested on any OS with recorded tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from core.proxy.peer import PeerInfo

__all__ = ["ConnRow", "PsutilLookup", "psutil_connections", "psutil_process"]


@dataclass(frozen=True, slots=True)
class ConnRow:
    """One row of the OS connection table: local and remote endpoints and owner pid."""

    laddr: tuple[str, int]
    raddr: tuple[str, int] | None
    pid: int | None


def psutil_connections() -> list[ConnRow]:
    """The machine's TCP connections via psutil (may be partial without privileges)."""
    import psutil

    rows: list[ConnRow] = []
    for c in psutil.net_connections(kind="tcp"):
        raddr = (c.raddr.ip, c.raddr.port) if c.raddr else None
        rows.append(ConnRow((c.laddr.ip, c.laddr.port), raddr, c.pid))
    return rows


def psutil_process(pid: int) -> tuple[int, str]:
    """(real uid, exe path) of ``pid`` via psutil; uid -1 on Windows (see PsutilLookup)."""
    import psutil

    proc: Any = psutil.Process(pid)
    try:
        uid = int(proc.uids().real)
    except AttributeError:  # Windows has no uids(): owner compared by the caller's SID
        uid = -1
    try:
        exe = str(proc.exe())
    except psutil.Error:
        exe = ""
    return uid, exe


def _same(a: tuple[str, int], b: tuple[str, int]) -> bool:
    if a[1] != b[1]:
        return False
    strip = "::ffff:"
    ha = a[0][len(strip) :] if a[0].startswith(strip) else a[0]
    hb = b[0][len(strip) :] if b[0].startswith(strip) else b[0]
    return ha.lower() == hb.lower()


class PsutilLookup:
    """Peer lookup by scanning the OS connection table. Never raises.

    ``connections`` returns the table; ``process`` maps a pid to (uid, exe). Both default
    to psutil. ``owner_uid`` is reported for processes whose uid the OS does not expose
    (Windows), where psutil only lists other users' sockets to administrators.
    """

    def __init__(
        self,
        *,
        connections: Callable[[], Iterable[ConnRow]] = psutil_connections,
        process: Callable[[int], tuple[int, str]] = psutil_process,
    ) -> None:
        self._connections = connections
        self._process = process

    def lookup(self, peer: tuple[str, int], local: tuple[str, int]) -> PeerInfo | None:
        """See ``PeerLookup.lookup``."""
        try:
            for row in self._connections():
                if row.raddr is None or row.pid is None:
                    continue
                if _same(row.laddr, peer) and _same(row.raddr, local):
                    uid, exe = self._process(row.pid)
                    return PeerInfo(uid=uid, pid=row.pid, exe=exe)
        except Exception:  # any OS/psutil failure means "unknown": the proxy refuses
            return None
        return None
