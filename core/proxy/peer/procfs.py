"""Linux /proc based peer identification: inode → pid index and /proc/net/tcp lookup.

``InodePidIndex`` finds which process holds ``socket:[inode]``. A full scan of every
process's fd table costs milliseconds, so it first scans the processes that recently
owned connections (an app usually opens many), and in each process it reads first the
fd numbers it had not seen at the previous scan (a new socket usually gets a new fd
number). A scan remembers every socket it passes, so a client's other connections that
are already open need one readlink each. Only on a miss does it walk the processes of
the expected uid.
``ProcNetTcpLookup`` is the slow, portable-across-kernels fallback (and a benchmark peer).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections import OrderedDict

from core.proxy.peer import PeerInfo

__all__ = ["InodePidIndex", "ProcNetTcpLookup", "exe_of"]

_KNOWN_MAX = 4096  # remembered sockets of scanned processes (oldest forgotten first)


def exe_of(pid: int, proc: str = "/proc") -> str:
    """The executable path of ``pid`` ("" when gone or unreadable). Never raises."""
    try:
        exe = os.readlink(f"{proc}/{pid}/exe")
    except OSError:
        return ""
    # A replaced binary reads as "/path (deleted)": keep the path, the policy sees it.
    return exe


class InodePidIndex:
    """Maps socket inodes to the pid holding them. Loop thread only; never raises.

    ``recent`` bounds how many recently matched processes are tried before a full scan.
    """

    def __init__(self, *, proc: str = "/proc", recent: int = 16) -> None:
        self._proc = proc
        self._recent_max = recent
        # pid → fd names seen at its last scan (to try new fd numbers first).
        self._recent: OrderedDict[int, frozenset[str]] = OrderedDict()
        # pid → fd number of its last matched socket: a client that closes and reopens
        # connections usually gets the same (lowest free) fd number again.
        self._last_fd: dict[int, str] = {}
        # "socket:[inode]" → (pid, fd) of sockets seen while scanning for another one.
        self._known: OrderedDict[str, tuple[int, str]] = OrderedDict()

    def _scan_pid(self, pid: int, target: str) -> bool:
        fd_dir = f"{self._proc}/{pid}/fd"
        try:
            dfd = os.open(fd_dir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            self._recent.pop(pid, None)
            self._last_fd.pop(pid, None)
            return False
        try:
            try:
                names = os.listdir(dfd)
            except OSError:  # the process exited between open and listdir
                self._recent.pop(pid, None)
                self._last_fd.pop(pid, None)
                return False
            seen = self._recent.get(pid, frozenset())
            ordered = [n for n in names if n not in seen] + [n for n in names if n in seen]
            found = False
            known = self._known
            # Read the whole table, not just up to the match: every socket seen is
            # remembered, so the next connections of a busy client (opened before this
            # scan, still in their handshake) are found with one readlink.
            for name in ordered:
                try:
                    link = os.readlink(name, dir_fd=dfd)
                except OSError:
                    continue
                if link == target:
                    found = True
                    self._last_fd[pid] = name
                elif link.startswith("socket:["):
                    known[link] = (pid, name)
            while len(known) > _KNOWN_MAX:
                known.popitem(last=False)
            if found or pid in self._recent:
                self._recent[pid] = frozenset(names)
                self._recent.move_to_end(pid, last=False)
                while len(self._recent) > self._recent_max:
                    gone, _ = self._recent.popitem()
                    self._last_fd.pop(gone, None)
            return found
        finally:
            os.close(dfd)

    def pid_of(self, inode: int, uid: int | None = None) -> int | None:
        """The pid holding socket ``inode`` (restricting the full scan to ``uid``)."""
        target = f"socket:[{inode}]"
        hint = self._known.pop(target, None)
        if hint is not None:
            pid, fd = hint
            try:  # still there? (one syscall; it proves the pid holds it now)
                if os.readlink(f"{self._proc}/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                pass
        for pid, fd in self._last_fd.items():
            try:
                if os.readlink(f"{self._proc}/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
        tried: set[int] = set()
        for pid in list(self._recent):
            tried.add(pid)
            if self._scan_pid(pid, target):
                return pid
        try:
            entries = os.listdir(self._proc)
        except OSError:
            return None
        # Newest processes first: a client that just connected is likelier among them.
        for entry in sorted((e for e in entries if e.isdigit()), key=int, reverse=True):
            pid = int(entry)
            if pid in tried:
                continue
            if uid is not None:
                try:
                    if os.stat(f"{self._proc}/{entry}").st_uid != uid:
                        continue
                except OSError:
                    continue
            if self._scan_pid(pid, target):
                self._recent[pid] = self._recent.get(pid, frozenset())
                self._recent.move_to_end(pid, last=False)
                return pid
        return None


def _hex_endpoint(host: str, port: int) -> tuple[int, str]:
    """(family, /proc/net/tcp spelling) of an endpoint: words in host byte order."""
    ip = ipaddress.ip_address(host)
    packed = ip.packed
    words = [packed[i : i + 4] for i in range(0, len(packed), 4)]
    text = "".join(int.from_bytes(w, "little").to_bytes(4, "big").hex() for w in words)
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    return family, f"{text.upper()}:{port:04X}"


class ProcNetTcpLookup:
    """Peer lookup by parsing /proc/net/tcp{,6} (milliseconds: a fallback). Never raises."""

    def __init__(self, *, proc: str = "/proc", index: InodePidIndex | None = None) -> None:
        self._proc = proc
        self._index = index or InodePidIndex(proc=proc)

    def uid_inode(self, peer: tuple[str, int], local: tuple[str, int]) -> tuple[int, int] | None:
        """(uid, inode) of the client socket, or None."""
        try:
            family, want_local = _hex_endpoint(*peer)
            _, want_remote = _hex_endpoint(*local)
        except ValueError:
            return None
        name = "tcp" if family == socket.AF_INET else "tcp6"
        try:
            with open(f"{self._proc}/net/{name}", "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        needle = f" {want_local} {want_remote} ".encode("ascii")
        pos = data.find(needle)
        if pos < 0:
            return None
        line = data[pos : data.find(b"\n", pos)].split()
        # fields after the needle: st tx:rx tr:when retrnsmt uid timeout inode
        try:
            return int(line[6]), int(line[8])
        except (IndexError, ValueError):
            return None

    def lookup(self, peer: tuple[str, int], local: tuple[str, int]) -> PeerInfo | None:
        """See ``PeerLookup.lookup``."""
        found = self.uid_inode(peer, local)
        if found is None:
            return None
        return self.finish(*found)

    def finish(self, uid: int, inode: int) -> PeerInfo:
        """The ``PeerInfo`` of the socket ``uid_inode`` answered (uid, inode) for."""
        pid = self._index.pid_of(inode, uid)
        return PeerInfo(uid=uid, pid=pid, exe=exe_of(pid, self._proc) if pid else "")
