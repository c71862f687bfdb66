"""Linux NETLINK_SOCK_DIAG peer lookup: uid and inode of one socket by its exact 4-tuple.

One ``SOCK_DIAG_BY_FAMILY`` request (``inet_diag_req_v2`` without NLM_F_DUMP, cookie
``INET_DIAG_NOCOOKIE``) makes the kernel look the socket up in its hash table and answer
with an ``inet_diag_msg`` carrying ``idiag_uid`` and ``idiag_inode`` — microseconds,
where parsing /proc/net/tcp costs milliseconds. The inode is mapped to a pid by
``procfs.InodePidIndex``. Uses only the stdlib (``socket.AF_NETLINK``).
"""

from __future__ import annotations

import errno
import select
import socket
import struct
import threading

from core.proxy.peer import PeerInfo
from core.proxy.peer.procfs import InodePidIndex, exe_of

__all__ = ["SockDiagLookup"]

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x01
NLMSG_ERROR = 0x02
_NLMSG_HDR = struct.Struct("=IHHII")
_REQ_HEAD = struct.Struct("=BBBBI")
_PORTS = struct.Struct("!HH")
_TAIL = struct.Struct("=III")  # interface, cookie[2]
_NOCOOKIE = 0xFFFFFFFF
_TAIL_BYTES = _TAIL.pack(0, _NOCOOKIE, _NOCOOKIE)
_ANSWER_WAIT_MS = 1000  # the longest a lookup waits for the kernel's answer
_UID_INODE = struct.Struct("=II")
_MSG_UID_OFFSET = _NLMSG_HDR.size + 64  # family..retrans(4) + id(48) + expires/rq/wq(12)


class SockDiagLookup:
    """Peer lookup through netlink sock_diag. Thread-safe (one request at a time).

    Raises ``OSError`` from the constructor when netlink sock_diag is unavailable (the
    caller then falls back to /proc); ``lookup`` itself never raises.
    """

    def __init__(self, *, index: InodePidIndex | None = None, proc: str = "/proc") -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
        # Non-blocking: the kernel answers sock_diag inside the send, so the answer is
        # already queued when ``recv`` runs; a timeout socket would poll() before every
        # recv (one system call per lookup). A missing answer waits below, 1 s at most.
        self._sock.setblocking(False)
        self._lock = threading.Lock()
        self._seq = 0
        self._index = index or InodePidIndex(proc=proc)
        self._proc = proc

    def close(self) -> None:
        """Close the netlink socket. Idempotent."""
        self._sock.close()

    def uid_inode(self, peer: tuple[str, int], local: tuple[str, int]) -> tuple[int, int] | None:
        """(uid, inode) of the socket whose local end is ``peer`` and remote end ``local``."""
        family = socket.AF_INET6 if ":" in peer[0] else socket.AF_INET
        try:
            src = socket.inet_pton(family, peer[0])
            dst = socket.inet_pton(family, local[0])
        except (OSError, ValueError):
            return None
        body = (
            _REQ_HEAD.pack(family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF)
            + _PORTS.pack(peer[1], local[1])
            + src.ljust(16, b"\0")
            + dst.ljust(16, b"\0")
            + _TAIL_BYTES
        )
        with self._lock:
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            seq = self._seq
            msg = (
                _NLMSG_HDR.pack(
                    _NLMSG_HDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, seq, 0
                )
                + body
            )
            try:
                self._sock.send(msg)
                while True:
                    data = self._recv()
                    if data is None:
                        return None
                    if len(data) < _NLMSG_HDR.size:
                        return None
                    _length, mtype, _flags, rseq, _pid = _NLMSG_HDR.unpack_from(data)
                    if rseq != seq:
                        continue  # a late answer to an earlier, timed-out request
                    break
            except OSError:
                return None
        if mtype == NLMSG_ERROR:
            # -ENOENT: no such socket (the client already closed). Anything else: unknown.
            (err,) = struct.unpack_from("=i", data, _NLMSG_HDR.size)
            if -err not in (errno.ENOENT, 0):
                return None
            return None
        if mtype != SOCK_DIAG_BY_FAMILY or len(data) < _MSG_UID_OFFSET + 8:
            return None
        uid, inode = _UID_INODE.unpack_from(data, _MSG_UID_OFFSET)
        return uid, inode

    def _recv(self) -> bytes | None:
        """The next answer: at once when queued, else within 1 s (None: none came)."""
        try:
            return self._sock.recv(8192)
        except BlockingIOError:
            pass
        poller = select.poll()  # not select(): the descriptor may be above 1024
        poller.register(self._sock, select.POLLIN)
        if not poller.poll(_ANSWER_WAIT_MS):
            return None
        try:
            return self._sock.recv(8192)
        except BlockingIOError:
            return None

    def lookup(self, peer: tuple[str, int], local: tuple[str, int]) -> PeerInfo | None:
        """See ``PeerLookup.lookup``: uid by netlink, pid by inode, exe by /proc."""
        found = self.uid_inode(peer, local)
        if found is None:
            return None
        return self.finish(*found)

    def finish(self, uid: int, inode: int) -> PeerInfo:
        """The ``PeerInfo`` of the socket ``uid_inode`` answered (uid, inode) for: the
        pid holding that inode now (proved by its fd link), and the pid's executable.
        The proxy calls this later than ``uid_inode`` (see ``serving.PeerSlot``)."""
        pid = self._index.pid_of(inode, uid) if inode else None
        return PeerInfo(uid=uid, pid=pid, exe=exe_of(pid, self._proc) if pid else "")
