"""Microbenchmark: 1400-byte datagrams through the relay on loopback (MB/s and relay CPU).

Run: ``.venv/bin/python -m tests.controller.relay.bench_relay [--seconds 30]
[--impl threads,asyncio] [--direction up,down]``.

``threads`` is ``controller.relay`` as shipped (a real ``python -m controller.relay``
process); ``asyncio`` is a minimal asyncio-streams relay over the same TLS context and
framing (no directory, no limits: it flatters asyncio) kept here only to justify the
choice. The client (one TLS stream) and the UDP gateway run in their own processes;
"up" is client → gateway, "down" gateway → client. CPU is the relay process's
user+system time from /proc. The load generators are Python: on a 2-core machine they
share the cores with the relay, so absolute numbers are lower bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from controller.relay.config import load_config
from controller.relay.server import server_context
from controller.relayca import RelayCA
from tests.controller.relay.kit import Client, Controller, new_device, server_certificate
from wg_backends.relay import frames

SIZE = 1400
Q = Any  # multiprocessing queues (typeshed has no usable generic for them)


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sink(port_q: Q, count_q: Q, seconds: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    port_q.put(sock.getsockname()[1])
    buf = bytearray(65536)
    total = 0
    sock.settimeout(5)
    try:
        _, addr = sock.recvfrom_into(buf)
    except TimeoutError:
        count_q.put((0, 0.0, None))
        return
    port_q.put(addr)  # the relay's source port (for "down")
    start = time.monotonic()
    end = start + seconds
    sock.settimeout(0.5)
    while time.monotonic() < end:
        with contextlib.suppress(TimeoutError):
            total += sock.recv_into(buf)
    count_q.put((total, time.monotonic() - start, None))


def _run_relay_asyncio(config: str) -> None:
    cfg = load_config(Path(config))
    ctx = server_context(cfg.cert_file, cfg.key_file, cfg.client_ca_file)
    host, port = cfg.listen_address()
    gw_host, gw_port = cfg.gateways[0].rsplit(":", 1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        dec = frames.FrameDecoder()
        hdr = frames.HEADER

        class P(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                if writer.transport.get_write_buffer_size() < cfg.queue_bytes:
                    writer.write(hdr.pack(frames.DATA, len(data)) + data)

        udp = None
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            for kind, payload in dec.feed(chunk):
                if kind == frames.HELLO:
                    udp, _ = await loop.create_datagram_endpoint(
                        P, remote_addr=(gw_host, int(gw_port))
                    )
                    writer.write(frames.control(frames.READY, {"v": 1, "relay": "a", "streams": 1}))
                elif kind == frames.DATA and udp is not None:
                    udp.sendto(payload)
        writer.close()

    async def main() -> None:
        srv = await asyncio.start_server(handle, host, port, ssl=ctx)
        print(
            f"relay asyncio listening on {host}:{srv.sockets[0].getsockname()[1]}",
            file=sys.stderr,
            flush=True,
        )
        await srv.serve_forever()

    asyncio.run(main())


def _client_up(
    address: tuple[str, int], ca: str, dev: dict[str, str], gw: str, seconds: float, q: Q
) -> None:
    from cryptography.hazmat.primitives import serialization

    from tests.controller.relay.kit import Device

    key = serialization.load_pem_private_key(Path(dev["key_file"]).read_bytes(), None)
    device = Device(dev["id"], key, Path(dev["cert_file"]), Path(dev["key_file"]))  # type: ignore[arg-type]
    c = Client(address, Path(ca), device)
    c.hello(gw)
    batch = frames.encode(frames.DATA, os.urandom(SIZE)) * 64
    end = time.monotonic() + seconds + 1.5
    sent = 0
    while time.monotonic() < end:
        c.send(batch)
        sent += 64 * SIZE
    q.put(sent)
    c.close()


def _client_down(
    address: tuple[str, int], ca: str, dev: dict[str, str], gw: str, seconds: float, q: Q
) -> None:
    from cryptography.hazmat.primitives import serialization

    from tests.controller.relay.kit import Device

    key = serialization.load_pem_private_key(Path(dev["key_file"]).read_bytes(), None)
    device = Device(dev["id"], key, Path(dev["cert_file"]), Path(dev["key_file"]))  # type: ignore[arg-type]
    c = Client(address, Path(ca), device)
    c.hello(gw)
    c.data(b"x")  # tells the gateway the relay's source port
    c.sock.settimeout(3)
    got = 0
    start = None
    while True:
        try:
            chunk = c.sock.recv(1 << 20)
        except (TimeoutError, OSError):
            break
        if not chunk:
            break
        if start is None:
            start = time.monotonic()
        got += len(chunk)
        if time.monotonic() - start > seconds:
            break
    q.put((got, time.monotonic() - (start or time.monotonic())))
    c.close()


def _gateway_blaster(port_q: Q, seconds: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port_q.put(sock.getsockname()[1])
    sock.settimeout(10)
    _, addr = sock.recvfrom(65536)
    payload = os.urandom(SIZE)
    end = time.monotonic() + seconds + 1
    while time.monotonic() < end:
        for _ in range(256):
            with contextlib.suppress(OSError):
                sock.sendto(payload, addr)


def run_one(impl: str, direction: str, seconds: float, tmp: Path) -> dict[str, float]:
    cert, key, server_ca = server_certificate(tmp)
    ca = RelayCA.create()
    (tmp / "relay-ca.pem").write_text(ca.ca_pem())
    (tmp / "token").write_text("t" * 32)
    ctl = Controller(token="t" * 32)
    ctl.start()
    dev = new_device(ca, tmp, "bench-1")
    ctl.allow(dev)
    port_q: Q = mp.Queue()
    count_q: Q = mp.Queue()
    if direction == "up":
        gw_proc = mp.Process(target=_sink, args=(port_q, count_q, seconds))
    else:
        gw_proc = mp.Process(target=_gateway_blaster, args=(port_q, seconds))
    gw_proc.start()
    gw = f"127.0.0.1:{port_q.get(timeout=10)}"
    cfg = {
        "name": "bench",
        "listen": "127.0.0.1:0",
        "cert_file": str(cert),
        "key_file": str(key),
        "client_ca_file": str(tmp / "relay-ca.pem"),
        "controller_url": ctl.url,
        "token_file": str(tmp / "token"),
        "gateways": [gw],
    }
    (tmp / "relay.json").write_text(json.dumps(cfg))
    if impl == "threads":
        argv = [
            sys.executable,
            "-m",
            "controller.relay",
            "--config",
            str(tmp / "relay.json"),
            "--stats-file",
            str(tmp / "stats.json"),
        ]
    else:
        argv = [
            sys.executable,
            "-m",
            "tests.controller.relay.bench_relay",
            "--asyncio-relay",
            str(tmp / "relay.json"),
        ]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    port = 0
    for line in proc.stderr:
        m = re.search(r"listening on .*:(\d+)$", line.strip())
        if m:
            port = int(m.group(1))
            break
    devinfo = {"id": dev.device_id, "cert_file": str(dev.cert_file), "key_file": str(dev.key_file)}
    cq: Q = mp.Queue()
    target = _client_up if direction == "up" else _client_down
    client = mp.Process(
        target=target, args=(("127.0.0.1", port), str(server_ca), devinfo, gw, seconds, cq)
    )
    cpu0 = _cpu(proc.pid)
    t0 = time.monotonic()
    client.start()
    if direction == "up":
        port_q.get(timeout=20)
        total, elapsed, _ = count_q.get(timeout=seconds + 30)
    else:
        total, elapsed = cq.get(timeout=seconds + 30)
        total -= 0
    cpu = _cpu(proc.pid) - cpu0
    wall = time.monotonic() - t0
    stats = {}
    if impl == "threads" and (tmp / "stats.json").exists():
        stats = json.loads((tmp / "stats.json").read_text())
    client.join(10)
    client.kill()
    gw_proc.join(5)
    gw_proc.kill()
    proc.terminate()
    proc.wait(10)
    ctl.stop()
    mbs = total / elapsed / 1e6 if elapsed else 0.0
    return {
        "impl": impl,
        "direction": direction,
        "MB/s": round(mbs, 1),
        "relay_cpu_s": round(cpu, 1),
        "wall_s": round(wall, 1),
        "relay_cpu_s_per_GB": round(cpu / (total / 1e9), 1) if total else 0.0,
        "drops": stats.get("datagrams_dropped", -1),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--impl", default="threads,asyncio")
    p.add_argument("--direction", default="up,down")
    p.add_argument("--asyncio-relay")
    args = p.parse_args()
    if args.asyncio_relay:
        _run_relay_asyncio(args.asyncio_relay)
        return
    print(f"load average before: {os.getloadavg()}")
    for direction in args.direction.split(","):
        for impl in args.impl.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                print(json.dumps(run_one(impl, direction, args.seconds, Path(tmp))), flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
