"""Transparent mode on real parts (issue 15, "Done when"): apps with no proxy settings are
caught and decided, withdrawals stop every path at the resource, policy changes keep the
handshake, a silent gateway is noticed, and another local account gets nothing (root).

Every check is read where it cannot lie: the resource's own packet counters in the server
namespace (``Bed.resource_packets``), the tunnel's ``wg show latest-handshakes``, the
engine's snapshot and its Activity events.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from controller.demo.bed import RESOURCES, Bed, make_bed, run
from controller.demo.harness import Session, company_policy, session
from core.wire.policy import Rule
from tests.bench.bench_transparent import _SERVERS as GREETERS
from tests.wg_backends.accounts import second_account

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns, pytest.mark.timeout(240)]

WIKI = "http://wiki.corp.example/"
PAYROLL = "http://payroll.corp.example/"
WIKI_IP = RESOURCES["wiki.corp.example"][0]
PAYROLL_IP = RESOURCES["payroll.corp.example"][0]
WIKI_BODY = "through the Rustronaut tunnel"
#: curl's real path, as the engine sees it in /proc/<pid>/exe.
REAL_CURL = os.path.realpath(shutil.which("curl") or "/usr/bin/curl")
#: Engineers get payroll too while this rule exists (withdrawn and granted by the tests).
ENG_PAYROLL = Rule(
    id="engineering-payroll",
    effect="allow",
    resources=("payroll",),
    priority=10,
    description="Engineers may open payroll (for the withdrawal test).",
)


@pytest.fixture
def bed() -> Iterator[Bed]:
    with make_bed() as b:
        yield b
    assert not [ns for ns in run(["ip", "netns", "list"]).stdout.split() if b.tag in ns]


def _ok(result: object) -> bool:
    return getattr(result, "returncode", 1) == 0 and getattr(result, "stdout", "").endswith("200")


def _is_decision_for(e: dict[str, Any], *targets: str) -> bool:
    dest = str(e.get("destination") or "")
    return e.get("kind") == "decision" and any(dest.startswith(t) for t in targets)


async def _policy_after(s: Session, version: int | None, within: float = 10) -> dict[str, Any]:
    """The snapshot once the client holds a policy newer than ``version``."""
    deadline = time.monotonic() + within
    while True:
        snap = await s.status()
        if snap["policy_version"] is not None and snap["policy_version"] != version:
            return snap
        if time.monotonic() > deadline:
            raise TimeoutError(f"policy stayed at version {version}")
        await asyncio.sleep(0.05)


async def _first_ok(probe: Any, within: float) -> float:
    """Seconds until ``probe()`` (a blocking curl) answers 200; TimeoutError after
    ``within`` s (the probes themselves are bounded by their own --max-time)."""
    start = time.monotonic()
    while not _ok(await asyncio.to_thread(probe)):
        if time.monotonic() - start > within:
            raise TimeoutError(f"no 200 within {within} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_plain_curl_is_caught_decided_and_named_and_a_copy_is_denied(bed: Bed) -> None:
    async with session(bed, split_dns=True) as s:
        snap = await s.wait_state("connected", "degraded")
        # The main window says which way applies (waits for the lead's engine wiring).
        assert snap.get("access", {}).get("mode") == "transparent", snap.get("access")

        # No proxy settings at all: the connection is redirected to the decider.
        plain = await asyncio.to_thread(s.curl, WIKI, direct=True)
        assert _ok(plain), plain
        assert WIKI_BODY in plain.stdout
        allowed = await s.wait_event(
            lambda e: _is_decision_for(e, WIKI_IP, "wiki.corp.example") and e["effect"] == "allow",
            within=5,
        )
        assert str(allowed["app"]).endswith("curl"), allowed
        assert allowed["rule"] == "engineering-wiki"

        # The rule names the app by path: a copy of curl elsewhere is denied, the real
        # one still allowed.
        real = REAL_CURL
        copy = bed.workdir / "bin" / "curl"
        copy.parent.mkdir()
        shutil.copy2(real, copy)
        wiki_rule = next(r for r in company_policy()[1] if r.id == "engineering-wiki")
        version = snap["policy_version"]
        pinned = {**_rule_json(wiki_rule), "apps": [{"exe": real}]}
        await s.admin("PUT", "/v1/admin/rules/engineering-wiki", pinned)
        await _policy_after(s, version)
        await _first_ok(lambda: s.curl(WIKI, direct=True, timeout=2), within=5)
        copied = await asyncio.to_thread(s.curl, WIKI, direct=True, exe=str(copy), timeout=3)
        assert not _ok(copied), copied
        assert WIKI_BODY not in copied.stdout
        denied = await s.wait_event(
            lambda e: _is_decision_for(e, WIKI_IP, "wiki.corp.example") and e["app"] == str(copy),
            within=5,
        )
        assert denied["effect"] == "deny", denied


async def test_withdrawal_stops_every_path_within_2s_and_a_grant_works_within_1s(
    bed: Bed,
) -> None:
    async with session(bed, split_dns=True, extra_rules=[ENG_PAYROLL]) as s:
        await s.wait_state("connected", "degraded")
        before = bed.resource_packets("payroll")
        assert _ok(await asyncio.to_thread(s.curl, PAYROLL, direct=True)), "payroll granted"
        assert bed.resource_packets("payroll") > before  # the counters see the real path

        withdrawn = time.monotonic()
        await s.admin("DELETE", f"/v1/admin/rules/{ENG_PAYROLL.id}")
        # "within 2 s" is the requirement itself: from then on nothing may arrive.
        await asyncio.sleep(max(0.0, withdrawn + 2 - time.monotonic()))
        frozen = bed.resource_packets("payroll")
        attempts = await asyncio.to_thread(_every_path, s, PAYROLL_IP, PAYROLL, None)
        for name in ("plain", "plain-ip", "bound", "socks", "http-proxy"):
            assert not _ok(attempts[name]), (name, attempts[name])
        arrived = bed.resource_packets("payroll") - frozen
        assert arrived == 0, f"{arrived} packets reached payroll 2 s after the withdrawal"

        granted = time.monotonic()
        await s.admin("PUT", f"/v1/admin/rules/{ENG_PAYROLL.id}", _rule_json(ENG_PAYROLL))
        await _first_ok(lambda: s.curl(PAYROLL, direct=True, timeout=1), within=10)
        took = time.monotonic() - granted
        print(f"grant usable {took:.2f} s after the admin call")
        assert took <= 1.0, f"the grant took {took:.2f} s"


async def test_a_policy_change_keeps_the_handshake(bed: Bed) -> None:
    async with session(bed, split_dns=True) as s:
        snap = await s.wait_state("connected", "degraded")
        # SOCKS5, not plain: this test is about the handshake, not the redirect.
        wiki = await asyncio.to_thread(s.curl, WIKI)
        assert _ok(wiki), wiki
        first = await asyncio.to_thread(s.latest_handshake)
        assert first > 0
        seen = len(s.events)
        # A grant changes the tunnel's allowed IPs: it must be applied in place.
        await s.admin("PUT", f"/v1/admin/rules/{ENG_PAYROLL.id}", _rule_json(ENG_PAYROLL))
        await _policy_after(s, snap["policy_version"])
        await _first_ok(lambda: s.curl(PAYROLL, timeout=2), within=10)
        assert await asyncio.to_thread(s.latest_handshake) == first
        states = [e["state"] for e in s.events[seen:] if e.get("kind") == "state"]
        assert not {"connecting", "reconnecting", "disconnected"} & set(states), states
        assert (await s.status())["state"] in ("connected", "degraded")


async def test_a_silent_gateway_shows_reconnecting_within_15s(bed: Bed) -> None:
    async with session(bed, split_dns=True) as s:
        await s.wait_state("connected", "degraded")
        assert _ok(await asyncio.to_thread(s.curl, WIKI, direct=True))
        silenced = time.monotonic()
        await asyncio.to_thread(bed.silence_gateway)  # not wg-quick down: it just goes quiet
        snap = await s.wait_state("reconnecting", "connecting", "offline", "error", within=15)
        print(f"{snap['state']} {time.monotonic() - silenced:.1f} s after the gateway went silent")
        assert not _ok(await asyncio.to_thread(s.curl, WIKI, direct=True, timeout=2))


async def test_another_local_account_gets_nothing_through_the_tunnel(bed: Bed) -> None:
    async with session(bed, split_dns=True) as s:
        await s.wait_state("connected", "degraded")
        assert _ok(await asyncio.to_thread(s.curl, WIKI, direct=True))
        with second_account() as other:
            before = bed.resource_packets("wiki")
            tries = await asyncio.to_thread(_every_path, s, WIKI_IP, WIKI, (other.uid, other.gid))
            for name in ("plain", "plain-ip", "bound", "socks", "http-proxy"):
                assert not _ok(tries[name]), (name, tries[name])
            arrived = bed.resource_packets("wiki") - before
            assert arrived == 0, f"{arrived} packets from another account reached the wiki"


def _every_path(
    s: Session, ip: str, url: str, account: tuple[int, int] | None
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every way an app on the client could try ``url``: a raw UDP send, plain curl by
    name and by address, curl bound to the tunnel interface, SOCKS5 and HTTP proxying;
    as root or as ``account`` (uid, gid)."""
    uid, gid = account if account is not None else (None, None)
    bound = ("--interface", s.bed.client_if)
    return {
        "udp": s.udp_send(ip, 80, uid=uid, gid=gid),
        "udp-dns": s.udp_send(ip, 53, uid=uid, gid=gid),
        "plain": s.curl(url, direct=True, timeout=2, uid=uid, gid=gid),
        "plain-ip": s.curl(f"http://{ip}/", direct=True, timeout=2, uid=uid, gid=gid),
        "bound": s.curl(f"http://{ip}/", direct=True, timeout=2, extra=bound, uid=uid, gid=gid),
        "socks": s.curl(url, timeout=2, uid=uid, gid=gid),
        "http-proxy": s.curl(url, socks=False, timeout=2, uid=uid, gid=gid),
    }


