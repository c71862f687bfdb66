"""Benchmark of the local proxy against direct loopback, socat, microsocks and pproxy.

Run: ``.venv/bin/python -m tests.bench.bench_proxy`` (about 2-3 minutes; ``--quick`` for a
smaller run). Everything runs on loopback in one run, side by side:

- bulk throughput, 1 stream and 32 parallel streams (GB/s, ratio to direct measured in
  the same interleaved round, proxy CPU-seconds per GB);
- connection setup over 2,000 sequential SOCKS5 connections (p50/p99, ratio to microsocks)
  and connections per second with 50 concurrent clients;
- peer identity lookup (netlink sock_diag vs /proc/net/tcp vs psutil);
- 1,000 concurrent idle relayed connections: proxy RSS and fds per connection, and what is
  left after they close.

The load generator and the sink are separate processes from the proxy; the direct rows
show their own limit. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import selectors
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

BUF = 1 << 20


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --------------------------------------------------------------------------- sink


def run_sink(port_file: str) -> None:
    """Sink/echo server: first byte T (count N bytes, answer 'k'), E (echo) or H (hold)."""
    _raise_nofile()
    sel = selectors.DefaultSelector()
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4096)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    Path(port_file).write_text(str(lsock.getsockname()[1]))
    buf = memoryview(bytearray(BUF))
    # state per socket: [mode, remaining, header bytes]
    state: dict[socket.socket, list[object]] = {}
    while True:
        for key, _ in sel.select():
            if key.data is None:
                while True:
                    try:
                        c, _a = lsock.accept()
                    except BlockingIOError:
                        break
                    c.setblocking(False)
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    state[c] = ["", 0, b""]
                    sel.register(c, selectors.EVENT_READ, 1)
                continue
            c = key.fileobj
            assert isinstance(c, socket.socket)
            st = state[c]
            try:
                n = c.recv_into(buf)
            except BlockingIOError:
                continue
            except OSError:
                n = 0
            if n == 0:
                sel.unregister(c)
                del state[c]
                c.close()
                continue
            data = buf[:n]
            if st[0] == "":
                head = bytes(st[2]) + bytes(data)  # type: ignore[arg-type]
                st[2] = head
                if head[:1] == b"T":
                    if len(head) < 9:
                        continue
                    st[0] = "T"
                    st[1] = struct.unpack("!Q", head[1:9])[0] - (len(head) - 9)
                    if st[1] == 0:
                        c.send(b"k")
                    continue
                st[0] = chr(head[0])
                data = memoryview(head[1:])
                if st[0] != "T":
                    st[2] = b""
            elif st[0] == "T":
                st[1] = int(st[1]) - n  # type: ignore[call-overload]
                if st[1] == 0:
                    c.send(b"k")
                continue
            if st[0] == "E" and len(data):
                c.send(bytes(data))


# --------------------------------------------------------------------------- ours


class _TableDecider:
    """A small realistic policy: allow loopback resources, deny the rest."""

    def __init__(self) -> None:
        from core.policy.api import Decision, Effect

        self.allow = Decision(Effect.ALLOW, "allow-loopback", "loopback bench", resource="bench")
        self.deny = Decision(Effect.DENY, None, "not in policy")

    def decide(self, request: Any) -> Any:
        if request.host.startswith("127.") or request.host == "localhost":
            return self.allow
        return self.deny


def run_ours(port_file: str, relay: str) -> None:
    """Our ProxyServer on a plain asyncio loop; with "+qasync" on the Qt (qasync) loop the
    tray app runs the engine on; with "+thread" on its own thread (``ProxyThread``, what
    the engine uses) while the Qt loop runs in the main thread, as in the tray."""
    _raise_nofile()
    from core.proxy import Limits, ProxyServer
    from core.proxy.thread import ProxyThread

    threaded = relay.endswith("+thread")
    relay = relay.removesuffix("+thread")
    qt = relay.endswith("+qasync")
    relay = relay.removesuffix("+qasync")

    async def main() -> None:
        server = ProxyServer(
            _TableDecider(),  # type: ignore[arg-type]
            host_uid=os.getuid(),
            limits=Limits(relay=relay, max_connections=20000),  # type: ignore[arg-type]
            hosts=("127.0.0.1",),
        )
        runner = ProxyThread(server) if threaded else server
        if threaded:  # events come back to the Qt loop, as in the tray
            runner.subscribe(lambda event: None)
        addrs = await runner.start(0)
        Path(port_file).write_text(str(addrs[0][1]))  # noqa: ASYNC240 - once, at start
        await asyncio.Event().wait()

    if qt:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        import qasync
        from PySide6.QtCore import QCoreApplication

        app = QCoreApplication([])
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        with loop:
            loop.run_until_complete(main())
    else:
        asyncio.run(main())


# --------------------------------------------------------------------------- clients


def socks_connect(proxy_port: int, dest_port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy_port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"\x05\x01\x00")
    if _recv_exact(s, 2) != b"\x05\x00":
        raise RuntimeError("SOCKS method refused")
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", dest_port))
    reply = _recv_exact(s, 10)
    if reply[1] != 0:
        raise RuntimeError(f"SOCKS connect refused: {reply[1]}")
    return s


def _recv_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


class Target:
    """How to reach the sink: directly, through a port forwarder, or through SOCKS5."""

    def __init__(self, name: str, kind: str, port: int, proc: subprocess.Popen[bytes] | None):
        self.name, self.kind, self.port, self.proc = name, kind, port, proc

    def connect(self, sink_port: int) -> socket.socket:
        if self.kind == "direct":
            s = socket.create_connection(("127.0.0.1", sink_port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        if self.kind == "forward":
            s = socket.create_connection(("127.0.0.1", self.port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        return socks_connect(self.port, sink_port)

    def cpu(self) -> float:
        if self.proc is None:
            return 0.0
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return float(t.user + t.system + t.children_user + t.children_system)


def throughput_rounds(
    targets: list[Target], sink_port: int, streams: int, total: int, rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """(GB/s, proxy CPU-s per GB) of each target in ``rounds`` interleaved rounds.

    The machine is a shared VM whose speed drifts by ±50 % within a minute, so every
    round measures all targets back to back and ratios are taken within a round."""
    out: dict[str, list[tuple[float, float]]] = {t.name: [] for t in targets}
    for _ in range(rounds):
        for t in targets:
            out[t.name].append(_throughput_once(t, sink_port, streams, total))
    return out


def _throughput_once(
    target: Target, sink_port: int, streams: int, total: int
) -> tuple[float, float]:
    per = total // streams
    socks = [target.connect(sink_port) for _ in range(streams)]
    for s in socks:
        s.sendall(b"T" + struct.pack("!Q", per))
        s.setblocking(False)
    payload = memoryview(bytearray(BUF))
    left = {s: per for s in socks}
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_WRITE)
    cpu0 = target.cpu()
    t0 = time.perf_counter()
    while left:
        for key, _ in sel.select():
            s = key.fileobj
            assert isinstance(s, socket.socket)
            try:
                n = s.send(payload[: min(BUF, left[s])])
            except BlockingIOError:
                continue
            left[s] -= n
            if left[s] == 0:
                sel.unregister(s)
                del left[s]
    for s in socks:
        s.setblocking(True)
        if s.recv(1) != b"k":
            raise RuntimeError("sink did not confirm")
    dt = time.perf_counter() - t0
    cpu = target.cpu() - cpu0
    for s in socks:
        s.close()
    gb = per * streams / 1e9
    return gb / dt, cpu / gb


def setup_latency(target: Target, sink_port: int, n: int) -> tuple[float, float]:
    """p50, p99 in µs of connect + handshake + reply over ``n`` sequential connections."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        s = target.connect(sink_port)
        times.append(time.perf_counter() - t0)
        s.close()
    times.sort()
    return statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6


