"""Proxy test configuration.

Every async test runs on a fresh qasync loop (tests/conftest.py). A closed loop's Qt
timer object is freed whenever Python's cyclic GC happens to run; if that happens inside
another Qt timer callback, Qt's timer dispatch touches the freed object and the process
segfaults (seen here intermittently). Collecting after each test frees old loops at a
safe point, outside any Qt callback.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _collect_old_loops() -> Iterator[None]:
    yield
    gc.collect()
