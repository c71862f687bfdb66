"""Names, suffixes, servers, refusals and the TTL cache: pure tables."""

from __future__ import annotations

import pytest

from core.dns import TunnelResolver, normalize_name, normalize_suffixes, refusal, under_suffix
from core.dns.cache import AnswerCache
from core.dns.names import parse_server

pytestmark = pytest.mark.unit

SUFFIXES = ("corp.example", "xn--bcher-kva.example")


@pytest.mark.parametrize(
    ("host", "suffix"),
    [
        ("wiki.corp.example", "corp.example"),
        ("corp.example", "corp.example"),
        ("WIKI.Corp.EXAMPLE.", "corp.example"),
        ("a.b.c.corp.example", "corp.example"),
        ("notcorp.example", None),
        ("corp.example.evil", None),
        ("corp-example", None),
        ("example", None),
        ("wiki.bücher.example", "xn--bcher-kva.example"),
        ("wiki.BÜCHER.example", "xn--bcher-kva.example"),
        ("wiki.xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("bücher.example.com", None),
    ],
)
def test_suffix_matching_is_by_labels_case_insensitive_and_idna(
    host: str, suffix: str | None
) -> None:
    assert under_suffix(normalize_name(host), SUFFIXES) == suffix


@pytest.mark.parametrize(
    "host",
    [
        "",
        ".",
        "a..corp.example",
        "wiki\\.corp.example",  # dnspython would read one label "wiki.corp"
        "wiki corp.example",
        "wiki\x00.corp.example",
        "wiki\n.corp.example",
        "-wiki.corp.example",
        "*.corp.example",
        "a" * 64 + ".corp.example",
        ("a" * 60 + ".") * 5 + "corp.example",
    ],
)
def test_invalid_names_are_refused(host: str) -> None:
    with pytest.raises(ValueError):
        normalize_name(host)


def test_suffixes_normalised_and_root_refused() -> None:
    assert normalize_suffixes([".Corp.Example.", "corp.example", "Bücher.example"]) == (
        "corp.example",
        "xn--bcher-kva.example",
    )
    for bad in (["."], [""], ["corp..example"], ["example"], ["com."], "corp.example", [None]):
        with pytest.raises(ValueError):
            normalize_suffixes(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "server"),
    [
        ("10.0.0.53", ("10.0.0.53", 53)),
        ("10.0.0.53:5353", ("10.0.0.53", 5353)),
        ("fd00::53", ("fd00::53", 53)),
        ("[fd00::53]:5353", ("fd00::53", 5353)),
        ("[fd00::53]", ("fd00::53", 53)),
    ],
)
def test_server_addresses(text: str, server: tuple[str, int]) -> None:
    assert parse_server(text) == server


@pytest.mark.parametrize(
    "text",
    ["dns.corp.example", "10.0.0.53:0", "10.0.0.53:70000", "0.0.0.0", "224.0.0.251", "[::1", ""],
)
def test_bad_servers_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_server(text)


def test_resolver_configuration_checked() -> None:
    with pytest.raises(ValueError, match="not one string"):
        TunnelResolver("10.0.0.53", ["corp.example"])
    with pytest.raises(ValueError, match="at least one DNS server"):
        TunnelResolver([], ["corp.example"])
    with pytest.raises(ValueError, match="capture every name"):
        TunnelResolver(["10.0.0.53"], ["."])
    with pytest.raises(ValueError, match="at most"):
        TunnelResolver([f"10.0.0.{i}" for i in range(9)], ["corp.example"])
    with pytest.raises(ValueError, match="timeout"):
        TunnelResolver(["10.0.0.53"], ["corp.example"], timeout=0)


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("10.243.0.10", None),
        ("fd00::10", None),
        ("2001:db8::1", None),
        ("::ffff:10.243.0.10", None),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::fb", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("255.255.255.255", "broadcast"),
        ("::ffff:127.0.0.1", "IPv4-mapped IPv6: 127.0.0.1 is a loopback"),
        ("::ffff:169.254.1.1", "IPv4-mapped IPv6: 169.254.1.1 is a link-local"),
        ("::ffff:0.0.0.0", "IPv4-mapped"),
        ("::127.0.0.1", "IPv4-compatible"),
        ("wiki.corp.example", "not an IP address"),
        ("", "not an IP address"),
    ],
)
def test_refusal_reasons(ip: str, reason: str | None) -> None:
    got = refusal(ip)
    if reason is None:
        assert got is None
    else:
        assert got is not None
        assert reason in got
    assert TunnelResolver.refusal(ip) == got


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_clamps_ttl_and_expires() -> None:
    clock = Clock()
    cache = AnswerCache(clock, min_ttl=5, max_ttl=300, negative_ttl=10)
    cache.put(("zero", 1), ("10.0.0.1",), 0, nxdomain=False)
    cache.put(("week", 1), ("10.0.0.2",), 7 * 86400, nxdomain=False)
    cache.put(("nx", 1), (), 3600, nxdomain=True)
    cache.put(("nx-no-soa", 1), (), 0, nxdomain=True)
    clock.now += 4.9
    assert cache.get(("zero", 1)) is not None
    clock.now += 0.2
    assert cache.get(("zero", 1)) is None  # TTL 0 lived min_ttl
    assert cache.get(("nx", 1)) is not None
    clock.now += 5
    assert cache.get(("nx", 1)) is None  # a long negative TTL is cut to negative_ttl
    assert cache.get(("nx-no-soa", 1)) is None
    clock.now += 289
    assert cache.get(("week", 1)) is not None
    clock.now += 1
    assert cache.get(("week", 1)) is None  # clamped to max_ttl


def test_cache_is_bounded_lru() -> None:
    cache = AnswerCache(Clock(), max_entries=3)
    for i in range(3):
        cache.put((f"n{i}", 1), (), 60, nxdomain=False)
    assert cache.get(("n0", 1)) is not None  # n0 is now the most recent
    cache.put(("n3", 1), (), 60, nxdomain=False)
    assert len(cache) == 3
    assert cache.get(("n1", 1)) is None
    assert cache.get(("n0", 1)) is not None
