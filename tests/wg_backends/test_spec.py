"""TunnelSpec validation: every refusal of the issue, with the field named."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import msgspec
import pytest

from tests.wg_backends.keys import PRIV, PSK, PUB
from wg_backends.errors import SpecError
from wg_backends.spec import PeerSpec, TunnelSpec, parse_endpoint, parse_spec

pytestmark = pytest.mark.unit


def good() -> dict[str, Any]:
    return {
        "interface": "rtw0",
        "addresses": ["10.77.0.2/32", "fd77::2/128"],
        "dns": ["10.77.0.1"],
        "mtu": 1420,
        "peers": [
            {
                "public_key": PUB,
                "preshared_key": PSK,
                "endpoint": "192.0.2.1:51820",
                "allowed_ips": ["10.77.0.0/24", "10.78.0.0/24"],
                "persistent_keepalive": 25,
            }
        ],
    }


def mutate(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(good())
    target: Any = data
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return data


def test_good_spec_parses_from_dict_and_json() -> None:
    spec = parse_spec(good())
    assert spec.interface == "rtw0"
    assert spec.private_key is None
    assert parse_spec(json.dumps(good()).encode()) == spec
    assert isinstance(spec.peers[0], PeerSpec)


def test_with_private_key_returns_copy_and_helper_requires_it() -> None:
    spec = parse_spec(good())
    with pytest.raises(SpecError, match="private_key: missing"):
        spec.validate(require_private_key=True)
    keyed = spec.with_private_key(PRIV)
    assert keyed.private_key == PRIV
    assert spec.private_key is None
    assert keyed.validate(require_private_key=True) is keyed
    with pytest.raises(SpecError, match="private_key"):
        spec.with_private_key("not-a-key")
    assert "<redacted>" in json.dumps(keyed.redacted())
    assert PRIV not in json.dumps(keyed.redacted())
    assert PSK not in json.dumps(keyed.redacted())


BAD = [
    ("interface", "rtw0\nPostUp", "interface"),
    ("interface", "a" * 16, "interface"),
    ("interface", "rtw=0", "interface"),
    ("interface", "rtw 0", "interface"),
    ("interface", "", "interface"),
    ("interface", "..", "interface"),
    ("interface", "-x", "interface"),  # would be read as an option by wg / ip / wg-quick
    ("interface", "--help", "interface"),
    ("addresses", ["10.77.0.2"], "prefix length"),
    ("addresses", ["10.77.0.2/33"], "addresses"),
    ("addresses", ["10.77.0.2/32\nPostUp = x"], "forbidden character"),
    ("addresses", [], "addresses"),
    ("dns", ["dns.example.com"], "dns"),
    ("dns", ["10.0.0.1#x"], "forbidden"),
    ("dns", ["10.0.0.1 "], "dns"),
    ("mtu", 1279, "mtu"),
    ("mtu", 9001, "mtu"),
    ("mtu", "1420", "int"),
    ("peers", [], "peers"),
    ("peers.0.public_key", "AAAA", "public_key"),
    ("peers.0.public_key", PUB[:-1] + "\n", "public_key"),
    ("peers.0.public_key", "A" * 42 + "B=", "canonical"),
    ("peers.0.preshared_key", "x" * 44, "preshared_key"),
    ("peers.0.endpoint", "192.0.2.1:0", "port"),
    ("peers.0.endpoint", "192.0.2.1:70000", "port"),
    ("peers.0.endpoint", "192.0.2.1", "host:port"),
    ("peers.0.endpoint", "192.0.2.1:51820\nPostUp=x", "forbidden"),
    ("peers.0.endpoint", "fd00::1:51820", "brackets"),
    ("peers.0.endpoint", "[zz]:51820", "IPv6"),
    ("peers.0.endpoint", "bad_host:1", "host name"),
    ("peers.0.endpoint", "999.1.1.1:1", "IPv4"),
    ("peers.0.allowed_ips", ["10.77.0.1/24"], "host bits"),
    ("peers.0.allowed_ips", ["10.77.0.0/24 #"], "forbidden"),
    ("peers.0.allowed_ips", ["192.0.2.0/24"], "own endpoint"),
    ("peers.0.allowed_ips", ["0.0.0.0/0"], "IPv6"),
    ("peers.0.allowed_ips", ["0.0.0.0/1", "128.0.0.0/1", "::/0"], "own endpoint"),
    ("peers.0.allowed_ips", [], "allowed_ips"),
    ("peers.0.persistent_keepalive", 70000, "keepalive"),
    ("peers.0.persistent_keepalive", -1, "keepalive"),
    ("peers.0.PostUp", "rm -rf /", "unknown field"),
    ("PostUp", "rm -rf /", "unknown field"),
    ("Table", "off", "unknown field"),
    ("SaveConfig", True, "unknown field"),
]


@pytest.mark.parametrize(("path", "value", "needle"), BAD)
def test_bad_values_are_refused_with_a_clear_error(path: str, value: Any, needle: str) -> None:
    with pytest.raises(SpecError, match="(?i)" + needle):
        parse_spec(mutate(path, value))


def test_split_default_route_counts_as_full_tunnel() -> None:
    data = mutate("peers.0.allowed_ips", ["0.0.0.0/1", "128.0.0.0/1"])
    data["peers"][0]["endpoint"] = "gw.example.com:51820"
    with pytest.raises(SpecError, match="IPv6"):
        parse_spec(data)


def test_direct_construction_validates_too() -> None:
    with pytest.raises(SpecError, match="interface"):
        TunnelSpec(interface="x\n", addresses=("10.0.0.1/32",), peers=())


def test_full_dual_stack_tunnel_is_fine_and_covers_endpoint_by_policy_routing() -> None:
    spec = parse_spec(mutate("peers.0.allowed_ips", ["0.0.0.0/0", "::/0"]))
    assert spec.peers[0].allowed_ips == ("0.0.0.0/0", "::/0")


def test_controller_route_is_refused_even_by_default_route() -> None:
    with pytest.raises(SpecError, match="controller"):
        parse_spec(good(), forbid_routes=["10.78.0.5"])
    with pytest.raises(SpecError, match="controller"):
        parse_spec(
            mutate("peers.0.allowed_ips", ["0.0.0.0/0", "::/0"]), forbid_routes=["203.0.113.9"]
        )
    assert parse_spec(good(), forbid_routes=["203.0.113.9", "2001:db8::1"]).interface == "rtw0"
    with pytest.raises(SpecError, match="forbid_routes"):
        parse_spec(good(), forbid_routes=["nope"])


def test_duplicate_peer_and_oversize_refused() -> None:
    data = good()
    data["peers"].append(copy.deepcopy(data["peers"][0]))
    with pytest.raises(SpecError, match="twice"):
        parse_spec(data)
    with pytest.raises(SpecError, match="larger"):
        parse_spec(b" " * 70000)
    with pytest.raises(SpecError, match="JSON"):
        parse_spec(b"{not json")


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("192.0.2.1:51820", ("192.0.2.1", 51820)),
        ("[2001:db8::1]:1", ("2001:db8::1", 1)),
        ("gw.example.com:65535", ("gw.example.com", 65535)),
    ],
)
def test_parse_endpoint(endpoint: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(endpoint) == expected


def test_spec_roundtrips_through_msgspec_json() -> None:
    spec = parse_spec(good()).with_private_key(PRIV)
    assert msgspec.json.decode(msgspec.json.encode(spec), type=TunnelSpec) == spec


# ---- routes that cannot hurt (issue 16, item 4) ---------------------------------------
def _peers(n: int, per_peer: int, first_octet: int = 10) -> list[dict[str, Any]]:
    """``n`` peers with distinct keys, each with ``per_peer`` distinct /24s."""
    import base64

    out = []
    for i in range(n):
        key = base64.b64encode(bytes([i + 1]) * 32).decode()
        nets = [f"{first_octet}.{i}.{j % 256}.0/24" if j < 256 else f"11.{i}.{j - 256}.0/24"
                for j in range(per_peer)]  # fmt: skip
        out.append({"public_key": key, "endpoint": f"192.0.2.{i + 1}:51820", "allowed_ips": nets})
    return out


def test_allowed_ips_are_limited_in_total_not_per_peer() -> None:
    data = good()
    data["peers"] = _peers(5, 256)  # 1,280 over 5 peers: each under the per-peer limit
    with pytest.raises(SpecError, match="1280 networks in total"):
        parse_spec(data)
    data["peers"] = _peers(4, 250)  # 1,000 exactly is fine
    assert len(parse_spec(data).peers) == 4


@pytest.mark.parametrize(
    "nets",
    [
        ["0.0.0.0/1"],  # half the space
        ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2"],  # three quarters
        ["0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/3", "::/1"],  # some IPv6, not all of it
    ],
)
def test_near_full_ipv4_without_full_ipv6_is_refused(nets: list[str]) -> None:
    data = mutate("peers.0.allowed_ips", nets)
    data["peers"][0]["endpoint"] = "gw.example.com:51820"
    with pytest.raises(SpecError, match="most of the address space"):
        parse_spec(data)
    data["peers"][0]["allowed_ips"] = [*nets, "::/0"]
    assert parse_spec(data).interface == "rtw0"


def test_smaller_ipv4_lists_need_no_ipv6() -> None:
    data = mutate("peers.0.allowed_ips", ["10.0.0.0/8", "172.16.0.0/12", "100.64.0.0/10"])
    assert parse_spec(data).interface == "rtw0"


def test_another_gateways_endpoint_is_not_routable() -> None:
    data = good()
    data["peers"] = _peers(2, 1)
    data["peers"][0]["allowed_ips"] = ["192.0.2.0/24"]  # covers peer 1's endpoint 192.0.2.2
    data["peers"][0]["endpoint"] = "198.51.100.1:51820"
    with pytest.raises(SpecError, match=re.escape("gateway endpoint 192.0.2.2")):
        parse_spec(data)


def test_controller_address_is_protected_from_narrow_routes() -> None:
    with pytest.raises(SpecError, match=re.escape("controller's address 10.78.0.5")):
        parse_spec(good(), protect=["10.78.0.5"])
    ok = parse_spec(mutate("peers.0.allowed_ips", ["0.0.0.0/0", "::/0"]), protect=["10.78.0.5"])
    assert ok.interface == "rtw0"  # a deliberate full tunnel (policy routing) stays allowed
    assert parse_spec(good(), protect=["203.0.113.9", "2001:db8::1"]).interface == "rtw0"


@pytest.mark.parametrize(
    ("nets", "refused"),
    [
        (["10.77.0.0/24"], True),  # the LAN itself
        (["10.77.0.128/25"], True),  # inside the LAN
        (["10.0.0.0/8"], False),  # broader: the connected /24 is more specific and wins
        (["10.79.0.0/24"], False),
        (["0.0.0.0/0", "::/0"], False),
    ],
)
def test_local_networks_cannot_be_captured(nets: list[str], refused: bool) -> None:
    data = mutate("peers.0.allowed_ips", nets)
    if refused:
        with pytest.raises(SpecError, match=re.escape("local network 10.77.0.0/24")):
            parse_spec(data, local_networks=["10.77.0.0/24", "fd00:1::/64"])
    else:
        assert parse_spec(data, local_networks=["10.77.0.0/24", "fd00:1::/64"])


# ----- split DNS suffixes (issue 15 item 3) -----------------------------------------------


@pytest.mark.parametrize(
    "suffixes",
    [
        ["corp.example"],
        ["corp.example", "10.in-addr.arpa", "a-b.c0.example"],
        ["xn--bcher-kva.example"],  # IDNA A-label (bücher)
        [("a" * 63 + ".") * 3 + "b" * 61],  # 253 characters
        [f"s{i}.corp.example" for i in range(32)],
    ],
)
def test_dns_suffixes_accepted(suffixes: list[str]) -> None:
    spec = parse_spec(mutate("dns_suffixes", suffixes))
    assert spec.suffixes() == tuple(suffixes)


@pytest.mark.parametrize(
    ("suffixes", "needle"),
    [
        (["."], "start or end with a dot"),
        ([""], "1-253"),
        (["example"], "top-level domain"),
        (["com"], "top-level domain"),
        ([".corp.example"], "start or end with a dot"),
        (["corp.example."], "start or end with a dot"),
        (["Corp.Example"], "lower-case"),
        (["corp..example"], "label ''"),
        (["-corp.example"], "inner hyphens"),
        (["corp-.example"], "inner hyphens"),
        (["corp_x.example"], "lower-case"),
        (["corp example"], "lower-case"),
        (["corp.example\nnameserver 1.1.1.1"], "lower-case"),
        (["bücher.example"], "lower-case"),
        (["ab--c.example"], "reserved"),
        (["xn--a.example"], "IDNA"),
        (["corp.123"], "all digits"),
        (["in-addr.arpa"], "reverse-lookup tree"),
        (["ip6.arpa"], "reverse-lookup tree"),
        (["a" * 64 + ".example"], "1-63"),
        ([("a" * 63 + ".") * 4 + "b"], "1-253"),
        ([f"s{i}.corp.example" for i in range(33)], "more than 32"),
        (["corp.example", "corp.example"], "twice"),
        ([5], "Expected `str`"),
        ("corp.example", "dns_suffixes"),
    ],
)
def test_bad_dns_suffixes_refused(suffixes: Any, needle: str) -> None:
    with pytest.raises(SpecError, match="dns_suffixes") as err:
        parse_spec(mutate("dns_suffixes", suffixes))
    assert needle in str(err.value)


def test_dns_suffixes_need_a_dns_server() -> None:
    data = mutate("dns_suffixes", ["corp.example"])
    data["dns"] = []
    with pytest.raises(SpecError, match="needs at least one DNS server"):
        parse_spec(data)


def test_dns_suffixes_default_empty_and_omitted_from_old_specs() -> None:
    assert parse_spec(good()).suffixes() == ()
    spec = parse_spec(mutate("dns_suffixes", ["corp.example"]))
    assert msgspec.json.decode(msgspec.json.encode(spec), type=TunnelSpec) == spec


def test_a_spec_without_split_dns_encodes_as_before_the_field_existed() -> None:
    # Bundles signed by an older controller are checked byte for byte (canonical form):
    # an always-present "dns_suffixes":[] would make every one of them non-canonical.
    import msgspec

    from wg_backends.spec import PeerSpec, TunnelSpec

    peer = PeerSpec(
        public_key="A" * 43 + "=", endpoint="192.0.2.1:51820", allowed_ips=("10.9.0.0/24",)
    )
    plain = TunnelSpec(interface="rtw0", addresses=("10.0.0.2/32",), peers=(peer,))
    empty = TunnelSpec(interface="rtw0", addresses=("10.0.0.2/32",), peers=(peer,), dns_suffixes=())
    for spec in (plain, empty):
        assert b"dns_suffixes" not in msgspec.json.encode(spec)
        assert spec.suffixes() == ()
    split = TunnelSpec(
        interface="rtw0",
        addresses=("10.0.0.2/32",),
        peers=(peer,),
        dns=("10.0.0.53",),
        dns_suffixes=("corp.example",),
    )
    raw = msgspec.json.encode(split)
    assert b'"dns_suffixes":["corp.example"]' in raw
    assert msgspec.json.decode(raw, type=TunnelSpec).suffixes() == ("corp.example",)
    old = raw.replace(b',"dns_suffixes":["corp.example"]', b"")
    assert msgspec.json.encode(msgspec.json.decode(old, type=TunnelSpec)) == old


# --- relays (issue 21) ------------------------------------------------------------------

PIN = "A" * 43 + "="


def with_relays(relays: list[dict[str, Any]], allowed: list[str] | None = None) -> dict[str, Any]:
    data = good()
    data["relays"] = relays
    if allowed is not None:
        data["peers"][0]["allowed_ips"] = allowed
    return data


def test_relays_parse_and_an_empty_list_encodes_as_before() -> None:
    spec = msgspec.convert(
        with_relays([{"name": "eu-1", "endpoint": "relay.example.com:443", "spki": [PIN]}]),
        TunnelSpec,
    )
    (relay,) = spec.relay_list()
    assert (relay.tls_name(), relay.address(), relay.spki) == (
        "relay.example.com",
        ("relay.example.com", 443),
        (PIN,),
    )
    plain = msgspec.convert(with_relays([]), TunnelSpec)
    # No relays: the spec encodes exactly as before the field existed (signed bundles of
    # older controllers keep their canonical form).
    assert "relays" not in json.loads(msgspec.json.encode(plain))
    assert plain.relay_list() == ()


@pytest.mark.parametrize(
    ("relays", "needle"),
    [
        ([{"name": "EU", "endpoint": "r.example:443"}], "relays.name"),
        ([{"name": "-x", "endpoint": "r.example:443"}], "relays.name"),
        ([{"name": "x", "endpoint": "r.example"}], "endpoint"),
        ([{"name": "x", "endpoint": "r.example:443\nEndpoint = 1.2.3.4:1"}], "endpoint"),
        ([{"name": "x", "endpoint": "203.0.113.9:443"}], "server_name"),  # IP: name required
        (
            [{"name": "x", "endpoint": "203.0.113.9:443", "server_name": "1.2.3.4"}],
            "server_name",
        ),
        ([{"name": "x", "endpoint": "r.example:443", "spki": ["short"]}], "relays.spki"),
        ([{"name": "x", "endpoint": "r.example:443", "spki": [PIN] * 5}], "relays.spki"),
        ([{"name": "x", "endpoint": "r.example:443"}] * 2, "same name"),
        ([{"name": f"r{i}", "endpoint": "r.example:443"} for i in range(9)], "more than 8"),
        ([{"name": "x", "endpoint": "r.example:443", "via": "evil"}], "via"),
    ],
)
def test_bad_relays_are_refused(relays: list[dict[str, Any]], needle: str) -> None:
    with pytest.raises((SpecError, msgspec.ValidationError), match=re.escape(needle)):
        msgspec.convert(with_relays(relays), TunnelSpec)


def test_a_relay_inside_the_tunnels_routes_is_refused_but_a_full_tunnel_is_fine() -> None:
    relay = {"name": "x", "endpoint": "10.77.0.9:443", "server_name": "relay.example"}
    with pytest.raises((SpecError, msgspec.ValidationError), match="tunnel it carries"):
        msgspec.convert(with_relays([relay]), TunnelSpec)
    # /0: the relay sockets carry wg-quick's fwmark; the kill switch lets them pass.
    full = msgspec.convert(with_relays([relay], ["0.0.0.0/0", "::/0"]), TunnelSpec)
    assert full.relay_list()[0].endpoint == "10.77.0.9:443"
