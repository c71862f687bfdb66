"""Benchmark of the admin console's data path: decision ingest into two replicas, live feed.

Run: ``bash scripts/bench.sh console`` (about 2-3 minutes; ``--quick``: 100 devices for
10 s). What it sets up, all real and on this machine:

- a private PostgreSQL 15 cluster (the ``postgres_url`` fixture's approach);
- two controller replicas, each its own ``rustronaut-controller serve`` process on the
  same database: A runs the development OIDC provider, B accepts A's tokens (A's issuer
  in its ``issuers``) and shares A's bundle signing keys; both have
  ``telemetry_batches_per_min`` = 120 (a device sends 60 a minute here);
- ``--devices`` devices (1,000) enrolled through A's API with access tokens of 20 users
  signed in through the dev provider, each device with its own Ed25519 key; half of them
  then post to A, half to B;
- a load generator in ``--workers`` processes (``tests/bench/console_load.py``): every
  device posts one batch of 10 decision events a second (10 decisions/s), dated and signed
  at send time, over keep-alive connections;
- an admin signed in to replica B's console by walking the real sign-in (GET
  /console/login → the dev provider's form → /console/callback) whose WebSocket
  (``/console/ws/live``, with the browser's ``Origin``) filters on the name of 8 probe
  devices (4 posting to A, 4 to B: 80 items/s, under the per-socket limit of 200/s), and
  a second, unfiltered socket that shows what the per-socket limit skips.

It prints, side by side: the offered and achieved ingest rate, the ingest POST's latency,
the feed delay (now − the event's ``at``) of decisions ingested at A and at B as seen on
B, the CPU seconds per 1,000 decisions of each replica process and of PostgreSQL (all its
processes), and the load average. Timings never gate anything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import msgspec
import psutil
from cryptography.hazmat.primitives import serialization

from controller.config import hash_admin_token, new_admin_token
from controller.testing import login
from tests.bench.console_load import worker_main
from tests.controller.conftest import PG_BIN, new_device, pg_cluster

ROOT = Path(__file__).resolve().parents[2]
USERS = 20
PROBES = 8  # probe devices (half per replica) the filtered feed socket watches
ADMIN = ("ops-admin", "ops-admin-password")
ADMIN_GROUP = "console-admins"


# replicas ----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    """One controller process."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _users() -> list[dict[str, Any]]:
    users = [
        {
            "username": f"user{i:02d}",
            "password": f"user{i:02d}-password",
            "email": f"user{i:02d}@example.com",
            "name": f"User {i:02d}",
            "groups": ["staff"],
        }
        for i in range(USERS)
    ]
    users.append(
        {
            "username": ADMIN[0],
            "password": ADMIN[1],
            "email": f"{ADMIN[0]}@example.com",
            "name": "Ops Admin",
            "groups": [ADMIN_GROUP],
        }
    )
    return users


def _config(
    name: str, port: int, db: str, work: Path, admin_hash: str, issuer_a: str, console: bool
) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"
    cfg: dict[str, Any] = {
        "admin_token_sha256": admin_hash,
        "keys_dir": str(work / "keys"),  # shared: replicas sign bundles with one key ring
        "database": db,
        "host": "127.0.0.1",
        "port": port,
        "public_url": url,
        "pool": "10.64.0.0/16",  # room for the fleet (the default /24 holds 253)
        "sensitive_rate_per_min": 100_000,  # enrollment of the fleet from one address
        "telemetry_batches_per_min": 120,
        "telemetry_max_age_s": 600,
    }
    # Each replica runs the dev provider for its own console sign-in; devices' tokens all
    # come from A's, which B accepts as an external issuer (keys fetched from A's JWKS).
    cfg["dev_oidc"] = {"users": _users(), "access_token_ttl_s": 3600}
    if name == "B":
        cfg["issuers"] = [{"issuer": issuer_a, "audiences": ["rustronaut-api"]}]
    if console:
        cfg.update(_console_config())
    return cfg


def _console_config() -> dict[str, Any]:
    """The console's settings, if this controller has any (admins by group)."""
    from controller.config import ControllerConfig

    fields = set(ControllerConfig.__struct_fields__)
    if "console" in fields:
        return {"console": {"admin_groups": [ADMIN_GROUP]}}
    if "console_admin_groups" in fields:
        return {"console_admin_groups": [ADMIN_GROUP]}
    return {}


