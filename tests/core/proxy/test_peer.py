"""Peer identity: netlink sock_diag on real sockets, /proc parsing of captured tables,
the psutil matcher with an injected source, and refusal of the unknown."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from core.proxy.peer import Owner, PeerInfo, default_lookup
from core.proxy.peer.netlink import SockDiagLookup
from core.proxy.peer.procfs import InodePidIndex, ProcNetTcpLookup
from core.proxy.peer.psutil_source import ConnRow, PsutilLookup

pytestmark = pytest.mark.unit
DATA = Path(__file__).parent / "data"


def _pair(family: int, host: str) -> tuple[socket.socket, socket.socket, socket.socket]:
    lsock = socket.socket(family)
    lsock.bind((host, 0))
    lsock.listen()
    client = socket.create_connection(lsock.getsockname()[:2])
    server, _ = lsock.accept()
    return lsock, client, server


@pytest.mark.integration
@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
)
def test_netlink_finds_this_process(family: int, host: str) -> None:
    socks = _pair(family, host)
    try:
        server = socks[2]
        lookup = SockDiagLookup()
        info = lookup.lookup(server.getpeername()[:2], server.getsockname()[:2])
        assert info == PeerInfo(uid=os.getuid(), pid=os.getpid(), exe=os.readlink("/proc/self/exe"))
        # the server end's own 4-tuple, reversed, names the server socket (same process)
        uid_inode = lookup.uid_inode(server.getsockname()[:2], server.getpeername()[:2])
        assert uid_inode is not None
        assert uid_inode[1] == os.fstat(server.fileno()).st_ino
        lookup.close()
    finally:
        for s in socks:
            s.close()


@pytest.mark.integration
def test_netlink_answer_that_comes_late_is_waited_for_and_a_missing_one_ends() -> None:
    """The socket is non-blocking (the kernel answers inside the send); an answer that is
    not queued yet is waited for, and none at all ends the lookup after 1 s."""
    lookup = SockDiagLookup()
    stand_in, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    real, lookup._sock = lookup._sock, stand_in
    stand_in.setblocking(False)
    try:
        timer = threading.Timer(0.1, kernel.send, [b"late answer"])
        timer.start()
        assert lookup._recv() == b"late answer"
        started = time.monotonic()
        assert lookup._recv() is None
        assert 0.9 <= time.monotonic() - started < 3
    finally:
        timer.join()
        for s in (stand_in, kernel, real):
            s.close()


@pytest.mark.integration
def test_netlink_unknown_socket_is_none() -> None:
    lookup = SockDiagLookup()
    assert lookup.lookup(("127.0.0.1", 1), ("127.0.0.1", 2)) is None
    assert lookup.lookup(("not-an-ip", 1), ("127.0.0.1", 2)) is None
    lookup.close()


@pytest.mark.integration
def test_default_lookup_on_linux_is_netlink() -> None:
    assert isinstance(default_lookup("linux"), SockDiagLookup)
    assert isinstance(default_lookup("win32"), PsutilLookup)


def _fake_proc(tmp_path: Path, pid: int, inode: int, fds: int = 5) -> Path:
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    for name in ("tcp", "tcp6"):
        (proc / "net" / name).write_text((DATA / f"proc_net_{name}.txt").read_text())
    fd_dir = proc / str(pid) / "fd"
    fd_dir.mkdir(parents=True)
    for n in range(fds):
        os.symlink(f"pipe:[{n}]", fd_dir / str(n))
    os.symlink(f"socket:[{inode}]", fd_dir / str(fds))
    os.symlink("/usr/bin/curl", proc / str(pid) / "exe")
    other = proc / "1" / "fd"
    other.mkdir(parents=True)
    os.symlink("socket:[1]", other / "0")
    return proc


@pytest.mark.parametrize(("name", "inode"), [("tcp", 303865), ("tcp6", 303870)])
def test_proc_net_tcp_parses_captured_table(tmp_path: Path, name: str, inode: int) -> None:
    ends = json.loads((DATA / f"proc_net_{name}.json").read_text())
    proc = _fake_proc(tmp_path, 4242, inode)
    lookup = ProcNetTcpLookup(proc=str(proc))
    peer, local = tuple(ends["client"]), tuple(ends["proxy"])
    assert lookup.uid_inode(peer, local) == (0, inode)  # type: ignore[arg-type]
    info = lookup.lookup(peer, local)  # type: ignore[arg-type]
    assert info == PeerInfo(uid=0, pid=4242, exe="/usr/bin/curl")
    # the reverse direction is the server's socket, a different row
    assert lookup.uid_inode(local, peer) != (0, inode)  # type: ignore[arg-type]
    assert lookup.uid_inode(("127.0.0.1", 1), local) is None  # type: ignore[arg-type]


def test_inode_index_prefers_recent_and_new_fds(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, 4242, 777, fds=50)
    index = InodePidIndex(proc=str(proc))
    assert index.pid_of(777) == 4242
    # a new socket on a new fd of the same process is found without a full scan
    os.symlink("socket:[778]", proc / "4242" / "fd" / "60")
    (proc / "1").rename(proc / "1-hidden")  # a full scan would now miss pid 1 anyway
    assert index.pid_of(778) == 4242
    # the same fd number reused for another socket (close + reopen) is found first
    os.unlink(proc / "4242" / "fd" / "60")
    os.symlink("socket:[779]", proc / "4242" / "fd" / "60")
    assert index.pid_of(779) == 4242
    assert index.pid_of(999999) is None


def test_inode_index_filters_full_scan_by_uid(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, 4242, 777)
    index = InodePidIndex(proc=str(proc))
    me = os.stat(proc / "4242").st_uid
    assert index.pid_of(777, uid=me + 1) is None
    assert index.pid_of(777, uid=me) == 4242


def test_psutil_lookup_with_injected_table() -> None:
    rows = [
        ConnRow(("127.0.0.1", 9080), ("127.0.0.1", 50000), 1),  # the proxy's own end
        ConnRow(("::ffff:127.0.0.1", 50000), ("127.0.0.1", 9080), 77),
        ConnRow(("127.0.0.1", 50001), None, 78),
    ]
    calls: list[int] = []

    def process(pid: int) -> tuple[Owner | None, str]:
        calls.append(pid)
        return Owner(uid=1000), "/usr/local/bin/git"

    lookup = PsutilLookup(connections=lambda: rows, process=process)
    info = lookup.lookup(("127.0.0.1", 50000), ("127.0.0.1", 9080))
    assert info == PeerInfo(uid=1000, pid=77, exe="/usr/local/bin/git")
    assert calls == [77]
    assert lookup.lookup(("127.0.0.1", 50002), ("127.0.0.1", 9080)) is None


def test_psutil_lookup_failure_is_none() -> None:
    def broken() -> list[ConnRow]:
        raise PermissionError("access denied")

    assert PsutilLookup(connections=broken).lookup(("127.0.0.1", 1), ("127.0.0.1", 2)) is None


@pytest.mark.integration
def test_psutil_lookup_real_on_this_machine() -> None:
    socks = _pair(socket.AF_INET, "127.0.0.1")
    try:
        server = socks[2]
        info = PsutilLookup().lookup(server.getpeername()[:2], server.getsockname()[:2])
        assert info is not None
        assert info.pid == os.getpid()
        assert info.uid == os.getuid()
    finally:
        for s in socks:
            s.close()


def test_inode_index_remembers_sockets_seen_while_scanning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = _fake_proc(tmp_path, 4242, 777, fds=50)
    fd_dir = proc / "4242" / "fd"
    for n in range(60, 90):  # a busy client: 30 other connections in their handshake
        os.symlink(f"socket:[{1000 + n}]", fd_dir / str(n))
    index = InodePidIndex(proc=str(proc))
    assert index.pid_of(777) == 4242
    reads: list[str] = []
    real_readlink = os.readlink

    def counting_readlink(path: str, *, dir_fd: int | None = None) -> str:
        reads.append(path)
        return real_readlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "readlink", counting_readlink)
    for n in range(60, 90):  # each found with the one readlink that verifies it
        reads.clear()
        assert index.pid_of(1000 + n) == 4242
        assert len(reads) == 1
    # A remembered fd that now holds another socket is not believed: a fresh index
    # remembers 1061 at fd 61, then that socket moves to another process and fd 61 is
    # reused; the lookup verifies, sees the change and finds the real holder.
    monkeypatch.setattr(os, "readlink", real_readlink)
    index2 = InodePidIndex(proc=str(proc))
    assert index2.pid_of(777) == 4242
    os.unlink(fd_dir / "61")
    os.symlink("socket:[5000]", fd_dir / "61")
    other = proc / "4243" / "fd"
    other.mkdir(parents=True)
    os.symlink("socket:[1061]", other / "3")
    assert index2.pid_of(1061) == 4243
    assert index2.pid_of(5000) == 4242
