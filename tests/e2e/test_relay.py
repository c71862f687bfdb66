"""WireGuard over the mTLS relays when UDP is blocked (issue 21's Done-when), on real parts.

The bed (``make_bed(relays=2)``): the real controller listing two real relays
(``python -m controller.relay``) in the gateway namespace, the real helper and client in
the client namespace; ``block_udp`` drops the client's UDP on its link (a hotel network).
Every step is timed and printed; waits are polls with deadlines. The helper runs with the
production timings (``RUSTRONAUT_RELAY_TIMINGS`` = the default "3,15,3"), so the limits
checked are the product's, not a test's shortcut.

1. UDP blocked while connected → on a relay within 10 s, the wiki loads, the snapshot and
   ``rustronaut status`` name the relay and why.
2. Starting with UDP blocked → on a relay within 10 s of the tunnel appearing.
3. UDP allowed again → back on UDP within 30 s; a keep-alive connection to the wiki opened
   over the relay still answers; the gateway sees the client's own address again.
4. The relay in use killed → on the other relay within 10 s, the wiki loads.
5. A device revoked while on a relay (cut off from the controller first, so it cannot
   cooperate) → the relay closes its stream within 2 s of the admin call's return.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controller.demo.bed import CL_VETH, Bed, make_bed, run
from controller.demo.harness import ROOT, Session, session

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns, pytest.mark.timeout(180)]

WIKI = "http://wiki.corp.example/"
#: udp_grace, udp_retry, probe_window: the helper's defaults, said explicitly.
TIMINGS = {"RUSTRONAUT_RELAY_TIMINGS": "3,15,3"}
UDP_REASONS = ("udp_blocked", "udp_silent")


@pytest.fixture
def bed() -> Iterator[Bed]:
    with make_bed(relays=2) as b:
        yield b
        for i in range(1, b.relays + 1):  # shown by pytest when the test failed
            print(f"--- {b.relay_name(i)}'s log (tail):\n{_log_tail(b, i)}")
    assert not [ns for ns in run(["ip", "netns", "list"]).stdout.split() if b.tag in ns]


def _log_tail(bed: Bed, i: int, lines: int = 25) -> str:
    """The end of relay ``i``'s log without its HTTP client's request lines (its polls)."""
    kept = [ln for ln in bed.relay_log(i).splitlines() if not ln.startswith("HTTP Request:")]
    return "\n".join(kept[-lines:])


def _ok(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode == 0 and result.stdout.endswith("200")


async def _wiki_within(s: Session, t0: float, limit: float, what: str) -> float:
    """Seconds from ``t0`` until the wiki loads through the proxy; fails after ``limit``."""
    while True:
        result = await asyncio.to_thread(s.curl, WIKI, timeout=2)
        took = time.monotonic() - t0
        if _ok(result):
            return took
        assert took < limit, f"{what}: the wiki did not load within {limit} s: {result.stderr}"
        await asyncio.sleep(0.2)


def _snap_transport(snap: dict[str, Any]) -> dict[str, Any]:
    """The transport the snapshot's tunnel view shows: kind, relay, state, reason."""
    tunnel = snap.get("tunnel") or {}
    return {
        "kind": tunnel.get("transport"),
        "relay": tunnel.get("relay"),
        "state": tunnel.get("transport_state"),
        "reason": tunnel.get("transport_reason"),
    }


async def _snapshot_shows(
    s: Session, kind: str, within: float, relay: str | None = None
) -> dict[str, Any]:
    """The snapshot's transport once it shows ``kind`` (and ``relay``), polled: the
    engine reads the helper's status on its own schedule."""
    deadline = time.monotonic() + within
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        shown = _snap_transport(await s.status())
        if shown["kind"] == kind and (relay is None or shown["relay"] == relay):
            return shown
        await asyncio.sleep(0.2)
    raise AssertionError(f"the snapshot did not show {kind} {relay or ''} in {within} s: {shown}")


def _index(bed: Bed, name: str | None) -> int:
    for i in range(1, bed.relays + 1):
        if bed.relay_name(i) == name:
            return i
    raise AssertionError(f"transport names relay {name!r}, not one of the bed's")


def _first_seen(predicate: Callable[[], bool], stop: threading.Event) -> list[float]:
    """Poll ``predicate`` on a thread from now on; the list gets the monotonic time it
    first held."""
    seen: list[float] = []

    def poll() -> None:
        while not stop.is_set() and not seen:
            if predicate():
                seen.append(time.monotonic())
            time.sleep(0.05)

    threading.Thread(target=poll, daemon=True).start()
    return seen