def _rule_json(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(rule)
    return out


#: Connects to ``addr:port`` ``n`` times from each of ``threads`` threads of one process
#: (plain sockets, so redirected), reads the server's one-byte greeting and closes first;
#: prints the failures by kind. Six at a time is what a browser opens to one host.
_MANY = r"""
import collections, json, socket, sys, threading
addr, port, n, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
why = collections.Counter()
lock = threading.Lock()
def worker():
    for _ in range(n):
        try:
            with socket.create_connection((addr, port), timeout=5) as s:
                if s.recv(1) != b"!":
                    raise ConnectionError("no greeting")
        except OSError as exc:
            with lock:
                why[str(exc) if isinstance(exc, ConnectionError) else type(exc).__name__] += 1
ts = [threading.Thread(target=worker) for _ in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps(why))
"""


async def test_a_burst_of_redirected_connections_is_served_in_full(bed: Bed) -> None:
    # Found by the transparent benchmark and this test: about 1 redirected connection in
    # 1,000-2,000 was refused with "the connecting process could not be identified", and in
    # a burst of 3,000 (about 300/s) a quarter were denied with "the tunnel is down: not
    # sent over the local network" while the tunnel was up: the helper's per-uid budget of
    # marked sockets (1,024, then 256/s) refused the decider's refills ("over budget").
    threads, each = 6, 500
    server = bed.spawn(
        [sys.executable, "-I", "-c", GREETERS, WIKI_IP, "8001", "8002", "1"],
        ns=bed.server_ns, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert server.stdout is not None
    await asyncio.to_thread(server.stdout.readline)  # "ready"
    async with session(bed) as s:
        await s.wait_state("connected", "degraded")
        seen = len(s.events)
        out = await asyncio.to_thread(
            run,
            [sys.executable, "-I", "-c", _MANY, WIKI_IP, "8001", str(each), str(threads)],
            ns=bed.client_ns,
            timeout=300,
        )
        failed = json.loads(out.stdout)
        await asyncio.sleep(0.5)  # decisions leave the decider's thread in batches
        refused = collections.Counter(
            str(e.get("message"))
            for e in s.events[seen:]
            if e.get("kind") in ("decision", "refused") and e.get("effect") != "allow"
        )
        # Not one refused by the decider (the budget bug denied a quarter as "tunnel
        # down"). Open finding: about 1 connection in 1,000-3,000 of such a burst times
        # out or is refused by the kernel somewhere between the redirect and the tunnel;
        # it is bounded here so that a regression shows, and named in the closing note.
        assert dict(refused) == {}, refused.most_common(3)
        assert sum(failed.values()) <= threads * each // 200, failed
