"""psutil-based peer lookup for Windows and macOS (and a benchmark peer on Linux).

``psutil.net_connections`` lists every TCP socket of the machine (tens of milliseconds),
so this is only the fallback where the OS has no per-socket query we use. The owner is
the real uid where psutil has ``uids()`` (macOS), else (Windows) the token SID and the
"DOMAIN\\user" name of ``Process.username()``. Everything psutil provides is injectable
— a whole psutil-like module, or the two sources (connection table, per-pid facts) — so
the matching and owner logic are tested on any OS with recorded tables.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from core.proxy.peer import PeerInfo
from core.proxy.peer.owner import Owner, SidReader, load_psutil, uid_owner, windows_sid

__all__ = ["ConnRow", "ProcessFacts", "PsutilLookup", "psutil_connections", "psutil_process"]


@dataclass(frozen=True, slots=True)
class ConnRow:
    """One row of the OS connection table: local and remote endpoints and owner pid."""

    laddr: tuple[str, int]
    raddr: tuple[str, int] | None
    pid: int | None


ProcessFacts = tuple[Owner | None, str]
"""(owner, exe path) of a process; owner None when unknown, exe "" when unreadable."""


def psutil_connections(psutil: Any = None) -> list[ConnRow]:
    """The machine's TCP connections via ``psutil`` (default: the real module).

    macOS lists the machine's sockets to root only (AccessDenied otherwise); then the
    table is built from this user's own processes, one by one — slower, but only they
    may use the proxy, and other users' sockets, left out, are refused as unknown.
    """
    ps = load_psutil(psutil)
    try:
        table = [(c, c.pid) for c in ps.net_connections(kind="tcp")]
    except ps.AccessDenied:
        table = _own_connections(ps)
    rows: list[ConnRow] = []
    for c, pid in table:
        raddr = (c.raddr.ip, c.raddr.port) if c.raddr else None
        rows.append(ConnRow((c.laddr.ip, c.laddr.port), raddr, pid))
    return rows


def _own_connections(ps: Any) -> list[tuple[Any, int]]:
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # Windows lists every socket to every user; nothing to add
        return []
    uid = getuid()
    table: list[tuple[Any, int]] = []
    for proc in ps.process_iter():
        try:
            if proc.uids().real != uid:
                continue
            table.extend((c, proc.pid) for c in proc.net_connections(kind="tcp"))
        except ps.Error:  # exited or not ours to read: not a peer we could serve
            continue
    return table


def psutil_process(pid: int, psutil: Any = None, sid_of: SidReader | None = None) -> ProcessFacts:
    """(owner, exe) of ``pid`` via ``psutil`` (default: the real module).

    The owner is the real uid where the OS has uids; on Windows (no ``uids()``) it is the
    token SID from ``sid_of`` (default ``windows_sid``) and ``username()``'s
    "DOMAIN\\user", whichever can be read — None when neither. Raises what psutil raises
    for a vanished process (the lookup turns that into "unknown").
    """
    proc = load_psutil(psutil).Process(pid)
    owner: Owner | None
    try:
        uids = proc.uids
    except AttributeError:  # Windows: accounts are SIDs, not uids
        sid = (sid_of or windows_sid)(pid)
        try:
            name: str | None = str(proc.username())
        except Exception:  # AccessDenied for other users' processes without admin rights
            name = None
        owner = Owner(sid=sid, name=name) if sid is not None or name is not None else None
    else:
        owner = uid_owner(int(uids().real))
    try:
        exe = str(proc.exe())
    except Exception:  # AccessDenied / ZombieProcess: the path is only informative
        exe = ""
    return owner, exe


def _same(a: tuple[str, int], b: tuple[str, int]) -> bool:
    if a[1] != b[1]:
        return False
    strip = "::ffff:"
    ha = a[0][len(strip) :] if a[0].startswith(strip) else a[0]
    hb = b[0][len(strip) :] if b[0].startswith(strip) else b[0]
    return ha.lower() == hb.lower()


class PsutilLookup:
    """Peer lookup by scanning the OS connection table. Never raises.

    ``connections`` returns the table; ``process`` maps a pid to ``ProcessFacts``. By
    default both come from ``psutil`` — the real module, or a psutil-like object given
    here — with Windows SIDs read by ``sid_of`` (default ``windows_sid``).
    """

    def __init__(
        self,
        *,
        connections: Callable[[], Iterable[ConnRow]] | None = None,
        process: Callable[[int], ProcessFacts] | None = None,
        psutil: Any = None,
        sid_of: SidReader | None = None,
    ) -> None:
        self._connections = connections or functools.partial(psutil_connections, psutil)
        self._process = process or functools.partial(psutil_process, psutil=psutil, sid_of=sid_of)

    def lookup(self, peer: tuple[str, int], local: tuple[str, int]) -> PeerInfo | None:
        """See ``PeerLookup.lookup``."""
        try:
            for row in self._connections():
                if row.raddr is None or row.pid is None:
                    continue
                if _same(row.laddr, peer) and _same(row.raddr, local):
                    owner, exe = self._process(row.pid)
                    uid = owner.uid if owner is not None else None
                    return PeerInfo(uid=uid, pid=row.pid, exe=exe, owner=owner)
        except Exception:  # any OS/psutil failure means "unknown": the proxy refuses
            return None
        return None
