"""The per-OS owner check: who may use the proxy on Windows (SID / "DOMAIN\\user"),
macOS and Linux (uid), with psutil replaced by doubles shaped like its real objects.

psutil on Windows: ``net_connections`` yields ``sconn(fd=-1, family, type, laddr=addr(ip,
port), raddr, status, pid)``; ``Process`` has no ``uids()``; ``username()`` is
"DOMAIN\\user" (AccessDenied for another user's process without admin rights). On macOS
``uids()`` exists and ``exe()`` of another user's process may be denied.
"""

from __future__ import annotations

import os
import socket
from collections import namedtuple
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from core.proxy import EventKind, ProxyEvent, ProxyServer
from core.proxy.errors import ProxyConfigError
from core.proxy.peer import Owner, PeerInfo, current_owner
from core.proxy.peer.owner import uid_owner, windows_sid
from core.proxy.peer.psutil_source import PsutilLookup, psutil_process
from tests.core.proxy.helpers import EchoServer, TableDecider, refused_at_accept, socks_open
from tests.fakes.wait import async_wait_until

pytestmark = pytest.mark.unit

addr = namedtuple("addr", ["ip", "port"])
sconn = namedtuple("sconn", ["fd", "family", "type", "laddr", "raddr", "status", "pid"])
puids = namedtuple("puids", ["real", "effective", "saved"])

ALICE_SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
BOB_SID = "S-1-5-21-1004336348-1177238915-682003330-1002"


class AccessDenied(Exception):
    """psutil.AccessDenied's stand-in."""


class NoSuchProcess(Exception):
    """psutil.NoSuchProcess's stand-in."""


class WinProcess:
    """psutil.Process as on Windows: username() but no uids()."""

    def __init__(self, users: dict[int, str | None], pid: int) -> None:
        if pid not in users:
            raise NoSuchProcess(pid)
        self._user = users[pid]
        self.pid = pid

    def username(self) -> str:
        if self._user is None:
            raise AccessDenied(self.pid)
        return self._user

    def exe(self) -> str:
        return f"C:\\Program Files\\App{self.pid}\\app.exe"


class MacProcess:
    """psutil.Process as on macOS: uids(); exe() denied for other users' processes."""

    def __init__(self, uids: dict[int, int], pid: int) -> None:
        self._uid = uids[pid]
        self.pid = pid

    def uids(self) -> Any:
        return puids(self._uid, self._uid, self._uid)

    def username(self) -> str:
        return "alice"

    def exe(self) -> str:
        if self._uid != 501:
            raise AccessDenied(self.pid)
        return "/Applications/Safari.app/Contents/MacOS/Safari"


class FakePsutil:
    """The slice of the psutil module the proxy uses, for one recorded table."""

    Error = Exception
    AccessDenied = AccessDenied

    def __init__(self, rows: list[Any], process: Any) -> None:
        self._rows = rows
        self.Process = process
        self.kinds: list[str] = []

    def net_connections(self, kind: str = "inet") -> list[Any]:
        self.kinds.append(kind)
        return list(self._rows)


def _row(client: tuple[str, int], proxy: tuple[str, int] | None, pid: int) -> Any:
    fam = socket.AF_INET6 if ":" in client[0] else socket.AF_INET
    raddr = addr(*proxy) if proxy else ()  # psutil gives an empty tuple, not None
    status = "ESTABLISHED" if proxy else "LISTEN"
    return sconn(-1, fam, socket.SOCK_STREAM, addr(*client), raddr, status, pid)


def _windows(users: dict[int, str | None], rows: list[Any]) -> FakePsutil:
    return FakePsutil(rows, lambda pid: WinProcess(users, pid))


