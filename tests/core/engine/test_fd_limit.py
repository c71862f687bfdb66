"""The engine's process raises its open-file limit, so the proxy's cap is not ~220."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

CHILD = """
import resource
from core.engine.wiring import raise_fd_limit
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
print(raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="no RLIMIT_NOFILE on Windows")
def test_the_soft_limit_is_raised_to_the_hard_one() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    reported, soft, hard = (int(x) for x in out)
    assert soft == reported
    assert soft > 256
    assert soft == hard or hard == -1
