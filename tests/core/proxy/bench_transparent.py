"""Connection setup: transparent mode vs the SOCKS5 path vs direct, side by side (root).

Run as ``python -m tests.core.proxy.bench_transparent [N]``. Builds a client namespace
with a veth "tunnel" to a gateway namespace holding 10.20.0.5 (an asyncio echo server
on port 9000), the helper's nftables ``redirect`` rule, and one proxy
(``transparent_child``: transparent listener + SOCKS5 port, dialling with sockets marked
and bound to the tunnel link). A client in the client namespace then measures, for N
connections per path interleaved in rounds (the machine is shared: drift hits all paths
alike), the time from ``connect`` to the first echoed byte:

- ``direct``: a marked, device-bound socket straight to the server (the floor);
- ``socks5``: connect to the proxy, greeting, CONNECT 10.20.0.5:9000, reply, byte;
- ``transparent``: a plain connect to 10.20.0.5:9000 (redirected), byte.

Prints p50/p99 in microseconds and the transparent/SOCKS5 ratio (target ≤ 1.2).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TPORT = 15001
MARK = 0x1234
SERVER = ("10.20.0.5", 9000)

_ECHO = """
import asyncio
async def handle(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except OSError:
        pass
    w.close()
async def main():
    server = await asyncio.start_server(handle, "10.20.0.5", 9000, backlog=1024)
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def sh(*argv: str, input: str | None = None) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, input=input)


def _direct() -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, MARK)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"tun0")
    s.connect(SERVER)
    return s


def _socks(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(SERVER[0]) + struct.pack("!H", SERVER[1]))
    reply = b""
    while len(reply) < 10:
        reply += s.recv(10 - len(reply))
    assert reply[1] == 0, reply
    return s


def _transparent() -> socket.socket:
    return socket.create_connection(SERVER)


def client(socks_port: int, n: int) -> None:
    """Runs inside the client namespace; prints JSON {path: [µs...]}."""
    paths = {
        "direct": _direct,
        "socks5": lambda: _socks(socks_port),
        "transparent": _transparent,
    }
    times: dict[str, list[float]] = {k: [] for k in paths}
    rounds = 10
    for _ in range(3):  # warm up every path (caches, the proxy's peer index)
        for open_ in paths.values():
            s = open_()
            s.sendall(b"x")
            s.recv(1)
            s.close()
    for _ in range(rounds):
        for name, open_ in paths.items():
            for _ in range(n // rounds):
                t0 = time.perf_counter()
                s = open_()
                s.sendall(b"x")
                assert s.recv(1) == b"x"
                times[name].append((time.perf_counter() - t0) * 1e6)
                s.close()
    print(json.dumps(times))


def main(n: int) -> None:
    tag = os.getpid() % 100000
    c, g = f"rtbc{tag}", f"rtbg{tag}"
    procs: list[subprocess.Popen[str]] = []
    try:
        for ns in (c, g):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", c, "link", "add", "tun0", "type", "veth", "peer", "name", "gw0", "netns", g)
        sh("ip", "-n", c, "link", "set", "tun0", "up")
        sh("ip", "-n", g, "link", "set", "gw0", "up")
        sh("ip", "-n", c, "addr", "add", "10.99.0.2/24", "dev", "tun0")
        sh("ip", "-n", g, "addr", "add", "10.99.0.1/24", "dev", "gw0")
        sh("ip", "-n", g, "addr", "add", "10.20.0.5/32", "dev", "lo")
        sh("ip", "-n", c, "route", "add", "10.20.0.0/16", "via", "10.99.0.1", "dev", "tun0")
        rules = (
            "table inet rtxredirect {\n chain out {\n  type nat hook output priority -100;\n"
            f"  meta mark {MARK} return\n"
            f"  ip daddr 10.20.0.0/16 meta l4proto tcp redirect to :{TPORT}\n }}\n}}\n"
        )
        sh("ip", "netns", "exec", c, "nft", "-f", "-", input=rules)
        echo = subprocess.Popen(
            ["ip", "netns", "exec", g, sys.executable, "-c", _ECHO],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(echo)
        assert echo.stdout is not None
        assert echo.stdout.readline().strip() == "ready"
        config = {
            "rules": [["wiki", [], ["10.20.0.0/16"], []]],
            "transparent_port": TPORT,
            "mark": MARK,
            "device": "tun0",
            "events": False,
        }
        proxy = subprocess.Popen(
            ["ip", "netns", "exec", c, sys.executable, "-m",
             "tests.core.proxy.transparent_child", json.dumps(config)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(proxy)
        assert proxy.stdout is not None
        ports = json.loads(proxy.stdout.readline())
        out = subprocess.run(
            ["ip", "netns", "exec", c, sys.executable, "-m",
             "tests.core.proxy.bench_transparent", "--client", str(ports["port"]), str(n)],
            cwd=ROOT, check=True, capture_output=True, text=True,
        )  # fmt: skip
        times: dict[str, list[float]] = json.loads(out.stdout)
        p50 = {}
        print(f"connection setup, {n} connections per path (µs, connect → first echoed byte)")
        for name, values in times.items():
            values.sort()
            p50[name] = statistics.median(values)
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
            print(f"  {name:12s} p50 {p50[name]:8.1f}   p99 {p99:8.1f}")
        ratio = p50["transparent"] / p50["socks5"]
        print(f"transparent / socks5 p50: {ratio:.2f} (target <= 1.2)")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(5)
        for ns in (c, g):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        client(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