PROXY = ("127.0.0.1", 9080)
WIN_ROWS = [
    _row(PROXY, None, 4),  # the listening socket
    _row(PROXY, ("127.0.0.1", 50000), 4),  # the proxy's own end
    _row(("127.0.0.1", 50000), PROXY, 77),  # alice's browser
    _row(("127.0.0.1", 50001), PROXY, 88),  # bob's, in another session
    _row(("127.0.0.1", 50002), PROXY, 99),  # a process whose token we cannot read
    _row(("::1", 50003), ("::1", 9080), 77),
]
WIN_USERS: dict[int, str | None] = {
    4: "DESKTOP-AB12\\Alice",
    77: "desktop-ab12\\alice",
    88: "DESKTOP-AB12\\bob",
    99: None,
}


# ------------------------------------------------------------------------ Owner


def test_same_account_uses_the_strongest_common_identity() -> None:
    assert Owner(uid=1000).same_account(Owner(uid=1000)) is True
    assert Owner(uid=1000).same_account(Owner(uid=1001)) is False
    # SIDs decide over names when both sides have one
    alice = Owner(sid=ALICE_SID, name="DESKTOP-AB12\\alice")
    assert alice.same_account(Owner(sid=ALICE_SID.lower(), name="x\\y")) is True
    assert alice.same_account(Owner(sid=BOB_SID, name="DESKTOP-AB12\\alice")) is False
    # a peer whose SID could not be read is compared by name, case-insensitively
    assert alice.same_account(Owner(name="DESKTOP-AB12\\ALICE")) is True
    assert alice.same_account(Owner(name="DESKTOP-AB12\\bob")) is False
    assert alice.same_account(Owner(name="CORP\\alice")) is False
    # nothing in common, or nothing known: not comparable
    assert alice.same_account(Owner(uid=1000)) is None
    assert Owner(uid=1000).same_account(Owner()) is None
    assert not Owner().known
    assert str(Owner(uid=7)) == "uid 7"
    assert str(Owner(sid=BOB_SID, name="D\\bob")) == f"user D\\bob, SID {BOB_SID}"
    assert str(Owner()) == "unknown owner"


def test_peer_info_derives_its_owner_from_the_uid() -> None:
    assert PeerInfo(uid=1000, pid=1, exe="").owner is uid_owner(1000)
    assert PeerInfo(uid=1000, pid=1, exe="") == PeerInfo(1000, 1, "", Owner(uid=1000))
    assert PeerInfo(uid=None, pid=1, exe="").owner is None
    assert PeerInfo(uid=-1, pid=1, exe="").owner is None  # psutil's "no uid" of old
    named = Owner(name="D\\alice")
    assert PeerInfo(uid=None, pid=1, exe="", owner=named).owner is named


def test_current_owner_per_os() -> None:
    assert current_owner("linux") is uid_owner(os.getuid())
    assert current_owner("darwin") is uid_owner(os.getuid())
    fake = _windows(WIN_USERS, [])
    sids = {4: ALICE_SID}
    win = current_owner("win32", psutil=fake, sid_of=sids.get, pid=4)
    assert win == Owner(sid=ALICE_SID, name="DESKTOP-AB12\\Alice")
    # SID unreadable (no ctypes access): the name alone
    assert current_owner("win32", psutil=fake, sid_of=lambda pid: None, pid=4) == Owner(
        name="DESKTOP-AB12\\Alice"
    )
    # neither readable: an owner matching nobody, not an exception
    blind = current_owner("win32", psutil=fake, sid_of=lambda pid: None, pid=99)
    assert not blind.known
    assert windows_sid(os.getpid()) is None  # off Windows


# --------------------------------------------------------------- psutil sources


def test_windows_table_and_usernames() -> None:
    fake = _windows(WIN_USERS, WIN_ROWS)
    lookup = PsutilLookup(psutil=fake, sid_of=lambda pid: None)
    info = lookup.lookup(("127.0.0.1", 50000), PROXY)
    assert info == PeerInfo(
        uid=None,
        pid=77,
        exe="C:\\Program Files\\App77\\app.exe",
        owner=Owner(name="desktop-ab12\\alice"),
    )
    assert fake.kinds == ["tcp"]
    v6 = lookup.lookup(("::1", 50003), ("::1", 9080))
    assert v6 is not None
    assert v6.pid == 77
    bob = lookup.lookup(("127.0.0.1", 50001), PROXY)
    assert bob is not None
    assert bob.owner == Owner(name="DESKTOP-AB12\\bob")
    # username() denied and no SID: identified process, unknown owner
    denied = lookup.lookup(("127.0.0.1", 50002), PROXY)
    assert denied == PeerInfo(uid=None, pid=99, exe="C:\\Program Files\\App99\\app.exe")
    assert denied.owner is None
    assert lookup.lookup(("127.0.0.1", 50009), PROXY) is None


