"""TunnelClient through the real helper in the namespace test bed (root)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.tunnel import TunnelClient
from tests.fakes.wait import async_wait_until
from tests.wg_backends.fakes import plain_asyncio
from tests.wg_backends.helperproc import HelperProc, start_helper
from tests.wg_backends.testbed import TestBed, make_testbed, run

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns]


@pytest.fixture
def bed_and_helper() -> Iterator[tuple[TestBed, HelperProc]]:
    with make_testbed() as bed:
        hp = start_helper(bed.workdir / "helper", netns=bed.client_ns)
        try:
            yield bed, hp
        finally:
            hp.stop()


def links(bed: TestBed) -> str:
    return run(["ip", "-o", "link"], ns=bed.client_ns).stdout


@plain_asyncio
async def test_engine_facade_up_then_close_removes_tunnel(
    bed_and_helper: tuple[TestBed, HelperProc],
) -> None:
    bed, hp = bed_and_helper
    client = TunnelClient(hp.socket)
    assert (await client.hello()).backend == "wg-quick"
    st = await client.up(bed.client_spec())
    assert st.up
    assert bed.client_if in links(bed)
    # the gateway's address on the far side of the tunnel answers a TCP probe via bash
    probe = run(["bash", "-c", "exec 3<>/dev/tcp/10.232.0.1/9 || true"], ns=bed.client_ns,
                check=False)  # fmt: skip
    assert "Connection refused" in probe.stderr  # an RST came back through the tunnel
    await client.close()  # no explicit down: the helper sees its owner leave
    await async_wait_until(lambda: bed.client_if not in links(bed), 10, what="tunnel down")
