"""The fast paths of bundle loading agree with the plain per-item checks they stand for.

Decoding checks every host, CIDR and id of a bundle in bulk (byte scans over all of them
joined), compiling builds the destination index with comprehensions, and ``verify``
checks the Ed25519 signature with ``cryptography`` instead of joserfc. Each fast path
must accept nothing its per-item reference refuses, and build the same result.
"""

from __future__ import annotations

import base64
import ipaddress

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.policy.compiled import _host_index, _net_index, ip_key
from core.wire import policy as wire
from core.wire import signing
from core.wire.policy import BundleFormatError, Resource, decode_bundle, encode_bundle

pytestmark = pytest.mark.unit

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Host-like text: mostly the host alphabet, plus the characters that make names invalid.
HOSTY = st.text(alphabet="abz09_-.*\nA :é", min_size=0, max_size=80)
NETTY = st.one_of(
    st.builds(
        lambda a, b, c, d, n: f"{a}.{b}.{c}.{d}/{n}",
        *[st.sampled_from(["0", "1", "10", "255", "256", "010", "99"])] * 4,
        st.sampled_from(["0", "8", "16", "24", "32", "33", "20", "024", ""]),
    ),
    st.text(alphabet="0123456789./:af\n", max_size=30),
)


def _reference_host(host: str) -> bool:
    return wire._is_host_pattern(host)


def _reference_net(cidr: str) -> bool:
    try:
        ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        return False
    return "/" in cidr


@SETTINGS
@given(st.lists(HOSTY, max_size=6))
def test_bulk_host_check_accepts_only_what_each_check_accepts(hosts: list[str]) -> None:
    if wire._bulk_hosts_ok(hosts):
        assert all(_reference_host(h) for h in hosts), hosts


@SETTINGS
@given(st.lists(NETTY, max_size=6))
def test_bulk_network_check_accepts_only_strict_networks(cidrs: list[str]) -> None:
    if wire._bulk_nets_ok(cidrs):
        assert all(_reference_net(c) for c in cidrs), cidrs


@pytest.mark.parametrize(
    "hosts",
    [
        ["a.b", "*", "*.corp.example", "xn--bcher-kva.example", "10.0.0.1", "a_b-c.d"],
        ["x" * 63 + ".example"],
    ],
)
def test_bulk_host_check_takes_the_fast_path_for_ordinary_names(hosts: list[str]) -> None:
    assert wire._bulk_hosts_ok(hosts)


@pytest.mark.parametrize(
    "host",
    [
        "",
        "*.",
        "a..b",
        "-a",
        "a-",
        "a.-b",
        "a-.b",
        "A.b",
        "a*b",
        "*.*.a",
        "**",
        "x" * 64,
        "a." + "x" * 64,
        "a\nb",
        "é.example",
    ],
)
def test_bulk_host_check_refuses_bad_names(host: str) -> None:
    assert not wire._bulk_hosts_ok(["ok.example", host])


def _payload_with(hosts: list[str], cidrs: list[str]) -> bytes:
    # Canonical form: empty lists are defaults, which the signer's encoding omits.
    res = {"id": "r", "name": "r", **({"hosts": hosts} if hosts else {})}
    res.update({"cidrs": cidrs} if cidrs else {})
    return (
        b'{"version":1,"device_id":"d","issued_at":1,"expires_at":2,"user":{"subject":"s"},'
        + b'"resources":['
        + wire.msgspec.json.encode(res)
        + b"]}"
    )


@SETTINGS
@given(st.lists(HOSTY, max_size=3), st.lists(NETTY, max_size=3))
def test_decode_refuses_exactly_what_resource_construction_refuses(
    hosts: list[str], cidrs: list[str]
) -> None:
    """The deferred bulk check inside decode_bundle and the per-resource check of a
    Resource built in Python accept the same resources."""
    try:
        Resource(id="r", name="r", hosts=tuple(hosts), cidrs=tuple(cidrs))
        direct_ok = True
    except (ValueError, wire.msgspec.ValidationError):
        direct_ok = False
    try:
        decode_bundle(_payload_with(hosts, cidrs))
        decoded_ok = True
    except BundleFormatError:
        decoded_ok = False
    if all(len(h) <= 253 for h in hosts) and all(len(c) <= 64 for c in cidrs):
        assert decoded_ok == direct_ok


def test_decode_names_the_bad_resource() -> None:
    payload = _payload_with(["ok.example", "Bad Host"], [])
    expected = r"'Bad Host' is not a lower-case host.*resources\[0\]"
    with pytest.raises(BundleFormatError, match=expected):
        decode_bundle(payload)


@pytest.mark.parametrize("ids", [["a", "b\nc"], ["a", ""], ["ok", "not ok"], ["é"]])
def test_id_check_refuses_bad_ids(ids: list[str]) -> None:
    with pytest.raises(BundleFormatError, match="may only use"):
        wire._check_ids("$.x", ids)


