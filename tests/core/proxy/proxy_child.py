"""A real ``ProxyServer`` in a child process under a lowered descriptor limit.

Run as ``python -m tests.core.proxy.proxy_child LIMIT``: sets RLIMIT_NOFILE to LIMIT,
starts the proxy on 127.0.0.1 (allowing loopback destinations), prints its port, logs to
stderr at INFO, then obeys stdin commands, one per line, answering on stdout:

- ``hog``: open /dev/null until the limit is reached (what else in the engine might do);
  answers the number opened;
- ``free``: close them again; answers ``freed``;
- ``quit`` or end of input: stop.

The tests measure the child's CPU time (``/proc/<pid>/stat``) and its log's size while
another account floods it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys

from core.proxy import ProxyServer
from tests.core.proxy.helpers import TableDecider


async def main(limit: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(message)s")
    server = ProxyServer(TableDecider([("loop", (), ("127.0.0.0/8",), ())]), hosts=("127.0.0.1",))
    await server.start(0)
    print(server.port, flush=True)
    loop = asyncio.get_running_loop()
    hog: list[int] = []
    try:
        while True:
            command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if command == "hog":
                try:
                    while True:
                        hog.append(os.open(os.devnull, os.O_RDONLY))
                except OSError:
                    pass
                print(len(hog), flush=True)
            elif command == "free":
                for fd in hog:
                    os.close(fd)
                hog.clear()
                print("freed", flush=True)
            else:
                break
    finally:
        await server.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
