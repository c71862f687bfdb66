"""Benchmark: transparent mode against the SOCKS5 path and direct through the same tunnel.

Run as root: ``bash scripts/bench.sh transparent`` (or ``.venv/bin/python -m
tests.bench.bench_transparent``; about 40 s). Builds the namespace bed
(controller/demo/bed.py), runs the whole session (controller, helper, engine in transparent
mode) and a measuring worker inside the client namespace, against two servers beside the
wiki (10.243.0.10, ports inside the wiki resource): one greets each connection with a
byte, one sends ``--bulk-mb`` MB and closes. Three paths, side by side in interleaved
rounds (the order rotates every round):

- transparent: a plain ``connect()`` to the resource address, redirected to the decider;
- socks5: the decider's SOCKS5 listener, CONNECT to the resource address (no name, so no
  DNS on either path);
- direct: a socket carrying the decider's own mark, bound to the tunnel interface: what
  the decider's dial costs with no decider in front (the floor both paths share).

Connection setup is the time from ``socket()`` to the first byte from the server
(p50/p99 per round); bulk is the payload rate after that first byte. Printed: the median
over rounds with min/max, and the ratios against the targets of issue 15 (transparent
setup ≤ 1.2× the SOCKS5 path, bulk ≥ 0.9× direct). Numbers only; nothing here gates a
test. The worker is one Python process (see docs/performance.md for what that limits).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

from controller.demo.bed import RESOURCES, Bed, make_bed, run

ROOT = Path(__file__).resolve().parents[2]
TARGET = RESOURCES["wiki.corp.example"][0]
GREET_PORT = 8001  # inside the wiki resource's 8000-8099
BULK_PORT = 8002
PATHS = ("transparent", "socks5", "direct")
SETUP_TARGET = 1.2  # transparent setup p50 ≤ 1.2 × SOCKS5
BULK_TARGET = 0.9  # transparent bulk ≥ 0.9 × direct

_SERVERS = r"""
import socket, sys, threading
addr, greet, bulk, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
payload = memoryview(bytes(size))
def listen(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(512)
    return s
def greeter(c):
    with c:
        c.sendall(b"!")
        while c.recv(4096):
            pass
def sender(c):
    with c:
        c.sendall(payload)
def serve(s, fn):
    while True:
        c, _ = s.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=fn, args=(c,), daemon=True).start()
g, b = listen(greet), listen(bulk)
threading.Thread(target=serve, args=(b, sender), daemon=True).start()
print("ready", flush=True)
serve(g, greeter)
"""


# ----------------------------------------------------------------- worker (client ns)


def _open(path: str, port: int, proxy_port: int, mark: int, iface: str) -> socket.socket:
    """A connected socket to TARGET:port by ``path`` (SOCKS5 handshake done)."""
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if path == "direct":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        s.connect((TARGET, port))
    elif path == "transparent":
        s.connect((TARGET, port))
    else:
        s.connect(("127.0.0.1", proxy_port))
        s.sendall(b"\x05\x01\x00")
        if _exact(s, 2) != b"\x05\x00":
            raise RuntimeError("SOCKS5: no-auth refused")
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(TARGET) + struct.pack("!H", port))
        head = _exact(s, 4)
        if head[1] != 0:
            raise RuntimeError(f"SOCKS5: CONNECT refused ({head[1]})")
        atyp = head[3]  # the bound address that follows: IPv4, IPv6 or a name
        size = 4 if atyp == 1 else 16 if atyp == 4 else _exact(s, 1)[0]
        _exact(s, size + 2)
    return s


def _exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise RuntimeError("connection closed early")
        out += chunk
    return out


def _setup(path: str, args: argparse.Namespace) -> tuple[list[float], list[str]]:
    """Setup times of the connections that worked, and why the others failed."""
    times, failures = [], []
    for _ in range(args.connections):
        t = time.perf_counter()
        try:
            with _open(path, GREET_PORT, args.proxy_port, args.mark, args.iface) as s:
                _exact(s, 1)
        except (OSError, RuntimeError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            continue
        times.append(time.perf_counter() - t)
    return times, failures


def _bulk(path: str, args: argparse.Namespace) -> float:
    """Mbit/s of one download of the bulk server's payload (after its first bytes)."""
    s = _open(path, BULK_PORT, args.proxy_port, args.mark, args.iface)
    buf = bytearray(1 << 20)
    got = s.recv_into(buf)
    t = time.perf_counter()
    total = 0
    while n := s.recv_into(buf):
        total += n
    took = time.perf_counter() - t
    s.close()
    if got + total != args.bulk_mb << 20:
        raise RuntimeError(f"{path}: bulk got {got + total} bytes")
    return total * 8 / took / 1e6