def _naive_index(resources: tuple[Resource, ...]) -> tuple[object, ...]:
    exact: dict[str, list[int]] = {}
    suffix: dict[str, list[int]] = {}
    any_host: list[int] = []
    nets: dict[int, dict[int, dict[int, list[int]]]] = {32: {}, 128: {}}
    for i, res in enumerate(resources):
        for host in res.hosts:
            if host == "*":
                any_host.append(i)
            elif host.startswith("*."):
                suffix.setdefault(host[2:], []).append(i)
            else:
                exact.setdefault(host, []).append(i)
        for cidr in res.cidrs:
            net, _, plen_s = cidr.partition("/")
            key = ip_key(net)
            assert key is not None
            bits, value = key
            plen = int(plen_s) if plen_s else bits
            nets[bits].setdefault(plen, {}).setdefault(value >> (bits - plen), []).append(i)
    return exact, suffix, any_host, nets


RES_HOSTS = st.lists(
    st.sampled_from(["*", "a.example", "b.example", "*.a.example", "*.c.example", "10.0.0.1"]),
    min_size=0,
    max_size=3,
)
RES_NETS = st.lists(
    st.sampled_from(
        ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "10.1.0.0/20", "fd00::/64"]
    ),
    min_size=0,
    max_size=3,
)


@SETTINGS
@given(st.lists(st.tuples(RES_HOSTS, RES_NETS), max_size=8))
def test_index_matches_the_plain_loop(specs: list[tuple[list[str], list[str]]]) -> None:
    resources = tuple(
        Resource(id=f"r{i}", name="r", hosts=tuple(h), cidrs=tuple(c))
        for i, (h, c) in enumerate(specs)
        if h or c
    )
    exact, suffix, any_host, nets = _naive_index(resources)
    assert _host_index(resources) == (exact, suffix, any_host)
    built = _net_index(resources)
    assert {b: {p: d for p, d in by.items() if d} for b, by in built.items()} == nets


# --- verify: strict base64url, checked before use ------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _keys(key: Ed25519PrivateKey) -> dict[str, signing.Ed25519PublicKey]:
    return {signing.key_id(key.public_key()): key.public_key()}


def _resign(key: Ed25519PrivateKey, header: str, payload: str) -> str:
    """A token whose signature is valid over exactly this (possibly odd) text."""
    sig = key.sign(f"{header}.{payload}".encode())
    return f"{header}.{payload}.{_b64(sig)}"


@pytest.mark.parametrize(
    "payload_text",
    [
        "eyJhIjox+Q",  # "+" is standard base64, not base64url
        "eyJhIjox/Q",
        "eyJhIjoxfQ==",  # padding
        "eyJh IjoxfQ",
        'eyJh"IjoxfQ',
        "eyJhI\\joxfQ",
        "e",  # one char: not a whole byte
    ],
)
def test_a_validly_signed_but_malformed_payload_is_refused(
    key: Ed25519PrivateKey, payload_text: str
) -> None:
    header = _b64(
        signing.msgspec.json.encode(
            {"alg": "Ed25519", "kid": signing.key_id(key.public_key()), "typ": "t+jws"}
        )
    )
    token = _resign(key, header, payload_text)
    with pytest.raises(signing.MalformedTokenError):
        signing.verify(token, _keys(key), typ="t+jws", max_size=1000)


def test_verify_accepts_what_joserfc_signs_and_bytes_tokens(key: Ed25519PrivateKey) -> None:
    for payload in (b"", b"x", b"xy", b"xyz", b'{"a":1}', bytes(range(256))):
        token = signing.sign(payload, key, typ="t+jws")
        assert signing.verify(token, _keys(key), typ="t+jws", max_size=10_000).payload == payload
        raw = token.encode()
        assert signing.verify(raw, _keys(key), typ="t+jws", max_size=10_000).payload == payload


def test_a_signature_of_the_wrong_length_is_refused(key: Ed25519PrivateKey) -> None:
    token = signing.sign(b"{}", key, typ="t+jws")
    head, _, sig = token.rpartition(".")
    for bad in (sig[:-1], sig + "A", sig[:-2] + "==", ""):
        with pytest.raises(signing.SignatureError):
            signing.verify(f"{head}.{bad}", _keys(key), typ="t+jws", max_size=1000)


def test_a_flipped_bit_anywhere_is_refused(key: Ed25519PrivateKey) -> None:
    token = signing.sign(encode_bundle_sample(), key, typ="t+jws")
    # (not the last character: 4 of its bits are padding, a change there may decode the
    # same signature bytes, as with any base64 decoder)
    for i in range(len(token) - 1):
        ch = token[i]
        if ch == ".":
            continue
        flipped = token[:i] + ("B" if ch != "B" else "C") + token[i + 1 :]
        with pytest.raises(signing.SignatureError):
            signing.verify(flipped, _keys(key), typ="t+jws", max_size=10_000)


def encode_bundle_sample() -> bytes:
    res = Resource(id="r", name="r", hosts=("a.example",))
    bundle = wire.PolicyBundle(
        version=1,
        device_id="d",
        issued_at=1,
        expires_at=2,
        user=wire.UserInfo(subject="s"),
        resources=(res,),
    )
    return encode_bundle(bundle)