def test_windows_sid_is_read_when_available() -> None:
    sids = {77: ALICE_SID, 88: BOB_SID}
    owner, _exe = psutil_process(77, _windows(WIN_USERS, []), sids.get)
    assert owner == Owner(sid=ALICE_SID, name="desktop-ab12\\alice")
    # bob's name unreadable, his SID readable (an administrator's proxy)
    owner, _exe = psutil_process(88, _windows({88: None}, []), sids.get)
    assert owner == Owner(sid=BOB_SID)
    with pytest.raises(NoSuchProcess):
        psutil_process(12345, _windows(WIN_USERS, []), sids.get)
    # a vanished process makes the whole lookup "unknown"
    gone = _windows({}, WIN_ROWS)
    assert PsutilLookup(psutil=gone).lookup(("127.0.0.1", 50000), PROXY) is None


def test_macos_uids_and_denied_exe() -> None:
    rows = [_row(("127.0.0.1", 50000), PROXY, 310), _row(("127.0.0.1", 50001), PROXY, 320)]
    fake = FakePsutil(rows, lambda pid: MacProcess({310: 501, 320: 502}, pid))
    lookup = PsutilLookup(psutil=fake)
    mine = lookup.lookup(("127.0.0.1", 50000), PROXY)
    assert mine == PeerInfo(uid=501, pid=310, exe="/Applications/Safari.app/Contents/MacOS/Safari")
    assert mine.owner is uid_owner(501)
    theirs = lookup.lookup(("127.0.0.1", 50001), PROXY)
    assert theirs == PeerInfo(uid=502, pid=320, exe="")


class MacUserProcess:
    """A process as psutil.process_iter() yields it on macOS, with its own sockets."""

    def __init__(self, pid: int, uid: int, conns: list[Any]) -> None:
        self.pid = pid
        self._uid = uid
        self._conns = conns

    def uids(self) -> Any:
        if self.pid == 1:
            raise AccessDenied(1)
        return puids(self._uid, self._uid, self._uid)

    def net_connections(self, kind: str = "inet") -> list[Any]:
        assert kind == "tcp"
        return self._conns


class MacNotRoot(FakePsutil):
    """psutil on macOS for a non-root user: the machine-wide table is denied."""

    def __init__(self, procs: list[MacUserProcess]) -> None:
        super().__init__([], lambda pid: MacProcess({p.pid: p._uid for p in procs}, pid))
        self._procs = procs

    def net_connections(self, kind: str = "inet") -> list[Any]:
        raise AccessDenied()

    def process_iter(self) -> Iterator[MacUserProcess]:
        return iter(self._procs)


def test_macos_without_root_reads_own_processes() -> None:
    me = os.getuid()
    pconn = namedtuple("pconn", ["fd", "family", "type", "laddr", "raddr", "status"])

    def conn(port: int) -> Any:
        return pconn(
            5,
            socket.AF_INET,
            socket.SOCK_STREAM,
            addr("127.0.0.1", port),
            addr(*PROXY),
            "ESTABLISHED",
        )

    procs = [
        MacUserProcess(1, 0, [conn(50009)]),  # launchd: uids() denied, skipped
        MacUserProcess(310, me, [conn(50000)]),
        MacUserProcess(320, me + 1, [conn(50001)]),  # another user's: never listed
    ]
    lookup = PsutilLookup(psutil=MacNotRoot(procs))
    mine = lookup.lookup(("127.0.0.1", 50000), PROXY)
    assert mine is not None
    assert mine.pid == 310
    assert mine.owner is uid_owner(me)
    assert lookup.lookup(("127.0.0.1", 50001), PROXY) is None
    assert lookup.lookup(("127.0.0.1", 50009), PROXY) is None


