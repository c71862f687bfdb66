"""The proxy benchmark's Python load generator and targets (``bench_proxy`` drives them).

``Target`` says how a generator reaches the C sink (directly, through a port forwarder,
or through a SOCKS5 proxy) and reads the target process's CPU time. The generator is
plain Python: ``py_setup`` (sequential transactions), ``py_rate`` (``clients``
concurrent transactions in one selector loop), ``py_bulk`` (streams pushed to the
sink) and ``idle_memory`` (many idle relayed connections). A transaction is connect,
SOCKS5 greeting and CONNECT, one byte to the sink and its one-byte answer, close. The C
generator (``cload``) measures the same things without Python's own cost per
connection.
"""

from __future__ import annotations

import selectors
import socket
import struct
import subprocess
import time
from typing import Any

__all__ = ["BUF", "Target", "idle_memory", "py_bulk", "py_rate", "py_setup", "socks_connect"]

BUF = 1 << 20


def socks_connect(proxy_port: int, dest_port: int) -> socket.socket:
    """A socket through the SOCKS5 proxy at ``proxy_port`` to 127.0.0.1:``dest_port``."""
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

    def __init__(self, name: str, kind: str, port: int, proc: subprocess.Popen[Any] | None):
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

    def loadgen_args(self, sink_port: int) -> tuple[int, int | None]:
        """(DEST, SOCKS) for the C generator."""
        if self.kind == "direct":
            return sink_port, None
        if self.kind == "forward":
            return self.port, None
        return sink_port, self.port

    def cpu(self) -> float:
        """CPU-seconds the target's process (all threads, waited children) has used."""
        if self.proc is None:
            return 0.0
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return float(t.user + t.system + t.children_user + t.children_system)


def py_bulk(target: Target, sink_port: int, streams: int, total: int) -> tuple[float, float]:
    """Python generator: (GB/s, proxy CPU-s per GB) of ``total`` bytes over ``streams``
    streams, timed until the sink confirmed the last byte."""
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
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            try:
                n = ready.send(payload[: min(BUF, left[ready])])
            except BlockingIOError:
                continue
            left[ready] -= n
            if left[ready] == 0:
                sel.unregister(ready)
                del left[ready]
    for s in socks:
        s.setblocking(True)
        if s.recv(1) != b"k":
            raise RuntimeError("sink did not confirm")
    dt = time.perf_counter() - t0
    cpu = target.cpu() - cpu0
    for s in socks:
        s.close()
    sel.close()
    gb = per * streams / 1e9
    return gb / dt, cpu / gb


def py_setup(target: Target, sink_port: int, n: int) -> list[float]:
    """Python generator: µs of each of ``n`` sequential transactions (socket to answer)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        s = target.connect(sink_port)
        s.sendall(b"R")
        if s.recv(1) != b"r":
            raise RuntimeError(f"{target.name}: the sink did not answer")
        times.append((time.perf_counter() - t0) * 1e6)
        s.close()
    return times


def py_rate(target: Target, sink_port: int, clients: int, seconds: float) -> tuple[int, float]:
    """Python generator: (transactions, seconds) of ``clients`` concurrent loops.

    The generator is one selector loop over raw non-blocking sockets (a few µs of Python
    per connection); the C generator shows how much that still costs the rate.
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
        # state: 0 connecting, 1 waiting for the method reply, 2 for the connect reply,
        # 3 for the sink's answer
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
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.send(greeting if socks else b"R")
                st[0] = 1 if socks else 3
                sel.modify(s, selectors.EVENT_READ, st)
                continue
            try:
                chunk = s.recv(64)
            except BlockingIOError:
                continue
            if not chunk:
                raise RuntimeError(f"{target.name} closed the connection")
            st[1] += chunk
            if st[0] == 1 and len(st[1]) >= 2:
                st[0], st[1] = 2, st[1][2:]
                s.send(request)
            elif st[0] == 2 and len(st[1]) >= 10:
                if st[1][1] != 0:
                    raise RuntimeError("refused")
                st[0], st[1] = 3, st[1][10:]
                s.send(b"R")
            elif st[0] == 3 and st[1]:
                if st[1][:1] != b"r":
                    raise RuntimeError(f"{target.name}: the sink did not answer")
                finish(s)
    elapsed = time.perf_counter() - t0
    for key in list(sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    sel.close()
    return done, elapsed


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
