"""Benchmark of the local proxy as the tray runs it, against microsocks, direct loopback and
a C splice forwarder, with two independent load generators.

Run: ``bash scripts/bench.sh proxy`` (about 6 minutes, 7 rounds; ``--quick`` checks the
harness in about 2.5, ``--rounds=N`` for more rounds, ``--all`` adds the other relay variants,
pproxy and socat). Needs a C compiler: the C load generator, sink and splice forwarder
(``tests/bench/cload/``) are built from source at run time. Everything runs on loopback.

Targets: ``direct`` (generator to sink), ``ours (tray)`` (``ProxyServer`` on its own
thread beside a Qt loop, ``ProxyThread``, as the tray ships it; real peer identity per
connection, decisions from a loaded ``PolicyEngine`` with a signed 1,000-rule bundle:
``proxy_tray``), ``microsocks`` and ``splice fwd (C)``, a
minimal C forwarder with splice(2): the relay limit, what any relay reaches here. A second
instance of that forwarder, ``splice fwd (C, 2nd)``, runs the bulk rows as a control, and
a second microsocks the per-connection rows: two identical forwarders differ from round
to round by as much as the target's margin (0.72-1.29x in single rounds, 0.92-1.18x in
7-round medians, on 2 vCPUs), so each reference is the mean of its two instances in each
round, and each control's ratio to the first is printed as the noise floor of that run.

Generators: the C generator (``loadgen``: pthreads, one connection per request) and the
project's Python generator (one selector loop); both talk to the C sink. A transaction
is connect, SOCKS5 greeting and CONNECT, one byte to the sink and its one-byte answer,
close.

Every figure is measured in each of ≥ 5 interleaved rounds (every target back to back
within a round, the order rotated each round) and printed as the median over the rounds
with [min-max]. Ratios (to microsocks, to direct, to the splice forwarder) are taken
within each round, then their median. The run also prints the load average before and
during it and the CPU steal. Timings are printed, never asserted.

Rows: setup p50/p99 (sequential transactions), conn/s at 50 clients and the proxy's CPU
per connection in that run, bulk with 1 and 32 streams (against direct and against the
splice forwarder), peer identity lookups, and 1,000 idle relayed connections.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench import cload
from tests.bench.proxy_pyload import Target, idle_memory, py_bulk, py_rate, py_setup
from tests.bench.proxy_tray import N_RULES, raise_nofile, run_ours

ROOT = Path(__file__).resolve().parents[2]

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


# --------------------------------------------------------------------------- rounds

FWD = "splice fwd (C)"
FWD_CONTROL = "splice fwd (C, 2nd)"  # a second, identical forwarder: the bulk rows' control
FWD_REF = "splice fwd (mean of 2)"  # the bulk reference: both forwarders' mean in a round
MS = "microsocks"
MS_CONTROL = "microsocks (2nd)"  # the per-connection rows' control
MS_REF = "microsocks (mean of 2)"  # their reference: both instances' mean in a round
REFS = {FWD_REF: (FWD, FWD_CONTROL), MS_REF: (MS, MS_CONTROL)}


@dataclass(frozen=True)
class Plan:
    """Sizes of one run."""

    rounds: int
    n_setup: int  # sequential transactions per target, generator and round
    rate_s: float  # seconds of each 50-client run
    bulk_s: float  # measured seconds of each C bulk run (after the warm-up)
    py_total: int  # bytes of each Python bulk run
    clients: int = 50
    warmup: float = 0.3  # seconds of each C bulk run before it is measured


def _pct(times: list[float], q: float) -> float:
    xs = sorted(times)
    return xs[min(int(len(xs) * q), len(xs) - 1)]


class Results:
    """Per-round values: ``values[(generator, metric)][target]`` is one value per round
    (NaN where a round had none), so ratios can be taken within a round."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.errors: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, gen: str, metric: str, target: str, value: float) -> None:
        self.values[(gen, metric)][target].append(value)

    def get(self, gen: str, metric: str, target: str) -> list[float]:
        return self.values[(gen, metric)].get(target, [])

    def ratio(self, gen: str, metric: str, target: str, ref: str) -> list[float]:
        """Per-round ratios of ``target`` to ``ref``; a ``REFS`` key is the mean of its two
        instances in that round (the first alone when the control is absent)."""
        a = self.get(gen, metric, target)
        if ref in REFS:
            one, two = (self.get(gen, metric, name) for name in REFS[ref])
            b = [(x + y) / 2 for x, y in zip(one, two, strict=True)] if two else one
        else:
            b = self.get(gen, metric, ref)
        return [x / y if y else math.nan for x, y in zip(a, b, strict=False)]


