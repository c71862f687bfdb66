"""The load side of the console benchmark: simulated devices posting signed decision batches.

A worker process (``run_worker``) drives a slice of the devices on its own asyncio loop.
Each device wakes every ``interval_s`` (staggered so the fleet's load is even), builds a
batch of ``batch_size`` decision events dated *now* (``at`` and ``iat`` at send time, so
the live feed's delay is measured from the moment the "client" emitted them), signs it
with its own Ed25519 key and POSTs it to its replica. Like the real client, a device has
at most one batch in flight: when the controller falls behind, the offered load falls
with it and the shortfall shows in the ingest rate instead of an unbounded queue.

HTTP goes through a minimal keep-alive HTTP/1.1 client over asyncio streams instead of
httpx: on a 2-core machine the generator competes with the controllers for CPU, and
httpx costs several times more per request than the few lines below.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.wire.telemetry import DecisionBatch, DecisionEvent, sign_batch

__all__ = ["DeviceSpec", "HttpConn", "WorkerResult", "run_worker", "worker_main"]


@dataclass(frozen=True)
class DeviceSpec:
    """One simulated device: who it is, its key and which replica it talks to."""

    device_id: str
    key: bytes  # raw Ed25519 private key (32 bytes)
    token: str  # the user's access token
    host: str
    port: int
    replica: str  # "A" or "B"


@dataclass
class WorkerResult:
    """What a worker measured: one row per POST (wall-clock completion, latency, status,
    decisions carried, replica, time waiting for a free connection)."""

    done_at: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    status: list[int] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    replica: list[str] = field(default_factory=list)
    queued: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


class HttpConn:
    """One keep-alive HTTP/1.1 connection; ``post`` returns (status, body)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._r, self._w = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
        self._r = self._w = None

    async def post(self, path: str, body: bytes, headers: str) -> tuple[int, bytes]:
        """POST ``body``; reconnects once if the server closed the idle connection."""
        for attempt in (0, 1):
            if self._w is None:
                await self._open()
            assert self._r is not None
            assert self._w is not None
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{headers}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            try:
                self._w.write(head.encode() + body)
                line = await self._r.readline()
                if not line:
                    raise ConnectionResetError("closed by the server")
                status = int(line.split(None, 2)[1])
                length, close = 0, False
                while True:
                    h = await self._r.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = h.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection" and value.strip().lower() == b"close":
                        close = True
                data = await self._r.readexactly(length) if length else b""
                if close:
                    self.close()
                return status, data
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")


_APPS = ("/usr/bin/firefox", "/usr/bin/ssh", "/opt/corp/agent", "/usr/bin/curl")
_RESOURCES = ("wiki", "git", "crm", None)


def _events(n: int, now: float, rnd: random.Random) -> tuple[DecisionEvent, ...]:
    out = []
    for _ in range(n):
        res = rnd.choice(_RESOURCES)
        deny = res is None or rnd.random() < 0.2
        out.append(
            DecisionEvent(
                at=now,
                app=rnd.choice(_APPS),
                host=f"{res or 'unknown'}.corp.example",
                ip=f"10.20.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
                port=443,
                effect="deny" if deny else "allow",
                rule=None if deny else f"allow-{res}",
                resource=res,
                reason="no rule grants this resource" if deny else "granted",
                risk=rnd.randrange(0, 40),
            )
        )
    return tuple(out)


async def _run(
    devices: list[DeviceSpec],
    *,
    interval_s: float,
    batch_size: int,
    start_at: float,
    stop_at: float,
    conns_per_replica: int,
) -> WorkerResult:
    res = WorkerResult()
    pools: dict[tuple[str, int], asyncio.Queue[HttpConn]] = {}
    for d in devices:
        if (d.host, d.port) not in pools:
            q: asyncio.Queue[HttpConn] = asyncio.Queue()
            for _ in range(conns_per_replica):
                q.put_nowait(HttpConn(d.host, d.port))
            pools[(d.host, d.port)] = q
    enc = msgspec.json.Encoder()
    rnd = random.Random(1)

    async def device(d: DeviceSpec, offset: float) -> None:
        key = Ed25519PrivateKey.from_private_bytes(d.key)
        headers = f"Authorization: Bearer {d.token}\r\n"
        path = f"/v1/devices/{d.device_id}/decisions"
        pool = pools[(d.host, d.port)]
        seq = 0
        due = start_at + offset
        while due < stop_at:
            wait = due - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            now = time.time()
            seq += 1
            batch = DecisionBatch(
                device_id=d.device_id,
                seq=seq,
                iat=now,
                level="full",
                events=_events(batch_size, now, rnd),
            )
            body = enc.encode({"batch": sign_batch(batch, key)})
            q0 = time.perf_counter()
            conn = await pool.get()
            t0 = time.perf_counter()
            try:
                status, _ = await conn.post(path, body, headers)
            except (OSError, asyncio.IncompleteReadError) as exc:
                name = type(exc).__name__
                res.errors[name] = res.errors.get(name, 0) + 1
                status = 0
            finally:
                pool.put_nowait(conn)
            lat = time.perf_counter() - t0
            res.done_at.append(time.time())
            res.latency.append(lat)
            res.status.append(status)
            res.items.append(batch_size if status == 200 else 0)
            res.replica.append(d.replica)
            res.queued.append(t0 - q0)
            # A late device does not burst to catch up: it sends its next batch now and
            # keeps its pace from there (the shortfall shows in the ingest rate).
            due = max(due + interval_s, time.time())

    tasks = [
        asyncio.create_task(device(d, interval_s * i / max(1, len(devices))))
        for i, d in enumerate(devices)
    ]
    await asyncio.gather(*tasks)
    for q in pools.values():
        while not q.empty():
            q.get_nowait().close()
    return res


def worker_main(args: dict[str, Any], out: Any) -> None:
    """Entry point of a worker process: run the devices, send the result back on ``out``
    (a ``multiprocessing`` connection) as builtins."""
    devices = [DeviceSpec(**d) for d in args.pop("devices")]
    res = asyncio.run(_run(devices, **args))
    out.send(res.__dict__)
    out.close()


def run_worker(args: dict[str, Any]) -> WorkerResult:
    """Run in-process (tests, debugging)."""
    devices = [DeviceSpec(**d) for d in args.pop("devices")]
    return asyncio.run(_run(devices, **args))
