"""The rogue-LAN bed's own instruments, without a client (root): the leak tests are only as
good as their counters, so each counter is shown counting a real leak here, and the
rogue resolver, the rogue route, the company DNS server and the gateway silencer are
shown doing what the e2e tests rely on. Cleanup leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from controller.demo.bed import (
    DNS_ADDR,
    RESOURCES,
    ROGUE_HOST,
    ROGUE_HOST6,
    Bed,
    make_bed,
    run,
)

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns, pytest.mark.timeout(120)]

WIKI_IP = RESOURCES["wiki.corp.example"][0]
PAYROLL_IP = RESOURCES["payroll.corp.example"][0]
LOOKUP = (
    "import socket,sys;print(' '.join(sorted({a[4][0] for a in "
    "socket.getaddrinfo(sys.argv[1],80,type=socket.SOCK_STREAM)})))"
)


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    with make_bed(rogue_lan=True) as b:
        yield b
    assert not [ns for ns in run(["ip", "netns", "list"]).stdout.split() if b.tag in ns]
    assert not list(b.workdir.parent.glob(f"rte-bed-{b.tag}-*"))


def _curl(bed: Bed, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(["curl", "-sS", "--max-time", "3", *extra, url], ns=bed.client_ns, check=False)


def _resolve(bed: Bed, name: str) -> str:
    return run(["/usr/bin/python3", "-I", "-c", LOOKUP, name], ns=bed.client_ns).stdout.strip()


def test_resource_counters_count_each_resource_by_address(bed: Bed) -> None:
    # No tunnel here: reach the server namespace straight from the gateway namespace.
    wiki, payroll = bed.resource_packets("wiki"), bed.resource_packets("payroll.corp.example")
    out = run(["curl", "-sS", "--max-time", "3", f"http://{PAYROLL_IP}/"], ns=bed.gateway_ns)
    assert "payroll.corp.example" in out.stdout
    assert bed.resource_packets(PAYROLL_IP) > payroll
    assert bed.resource_packets("wiki") == wiki
    with pytest.raises(KeyError):
        bed.resource_packets("nosuch")


def test_company_dns_answers_the_zone_only(bed: Bed) -> None:
    code = (
        "import dns.resolver,sys;r=dns.resolver.Resolver(configure=False);"
        "r.nameservers=[sys.argv[1]];print(r.resolve(sys.argv[2],'A')[0].address)"
    )
    out = run([sys.executable, "-c", code, DNS_ADDR, "payroll.corp.example"], ns=bed.server_ns)
    assert out.stdout.strip() == PAYROLL_IP
    bad = run([sys.executable, "-c", code, DNS_ADDR, "example.org"], ns=bed.server_ns, check=False)
    assert bad.returncode != 0  # refused outside corp.example


def test_rogue_counters_see_a_resolver_and_a_route_leak(bed: Bed) -> None:
    assert _resolve(bed, "wiki.corp.example") == WIKI_IP  # the bed's hosts file
    leak, queries = bed.rogue_packets(), bed.rogue_dns_queries()
    bed.point_resolver_at_rogue()
    try:
        assert _resolve(bed, "wiki.corp.example") == f"{ROGUE_HOST} {ROGUE_HOST6}"
        assert bed.rogue_dns_queries() > queries
        assert bed.rogue_packets() == leak  # queries are counted apart
        got = _curl(bed, "http://wiki.corp.example/", "-6")
        assert "rogue" in got.stdout  # over the LAN's IPv6
        assert bed.rogue_packets() > leak
        leak = bed.rogue_packets()
        # With no tunnel, the LAN's default route already takes a resource address...
        assert "rogue" in _curl(bed, f"http://{WIKI_IP}/").stdout
        assert bed.rogue_packets() > leak
        # ...and a rogue route is installed as asked, more specific than a /28.
        bed.rogue_route("10.243.0.8/29")
        route = run(["ip", "route", "get", WIKI_IP], ns=bed.client_ns).stdout
        assert f"via {ROGUE_HOST} dev {bed.rogue_if}" in route
    finally:
        hosts = "127.0.0.1 localhost\n::1 localhost\n" + "".join(
            f"{a} {n}\n" for n, (a, _) in RESOURCES.items()
        )
        (bed.netns_etc / "hosts").write_text(hosts)


def test_a_silenced_gateway_drops_wireguard_only(bed: Bed) -> None:
    bed.silence_gateway()
    rules = run(["nft", "list", "table", "inet", "rtsilence"], ns=bed.gateway_ns).stdout
    assert "udp dport 51820 drop" in rules
    assert "udp sport 51820 drop" in rules
    bed.silence_gateway(on=False)
    gone = run(["nft", "list", "table", "inet", "rtsilence"], ns=bed.gateway_ns, check=False)
    assert gone.returncode != 0


def test_a_bed_without_the_rogue_lan_says_so() -> None:
    with make_bed() as plain:
        with pytest.raises(RuntimeError, match="rogue_lan=True"):
            plain.rogue_packets()
        assert run(["ip", "netns", "list"]).stdout.count(plain.rogue_ns) == 0
