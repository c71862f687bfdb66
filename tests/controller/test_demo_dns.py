"""The bed's DNS server (controller.demo.dns): a real child process, and its answers."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.rcode
import pytest

from controller.demo.dns import Zone, main, parse_record, start
from tests.fakes.cli import ROOT

pytestmark = pytest.mark.integration

RECORDS = (
    "wiki.corp.example=10.243.0.10",
    "wiki.corp.example=fd00:243::10",
    "db.corp.example=10.243.0.11",
)


@dataclass
class Child:
    proc: asyncio.subprocess.Process
    host: str
    port: int


async def _spawn(*args: str) -> Child:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller.demo.dns", *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
    assert line.startswith("listening on "), line
    host, _, port = line.split()[-1].rpartition(":")
    return Child(proc, host, int(port))


async def _stop(child: Child) -> tuple[int, str]:
    if child.proc.returncode is None:
        child.proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(child.proc.communicate(), 10)
    assert child.proc.returncode is not None
    return child.proc.returncode, err.decode()


@pytest.fixture
async def child() -> AsyncIterator[Child]:
    args = ["--listen", "127.0.0.1:0", "--verbose"]
    for record in RECORDS:
        args += ["--record", record]
    running = await _spawn(*args)
    yield running
    await _stop(running)


async def _udp(child: Child, name: str, rdtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return await dns.asyncquery.udp(query, child.host, port=child.port, timeout=3)


async def test_child_answers_its_zone_over_udp_and_tcp(child: Child) -> None:
    a = await _udp(child, "wiki.corp.example", "A")
    assert a.flags & dns.flags.AA
    assert [r.address for r in a.answer[0]] == ["10.243.0.10"]
    aaaa = await _udp(child, "WIKI.Corp.Example", "AAAA")
    assert [r.address for r in aaaa.answer[0]] == ["fd00:243::10"]
    tcp = await dns.asyncquery.tcp(
        dns.message.make_query("db.corp.example", "A"), child.host, port=child.port, timeout=3
    )
    assert [r.address for r in tcp.answer[0]] == ["10.243.0.11"]

    nx = await _udp(child, "nope.corp.example", "A")
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert nx.authority[0].rdtype == dns.rdatatype.SOA  # negative caching has a TTL
    nodata = await _udp(child, "db.corp.example", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR
    assert nodata.answer == []
    other = await _udp(child, "example.com", "A")
    assert other.rcode() == dns.rcode.REFUSED
    assert other.answer == []


async def test_child_logs_one_line_per_query_and_stops_on_sigterm() -> None:
    running = await _spawn("--listen", "127.0.0.1:0", "--record", RECORDS[0], "--verbose")
    await _udp(running, "wiki.corp.example", "A")
    await _udp(running, "evil.example", "A")
    code, err = await _stop(running)
    assert code == 0
    assert err.splitlines() == [
        "udp 127.0.0.1 wiki.corp.example. A -> NOERROR",
        "udp 127.0.0.1 evil.example. A -> REFUSED",
    ]


async def test_child_is_quiet_without_verbose() -> None:
    running = await _spawn("--listen", "127.0.0.1:0", "--record", RECORDS[0])
    await _udp(running, "wiki.corp.example", "A")
    code, err = await _stop(running)
    assert (code, err) == (0, "")


async def test_rogue_resolver_answers_every_name() -> None:
    running = await _spawn(
        "--listen", "127.0.0.1:0", "--zone", ".",
        "--record", "wiki.corp.example=192.168.77.7", "--record", "wiki.corp.example=fd77::7",
    )  # fmt: skip
    try:
        rogue = await _udp(running, "wiki.corp.example", "AAAA")
        assert [r.address for r in rogue.answer[0]] == ["fd77::7"]
        assert (await _udp(running, "anything.test", "A")).rcode() == dns.rcode.NXDOMAIN
    finally:
        await _stop(running)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "127.0.0.1:0", "--record", "wiki"], "expected NAME=ADDRESS"),
        (["--listen", "127.0.0.1:0", "--record", "wiki=not-an-ip"], "does not appear"),
        (["--listen", "localhost:53"], "HOST must be an IP address"),
        (["--listen", "127.0.0.1"], "expected HOST:PORT"),
        (["--listen", "127.0.0.1:0", "--ttl", "-1"], "0..86400"),
        ([], "--listen"),
    ],
)
def test_bad_arguments_are_clear_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert message in err
    assert "Traceback" not in err
    assert out == ""


# --- the answers, in process -----------------------------------------------------------


def _zone(*records: str, zones: list[str] | None = None) -> Zone:
    parsed: dict[dns.name.Name, list[str]] = {}
    for text in records:
        name, address = parse_record(text)
        parsed.setdefault(name, []).append(address)
    return Zone(parsed, None if zones is None else [dns.name.from_text(z) for z in zones])


def _ask(
    zone: Zone, query: dns.message.Message, max_size: int | None = 4096
) -> dns.message.Message:
    result = zone.answer(query.to_wire(), max_size=max_size)
    assert result is not None
    return dns.message.from_wire(result[0])


def test_large_answers_truncated_on_udp_whole_on_tcp() -> None:
    many = [f"big.corp.example=10.243.1.{i}" for i in range(1, 101)]
    zone = _zone(*many)
    plain = dns.message.make_query("big.corp.example", "A")  # no EDNS: 512 bytes
    udp = _ask(zone, plain)
    assert udp.flags & dns.flags.TC
    assert udp.answer == []
    tcp = _ask(zone, plain, max_size=None)
    assert not tcp.flags & dns.flags.TC
    assert len(tcp.answer[0]) == 100
    edns = _ask(zone, dns.message.make_query("big.corp.example", "A", use_edns=0, payload=4096))
    assert not edns.flags & dns.flags.TC


def test_garbage_and_responses_are_dropped() -> None:
    zone = _zone(RECORDS[0])
    assert zone.answer(b"") is None
    assert zone.answer(b"\x12\x34" + b"\xff" * 30) is None
    response = dns.message.make_response(dns.message.make_query("wiki.corp.example", "A"))
    assert zone.answer(response.to_wire()) is None  # never answer an answer


def test_other_opcodes_not_implemented() -> None:
    zone = _zone(RECORDS[0])
    notify = dns.message.make_query("corp.example", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    assert _ask(zone, notify).rcode() == dns.rcode.NOTIMP


def test_explicit_zones_and_empty_non_terminals() -> None:
    zone = _zone("wiki.eu.corp.example=10.243.0.30", zones=["corp.example"])
    assert _ask(zone, dns.message.make_query("eu.corp.example", "A")).rcode() == dns.rcode.NOERROR
    nx = _ask(zone, dns.message.make_query("us.corp.example", "A"))
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert _ask(zone, dns.message.make_query("corp.example.net", "A")).rcode() == dns.rcode.REFUSED


async def test_in_process_server_on_ipv6_loopback() -> None:
    server = await start(_zone("wiki.corp.example=fd00:243::10"), "::1", 0)
    try:
        query = dns.message.make_query("wiki.corp.example", "AAAA")
        got = await dns.asyncquery.udp(query, "::1", port=server.address[1], timeout=3)
        assert [r.address for r in got.answer[0]] == ["fd00:243::10"]
    finally:
        await server.close()
        await server.close()  # idempotent
