"""IT's ``file.<path>.present`` checks."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, PostureConfig, Unknown
from core.wire.posture import file_fact

__all__ = ["file_collector"]


def _file_facts(config: PostureConfig) -> tuple[str, ...]:
    return tuple(file_fact(p) for p in config.files)


def _check(ctx: CollectContext, path: str) -> Answer:
    try:
        return ctx.path(path).exists() if path.startswith("/") else _native(path)
    except PermissionError:
        return Unknown("permission denied")
    except OSError as exc:
        return Unknown(f"cannot check: {exc.strerror or exc}")


def _native(path: str) -> bool:
    from pathlib import Path

    return Path(path).exists()


async def _files(ctx: CollectContext) -> Mapping[str, Answer]:
    def work() -> dict[str, Answer]:
        return {file_fact(p): _check(ctx, p) for p in ctx.config.files}

    return await asyncio.to_thread(work)


def file_collector() -> Collector:
    """IT's file checks (paths from ``PostureConfig.files``)."""
    return Collector("files", (), _files, cheap=False, facts_of=_file_facts)