async def test_udp_blocked_moves_to_a_relay_and_back_without_breaking_a_connection(
    bed: Bed,
) -> None:
    async with session(bed, helper_env=TIMINGS) as s:
        await s.wait_state("connected", "degraded")
        udp = await s.wait_transport("udp", within=15)
        assert udp.state == "direct", udp
        assert _ok(await asyncio.to_thread(s.curl, WIKI)), "the wiki does not load over UDP"
        await _snapshot_shows(s, "udp", within=10)

        # 1. A hotel network: UDP dropped → a relay within 10 s, the wiki loads.
        blocked = time.monotonic()
        await asyncio.to_thread(bed.block_udp)
        on_relay = await s.wait_transport("relay", within=10)
        took = time.monotonic() - blocked
        print(f"UDP blocked → on {on_relay.relay} in {took:.1f} s ({on_relay.reason})")
        assert on_relay.reason in UDP_REASONS, on_relay
        wiki = await _wiki_within(s, blocked, 10, "UDP blocked")
        print(f"wiki loads {wiki:.1f} s after UDP was blocked")
        assert on_relay.relay is not None
        shown = await _snapshot_shows(s, "relay", within=10, relay=on_relay.relay)
        assert shown["reason"] in UDP_REASONS, shown
        status = await asyncio.to_thread(s.cli, "status")
        assert status.returncode == 0, status.stderr
        assert on_relay.relay in status.stdout, (
            f"`status` does not name the relay:\n{status.stdout}"
        )
        print(f"`rustronaut status` says:\n{status.stdout}")
        assert bed.udp_dropped() > 0, "block_udp dropped nothing: was UDP ever tried?"

        # 3. A keep-alive connection to the wiki over the relay, then UDP allowed again.
        keeper = _KeepAlive(bed, s.proxy_port)
        try:
            first = await asyncio.to_thread(keeper.request)
            assert first == "200", f"first request over the relay failed: {first}"
            allowed = time.monotonic()
            await asyncio.to_thread(bed.allow_udp)
            back = await s.wait_transport("udp", within=30)
            took = time.monotonic() - allowed
            print(f"UDP allowed → back on UDP in {took:.1f} s ({back.reason})")
            assert back.reason in ("udp_back", "udp_ok"), back
            answer = await asyncio.to_thread(keeper.request)
            assert answer == "200", f"the connection opened over the relay broke: {answer}"
            print("the keep-alive connection opened over the relay answered again over UDP")
        finally:
            keeper.close()
        deadline = time.monotonic() + 10
        while not any(e.startswith(f"{CL_VETH}:") for e in bed.gateway_peer_endpoints()):
            assert time.monotonic() < deadline, (
                f"the gateway still sees {bed.gateway_peer_endpoints()}, not {CL_VETH}"
            )
            await asyncio.sleep(0.2)
        print(f"the gateway sees the device at {bed.gateway_peer_endpoints()}")


async def test_starting_with_udp_blocked_connects_through_a_relay(bed: Bed) -> None:
    bed.block_udp()
    stop = threading.Event()
    applied = _first_seen(
        lambda: (
            run(["ip", "link", "show", bed.client_if], ns=bed.client_ns, check=False).returncode
            == 0
        ),
        stop,
    )
    try:
        async with session(bed, helper_env=TIMINGS) as s:
            deadline = time.monotonic() + 60
            while not applied:
                assert time.monotonic() < deadline, "the tunnel never appeared"
                await asyncio.sleep(0.05)
            t0 = applied[0]
            relay = await s.wait_transport("relay", within=max(0.5, t0 + 10 - time.monotonic()))
            took = time.monotonic() - t0
            print(f"tunnel applied → on {relay.relay} in {took:.1f} s ({relay.reason})")
            assert relay.reason in UDP_REASONS, relay
            wiki = await _wiki_within(s, t0, 10, "started with UDP blocked")
            print(f"wiki loads {wiki:.1f} s after the tunnel was applied")
            await s.wait_state("connected", "degraded", within=10)
    finally:
        stop.set()


