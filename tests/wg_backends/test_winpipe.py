"""The Windows named-pipe transport, on Linux: ACL as data, authorisation from token data,
the pywin32 call sequences with injected modules, and the real server + client over a
fake pipe API (socketpairs standing in for pipe instances).
"""

from __future__ import annotations

import asyncio
import struct
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.wait import async_wait_until
from tests.wg_backends.fakes import FakeBackend, ScriptedRunner
from tests.wg_backends.keys import PRIV, PUB
from tests.wg_backends.winfakes import (
    GROUP_SID,
    MEMBER,
    STRANGER,
    USER_SID,
    FakePipes,
    FakeWinError,
    Recorder,
)
from wg_backends.errors import HelperRefused, HelperUnavailable
from wg_backends.helper import winpipe as w
from wg_backends.helper.client import HelperClient
from wg_backends.helper.server import HelperConfig, HelperServer
from wg_backends.helper.transport import PeerCred, WindowsCaller
from wg_backends.spec import PeerSpec, TunnelSpec

pytestmark = pytest.mark.unit

ADMINS, SYSTEM, NETWORK = "S-1-5-32-544", "S-1-5-18", "S-1-5-2"


# ----- the ACL -------------------------------------------------------------------------


def test_pipe_name_is_the_documented_one() -> None:
    assert w.PIPE_NAME == "\\\\.\\pipe\\rustronaut-helper"


def test_sddl_with_group() -> None:
    assert w.pipe_sddl(GROUP_SID) == (
        "D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)"
        "(A;;0x0012019b;;;S-1-5-21-1004336348-1177238915-682003330-1001)"
    )


def test_sddl_with_group_and_allowed_sids_is_sorted_and_deduplicated() -> None:
    assert w.pipe_sddl(GROUP_SID, [USER_SID, GROUP_SID]) == (
        "D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)"
        f"(A;;0x0012019b;;;{GROUP_SID})(A;;0x0012019b;;;{USER_SID})"
    )


def test_sddl_without_group_is_system_and_admins_only() -> None:
    assert w.pipe_sddl(None) == "D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)"


def test_client_access_is_read_write_without_create_instance() -> None:
    file_generic_read = 0x00120089
    file_generic_write = 0x00120116
    file_create_pipe_instance = 0x4
    assert (file_generic_read | file_generic_write) & ~file_create_pipe_instance == w.CLIENT_ACCESS
    assert not w.CLIENT_ACCESS & file_create_pipe_instance


@pytest.mark.parametrize(
    "bad", ["", "Rustronaut Users", "S-1-5", "S-1-5-21-1)(A;;GA;;;WD", "s-1-5-18", "S-1-5-18\n"]
)
def test_sddl_refuses_anything_but_a_sid(bad: str) -> None:
    with pytest.raises(ValueError, match="not a string SID"):
        w.pipe_sddl(GROUP_SID, [bad]) if bad else w.pipe_sddl("S-1-x")


# ----- authorisation from token data ---------------------------------------------------


def test_token_groups_keep_only_enabled_and_separate_deny_only() -> None:
    caller = w.caller_from_token(
        7,
        USER_SID,
        [
            (ADMINS, 0x10),  # SE_GROUP_USE_FOR_DENY_ONLY: a UAC-filtered admin
            (GROUP_SID, 0x7),  # mandatory | enabled by default | enabled
            ("S-1-5-32-545", 0x0),  # present but disabled
            ("S-1-5-11", 0x7),
        ],
    )
    assert caller == WindowsCaller(
        7, USER_SID, frozenset({GROUP_SID, "S-1-5-11"}), frozenset({ADMINS})
    )


def _caller(user: str = USER_SID, groups: tuple[str, ...] = (), deny: tuple[str, ...] = ()) -> Any:
    return WindowsCaller(1, user, frozenset(groups), frozenset(deny))


