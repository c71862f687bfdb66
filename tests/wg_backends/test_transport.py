"""Caller credentials from the kernel: Linux SO_PEERCRED for real, macOS LOCAL_PEERCRED
from injected ``getsockopt`` data (``struct xucred`` as <sys/ucred.h> lays it out)."""

from __future__ import annotations

import os
import socket
import struct

import pytest

from wg_backends.helper.transport import PeerCred, peer_cred

pytestmark = pytest.mark.unit

XUCRED = struct.Struct("=IIh2x16I")  # cr_version, cr_uid, cr_ngroups, pad, cr_groups[16]


class FakeDarwinSocket:
    """Answers getsockopt(SOL_LOCAL=0, LOCAL_PEERCRED=1 / LOCAL_PEERPID=2) like macOS."""

    def __init__(self, xucred: bytes, pid: int = 812) -> None:
        self.xucred = xucred
        self.pid = pid
        self.asked: list[tuple[int, int, int]] = []

    def getsockopt(self, level: int, option: int, buflen: int, /) -> bytes:
        self.asked.append((level, option, buflen))
        if (level, option) == (0, 1):
            return self.xucred[:buflen]
        if (level, option) == (0, 2):
            return struct.pack("=i", self.pid)
        raise OSError(92, "ENOPROTOOPT")


def _xucred(uid: int, groups: list[int], ngroups: int | None = None, version: int = 0) -> bytes:
    padded = (groups + [0] * 16)[:16]
    return XUCRED.pack(version, uid, len(groups) if ngroups is None else ngroups, *padded)


def test_macos_peercred_parses_uid_pid_and_groups() -> None:
    sock = FakeDarwinSocket(_xucred(501, [20, 12, 61, 79, 80, 701]))
    assert peer_cred(sock, platform="darwin") == PeerCred(812, 501, 20, (20, 12, 61, 79, 80, 701))
    assert sock.asked == [(0, 1, 76), (0, 2, 4)]


def test_macos_peercred_caps_ngroups_at_16_and_handles_none() -> None:
    many = _xucred(0, list(range(100, 116)), ngroups=40)
    assert peer_cred(FakeDarwinSocket(many), platform="darwin").groups == tuple(range(100, 116))
    assert peer_cred(FakeDarwinSocket(_xucred(501, [])), platform="darwin") == PeerCred(
        812, 501, -1, ()
    )
    negative = _xucred(501, [20], ngroups=-3)
    assert peer_cred(FakeDarwinSocket(negative), platform="darwin").groups == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_xucred(501, [20])[:40], "returned 40 bytes"),
        (_xucred(501, [20], version=7), "unknown xucred version 7"),
    ],
)
def test_macos_peercred_refuses_malformed_data(raw: bytes, message: str) -> None:
    with pytest.raises(OSError, match=message):
        peer_cred(FakeDarwinSocket(raw), platform="darwin")


def test_linux_peercred_of_a_real_socketpair() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        assert peer_cred(a, platform="linux") == PeerCred(os.getpid(), os.getuid(), os.getgid())
