"""The /proc scan survives processes that exit while it looks at them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.proxy.peer import procfs

pytestmark = pytest.mark.unit


def test_process_gone_between_open_and_listdir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "4242" / "fd").mkdir(parents=True)
    scanner = procfs.InodePidIndex(proc=str(tmp_path))
    real_listdir = os.listdir

    def vanished(path: object) -> list[str]:
        if isinstance(path, int):
            raise FileNotFoundError(2, "No such file or directory", path)
        return real_listdir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(procfs.os, "listdir", vanished)
    assert scanner._scan_pid(4242, "socket:[1]") is False