@pytest.mark.parametrize(
    ("caller", "allowed", "reason"),
    [
        (_caller(SYSTEM), True, "system"),
        (_caller(groups=(ADMINS,)), True, "administrators"),
        (_caller(deny=(ADMINS,)), False, "not in the helper's group"),
        (_caller(groups=(GROUP_SID,)), True, "group"),
        (_caller(groups=(GROUP_SID,), deny=()), True, "group"),
        (_caller(deny=(GROUP_SID,)), False, "not in the helper's group"),
        (_caller("S-1-5-21-9-9-9-500"), True, "allowed sid"),
        (_caller(groups=(GROUP_SID, NETWORK)), False, "network logon"),
        (_caller(SYSTEM, groups=(NETWORK,)), False, "network logon"),
        (_caller(""), False, "unknown caller"),
        (PeerCred(1, 0, 0), False, "unknown caller"),
        (STRANGER, False, "not in the helper's group"),
    ],
)
def test_decide(caller: Any, allowed: bool, reason: str) -> None:
    got = w.decide(caller, group_sid=GROUP_SID, allowed_sids={"S-1-5-21-9-9-9-500"})
    assert got == w.Decision(allowed, reason)
    assert w.authorise(caller, group_sid=GROUP_SID, allowed_sids={"S-1-5-21-9-9-9-500"}) is allowed


def test_no_group_configured_means_only_system_admins_and_allowed() -> None:
    assert not w.authorise(_caller(groups=(GROUP_SID,)), group_sid=None)
    assert w.authorise(_caller(groups=(ADMINS,)), group_sid=None)


# ----- the pywin32 call sequences (injected modules) -----------------------------------


class _Sid:
    def __init__(self, s: str) -> None:
        self.s = s


def _modules(log: list[tuple[Any, ...]], *, fail_groups: bool = False) -> dict[str, Any]:
    def token_info(token: Any, cls: str) -> Any:
        log.append(("GetTokenInformation", cls))
        if cls == "TokenUser":
            return (_Sid(USER_SID), 0)
        if fail_groups:
            raise FakeWinError(5, "GetTokenInformation", "Access is denied.")
        return [(_Sid(GROUP_SID), 0x7), (_Sid(ADMINS), 0x10)]

    def open_token(thread: Any, access: int, as_self: bool) -> str:
        log.append(("OpenThreadToken", thread, access, as_self))
        return "token"

    sec = Recorder(
        "sec",
        log,
        TokenUser="TokenUser",
        TokenGroups="TokenGroups",
        TOKEN_QUERY=8,
        SDDL_REVISION_1=1,
        OpenThreadToken=open_token,
        GetTokenInformation=token_info,
        ConvertSidToStringSid=lambda sid: sid.s,
        RevertToSelf=lambda: log.append(("RevertToSelf",)),
        ImpersonateNamedPipeClient=lambda h: log.append(("Impersonate", h)),
        SECURITY_ATTRIBUTES=lambda: type("SA", (), {})(),
        ConvertStringSecurityDescriptorToSecurityDescriptor=lambda sddl, rev: ("SD", sddl, rev),
        LookupAccountName=lambda host, name: (_Sid(GROUP_SID), "HOST", 4),
    )
    pipe = Recorder(
        "pipe",
        log,
        GetNamedPipeClientProcessId=lambda h: 4242,
        PIPE_ACCESS_DUPLEX=0x3,
        PIPE_TYPE_BYTE=0,
        PIPE_READMODE_BYTE=0,
        PIPE_WAIT=0,
        PIPE_UNLIMITED_INSTANCES=255,
        CreateNamedPipe=lambda *a: log.append(("CreateNamedPipe", *a)) or "h",
    )
    return {
        "win32pipe": pipe,
        "win32security": sec,
        "win32api": Recorder("api", log, GetCurrentThread=lambda: "thread"),
        "win32file": Recorder(
            "file", log, FILE_FLAG_FIRST_PIPE_INSTANCE=0x00080000, OPEN_EXISTING=3
        ),
        "pywintypes": type("pywintypes", (), {"error": FakeWinError}),
    }


def test_identify_impersonates_reads_the_token_and_reverts() -> None:
    log: list[tuple[Any, ...]] = []
    caller = w.PyWin32PipeApi(_modules(log)).identify("h")
    assert caller == WindowsCaller(4242, USER_SID, frozenset({GROUP_SID}), frozenset({ADMINS}))
    assert log == [
        ("Impersonate", "h"),
        ("OpenThreadToken", "thread", 8, True),
        ("GetTokenInformation", "TokenUser"),
        ("GetTokenInformation", "TokenGroups"),
        ("RevertToSelf",),
    ]


def test_identify_reverts_even_when_the_token_cannot_be_read() -> None:
    log: list[tuple[Any, ...]] = []
    with pytest.raises(OSError, match="Access is denied"):
        w.PyWin32PipeApi(_modules(log, fail_groups=True)).identify("h")
    assert log[-1] == ("RevertToSelf",)