def _c_bulk(
    tools: cload.Tools, t: Target, sink_port: int, streams: int, plan: Plan
) -> tuple[cload.Bulk, float]:
    """A C bulk run and the target's CPU-s per GB over all of it (warm-up included)."""
    dest, socks = t.loadgen_args(sink_port)
    cpu0 = t.cpu()
    run = cload.bulk(tools, dest, socks, streams, plan.bulk_s, plan.warmup)
    cpu = t.cpu() - cpu0
    return run, (cpu / (run.total / 1e9) if run.total and t.proc else math.nan)


def one_round(
    index: int, targets: list[Target], tools: cload.Tools, sink_port: int, plan: Plan, res: Results
) -> None:
    """Every measurement of every target once, kind by kind, the target order rotated."""
    shift = index % len(targets)
    order = targets[shift:] + targets[:shift]
    bulk = [t for t in order if t.name != MS_CONTROL]  # each control runs its own rows
    for streams in (1, 32):
        for t in bulk:
            run, cpu_gb = _c_bulk(tools, t, sink_port, streams, plan)
            res.errors[("C", t.name)] += run.errors
            res.add("C", f"gbps{streams}", t.name, run.gbps if not run.errors else math.nan)
            res.add("C", f"cpugb{streams}", t.name, cpu_gb)
        for t in bulk:
            gbps, cpu_gb = py_bulk(t, sink_port, streams, plan.py_total)
            res.add("Python", f"gbps{streams}", t.name, gbps)
            res.add("Python", f"cpugb{streams}", t.name, cpu_gb if t.proc else math.nan)
    order = [t for t in order if t.name != FWD_CONTROL]
    for t in order:
        dest, socks = t.loadgen_args(sink_port)
        times, errors = cload.setup(tools, dest, socks, plan.n_setup)
        res.errors[("C", t.name)] += errors
        res.add("C", "p50", t.name, statistics.median(times) if times else math.nan)
        res.add("C", "p99", t.name, _pct(times, 0.99) if times else math.nan)
    for t in order:
        times = py_setup(t, sink_port, plan.n_setup)
        res.add("Python", "p50", t.name, statistics.median(times))
        res.add("Python", "p99", t.name, _pct(times, 0.99))
    for t in order:
        dest, socks = t.loadgen_args(sink_port)
        cpu0 = t.cpu()
        rate = cload.rate(tools, dest, socks, plan.clients, plan.rate_s)
        cpu = t.cpu() - cpu0
        res.errors[("C", t.name)] += rate.errors
        res.add("C", "cps", t.name, rate.per_s)
        cpu_conn = cpu / rate.conns * 1e6 if rate.conns and t.proc else math.nan
        res.add("C", "cpuconn", t.name, cpu_conn)
    for t in order:
        cpu0 = t.cpu()
        conns, seconds = py_rate(t, sink_port, plan.clients, plan.rate_s)
        cpu = t.cpu() - cpu0
        res.add("Python", "cps", t.name, conns / seconds)
        res.add("Python", "cpuconn", t.name, cpu / conns * 1e6 if conns and t.proc else math.nan)


