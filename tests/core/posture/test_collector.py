"""Running collectors: every failure becomes an unknown fact with a reason, never a crash."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from core.posture import collector as col
from core.posture.collector import Answer, CollectContext, Collector, PostureConfig, Unknown
from core.posture.errors import ParseError, PostureConfigError
from core.posture.runner import SubprocessRunner
from core.wire.posture import FactStatus

pytestmark = pytest.mark.unit


def _ctx(timeout_s: float = 0.3) -> CollectContext:
    return CollectContext(runner=SubprocessRunner(), timeout_s=timeout_s, clock=lambda: 7.0)


def _make(fn: col.CollectFn, facts: tuple[str, ...] = ("firewall.enabled",)) -> Collector:
    return Collector("t", facts, fn)


async def _tool(ctx: CollectContext, argv: tuple[str, ...]) -> Mapping[str, Answer]:
    await ctx.run(argv)
    return {"firewall.enabled": True}


@pytest.mark.integration
async def test_hanging_tool_gives_timed_out_reason() -> None:
    async def fn(ctx: CollectContext) -> Mapping[str, Answer]:
        return await _tool(ctx, ("sleep", "30"))

    facts = await col.run_collector(_make(fn), _ctx(0.3))
    fact = facts["firewall.enabled"]
    assert fact.status is FactStatus.UNKNOWN
    assert fact.reason == "sleep: timed out after 0.3s"
    assert fact.collected_at == 7.0


@pytest.mark.integration
async def test_missing_tool_gives_not_installed() -> None:
    async def fn(ctx: CollectContext) -> Mapping[str, Answer]:
        return await _tool(ctx, ("rtp-missing-tool",))

    facts = await col.run_collector(_make(fn), _ctx())
    assert facts["firewall.enabled"].reason == "rtp-missing-tool: not installed"


@pytest.mark.integration
async def test_failing_tool_reason_has_exit_code_and_stderr() -> None:
    async def fn(ctx: CollectContext) -> Mapping[str, Answer]:
        return await _tool(ctx, ("sh", "-c", "echo 'Operation not permitted' >&2; exit 1"))

    facts = await col.run_collector(_make(fn), _ctx())
    assert facts["firewall.enabled"].reason == "sh: exited 1: Operation not permitted"


async def test_parse_error_bug_and_bad_values_are_unknown() -> None:
    async def odd(ctx: CollectContext) -> Mapping[str, Answer]:
        raise ParseError("nft JSON: Expecting value")

    async def bug(ctx: CollectContext) -> Mapping[str, Answer]:
        raise ZeroDivisionError("oops")

    async def wrong_kind(ctx: CollectContext) -> Mapping[str, Answer]:
        return {"firewall.enabled": "yes", "screen_lock.enabled": Unknown("no GNOME")}

    ctx = _ctx()
    facts = await col.run_collector(_make(odd), ctx)
    assert facts["firewall.enabled"].reason == "unexpected output: nft JSON: Expecting value"
    facts = await col.run_collector(_make(bug), ctx)
    assert facts["firewall.enabled"].reason == "collector failed: ZeroDivisionError: oops"
    facts = await col.run_collector(
        _make(wrong_kind, ("firewall.enabled", "screen_lock.enabled", "updates.auto")), ctx
    )
    assert not facts["firewall.enabled"].known
    assert "bad value" in (facts["firewall.enabled"].reason or "")
    assert facts["screen_lock.enabled"].reason == "no GNOME"
    assert facts["updates.auto"].reason == "not reported by t"


async def test_collect_merges_independent_collectors() -> None:
    async def ok(ctx: CollectContext) -> Mapping[str, Answer]:
        return {"firewall.enabled": True}

    async def bad(ctx: CollectContext) -> Mapping[str, Answer]:
        raise ParseError("x")

    facts = await col.collect([_make(ok), Collector("b", ("disk.encrypted",), bad)], _ctx())
    assert facts["firewall.enabled"].value is True
    assert not facts["disk.encrypted"].known


def test_config_validation() -> None:
    cfg = PostureConfig.create(processes=["falcon-sensor"], files=["/etc/corp.conf"])
    assert cfg.processes == ("falcon-sensor",)
    with pytest.raises(PostureConfigError, match="process name"):
        PostureConfig.create(processes=["bad\nname"])
    with pytest.raises(PostureConfigError, match="file path"):
        PostureConfig.create(files=[""])
    with pytest.raises(PostureConfigError, match="AV process"):
        PostureConfig.create(av_processes=[""])