def concurrent_rate(target: Target, sink_port: int, clients: int, seconds: float) -> float:
    """Connections per second with ``clients`` concurrent connect-handshake-close loops.

    The generator is one selector loop over raw non-blocking sockets (a few µs of Python
    per connection), so the proxy under test, not the generator, sets the rate.
    """
    dest = struct.pack("!H", sink_port)
    greeting = b"\x05\x01\x00"
    request = b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + dest
    port = sink_port if target.kind == "direct" else target.port
    socks = target.kind == "socks"
    sel = selectors.DefaultSelector()
    done = 0

    def begin() -> None:
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        # state: 0 connecting, 1 waiting for the method reply, 2 for the connect reply
        sel.register(s, selectors.EVENT_WRITE, [0, b""])

    def finish(s: socket.socket) -> None:
        nonlocal done
        sel.unregister(s)
        s.close()
        done += 1
        begin()

    for _ in range(clients):
        begin()
    t0 = time.perf_counter()
    stop = t0 + seconds
    while time.perf_counter() < stop:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            st = key.data
            if st[0] == 0:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    raise RuntimeError("connect failed")
                if not socks:
                    finish(s)
                    continue
                s.send(greeting)
                st[0] = 1
                sel.modify(s, selectors.EVENT_READ, st)
                continue
            try:
                chunk = s.recv(64)
            except BlockingIOError:
                continue
            if not chunk:
                raise RuntimeError("proxy closed the connection")
            st[1] += chunk
            if st[0] == 1 and len(st[1]) >= 2:
                st[0], st[1] = 2, st[1][2:]
                s.send(request)
            elif st[0] == 2 and len(st[1]) >= 10:
                if st[1][1] != 0:
                    raise RuntimeError("refused")
                finish(s)
    elapsed = time.perf_counter() - t0
    for key in list(sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    sel.close()
    return done / elapsed


def idle_memory(target: Target, sink_port: int, n: int) -> dict[str, float]:
    """Open ``n`` relayed connections, leave them idle, close them; twice.

    Reports RSS and fds per connection while idle (sampled after 2.5 s, when idle relays
    have given back their buffers), fds left after closing, RSS left after the first
    round and the RSS growth of the second round over the first (a leak shows there;
    allocator caches do not).
    """
    import psutil

    assert target.proc is not None
    proc = psutil.Process(target.proc.pid)

    def rss_fds() -> tuple[int, int]:
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs), sum(p.num_fds() for p in procs)

    time.sleep(0.3)
    rss0, fd0 = rss_fds()
    out: dict[str, float] = {}
    after: list[int] = []
    for round_ in range(2):
        socks = []
        for _ in range(n):
            s = target.connect(sink_port)
            s.sendall(b"Ep")
            if s.recv(1) != b"p":
                raise RuntimeError("echo failed")
            socks.append(s)
        time.sleep(2.5)
        rss1, fd1 = rss_fds()
        if round_ == 0:
            out["kib"] = (rss1 - rss0) / n / 1024
            out["fds"] = (fd1 - fd0) / n
        for s in socks:
            s.close()
        time.sleep(1.5)
        rss2, fd2 = rss_fds()
        out["fds_left"] = fd2 - fd0
        after.append(rss2)
    out["kib_left"] = (after[0] - rss0) / 1024
    out["growth"] = (after[1] - after[0]) / 1024
    return out