class LoadWatch:
    """What else the machine did during the rounds.

    The 1-minute load average is sampled every second; it counts the benchmark's own
    runnable threads too (the C generator runs 50 of them, microsocks and the splice
    forwarder one or two per connection), so the figure before the run is the one that
    shows other load. The clean figure is the CPU that processes outside this benchmark
    used: the machine's busy time (/proc/stat) less this process tree's CPU time, as a
    share of all CPUs over the rounds. CPU steal is the hypervisor's share.
    """

    def __init__(self) -> None:
        self.before = os.getloadavg()[0]
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loadwatch", daemon=True)
        self.steal = self.others = math.nan
        self._t0 = 0.0
        self._stat0: list[int] = []
        self._tree0 = 0.0

    @staticmethod
    def _cpu_stat() -> list[int]:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                return [int(x) for x in f.readline().split()[1:]]
        except OSError:
            return []

    @staticmethod
    def _tree_cpu() -> float:
        """CPU-seconds of this process, its waited children and its live descendants."""
        import psutil

        me = psutil.Process()
        t = me.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in me.children(recursive=True):
            try:
                c = child.cpu_times()
            except psutil.Error:  # a load generator run that just ended
                continue
            total += c.user + c.system + c.children_user + c.children_system
        return float(total)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadWatch:
        self._t0 = time.monotonic()
        self._stat0 = self._cpu_stat()
        self._tree0 = self._tree_cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        stat1 = self._cpu_stat()
        tree = self._tree_cpu() - self._tree0
        elapsed = time.monotonic() - self._t0
        if self._stat0 and len(stat1) > 7:
            # user nice system idle iowait irq softirq steal, in clock ticks
            d = [b - a for a, b in zip(self._stat0, stat1, strict=False)]
            self.steal = 100 * d[7] / max(sum(d[:8]), 1)
            busy = (d[0] + d[1] + d[2] + d[5] + d[6]) / os.sysconf("SC_CLK_TCK")
            self.others = 100 * (busy - tree) / (elapsed * (os.cpu_count() or 1))

    def line(self) -> str:
        during = (
            f"median {statistics.median(self.samples):.2f}, max {max(self.samples):.2f}"
            if self.samples
            else "not sampled"
        )
        return (
            f"# load average (1 min): {self.before:.2f} before the run, {during} during it"
            f" (its own threads included); CPU of other processes during the run"
            f" {self.others:.1f} % of the machine; CPU steal {self.steal:.1f} %"
        )


# --------------------------------------------------------------------------- report


def _ok(xs: list[float]) -> list[float]:
    return [x for x in xs if not math.isnan(x)]


def cell(xs: list[float], spec: str = ".2f", width: int = 21) -> str:
    """``median [min-max]`` over the rounds, or a dash."""
    xs = _ok(xs)
    if not xs:
        return f"{'—':>{width}}"
    med, lo, hi = statistics.median(xs), min(xs), max(xs)
    return f"{f'{med:{spec}} [{lo:{spec}}-{hi:{spec}}]':>{width}}"


def _table(title: str, header: list[str], rows: list[tuple[str, list[str]]]) -> None:
    print(f"\n## {title}")
    print(f"{'':16}" + "".join(f"{h:>21}" for h in header))
    for name, cells in rows:
        print(f"{name:16}" + "".join(cells))