def _bulk_retried(path: str, args: argparse.Namespace, failed: list[float]) -> float:
    """``_bulk``, tried up to 3 times; each failure is added to this round's count."""
    for attempt in range(3):
        try:
            return _bulk(path, args)
        except (OSError, RuntimeError) as exc:
            failed[-1] += 1
            print(f"{path}: 1 failed, first: bulk: {exc}", file=sys.stderr)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def worker(args: argparse.Namespace) -> int:
    """Interleaved rounds of every path; one JSON document on stdout."""
    out: dict[str, dict[str, list[float]]] = {
        p: {"p50": [], "p99": [], "mbps": [], "failed": []} for p in PATHS
    }
    for r in range(args.rounds):
        order = PATHS[r % 3 :] + PATHS[: r % 3]
        for path in order:
            times, failures = _setup(path, args)
            out[path]["failed"].append(len(failures))
            if failures:
                print(f"{path}: {len(failures)} failed, first: {failures[0]}", file=sys.stderr)
            if not times:
                raise RuntimeError(f"{path}: every connection failed: {failures[0]}")
            out[path]["p50"].append(_pct(times, 0.5))
            out[path]["p99"].append(_pct(times, 0.99))
            out[path]["mbps"].append(_bulk_retried(path, args, out[path]["failed"]))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(json.dumps(out))
    return 0


# --------------------------------------------------------------------- driver (host)


def decider_mark(bed: Bed) -> int:
    """The mark the helper gave the decider's sockets, read from the client namespace's
    nftables rules (the ``meta mark == M`` test that exempts them)."""
    doc = json.loads(run(["nft", "-j", "list", "ruleset"], ns=bed.client_ns).stdout)
    for item in doc["nftables"]:
        for expr in item.get("rule", {}).get("expr", []):
            match = expr.get("match", {})
            if match.get("left", {}).get("meta", {}).get("key") == "mark":
                return int(match["right"])
    raise RuntimeError("no decider mark in the client namespace's rules: is enforcement on?")


def _fmt(xs: list[float], scale: float, unit: str, width: int = 7) -> str:
    med = statistics.median(xs) * scale
    return f"{med:{width}.2f} {unit} [{min(xs) * scale:.2f}-{max(xs) * scale:.2f}]"


def _ratios(a: list[float], b: list[float]) -> list[float]:
    return [x / y for x, y in zip(a, b, strict=True)]