@pytest.mark.parametrize(("first", "mode"), [(True, 0x3 | 0x00080000), (False, 0x3)])
def test_create_uses_the_sddl_first_instance_flag_and_rejects_remote_clients(
    first: bool, mode: int
) -> None:
    log: list[tuple[Any, ...]] = []
    assert w.PyWin32PipeApi(_modules(log)).create(w.PIPE_NAME, "D:P(A;;GA;;;SY)", first=first)
    (call,) = [c for c in log if c[0] == "CreateNamedPipe"]
    _, name, open_mode, pipe_mode, instances, out_buf, in_buf, timeout, sa = call
    assert (name, open_mode, pipe_mode, instances, out_buf, in_buf, timeout) == (
        w.PIPE_NAME,
        mode,
        0x8,  # PIPE_REJECT_REMOTE_CLIENTS | byte type/read mode | wait
        255,
        65536,
        65536,
        0,
    )
    assert sa.SECURITY_DESCRIPTOR == ("SD", "D:P(A;;GA;;;SY)", 1)


def test_group_sid_is_looked_up_locally() -> None:
    assert w.PyWin32PipeApi(_modules([])).group_sid("Rustronaut Users") == GROUP_SID


def test_open_client_asks_for_exact_access_identification_only_and_waits_when_busy() -> None:
    log: list[tuple[Any, ...]] = []
    mods = _modules(log)
    attempts: list[tuple[Any, ...]] = []

    def create_file(*args: Any) -> str:
        attempts.append(args)
        if len(attempts) == 1:
            raise FakeWinError(w.ERROR_PIPE_BUSY, "CreateFile", "All pipe instances are busy.")
        return "client"

    mods["win32file"].CreateFile = create_file
    mods["win32pipe"].WaitNamedPipe = lambda name, ms: log.append(("WaitNamedPipe", name, ms))
    assert w.PyWin32PipeApi(mods).open_client(w.PIPE_NAME, 2.5) == "client"
    assert attempts[0] == (w.PIPE_NAME, 0x0012019B, 0, None, 3, 0x00110000, None)
    assert ("WaitNamedPipe", w.PIPE_NAME, 2500) in log


def test_read_maps_broken_pipe_to_end_of_stream_and_other_errors_to_oserror() -> None:
    mods = _modules([])
    api = w.PyWin32PipeApi(mods)

    def broken(*a: Any) -> Any:
        raise FakeWinError(w.ERROR_BROKEN_PIPE, "ReadFile", "The pipe has been ended.")

    mods["win32file"].ReadFile = broken
    assert api.read("h", 10) == b""

    def aborted(*a: Any) -> Any:
        raise FakeWinError(w.ERROR_OPERATION_ABORTED, "ReadFile", "aborted")

    mods["win32file"].ReadFile = aborted
    with pytest.raises(OSError) as info:
        api.read("h", 10)
    assert info.value.winerror == w.ERROR_OPERATION_ABORTED  # type: ignore[attr-defined]


def test_write_loops_until_everything_is_written() -> None:
    mods = _modules([])
    chunks: list[bytes] = []

    def write_file(h: Any, data: bytes, ov: Any) -> tuple[int, int]:
        chunks.append(data)
        return 0, min(3, len(data))

    mods["win32file"].WriteFile = write_file
    w.PyWin32PipeApi(mods).write("h", b"abcdefgh")
    assert chunks == [b"abcdefgh", b"defgh", b"gh"]


# ----- the real server and client over the fake pipe API -------------------------------


def _spec(name: str = "rtw0") -> TunnelSpec:
    return TunnelSpec(
        interface=name,
        addresses=("10.232.0.2/32",),
        peers=(
            PeerSpec(public_key=PUB, endpoint="10.231.0.1:51820", allowed_ips=("10.233.0.0/24",)),
        ),
        private_key=PRIV,
    )