def report(res: Results, targets: list[Target], plan: Plan, tray: str) -> None:
    names = [t.name for t in targets]
    ms, fwd = MS_REF, FWD_REF
    has_ms = MS in names
    for gen in ("C", "Python"):
        for streams in (1, 32):
            _table(
                f"bulk, {gen} generator, {streams} stream(s): GB/s; × direct; × splice fwd"
                " (mean of both instances in the round); target CPU-s per GB",
                ["GB/s", "× direct", "× splice fwd", "CPU-s/GB"],
                [
                    (
                        n,
                        [
                            cell(res.get(gen, f"gbps{streams}", n)),
                            cell(res.ratio(gen, f"gbps{streams}", n, "direct")),
                            cell(res.ratio(gen, f"gbps{streams}", n, fwd)),
                            cell(res.get(gen, f"cpugb{streams}", n)),
                        ],
                    )
                    for n in names
                    if n != MS_CONTROL
                ],
            )
    for gen in ("C", "Python"):
        _table(
            f"connection setup, {gen} generator ({plan.n_setup} sequential transactions a"
            " round): µs; × microsocks (mean of both instances in the round)",
            ["p50 µs", "× microsocks", "p99 µs", "× microsocks"],
            [
                (
                    n,
                    [
                        cell(res.get(gen, "p50", n), ".0f"),
                        cell(res.ratio(gen, "p50", n, ms) if has_ms else []),
                        cell(res.get(gen, "p99", n), ".0f"),
                        cell(res.ratio(gen, "p99", n, ms) if has_ms else []),
                    ],
                )
                for n in names
                if n != FWD_CONTROL
            ],
        )
    for gen in ("C", "Python"):
        _table(
            f"{plan.clients} concurrent clients, {gen} generator ({plan.rate_s:g} s a round):"
            " conn/s; × microsocks; target CPU µs per connection; × microsocks' (both"
            " instances' mean in the round)",
            ["conn/s", "× microsocks", "CPU µs/conn", "× microsocks"],
            [
                (
                    n,
                    [
                        cell(res.get(gen, "cps", n), ".0f"),
                        cell(res.ratio(gen, "cps", n, ms) if has_ms else []),
                        cell(res.get(gen, "cpuconn", n), ".0f"),
                        cell(res.ratio(gen, "cpuconn", n, ms) if has_ms else []),
                    ],
                )
                for n in names
                if n != FWD_CONTROL
            ],
        )
    print("(ratios are taken within each round; forwarders skip the SOCKS5 handshake)")

    print(f"\n## {tray} against issue 22's targets (median of per-round ratios [min-max])")
    print(f"{'':36}{'C generator':>21}{'Python generator':>21}   target")
    # (label, metric, whose figures, ratio to whom or "" for the figures themselves, target)
    rows: list[tuple[str, str, str, str, str]] = [
        ("setup p50 × microsocks", "p50", tray, ms, "≤ 2×"),
        ("setup p99 × microsocks", "p99", tray, ms, "≤ 2×"),
        (f"conn/s at {plan.clients} clients × microsocks", "cps", tray, ms, "≥ 0.5×"),
        ("CPU per connection × microsocks'", "cpuconn", tray, ms, "≤ 2×"),
        ("  CPU µs per connection", "cpuconn", tray, "", ""),
        ("  microsocks' CPU µs per connection", "cpuconn", MS, "", ""),
        ("  control: 2nd microsocks × 1st, p50", "p50", MS_CONTROL, MS, ""),
        ("  control: … p99", "p99", MS_CONTROL, MS, ""),
        ("  control: … conn/s", "cps", MS_CONTROL, MS, ""),
        ("  control: … CPU per connection", "cpuconn", MS_CONTROL, MS, ""),
        ("bulk 1 stream × splice fwd", "gbps1", tray, fwd, "≥ 0.95×"),
        ("bulk 1 stream × direct", "gbps1", tray, "direct", ""),
        ("  control: 2nd splice fwd × 1st", "gbps1", FWD_CONTROL, FWD, ""),
        ("bulk 32 streams × splice fwd", "gbps32", tray, fwd, "≥ 0.95×"),
        ("bulk 32 streams × direct", "gbps32", tray, "direct", ""),
        ("  control: 2nd splice fwd × 1st", "gbps32", FWD_CONTROL, FWD, ""),
    ]
    for label, metric, who, ref, goal in rows:
        if (ref and ref not in names and ref not in REFS) or who not in names:
            continue
        spec = ".2f" if ref else ".0f"
        c, py = (
            cell(res.ratio(gen, metric, who, ref) if ref else res.get(gen, metric, who), spec)
            for gen in ("C", "Python")
        )
        print(f"{label:36}{c}{py}   {goal}".rstrip())
    print(
        "(microsocks and splice fwd: the mean of both instances in each round; a control row"
        " is what two identical instances measure against each other: the noise floor of"
        " this run)"
    )
    for (gen, name), n in sorted(res.errors.items()):
        if n:
            print(f"!! {name}: {n} failed transactions with the {gen} generator")


# --------------------------------------------------------------------------- driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[Any]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.args!r} did not listen on {port}")


def _spawn_self(tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    port_file = tmp / f"port-{'-'.join(args)}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.bench_proxy", *args, str(port_file)], cwd=ROOT
    )
    for _ in range(200):
        if port_file.exists() and port_file.read_text():
            port = int(port_file.read_text())
            _wait_port(port, proc)
            return proc, port
        if proc.poll() is not None:
            raise RuntimeError(f"{args} exited early")
        time.sleep(0.05)
    raise RuntimeError(f"{args} did not start")


def _spawn(argv: list[str], port: int, procs: list[subprocess.Popen[Any]]) -> Any:
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    _wait_port(port, p)
    return p


