"""``device.hostname`` and ``client.version`` (no OS tool needed)."""

from __future__ import annotations

import socket
from collections.abc import Mapping

from core import __version__
from core.posture.collector import Answer, CollectContext, Collector

__all__ = ["COLLECTOR"]


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    return {
        "device.hostname": socket.gethostname(),
        "client.version": ctx.config.client_version or __version__,
    }


COLLECTOR = Collector("device", ("device.hostname", "client.version"), _collect, cheap=False)
