"""The Windows transport, on Linux: the same-user DACL as data, and the real server and
client over the helper's fake pipe API (socketpairs standing in for pipe instances)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.engine.localapi.client import RemoteEngine
from core.engine.localapi.errors import EngineNotRunningError
from core.engine.localapi.server import LocalApiServer
from core.engine.localapi.transport import PIPE_PREFIX, pipe_name, same_user_sddl
from core.engine.state import SessionState as S
from tests.wg_backends.winfakes import STRANGER, USER_SID, FakePipes
from wg_backends.helper.transport import WindowsCaller

from .rig import engine

pytestmark = pytest.mark.unit

ME = WindowsCaller(4242, USER_SID, frozenset({"S-1-5-4", "S-1-5-11"}))


def test_the_pipe_admits_only_its_user_and_no_network_logon() -> None:
    assert same_user_sddl(USER_SID) == f"D:P(D;;GA;;;NU)(A;;GA;;;{USER_SID})"
    sddl = same_user_sddl(USER_SID)
    for everyone_else in ("SY", "BA", "WD", "AU", "BU"):  # no SYSTEM/admins/everyone ACE
        assert f";;;{everyone_else})" not in sddl


def test_the_pipe_is_named_per_user() -> None:
    assert pipe_name(USER_SID) == PIPE_PREFIX + USER_SID
    assert PIPE_PREFIX == "\\\\.\\pipe\\rustronaut-agent-"


@pytest.mark.parametrize("bad", ["", "S-1-5", "S-1-5-21-1)(A;;GA;;;WD", "Everyone", "S-1-5-18\n"])
def test_anything_but_a_sid_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a string SID"):
        same_user_sddl(bad)
    with pytest.raises(ValueError, match="not a string SID"):
        pipe_name(bad)


async def test_same_user_served_over_the_pipe_and_a_stranger_refused() -> None:
    pipes = FakePipes(next_identity=ME)
    name = Path(pipe_name(USER_SID))
    eng = engine()
    await eng.start()
    server = LocalApiServer(eng, name, pipe_api=pipes, user_sid=USER_SID)
    await server.start()
    try:
        created = pipes.created[0]
        assert created == (str(name), same_user_sddl(USER_SID), True)  # first instance
        client = await RemoteEngine.attach(name, pipe_api=pipes)
        assert client.hosted_by == "agent"
        await client.connect()
        assert client.snapshot.state is S.CONNECTED
        await client.stop()

        pipes.next_identity = STRANGER
        with pytest.raises(EngineNotRunningError):
            await RemoteEngine.attach(name, pipe_api=pipes, answer_within=3)
        assert eng.snapshot.state is S.CONNECTED  # the stranger changed nothing
    finally:
        await server.stop()
        await eng.stop()
