import asyncio

import pytest


async def one():
    p = await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        "seq 1 2000; seq 1 100 >&2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    await p.communicate()


@pytest.mark.parametrize("i", range(30))
async def test_conc(i):
    await asyncio.gather(*(one() for _ in range(8)))