# --------------------------------------------------------------------------- peer id


def peer_identity(rounds: int) -> dict[str, float]:
    """p50 µs of each peer lookup over fresh loopback connections."""
    from core.proxy.peer.netlink import SockDiagLookup
    from core.proxy.peer.procfs import ProcNetTcpLookup
    from core.proxy.peer.psutil_source import PsutilLookup

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    nl = SockDiagLookup()
    lookups: dict[str, tuple[Callable[[tuple[str, int], tuple[str, int]], object], int]] = {
        "netlink uid+inode": (nl.uid_inode, rounds),
        "netlink + pid + exe": (nl.lookup, rounds),
        "/proc/net/tcp + pid + exe": (ProcNetTcpLookup().lookup, max(rounds // 20, 20)),
        "psutil": (PsutilLookup().lookup, 20),
    }
    out = {}
    for name, (fn, count) in lookups.items():
        times = []
        for _ in range(count):
            c = socket.create_connection(lsock.getsockname())
            s, _ = lsock.accept()
            peer, local = s.getpeername()[:2], s.getsockname()[:2]
            t0 = time.perf_counter()
            found = fn(peer, local)
            times.append(time.perf_counter() - t0)
            if found is None:
                raise RuntimeError(f"{name} found nothing")
            c.close()
            s.close()
        out[name] = statistics.median(times) * 1e6
    return out


# --------------------------------------------------------------------------- driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.args} did not listen on {port}")


def _spawn_self(tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    port_file = tmp / f"port-{'-'.join(args)}"
    proc = subprocess.Popen([sys.executable, __file__, *args, str(port_file)], cwd=ROOT)
    for _ in range(200):
        if port_file.exists() and port_file.read_text():
            port = int(port_file.read_text())
            _wait_port(port, proc)
            return proc, port
        if proc.poll() is not None:
            raise RuntimeError(f"{args} exited early")
        time.sleep(0.05)
    raise RuntimeError(f"{args} did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--role", nargs="*")
    ns, _rest = parser.parse_known_args()
    if ns.role:
        if ns.role[0] == "sink":
            run_sink(ns.role[1])
        elif ns.role[0] == "ours":
            run_ours(ns.role[2], ns.role[1])
        return
    _raise_nofile()
    quick = ns.quick
    total = (64 if quick else 256) * (1 << 20)
    n_setup = 300 if quick else 2000
    n_idle = 200 if quick else 1000
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-proxy-{os.getpid()}"
    tmp.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sink, sink_port = _spawn_self(tmp, "--role", "sink")
        procs.append(sink)
        targets = [Target("direct", "direct", 0, None)]
        labels = {
            "splice": "ours (splice)",
            "buffered": "ours (buffered)",
            "splice+qasync": "ours (on Qt)",
            "splice+qasync+thread": "ours (tray)",
        }
        for relay, label in labels.items():
            p, port = _spawn_self(tmp, "--role", "ours", relay)
            procs.append(p)
            targets.append(Target(label, "socks", port, p))
        if shutil.which("microsocks"):
            port = _free_port()
            p = subprocess.Popen(
                ["microsocks", "-i", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(p)
            _wait_port(port, p)
            targets.append(Target("microsocks", "socks", port, p))
        pproxy = Path(sys.executable).with_name("pproxy")
        if pproxy.exists():
            port = _free_port()
            p = subprocess.Popen(
                [str(pproxy), "-l", f"socks5://127.0.0.1:{port}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(p)
            _wait_port(port, p)
            targets.append(Target("pproxy", "socks", port, p))
        if shutil.which("socat"):
            port = _free_port()
            p = subprocess.Popen(
                [
                    "socat",
                    f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,backlog=4096",
                    f"TCP:127.0.0.1:{sink_port}",
                ]
            )
            procs.append(p)
            _wait_port(port, p)
            targets.append(Target("socat (fwd)", "forward", port, p))

        rounds = 3 if quick else 7
        print(
            f"# proxy benchmark, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
            f"{total >> 20} MiB per throughput run, {rounds} interleaved rounds"
        )
        results: dict[str, dict[str, float]] = {t.name: {} for t in targets}
        spread: dict[str, dict[int, tuple[float, float]]] = {t.name: {} for t in targets}
        for streams in (1, 32):
            runs = throughput_rounds(targets, sink_port, streams, total, rounds)
            direct_runs = [gbps for gbps, _ in runs["direct"]]
            for name, rs in runs.items():
                ratios = [gbps / d for (gbps, _), d in zip(rs, direct_runs, strict=True)]
                results[name][f"gbps{streams}"] = statistics.median(g for g, _ in rs)
                results[name][f"x{streams}"] = statistics.median(ratios)
                results[name][f"cpu{streams}"] = statistics.median(c for _, c in rs)
                spread[name][streams] = (min(ratios), max(ratios))
            print(f"  measured throughput, {streams} stream(s)", flush=True)
        for t in targets:
            r = results[t.name]
            r["p50"], r["p99"] = setup_latency(t, sink_port, n_setup)
            r["cps50"] = concurrent_rate(t, sink_port, 50, 1.0 if quick else 2.0)
            print(f"  measured setup of {t.name}", flush=True)
        direct = results["direct"]
        ms = results.get("microsocks", direct)
        print(
            "\n## throughput (median GB/s; median of per-round ratios to direct [min-max];"
            " proxy CPU-s per GB)"
        )
        print(f"{'':16}{'1 stream':>38}{'32 streams':>40}")
        for name, r in results.items():
            lo1, hi1 = spread[name][1]
            lo32, hi32 = spread[name][32]
            print(
                f"{name:16}{r['gbps1']:6.2f} {r['x1']:5.2f}x [{lo1:4.2f}-{hi1:4.2f}]"
                f" {r['cpu1']:5.2f} s/GB"
                f"  {r['gbps32']:6.2f} {r['x32']:5.2f}x [{lo32:4.2f}-{hi32:4.2f}]"
                f" {r['cpu32']:5.2f} s/GB"
            )
        print(f"\n## connection setup ({n_setup} sequential; 50 concurrent clients)")
        print(f"{'':16}{'p50 µs':>9}{'/ms':>6}{'p99 µs':>9}{'/ms':>6}{'conn/s':>9}{'/ms':>6}")
        for name, r in results.items():
            print(
                f"{name:16}{r['p50']:9.0f}{r['p50'] / ms['p50']:6.2f}{r['p99']:9.0f}"
                f"{r['p99'] / ms['p99']:6.2f}{r['cps50']:9.0f}{r['cps50'] / ms['cps50']:6.2f}"
            )
        print("(/ms = ratio to microsocks; socat forwards without a SOCKS handshake)")

        print("\n## peer identity lookup (p50 µs, fresh connection each)")
        for name, us in peer_identity(300 if quick else 2000).items():
            print(f"  {name:28}{us:10.1f}")

        print(f"\n## {n_idle} concurrent idle relayed connections")
        print(
            f"{'':16}{'KiB/conn':>9}{'fds/conn':>9}{'fds left':>9}{'KiB left':>9}{'2nd round':>10}"
        )
        for t in targets:
            # socat forks a process per connection (not comparable); the Qt and tray rows
            # hold the same relays as "ours (splice)".
            same_relay = t.name in ("ours (on Qt)", "ours (tray)")
            if t.proc is None or t.kind == "forward" or same_relay:
                continue
            m = idle_memory(t, sink_port, n_idle)
            print(
                f"{t.name:16}{m['kib']:9.1f}{m['fds']:9.1f}{m['fds_left']:9.0f}"
                f"{m['kib_left']:9.0f}{m['growth']:+10.0f}"
            )
        print("(KiB left: RSS after closing vs before; 2nd round: RSS growth of a repeat)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