class _Bed:
    def __init__(self, tmp: Path, pipes: FakePipes, **kw: Any) -> None:
        self.pipes = pipes
        self.backend = FakeBackend()
        self.listener = w.NamedPipeListener("\\\\.\\pipe\\rt-test", api=pipes)
        cfg = HelperConfig(
            socket_path=tmp / "unused.sock",
            state_dir=tmp / "state",
            pipe_name="\\\\.\\pipe\\rt-test",
            group="Rustronaut Users",
            **kw,
        )
        self.server = HelperServer(cfg, self.backend, ScriptedRunner(), listener=self.listener)

    def client(self) -> HelperClient:
        return HelperClient(pipe_name="\\\\.\\pipe\\rt-test", pipe_api=self.pipes, timeout=5)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_member_says_hello_brings_a_tunnel_up_and_down(tmp_path: Path) -> None:
    async def scenario() -> None:
        bed = _Bed(tmp_path, FakePipes())
        await bed.server.start()
        try:
            assert bed.listener.group_sid == GROUP_SID
            assert bed.pipes.created[0] == ("\\\\.\\pipe\\rt-test", w.pipe_sddl(GROUP_SID), True)
            async with bed.client() as c:
                hello = await c.hello()
                assert (hello["sid"], hello["protocol"]) == (USER_SID, 1)
                status = await c.up(_spec())
                assert status.up
                assert "rtw0" in bed.backend.up_ifaces
                await c.down("rtw0")
                assert bed.backend.downs == ["rtw0"]
                assert not (await c.status("rtw0")).up
            # every later instance is created without FIRST_PIPE_INSTANCE
            assert all(not first for _, _, first in bed.pipes.created[1:])
        finally:
            await bed.server.close()

    run(scenario())


def test_stranger_and_unidentifiable_callers_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        pipes = FakePipes()
        bed = _Bed(tmp_path, pipes)
        await bed.server.start()
        try:
            for who in (STRANGER, OSError("ImpersonateNamedPipeClient failed")):
                pipes.next_identity = who
                async with bed.client() as c:
                    with pytest.raises(HelperRefused) as info:
                        await c.up(_spec())
                    assert info.value.helper_code == "unauthorized"
            assert bed.backend.up_ifaces == {}
            pipes.next_identity = MEMBER  # and the helper still serves
            async with bed.client() as c:
                assert (await c.hello())["sid"] == USER_SID
        finally:
            await bed.server.close()

    run(scenario())


def test_lost_owner_brings_its_tunnel_down(tmp_path: Path) -> None:
    async def scenario() -> None:
        bed = _Bed(tmp_path, FakePipes())
        await bed.server.start()
        try:
            c = bed.client()
            await c.up(_spec())
            await c.close()
            await async_wait_until(lambda: bed.backend.downs, what="the tunnel brought down")
            assert bed.backend.downs == ["rtw0"]
        finally:
            await bed.server.close()

    run(scenario())


def test_a_stalled_frame_times_out_and_the_helper_keeps_serving(tmp_path: Path) -> None:
    async def scenario() -> None:
        pipes = FakePipes()
        bed = _Bed(tmp_path, pipes, frame_timeout=0.3)
        await bed.server.start()
        try:
            conn = await w.open_pipe("\\\\.\\pipe\\rt-test", pipes)
            await conn.write(struct.pack(">I", 100) + b"{")  # a frame that never finishes
            reply = b""
            while len(reply) < 4 or len(reply) < 4 + struct.unpack(">I", reply[:4])[0]:
                chunk = await conn.read(65536)
                assert chunk, "closed before answering"
                reply += chunk
            assert b"frame timed out" in reply
            assert b'"bad_request"' in reply
            assert await conn.read(65536) == b""  # then closed
            conn.close()
            async with bed.client() as c:
                assert (await c.hello())["protocol"] == 1
        finally:
            await bed.server.close()

    run(scenario())


def test_oversized_frame_is_refused_before_buffering(tmp_path: Path) -> None:
    async def scenario() -> None:
        pipes = FakePipes()
        bed = _Bed(tmp_path, pipes)
        await bed.server.start()
        try:
            conn = await w.open_pipe("\\\\.\\pipe\\rt-test", pipes)
            await conn.write(struct.pack(">I", 20_000_000))
            data = b""
            while chunk := await conn.read(65536):
                data += chunk
            assert b"exceeds" in data
            assert b'"bad_request"' in data
            conn.close()
        finally:
            await bed.server.close()

    run(scenario())


def test_a_squatted_pipe_name_stops_the_helper_from_starting(tmp_path: Path) -> None:
    async def scenario() -> None:
        pipes = FakePipes(squatted={"\\\\.\\pipe\\rt-test"})
        bed = _Bed(tmp_path, pipes)
        with pytest.raises(OSError, match="access denied"):
            await bed.server.start()

    run(scenario())