def report(res: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    """Print the table and the ratios against the targets."""
    print(
        f"transparent vs SOCKS5 vs direct through the same tunnel: {args.rounds} interleaved "
        f"rounds, {args.connections} connections and one {args.bulk_mb} MB download per path "
        "per round; median over rounds [min-max]"
    )
    print(f"  {'path':<12} {'setup p50':>26} {'setup p99':>26} {'bulk':>30}")
    for p in PATHS:
        r = res[p]
        print(
            f"  {p:<12} {_fmt(r['p50'], 1000, 'ms'):>26} {_fmt(r['p99'], 1000, 'ms'):>26} "
            f"{_fmt(r['mbps'], 1, 'Mbit/s', 8):>30}"
        )
    total = args.rounds * args.connections
    failed = ", ".join(f"{p} {int(sum(res[p]['failed']))}/{total}" for p in PATHS)
    print(f"  failed connections: {failed}")
    med = {p: {k: statistics.median(v) for k, v in res[p].items()} for p in PATHS}
    # Ratios within each round (the VM's speed drifts between rounds), then their median.
    setup = _ratios(res["transparent"]["p50"], res["socks5"]["p50"])
    setup99 = _ratios(res["transparent"]["p99"], res["socks5"]["p99"])
    bulk = _ratios(res["transparent"]["mbps"], res["direct"]["mbps"])
    socks_bulk = _ratios(res["socks5"]["mbps"], res["direct"]["mbps"])
    verdict = {True: "meets", False: "MISSES"}
    print("  ratios per round, median [min-max]:")
    print(
        f"  setup p50 transparent / SOCKS5 = {_fmt(setup, 1, 'x', 4)} (target <= "
        f"{SETUP_TARGET}x: {verdict[statistics.median(setup) <= SETUP_TARGET]}); "
        f"p99 {_fmt(setup99, 1, 'x', 4)}"
    )
    print(
        f"  bulk transparent / direct     = {_fmt(bulk, 1, 'x', 4)} (target >= "
        f"{BULK_TARGET}x: {verdict[statistics.median(bulk) >= BULK_TARGET]}); "
        f"SOCKS5 / direct {_fmt(socks_bulk, 1, 'x', 4)}"
    )
    print(
        f"  setup p50 direct = {med['direct']['p50'] * 1000:.2f} ms: the tunnel's own round "
        "trip, the floor under both decided paths"
    )


async def _measure(bed: Bed, args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    from controller.demo.harness import session  # the engine stack only for the driver

    server = bed.spawn(
        [sys.executable, "-I", "-c", _SERVERS, TARGET, str(GREET_PORT), str(BULK_PORT),
         str(args.bulk_mb << 20)],
        ns=bed.server_ns, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert server.stdout is not None
    await asyncio.to_thread(server.stdout.readline)  # "ready"
    async with session(bed) as s:
        snap = await s.wait_state("connected", "degraded")
        access = snap.get("access") or {}
        if access.get("mode") != "transparent":
            raise RuntimeError(f"the engine is not in transparent mode: {access}")
        mark = decider_mark(bed)
        argv = [
            sys.executable, "-m", "tests.bench.bench_transparent", "--worker",
            "--proxy-port", str(s.proxy_port), "--mark", str(mark), "--iface", bed.client_if,
            "--rounds", str(args.rounds), "--connections", str(args.connections),
            "--bulk-mb", str(args.bulk_mb),
        ]  # fmt: skip
        proc = await asyncio.to_thread(
            subprocess.run,
            ["ip", "netns", "exec", bed.client_ns, *argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        for line in proc.stderr.splitlines():  # what failed, if anything did
            if " failed, first: " in line:
                print(f"  worker: {line}")
        # What the engine said about connections it did not relay (Activity), if any.
        await asyncio.sleep(0.5)  # events leave the decider's thread in batches
        said = collections.Counter(
            f"{e.get('kind')}: {e.get('message')}"
            for e in s.events
            if e.get("kind") not in ("state", "ready")
            and not (e.get("kind") == "decision" and e.get("effect") == "allow")
        )
        for text, n in said.most_common(5):
            print(f"  engine ({n}x): {text[:200]}")
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed: {proc.stderr.strip()[-2000:]}")
        result: dict[str, dict[str, list[float]]] = json.loads(proc.stdout)
        return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (root), or the worker inside the client namespace."""
    p = argparse.ArgumentParser(prog="python -m tests.bench.bench_transparent")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--proxy-port", type=int, default=9080, help=argparse.SUPPRESS)
    p.add_argument("--mark", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--iface", default="", help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--connections", type=int, default=200, help="per path per round")
    p.add_argument("--bulk-mb", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="3 rounds, 30 connections, 8 MB")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.connections, args.bulk_mb = 3, 30, 8
    if args.worker:
        return worker(args)
    if os.geteuid() != 0:
        print(
            "needs root (network namespaces and WireGuard): sudo bash scripts/bench.sh transparent"
        )
        return 2
    started = time.monotonic()
    with make_bed() as bed:
        res = asyncio.run(_measure(bed, args))
    report(res, args)
    print(f"  (whole run {time.monotonic() - started:.0f} s, bed and session included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