def start_replica(name: str, cfg: dict[str, Any], work: Path, script: str = "") -> Replica:
    """Write the config and start ``rustronaut-controller serve`` on it (or ``python
    SCRIPT serve``: a variant of the controller to compare)."""
    path = work / f"controller-{name}.json"
    path.write_text(json.dumps(cfg, indent=1))
    log = work / f"replica-{name}.log"
    exe = Path(sys.executable).with_name("rustronaut-controller")
    argv = [sys.executable, script] if script else [str(exe)]
    proc = subprocess.Popen(
        [*argv, "serve", "--config", str(path)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=work,
    )
    return Replica(name, int(cfg["port"]), proc, log)


async def wait_ready(rep: Replica, timeout: float = 30.0) -> None:
    """Until the replica answers discovery; raises with its log if it died."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if rep.proc.poll() is not None:
                raise SystemExit(f"replica {rep.name} exited:\n{rep.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{rep.url}/.well-known/rustronaut")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise SystemExit(f"replica {rep.name} did not start:\n{rep.log.read_text()[-3000:]}")


# fleet -------------------------------------------------------------------------------------
async def enroll_fleet(
    a: Replica, b: Replica, n: int, issuer: str
) -> tuple[list[dict[str, Any]], dict[str, str], float]:
    """Enroll ``n`` devices through A's API (tokens of ``USERS`` users); the worker specs
    (alternately A and B), ``{device_id: replica}`` of the probe devices, and seconds taken."""
    rc: Any = SimpleNamespace(client_id="rustronaut-desktop", issuer=issuer)
    tokens = [
        (await login(rc, f"user{i:02d}", f"user{i:02d}-password"))["access_token"]
        for i in range(USERS)
    ]
    specs: list[dict[str, Any]] = []
    probes: dict[str, str] = {}
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(8)

    async with httpx.AsyncClient(base_url=a.url, timeout=60) as http:

        async def one(i: int) -> None:
            keys = new_device()
            rep = a if i % 2 == 0 else b
            probe = i < PROBES
            name = f"probe-{rep.name}{i}" if probe else f"laptop-{i:04d}"
            token = tokens[i % USERS]
            async with sem:
                r = await http.post(
                    "/v1/devices",
                    json=msgspec.to_builtins(keys.enroll_request(name)),
                    headers={"Authorization": f"Bearer {token}"},
                )
            if r.status_code != 201:
                raise SystemExit(f"enrollment refused: {r.status_code} {r.text[:300]}")
            dev_id = r.json()["device_id"]
            raw = keys.signing.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            specs.append(
                {
                    "device_id": dev_id,
                    "key": raw,
                    "token": token,
                    "host": "127.0.0.1",
                    "port": rep.port,
                    "replica": rep.name,
                }
            )
            if probe:
                probes[dev_id] = rep.name

        await asyncio.gather(*(one(i) for i in range(n)))
        # One authenticated request per replica before the load: B fetches A's JWKS on
        # its first token, and a cold B under full load fetches it once per concurrent
        # request (no single flight) and stalls for seconds.
        for rep in (a, b):
            d = next(s for s in specs if s["port"] == rep.port)
            r = await http.post(
                f"{rep.url}/v1/devices/{d['device_id']}/posture/nonce",
                headers={"Authorization": f"Bearer {d['token']}"},
            )
            if r.status_code != 200:
                raise SystemExit(f"replica {rep.name} refused a token: {r.status_code} {r.text}")
    return specs, probes, time.perf_counter() - t0


# CPU ---------------------------------------------------------------------------------------
def _tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its living children."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _notify_state(url: str) -> str:
    """PostgreSQL's side of the cross-replica feed at the end of the window: how full the
    NOTIFY queue is and what the replicas' LISTEN connections wait on (``ClientWrite``:
    the backend has notifications the replica does not read fast enough)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        usage = conn.execute("SELECT pg_notification_queue_usage()").fetchone()
        waits = conn.execute(
            "SELECT coalesce(wait_event, state) FROM pg_stat_activity "
            "WHERE application_name = 'rtc-live-listen' ORDER BY pid"
        ).fetchall()
    pct = float(usage[0]) * 100 if usage else 0.0
    return f"queue {pct:.3f} % full; LISTEN backends waiting on: " + (
        ", ".join(str(w[0]) for w in waits) or "(none)"
    )


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# the run -----------------------------------------------------------------------------------
async def main(ns: argparse.Namespace) -> None:
    from tests.bench import console_feed

    n_dev = ns.devices or (100 if ns.quick else 1000)
    duration = ns.seconds or (10.0 if ns.quick else 60.0)
    warm = 3.0 if ns.quick else 5.0
    interval, batch = 1.0, ns.batch
    print(
        f"console bench: {n_dev} devices x {batch / interval:.0f} decisions/s "
        f"({batch} per batch every {interval:.0f} s), 2 replicas, {ns.workers} load "
        f"workers, {duration:.0f} s measured after {warm:.0f} s warm-up; "
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    if not (PG_BIN / "initdb").exists():
        raise SystemExit("PostgreSQL 15 is not installed (apt: postgresql)")
    with (
        pg_cluster(tuple(ns.pg)) as pg,
        tempfile.TemporaryDirectory(prefix="rtc-bench-console-") as tmp,
    ):
        work = Path(tmp)
        admin_hash = hash_admin_token(new_admin_token())
        pa, pb = _free_port(), _free_port()
        issuer_a = f"http://127.0.0.1:{pa}/oidc"
        a = start_replica(
            "A",
            _config("A", pa, pg.url, work, admin_hash, issuer_a, ns.console),
            work,
            ns.serve_script,
        )
        replicas = [a]
        try:
            await wait_ready(a)
            b = start_replica(
                "B",
                _config("B", pb, pg.url, work, admin_hash, issuer_a, ns.console),
                work,
                ns.serve_script,
            )
            replicas.append(b)
            await wait_ready(b)
            specs, probes, took = await enroll_fleet(a, b, n_dev, issuer_a)
            print(f"  enrolled {n_dev} devices through A's API in {took:.1f} s", flush=True)

            feed = await console_feed.open_feeds(b, ADMIN, probes) if ns.console else None
            if feed is None:
                print("  (no console live feed: feed delay not measured)")

            start_at = time.time() + 1.5
            stop_at = start_at + warm + duration + 1.0
            ctx = multiprocessing.get_context("spawn")
            procs, pipes = [], []
            for w in range(ns.workers):
                mine = specs[w :: ns.workers]
                recv, send = ctx.Pipe(duplex=False)
                args = {
                    "devices": mine,
                    "interval_s": interval,
                    "batch_size": batch,
                    "start_at": start_at,
                    "stop_at": stop_at,
                    "conns_per_replica": ns.conns,
                }
                p = ctx.Process(target=worker_main, args=(args, send), daemon=True)
                p.start()
                send.close()
                procs.append(p)
                pipes.append(recv)

            # The measured window: after the warm-up, CPU sampled at both ends.
            w0 = start_at + warm
            w1 = w0 + duration
            await asyncio.sleep(max(0.0, w0 - time.time()))
            pids = {"A": a.proc.pid, "B": b.proc.pid, "PostgreSQL": pg.pid}
            cpu0 = {k: _tree_cpu(pid) for k, pid in pids.items()}
            gen0 = sum(_tree_cpu(p.pid or 0) for p in procs)
            if feed is not None:
                feed.window = (w0, w1)
            await asyncio.sleep(max(0.0, w1 - time.time()))
            cpu1 = {k: _tree_cpu(pid) for k, pid in pids.items()}
            notify_state = _notify_state(pg.url) if feed is not None else ""
            gen1 = sum(_tree_cpu(p.pid or 0) for p in procs)
            load = os.getloadavg()
            loop = asyncio.get_running_loop()
            results = [await loop.run_in_executor(None, r.recv) for r in pipes]
            for p in procs:
                p.join(10)
            if feed is not None:
                await feed.close()
        finally:
            for rep in replicas:
                rep.proc.terminate()
            for rep in replicas:
                try:
                    rep.proc.wait(10)
                except subprocess.TimeoutExpired:
                    rep.proc.kill()
                    rep.proc.wait()

    # Rows completed inside the window.
    lat: list[float] = []
    queued: list[float] = []
    ok_items = ok_batches = 0
    statuses: dict[int, int] = {}
    per_rep = {"A": 0, "B": 0}
    errors: dict[str, int] = {}
    for res in results:
        for k, v in res["errors"].items():
            errors[k] = errors.get(k, 0) + v
        for t, lt, st, it, who, qw in zip(
            res["done_at"],
            res["latency"],
            res["status"],
            res["items"],
            res["replica"],
            res["queued"],
            strict=True,
        ):
            if not w0 <= t < w1:
                continue
            statuses[st] = statuses.get(st, 0) + 1
            lat.append(lt)
            queued.append(qw)
            if st == 200:
                ok_batches += 1
                ok_items += it
                per_rep[who] += it
    if ns.series:  # per second of the window: batches stored, slowest POST, per replica
        for name in ("A", "B"):
            cells = []
            for sec in range(int(duration)):
                a0, a1 = w0 + sec, w0 + sec + 1
                rows = [
                    (lt, st)
                    for res in results
                    for t, lt, st, r in zip(
                        res["done_at"], res["latency"], res["status"], res["replica"], strict=True
                    )
                    if r == name and a0 <= t < a1
                ]
                ok = sum(1 for _, st in rows if st == 200)
                worst = max((lt for lt, _ in rows), default=0.0)
                cells.append(f"{ok}/{worst * 1000:.0f}")
            print(f"  {name} per second (batches/slowest ms): {' '.join(cells)}")
    offered = n_dev * batch / interval
    cpu = {k: cpu1[k] - cpu0[k] for k in cpu0}
    # A replica's CPU per 1,000 of the decisions IT ingested; PostgreSQL's per 1,000 of all.
    events = {"A": per_rep["A"], "B": per_rep["B"], "PostgreSQL": ok_items}
    per_k = {k: cpu[k] / events[k] * 1000 if events[k] else float("nan") for k in cpu}
    total_k = sum(cpu.values()) / ok_items * 1000 if ok_items else float("nan")

    print()
    print(f"  {'offered':<34} {offered:>10,.0f} decisions/s  ({n_dev / interval:,.0f} batches/s)")
    print(
        f"  {'ingested (HTTP 200, stored)':<34} {ok_items / duration:>10,.0f} decisions/s  "
        f"({ok_batches / duration:,.0f} batches/s; A {per_rep['A'] / duration:,.0f}/s, "
        f"B {per_rep['B'] / duration:,.0f}/s) = {ok_items / duration / offered:.0%} of offered"
    )
    other = {k: v for k, v in statuses.items() if k != 200}
    if other or errors:
        print(f"  {'other answers':<34} {other} {errors}")
    print(
        f"  {'ingest POST latency p50 / p99':<34} {_pct(lat, 0.5) * 1000:>10.1f} / "
        f"{_pct(lat, 0.99) * 1000:.1f} ms   (before it, waiting for a free connection "
        f"p50 / p99: {_pct(queued, 0.5) * 1000:.0f} / {_pct(queued, 0.99) * 1000:.0f} ms)"
    )
    if feed is not None:
        for line in feed.report():
            print(f"  {line}")
    if notify_state:
        print(f"  {'PostgreSQL NOTIFY at window end':<34} {notify_state}")
    for k, what in (("A", "its own"), ("B", "its own"), ("PostgreSQL", "all")):
        print(
            f"  {'CPU per 1,000 decisions, ' + k:<34} {per_k[k]:>10.3f} CPU-s   "
            f"(per 1,000 of {what}; {cpu[k] / duration:.2f} cores over the window)"
        )
    print(
        f"  {'CPU per 1,000 decisions, all three':<34} {total_k:>10.3f} CPU-s   "
        f"(at this cost two idle cores would ingest ~{2000 / total_k if total_k else 0:,.0f}"
        " decisions/s)"
    )
    print(
        f"  {'CPU of the load generator':<34} {(gen1 - gen0) / duration:>10.2f} cores   "
        f"load average after: {' '.join(f'{x:.2f}' for x in load)}"
    )


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="100 devices, 10 s")
    p.add_argument("--devices", type=int, default=0, help="simulated devices (1000)")
    p.add_argument("--seconds", type=float, default=0.0, help="measured window (60 s)")
    p.add_argument("--batch", type=int, default=10, help="decisions per batch (one a second)")
    p.add_argument("--workers", type=int, default=2, help="load generator processes")
    p.add_argument("--conns", type=int, default=32, help="connections per worker per replica")
    p.add_argument(
        "--no-console",
        dest="console",
        action="store_false",
        help="replicas without the console (the ingest's cost without the live feed)",
    )
    p.add_argument(
        "--serve-script",
        default="",
        metavar="PATH",
        help="run the replicas as 'python PATH serve --config ...' (to compare a variant)",
    )
    p.add_argument("--series", action="store_true", help="print per-second figures")
    p.add_argument(
        "--pg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a PostgreSQL setting (diagnosis), e.g. --pg synchronous_commit=off",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(_parse()))