# -------------------------------------------------------- through a real proxy


class OwnSockets(FakePsutil):
    """A Windows-shaped psutil whose table is this process's real sockets, attributed to
    ``pid`` (so a real client through a real proxy is matched by the real 4-tuple)."""

    def __init__(self, users: dict[int, str | None], pid: int) -> None:
        super().__init__([], lambda p: WinProcess(users, p))
        self._pid = pid

    def net_connections(self, kind: str = "inet") -> list[Any]:
        import psutil

        self.kinds.append(kind)
        return [
            sconn(-1, c.family, c.type, c.laddr, c.raddr, c.status, self._pid)
            for c in psutil.Process().net_connections(kind=kind)
        ]


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    await server.start()
    yield server
    await server.stop()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("peer_user", "peer_sid", "refusal"),
    [
        ("desktop-ab12\\ALICE", None, None),  # same account, other spelling
        ("DESKTOP-AB12\\alice", ALICE_SID, None),
        ("DESKTOP-AB12\\bob", None, "another user's process (user DESKTOP-AB12\\bob)"),
        # the name says alice, the SID says otherwise: the SID wins
        (
            "DESKTOP-AB12\\alice",
            BOB_SID,
            f"another user's process (user DESKTOP-AB12\\alice, SID {BOB_SID})",
        ),
        (None, None, "owner of the connecting process could not be determined"),
    ],
)
async def test_windows_owner_check_through_the_proxy(
    echo: EchoServer, peer_user: str | None, peer_sid: str | None, refusal: str | None
) -> None:
    users = {4: "DESKTOP-AB12\\Alice", 77: peer_user}
    sids = {4: ALICE_SID, 77: peer_sid}
    host = current_owner("win32", psutil=_windows(users, []), sid_of=sids.get, pid=4)
    events: list[ProxyEvent] = []
    decider = TableDecider([("loop", (), ("127.0.0.0/8",), ())])
    server = ProxyServer(
        decider,
        host_owner=host,
        peer_lookup=PsutilLookup(psutil=OwnSockets(users, 77), sid_of=sids.get),
        on_event=events.append,
    )
    await server.start(0)
    try:
        if refusal is None:
            code, _r, w = await socks_open(server.port, "127.0.0.1", echo.port)
            w.close()
        else:  # closed at accept: not even the greeting is answered
            assert await refused_at_accept(server.port)
        await async_wait_until(lambda: events, what="the connection's event")
    finally:
        await server.stop()
    [event] = events
    assert event.app.pid == 77
    assert event.app.uid is None
    assert event.app.exe == "C:\\Program Files\\App77\\app.exe"
    if refusal is None:
        assert code == 0
        assert event.kind is EventKind.DECISION
        assert [r.app.pid for r in decider.seen] == [77]
    else:
        assert event.kind is EventKind.REFUSED
        assert refusal in event.reason
        assert decider.seen == []


async def test_host_identity_arguments(echo: EchoServer) -> None:
    decider = TableDecider([])
    with pytest.raises(ProxyConfigError):
        ProxyServer(decider, host_uid=os.getuid(), host_owner=Owner(uid=os.getuid()))
    # default: this process's account, so our own client is served
    events: list[ProxyEvent] = []
    server = ProxyServer(TableDecider([("loop", (), ("127.0.0.0/8",), ())]), on_event=events.append)
    await server.start(0)
    try:
        code, _r, w = await socks_open(server.port, "127.0.0.1", echo.port)
        w.close()
    finally:
        await server.stop()
    assert code == 0
    # a host whose own account is unknown serves nobody, and says why
    events.clear()
    blind = ProxyServer(decider, host_owner=Owner(), on_event=events.append)
    await blind.start(0)
    try:
        assert await refused_at_accept(blind.port)
        await async_wait_until(lambda: events, what="the refusal event")
    finally:
        await blind.stop()
    assert "cannot be compared with this user (unknown owner)" in events[0].reason
