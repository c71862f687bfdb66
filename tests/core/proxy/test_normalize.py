"""Destination normalisation: one destination, one spelling."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.proxy.errors import DestinationError
from core.proxy.normalize import is_ip, normalize_host, normalize_port

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("DB.Corp.", "db.corp"),
        (b"db.corp", "db.corp"),
        ("git.corp.example", "git.corp.example"),
        ("_ldap._tcp.corp", "_ldap._tcp.corp"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.0.0.1.", "10.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("[::ffff:a00:1]", "10.0.0.1"),
        ("[::1]", "::1"),
        ("FD00:0:0::1", "fd00::1"),
    ],
)
def test_canonical_forms(raw: str | bytes, canonical: str) -> None:
    assert normalize_host(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "",
        ".",
        "a..b",
        "db.corp..",
        "-a.corp",
        "a-.corp",
        "a b",
        "a\tb",
        "db.corp%00",
        "user@db.corp",
        "db.corp/x",
        "1.2.x.4",
        "corp.1",
        "256.0.0.1",
        "1.2.3.4.5",
        "0x1ffffffff",
        "089.0.0.1",
        "fe80::1%eth0",
        "[::1",
        "::g",
        "x" * 64 + ".corp",
        "a." * 130,
        b"\xff\xfe",
        "xn--zz.corp",
        "\uff12",  # full-width 2: UTS 46 maps it to "2"
        "10.0.0.\u0661",
    ],
)
def test_rejected(raw: str | bytes) -> None:
    with pytest.raises(DestinationError):
        normalize_host(raw)


@pytest.mark.parametrize(("raw", "port"), [(1, 1), ("443", 443), (65535, 65535)])
def test_ports(raw: int | str, port: int) -> None:
    assert normalize_port(raw) == port


@pytest.mark.parametrize("raw", [0, 65536, -1, "", "80a", "٣", "123456"])
def test_bad_ports(raw: int | str) -> None:
    with pytest.raises(DestinationError):
        normalize_port(raw)


def test_is_ip() -> None:
    assert is_ip("10.0.0.1")
    assert is_ip("::1")
    assert not is_ip("db.corp")


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_fuzz_only_destination_errors_and_idempotent(raw: str | bytes) -> None:
    try:
        out = normalize_host(raw)
    except DestinationError:
        return
    assert normalize_host(out) == out
    assert out == out.lower()
    assert out.isascii()
    assert not out.endswith(".")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_fuzz_every_ipv4_spelling_agrees(value: int) -> None:
    dotted = ".".join(str((value >> s) & 255) for s in (24, 16, 8, 0))
    for spelling in (str(value), hex(value), dotted, f"::ffff:{dotted}"):
        assert normalize_host(spelling) == dotted
