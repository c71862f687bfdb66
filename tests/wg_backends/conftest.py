"""Fixtures of the WireGuard tests: the namespace test bed and a real helper in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.wg_backends.helperproc import HelperProc, start_helper
from tests.wg_backends.testbed import TestBed, make_testbed


@pytest.fixture
def testbed() -> Iterator[TestBed]:
    """A fresh client/gateway/server namespace bed, removed afterwards."""
    bed = make_testbed()
    try:
        yield bed
    finally:
        bed.close()


@pytest.fixture
def helper(testbed: TestBed) -> Iterator[HelperProc]:
    """A real helper running inside the bed's client namespace (wg-quick backend)."""
    hp = start_helper(
        testbed.workdir / "helper", netns=testbed.client_ns, extra=["--backend", "wg-quick"]
    )
    try:
        yield hp
    finally:
        hp.stop()