def _revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return rev.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller runs: checks the harness")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (≥ 5)")
    parser.add_argument("--all", action="store_true", help="also the other relays and pproxy")
    parser.add_argument("--role", nargs="*")
    ns, _rest = parser.parse_known_args()
    if ns.role:
        if ns.role[0] == "ours":
            run_ours(ns.role[2], ns.role[1])
        return
    raise_nofile()
    try:
        tools = cload.build()
    except cload.NoCompiler as exc:
        sys.exit(f"bench_proxy: {exc}")
    if ns.quick:
        plan = Plan(max(ns.rounds, 5), 300, 0.5, 0.5, 64 << 20)
    else:
        plan = Plan(max(ns.rounds, 5), 1000, 2.0, 1.0, 256 << 20)
    n_idle = 200 if ns.quick else 1000
    load = LoadWatch()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-proxy-{os.getpid()}"
    tmp.mkdir()
    procs: list[subprocess.Popen[Any]] = []
    servers: list[cload.Server] = []
    try:
        sink = cload.Server(tools.sink)
        servers.append(sink)
        sink_port = sink.port
        fwd = cload.Server(tools.splice_fwd, "-t", str(sink_port))
        servers.append(fwd)
        control = cload.Server(tools.splice_fwd, "-t", str(sink_port))
        servers.append(control)
        tray = "ours (tray)"
        labels = {"splice+qasync+thread": tray}
        if ns.all:
            labels |= {
                "splice": "ours (splice)",
                "buffered": "ours (buffered)",
                "splice+qasync": "ours (on Qt)",
            }
        targets = [Target("direct", "direct", 0, None)]
        for relay, label in labels.items():
            p, port = _spawn_self(tmp, "--role", "ours", relay)
            procs.append(p)
            targets.append(Target(label, "socks", port, p))
        if not shutil.which("microsocks"):
            sys.exit("bench_proxy: microsocks is missing (scripts/apt/proxy.txt lists it)")
        port = _free_port()
        p = _spawn(["microsocks", "-i", "127.0.0.1", "-p", str(port)], port, procs)
        targets.append(Target(MS, "socks", port, p))
        port = _free_port()
        p = _spawn(["microsocks", "-i", "127.0.0.1", "-p", str(port)], port, procs)
        targets.append(Target(MS_CONTROL, "socks", port, p))
        targets.append(Target(FWD, "forward", fwd.port, fwd.proc))
        targets.append(Target(FWD_CONTROL, "forward", control.port, control.proc))
        pproxy = Path(sys.executable).with_name("pproxy")
        if ns.all and pproxy.exists():
            port = _free_port()
            p = _spawn([str(pproxy), "-l", f"socks5://127.0.0.1:{port}"], port, procs)
            targets.append(Target("pproxy", "socks", port, p))
        if ns.all and shutil.which("socat"):
            port = _free_port()
            listen = f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,backlog=4096"
            p = _spawn(["socat", listen, f"TCP:127.0.0.1:{sink_port}"], port, procs)
            targets.append(Target("socat (fwd)", "forward", port, p))

        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(
            f"# proxy benchmark {now}, {_revision()}, {os.cpu_count()} CPUs,"
            f" {platform.system()} {platform.release()}; {plan.rounds} interleaved rounds"
            f" (order rotated); C tools built by {cload.compiler()} in {tools.loadgen.parent}"
        )
        print(
            f"# per round and target: bulk C {plan.bulk_s:g} s after a {plan.warmup:g} s"
            f" warm-up, bulk"
            f" Python {plan.py_total >> 20} MiB; {plan.n_setup} sequential transactions;"
            f" {plan.clients} clients for {plan.rate_s:g} s; each with both generators;"
            f" our proxy decides with a loaded PolicyEngine ({N_RULES} rules)",
            flush=True,
        )
        res = Results()
        with load:
            for i in range(plan.rounds):
                t0 = time.perf_counter()
                one_round(i, targets, tools, sink_port, plan, res)
                print(
                    f"  round {i + 1}/{plan.rounds}: {time.perf_counter() - t0:.0f} s,"
                    f" load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
        print(load.line())
        report(res, targets, plan, tray)

        print("\n## peer identity lookup (p50 µs, fresh connection each)")
        for name, us in peer_identity(300 if ns.quick else 2000).items():
            print(f"  {name:28}{us:10.1f}")

        print(f"\n## {n_idle} concurrent idle relayed connections")
        print(
            f"{'':16}{'KiB/conn':>9}{'fds/conn':>9}{'fds left':>9}{'KiB left':>9}{'2nd round':>10}"
        )
        for t in targets:
            # Forwarders run a thread or a process per connection (not comparable); the Qt
            # and tray rows hold the same relays as "ours (splice)" when that is measured.
            same_relay = t.name in ("ours (on Qt)", tray) and ns.all
            if t.proc is None or t.kind == "forward" or same_relay or t.name == MS_CONTROL:
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
        for server in servers:
            server.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
