"""The real subprocess runner: exit codes, missing tools, timeouts, prefix and env."""

from __future__ import annotations

import psutil
import pytest

from core.posture.errors import ToolMissingError, ToolTimeoutError
from core.posture.runner import SubprocessRunner

pytestmark = pytest.mark.integration

# Both ways of running a tool: asyncio subprocesses and subprocess.run in a thread.
MODES = pytest.mark.parametrize("threaded", [False, True], ids=["asyncio", "threaded"])


@MODES
async def test_runs_and_keeps_exit_code(threaded: bool) -> None:
    result = await SubprocessRunner(threaded=threaded).run(
        ("sh", "-c", "echo out; echo err >&2; exit 3"), timeout_s=5
    )
    assert result.argv == ("sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok


@MODES
async def test_missing_tool(threaded: bool) -> None:
    with pytest.raises(ToolMissingError, match="not installed") as info:
        await SubprocessRunner(threaded=threaded).run(("rtp-no-such-tool", "-x"), timeout_s=5)
    assert info.value.tool == "rtp-no-such-tool"


@MODES
async def test_hanging_tool_is_killed(threaded: bool) -> None:
    runner = SubprocessRunner(threaded=threaded)
    with pytest.raises(ToolTimeoutError, match=r"timed out after 0.3s"):
        await runner.run(("sleep", "30"), timeout_s=0.3)
    # the child was killed and reaped: no 'sleep 30' child of ours is left
    me = psutil.Process()
    assert not [c for c in me.children(recursive=True) if c.cmdline() == ["sleep", "30"]]


@MODES
async def test_prefix_and_env(threaded: bool) -> None:
    runner = SubprocessRunner(prefix=("env",), env={"RTP_POSTURE": "flag"}, threaded=threaded)
    result = await runner.run(("sh", "-c", "echo $RTP_POSTURE"), timeout_s=5)
    assert result.stdout == "flag\n"


@MODES
async def test_undecodable_output_is_replaced(threaded: bool) -> None:
    result = await SubprocessRunner(threaded=threaded).run(("printf", "caf\\351"), timeout_s=5)
    assert result.stdout == "caf\ufffd"


async def test_empty_argv_refused() -> None:
    with pytest.raises(ValueError, match="empty argv"):
        await SubprocessRunner().run((), timeout_s=1)