def test_unknown_group_stops_the_helper_from_starting(tmp_path: Path) -> None:
    async def scenario() -> None:
        bed = _Bed(tmp_path, FakePipes(groups={}))
        with pytest.raises(OSError, match="no mapping"):
            await bed.server.start()

    run(scenario())


def test_close_unblocks_the_accept_and_brings_tunnels_down(tmp_path: Path) -> None:
    async def scenario() -> None:
        pipes = FakePipes()
        bed = _Bed(tmp_path, pipes)
        await bed.server.start()
        c = bed.client()
        await c.up(_spec())
        serving = asyncio.ensure_future(bed.server.serve_forever())
        # The accept loop made the pipe instance for the next client and waits in it.
        await async_wait_until(lambda: len(pipes.created) >= 2, what="the next pipe instance")
        await asyncio.sleep(0)  # serve_forever is running when close() comes
        await bed.server.close()  # the owner is still connected
        serving.cancel()
        assert bed.backend.downs == ["rtw0"]
        assert [h for h, server in pipes.closed if server], "server handles closed"
        with pytest.raises(HelperUnavailable):
            await c.hello()
        await c.close()
        await bed.server.close()  # idempotent

    run(scenario())


def test_client_without_a_helper_is_unavailable() -> None:
    async def scenario() -> None:
        c = HelperClient(pipe_name="\\\\.\\pipe\\nobody", pipe_api=FakePipes(), timeout=2)
        with pytest.raises(HelperUnavailable, match="nobody"):
            await c.hello()

    run(scenario())


def test_nothing_windows_only_is_imported_on_linux() -> None:
    import wg_backends.helper.__main__
    import wg_backends.helper.winservice  # noqa: F401

    for name in (
        "win32pipe",
        "win32file",
        "win32security",
        "win32api",
        "pywintypes",
        "win32serviceutil",
        "win32service",
        "servicemanager",
        "_winapi",
        "msvcrt",
    ):
        assert name not in sys.modules, name


class _CancelMissesConnect(FakePipes):
    """CancelIoEx that does not reach a pending ConnectNamedPipe."""

    def __init__(self) -> None:
        super().__init__()
        self.connecting = threading.Event()  # set once the accept loop waits in connect

    def connect(self, handle: Any) -> None:
        self.connecting.set()
        super().connect(handle)

    def cancel(self, handle: Any) -> None:
        if handle.sock is not None:
            super().cancel(handle)


def test_close_wakes_a_connect_that_cancel_missed_by_connecting_to_itself(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        pipes = _CancelMissesConnect()
        bed = _Bed(tmp_path, pipes)
        await bed.server.start()
        await async_wait_until(pipes.connecting.is_set, what="the accept loop in connect")
        await bed.server.close()
        assert bed.listener.closed
        assert bed.listener._accepting is not None
        assert bed.listener._accepting.done()
        assert [h for h, server in pipes.closed if server], "the self-connection was dropped"
        assert [h for h, server in pipes.closed if not server], "and its client end closed"

    run(scenario())


def test_a_silent_caller_is_dropped_and_frees_its_slot(tmp_path: Path) -> None:
    async def scenario() -> None:
        pipes = FakePipes()
        bed = _Bed(tmp_path, pipes)
        bed.listener = w.NamedPipeListener(
            "\\\\.\\pipe\\rt-test", api=pipes, max_connections=1, first_read_timeout=0.2
        )
        bed.server.listener = bed.listener
        await bed.server.start()
        try:
            silent = await w.open_pipe("\\\\.\\pipe\\rt-test", pipes)
            assert await silent.read(10) == b""  # identified only after a read: dropped
            silent.close()
            async with bed.client() as c:  # the only slot is free again
                assert (await c.hello())["sid"] == USER_SID
        finally:
            await bed.server.close()

    run(scenario())


def test_identity_is_read_only_after_the_first_bytes(tmp_path: Path) -> None:
    # FakePipes.identify fails like Windows (ERROR_CANNOT_IMPERSONATE) before any read;
    # a member who says hello is still identified and served.
    async def scenario() -> None:
        bed = _Bed(tmp_path, FakePipes())
        await bed.server.start()
        try:
            async with bed.client() as c:
                assert (await c.hello())["sid"] == USER_SID
        finally:
            await bed.server.close()

    run(scenario())
