"""A real ``ProxyServer`` in transparent mode, run inside a network namespace.

Run as ``ip netns exec NS python -m tests.core.proxy.transparent_child CONFIG`` where
CONFIG is JSON: ``rules`` (``TableDecider`` rules), ``transparent_port``, ``mark`` and
``device`` (the socket source marks its sockets and binds them to the device, as the
privileged helper does for the tunnel; ``device`` null: no source, the OS's routes), and
``reverse`` (IP → name, standing in for the split-DNS resolver's answers); ``events``
false: no event lines (benchmarks). It prints one
JSON line ``{"port": P, "transparent": T}``, then one line per event
``{"event": {...}}``, and obeys stdin commands, one per line:

- ``deny``: withdraw every rule and ``reevaluate``; answers ``{"closed": N}``;
- ``quit`` or end of input: stop.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Any

from core.proxy import ProxyEvent, ProxyServer
from core.proxy.dial import tunnel_connector
from tests.core.proxy.helpers import TableDecider


def _say(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def _event(e: ProxyEvent) -> None:
    _say(
        {
            "event": {
                "kind": e.kind.value,
                "effect": e.effect.value,
                "destination": e.destination,
                "reason": e.reason,
                "protocol": e.protocol,
                "app": e.app.name,
                "exe": e.app.exe,
                "uid": e.app.uid,
                "rule": e.rule,
            }
        }
    )


async def main(config: dict[str, Any]) -> None:
    rules = [(r[0], tuple(r[1]), tuple(r[2]), tuple(r[3])) for r in config["rules"]]
    decider = TableDecider(rules)
    mark, device = int(config.get("mark") or 0), config.get("device")

    def source(family: int, kind: str) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, str(device).encode())
        return sock

    reverse: dict[str, str] = config.get("reverse", {})
    server = ProxyServer(
        decider,
        host_uid=0,
        transparent_port=int(config["transparent_port"]),
        connector=tunnel_connector(source) if device else None,
        reverse=reverse.get,
        on_event=_event if config.get("events", True) else None,
    )
    await server.start(0)
    _say({"port": server.port, "transparent": server.transparent_port})
    loop = asyncio.get_running_loop()
    try:
        while True:
            command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if command == "deny":
                decider.rules.clear()
                _say({"closed": server.reevaluate()})
            else:
                break
    finally:
        await server.stop()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
