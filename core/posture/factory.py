"""Choosing the collector set for an OS at run time (lazy imports per platform)."""

from __future__ import annotations

import sys

from core.posture.collector import Collector
from core.posture.common import device, files, processes

__all__ = ["OS_NAMES", "collectors_for", "current_os"]

OS_NAMES = ("linux", "windows", "macos")


def current_os() -> str:
    """``linux``, ``windows`` or ``macos`` for this machine (others count as linux)."""
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def collectors_for(os_name: str | None = None) -> tuple[Collector, ...]:
    """Every collector for ``os_name`` (default: this OS), the common ones included.

    Raises ``ValueError`` for an OS name not in ``OS_NAMES``. Pure apart from imports.
    """
    name = os_name or current_os()
    if name == "linux":
        from core.posture import linux as platform
    elif name == "windows":
        from core.posture import windows as platform  # type: ignore[no-redef]
    elif name == "macos":
        from core.posture import macos as platform  # type: ignore[no-redef]
    else:
        raise ValueError(f"unknown OS {name!r}; expected one of {OS_NAMES}")
    common: list[Collector] = [
        device.COLLECTOR,
        processes.process_collector(),
        files.file_collector(),
    ]
    if name != "windows":  # Windows asks Security Center (with this as its fallback)
        common.append(processes.av_collector(name))
    return (*platform.collectors(), *common)