async def test_a_killed_relay_hands_over_to_the_other(bed: Bed) -> None:
    async with session(bed, helper_env=TIMINGS) as s:
        await s.wait_state("connected", "degraded")
        await s.wait_transport("udp", within=15)
        await asyncio.to_thread(bed.block_udp)
        first = await s.wait_transport("relay", within=10)
        assert _ok(await asyncio.to_thread(s.curl, WIKI)), "the wiki does not load over the relay"
        health = {h.name: h for h in first.relays}
        print(f"on {first.relay}; health: {health}")
        i = _index(bed, first.relay)

        # 4. The relay in use crashes → the other one within 10 s, the wiki loads.
        killed = time.monotonic()
        await asyncio.to_thread(bed.kill_relay, i)
        other = await s.wait_transport("relay", other_than=first.relay, within=10)
        took = time.monotonic() - killed
        print(f"{first.relay} killed → on {other.relay} in {took:.1f} s ({other.reason})")
        wiki = await _wiki_within(s, killed, 10, "relay killed")
        print(f"wiki loads {wiki:.1f} s after {first.relay} was killed")
        assert other.reason == "relay_failed", other
        status = await s.helper_status()
        assert status.transport is not None
        healthy = {h.name: h.healthy for h in status.transport.relays}
        assert healthy.get(first.relay or "") is not True, (
            f"the killed relay still reads healthy: {status.transport.relays}"
        )


async def test_a_revoked_device_loses_its_relay_stream_within_two_seconds(bed: Bed) -> None:
    async with session(bed, helper_env=TIMINGS) as s:
        snap = await s.wait_state("connected", "degraded")
        await s.wait_transport("udp", within=15)
        await asyncio.to_thread(bed.block_udp)
        on = await s.wait_transport("relay", within=10)
        assert _ok(await asyncio.to_thread(s.curl, WIKI)), "the wiki does not load over the relay"
        i = _index(bed, on.relay)
        streams = [c for c in bed.relay_connections(i) if c.startswith(f"{CL_VETH}:")]
        assert streams, f"no connection from the client at {on.relay}: {bed.relay_connections(i)}"

        # 5. The client cannot hear of it (cut from the controller): the relay must act.
        s.cut_controller()
        await s.admin("POST", f"/v1/admin/devices/{snap['device_id']}/revoke")
        revoked = time.monotonic()
        while set(streams) & set(bed.relay_connections(i)):
            assert time.monotonic() - revoked < 2, (
                f"{on.relay} still carries the revoked device's stream(s) "
                f"{set(streams) & set(bed.relay_connections(i))} after 2 s; its log:\n"
                f"{_log_tail(bed, i)}"
            )
            await asyncio.sleep(0.02)
        took = time.monotonic() - revoked
        print(f"device revoked → {on.relay} closed its stream(s) in {took * 1000:.0f} ms")
        print(f"{on.relay}'s log after the revocation:\n{_log_tail(bed, i)}")
        # A fresh stream is refused too: nothing carries the device for a while after.
        await asyncio.sleep(3)
        transport = await s.transport()
        print(f"transport 3 s after the revocation: {transport}")
        assert transport is None or transport.state != "relay" or transport.relay != on.relay, (
            f"the revoked device is on {on.relay} again: {transport}"
        )


#: A keep-alive HTTP client in the client namespace, through the proxy's SOCKS5 (the proxy
#: resolves the name): one request per line on stdin, the status (or the error) printed.
_KEEPER = r"""
import socket, struct, sys
port, host = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
def exact(n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError("closed")
        out += chunk
    return out
s.sendall(b"\x05\x01\x00"); assert exact(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x03" + bytes([len(host)]) + host.encode() + struct.pack("!H", 80))
head = exact(4); assert head[1] == 0, head
exact(4 + 2 if head[3] == 1 else 16 + 2 if head[3] == 4 else exact(1)[0] + 2)
f = s.makefile("rb")
for _ in sys.stdin:
    try:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        status = f.readline().split()
        length = 0
        while (line := f.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        f.read(length)
        print(status[1].decode() if len(status) > 1 else f"no answer {status}", flush=True)
    except Exception as exc:
        print(f"error {type(exc).__name__}: {exc}", flush=True)
"""


class _KeepAlive:
    """One TCP connection to the wiki, kept open across requests (see ``_KEEPER``)."""

    def __init__(self, bed: Bed, proxy_port: int) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", bed.client_ns, sys.executable, "-I", "-c", _KEEPER,
             str(proxy_port), "wiki.corp.example"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip

    def request(self) -> str:
        """Send one request on the connection; its status code, or what went wrong."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        if self.proc.poll() is not None:
            return f"the client exited with {self.proc.returncode}"
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip() or f"no answer ({self.proc.poll()})"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
