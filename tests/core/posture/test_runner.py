"""The real subprocess runner: exit codes, missing tools, timeouts, prefix and env."""

from __future__ import annotations

import psutil
import pytest

from core.posture.errors import ToolMissingError, ToolTimeoutError
from core.posture.runner import SubprocessRunner

pytestmark = pytest.mark.integration


async def test_runs_and_keeps_exit_code() -> None:
    result = await SubprocessRunner().run(
        ("sh", "-c", "echo out; echo err >&2; exit 3"), timeout_s=5
    )
    assert result.argv == ("sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok


async def test_missing_tool() -> None:
    with pytest.raises(ToolMissingError, match="not installed") as info:
        await SubprocessRunner().run(("rtp-no-such-tool", "-x"), timeout_s=5)
    assert info.value.tool == "rtp-no-such-tool"


async def test_hanging_tool_is_killed() -> None:
    runner = SubprocessRunner()
    with pytest.raises(ToolTimeoutError, match=r"timed out after 0.3s"):
        await runner.run(("sleep", "30"), timeout_s=0.3)
    # the child was killed and reaped: no 'sleep 30' child of ours is left
    me = psutil.Process()
    assert not [c for c in me.children(recursive=True) if c.cmdline() == ["sleep", "30"]]


async def test_prefix_and_env() -> None:
    runner = SubprocessRunner(prefix=("env",), env={"RTP_POSTURE": "flag"})
    result = await runner.run(("sh", "-c", "echo $RTP_POSTURE"), timeout_s=5)
    assert result.stdout == "flag\n"


async def test_undecodable_output_is_replaced() -> None:
    result = await SubprocessRunner().run(("printf", "caf\\351"), timeout_s=5)
    assert result.stdout == "caf\ufffd"


async def test_empty_argv_refused() -> None:
    with pytest.raises(ValueError, match="empty argv"):
        await SubprocessRunner().run((), timeout_s=1)
