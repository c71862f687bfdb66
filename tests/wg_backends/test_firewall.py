"""The enforcement model and its renderers: exact nftables, pf and WinDivert text.

Linux rules are also loaded into a real kernel (``nft -f`` in a throwaway namespace) so a
rendering that reads well but does not parse fails here; macOS and Windows text is
compared exactly (their tools are reached through the injected runner only).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.wg_backends.fakes import ScriptedRunner
from wg_backends.errors import CommandError, SpecError
from wg_backends.firewall import (
    Enforcement,
    NftFirewall,
    PfFirewall,
    interface_of_table,
    mark_for,
    render_anchor,
    render_block,
    render_enforcement,
    render_filters,
    table_name,
)
from wg_backends.runner import CommandResult, SubprocessRunner
from wg_backends.spec import PeerSpec, RelaySpec, TunnelSpec, validate_interface

DATA = Path(__file__).resolve().parents[1] / "data" / "firewall"
PUB = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="


def enf(**kw: object) -> Enforcement:
    args: dict[str, object] = {
        "owner_uid": 1000,
        "redirect_port": 9081,
        "allowed_ips": ["10.233.0.0/24", "10.232.0.0/24", "fd00::/64", "10.233.0.0/25"],
        "dns": ["10.232.0.1", "fd00::53"],
        "endpoints": ["10.231.0.1:51820", "gw.example:51820"],
    }
    args.update(kw)
    return Enforcement.build("wg-a_b", **args)  # type: ignore[arg-type]


NFT = """\
add table inet rustronaut_block
delete table inet rustronaut_block
add table inet rustronaut_t_wg_da__b
delete table inet rustronaut_t_wg_da__b
table inet rustronaut_t_wg_da__b {
\tcounter redirected { }
\tcounter rejected_ranges { }
\tcounter rejected_tunnel { }
\tchain divert {
\t\ttype nat hook output priority -100; policy accept;
\t\tmeta mark 0x5254a09c return
\t\tip daddr 127.0.0.0/8 return
\t\tip6 daddr ::1 return
\t\tip daddr { 10.232.0.1 } tcp dport 53 return
\t\tip6 daddr { fd00::53 } tcp dport 53 return
\t\tmeta skuid 1000 ip daddr { 10.232.0.0/24, 10.233.0.0/24 } meta l4proto tcp counter name "redirected" redirect to :9081
\t\tmeta skuid 1000 ip6 daddr { fd00::/64 } meta l4proto tcp counter name "redirected" redirect to :9081
\t}
\tchain guard {
\t\ttype filter hook output priority 0; policy accept;
\t\tmeta mark 0x5254a09c accept
\t\toifname "lo" accept
\t\tip daddr 127.0.0.0/8 accept
\t\tip6 daddr ::1 accept
\t\tip daddr { 10.232.0.1 } meta l4proto { tcp, udp } th dport 53 accept
\t\tip6 daddr { fd00::53 } meta l4proto { tcp, udp } th dport 53 accept
\t\tip daddr 10.231.0.1 udp dport 51820 accept
\t\toifname != "wg-a_b" icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept
\t\tip daddr { 10.232.0.0/24, 10.233.0.0/24 } counter name "rejected_ranges" reject
\t\tip6 daddr { fd00::/64 } counter name "rejected_ranges" reject
\t\toifname "wg-a_b" counter name "rejected_tunnel" reject
\t}
}
"""  # noqa: E501


def test_nft_text_is_exact() -> None:
    assert render_enforcement(enf()) == NFT


def test_model_normalises_and_takes_only_literal_endpoints() -> None:
    e = enf()
    assert e.ranges == ("10.232.0.0/24", "10.233.0.0/24", "fd00::/64")
    assert e.endpoints == (("10.231.0.1", 51820),)
    assert e.mark == mark_for("wg-a_b") == 0x5254A09C


def test_block_table_text() -> None:
    assert render_block(["10.233.0.0/24", "fd00::/64"]) == (
        "add table inet rustronaut_block\ndelete table inet rustronaut_block\n"
        "table inet rustronaut_block {\n\tcounter blocked { }\n\tchain guard {\n"
        "\t\ttype filter hook output priority 0; policy accept;\n"
        '\t\toifname "lo" accept\n'
        "\t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } "
        "ip6 hoplimit 255 accept\n"
        '\t\tip daddr { 10.233.0.0/24 } counter name "blocked" reject\n'
        '\t\tip6 daddr { fd00::/64 } counter name "blocked" reject\n\t}\n}\n'
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("allowed_ips", ["10.0.0.0/8; flush ruleset"]),
        ("allowed_ips", ["10.0.0.0/33"]),
        ("dns", ["10.0.0.1 } accept; {"]),
        ("dns", ["corp.example"]),
        ("redirect_port", 0),
        ("redirect_port", 70000),
        ("owner_uid", -1),
        ("endpoints", ["10.0.0.1:0"]),
    ],
)
def test_hostile_values_never_reach_a_rule(field: str, value: object) -> None:
    with pytest.raises(SpecError):
        enf(**{field: value})


def test_hostile_interface_refused() -> None:
    for bad in ('wg0" accept', "a b", "", "x" * 16, "wg0\n"):
        with pytest.raises(SpecError):
            Enforcement.build(bad, owner_uid=1, redirect_port=1, allowed_ips=["10.0.0.0/8"])


def test_hand_built_enforcement_must_be_normalised() -> None:
    with pytest.raises(SpecError):
        Enforcement("wg0", 1, 1, mark_for("wg0"), ("10.0.0.1/8",), ())
    with pytest.raises(SpecError):
        Enforcement("wg0", 1, 1, 0x1234, ("10.0.0.0/8",), ())


@given(st.text(alphabet="abcXYZ019_+.-", min_size=1, max_size=15))
def test_table_names_are_injective_and_parse_back(name: str) -> None:
    try:
        validate_interface(name)
    except SpecError:
        return
    t = table_name(name)
    assert interface_of_table(t) == name
    assert all(c.isalnum() or c == "_" for c in t)


def test_foreign_table_names_are_not_ours() -> None:
    assert interface_of_table("rustronaut_block") is None
    assert interface_of_table("rustronaut_t_a_x") is None  # "_x" is no escape
    assert interface_of_table("wg-quick-wg0") is None


# ----- issue 21: the relays' TCP passes a full tunnel's kill switch ------------------

#: A full tunnel: the relays' addresses are inside the ranges (a relay given by name passes
#: once the helper resolved it; the name itself never reaches a rule).
RELAYS = ["198.51.100.7:443", "[2001:db8::7]:8443", "relay.example:443", "198.51.100.7:443"]


def full(**kw: object) -> Enforcement:
    args: dict[str, object] = {
        "allowed_ips": ["0.0.0.0/0", "::/0"],
        "dns": ["10.232.0.1"],
        "endpoints": ["10.231.0.1:51820"],
        "relay_endpoints": RELAYS,
    }
    args.update(kw)
    return enf(**args)


NFT_RELAYS = """\
add table inet rustronaut_block
delete table inet rustronaut_block
add table inet rustronaut_t_wg_da__b
delete table inet rustronaut_t_wg_da__b
table inet rustronaut_t_wg_da__b {
\tcounter redirected { }
\tcounter rejected_ranges { }
\tcounter rejected_tunnel { }
\tchain divert {
\t\ttype nat hook output priority -100; policy accept;
\t\tmeta mark 0x5254a09c return
\t\tip daddr 127.0.0.0/8 return
\t\tip6 daddr ::1 return
\t\tip daddr { 10.232.0.1 } tcp dport 53 return
\t\tip daddr 198.51.100.7 tcp dport 443 return
\t\tip6 daddr 2001:db8::7 tcp dport 8443 return
\t\tmeta skuid 1000 ip daddr { 0.0.0.0/0 } meta l4proto tcp counter name "redirected" redirect to :9081
\t\tmeta skuid 1000 ip6 daddr { ::/0 } meta l4proto tcp counter name "redirected" redirect to :9081
\t}
\tchain guard {
\t\ttype filter hook output priority 0; policy accept;
\t\tmeta mark 0x5254a09c accept
\t\toifname "lo" accept
\t\tip daddr 127.0.0.0/8 accept
\t\tip6 daddr ::1 accept
\t\tip daddr { 10.232.0.1 } meta l4proto { tcp, udp } th dport 53 accept
\t\tip daddr 10.231.0.1 udp dport 51820 accept
\t\tip daddr 198.51.100.7 tcp dport 443 accept
\t\tip6 daddr 2001:db8::7 tcp dport 8443 accept
\t\toifname != "wg-a_b" icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept
\t\tip daddr { 0.0.0.0/0 } counter name "rejected_ranges" reject
\t\tip6 daddr { ::/0 } counter name "rejected_ranges" reject
\t\toifname "wg-a_b" counter name "rejected_tunnel" reject
\t}
}
"""  # noqa: E501

PF_RELAYS = """\
rdr pass on lo0 inet proto tcp from any to { 0.0.0.0/0 } -> 127.0.0.1 port 9081
rdr pass on lo0 inet6 proto tcp from any to { ::/0 } -> ::1 port 9081
pass out quick on lo0 all
pass out quick proto { tcp udp } from any to { 10.232.0.1 } port 53
pass out quick proto udp from any to 10.231.0.1 port 51820
pass out quick proto tcp from any to 198.51.100.7 port 443
pass out quick proto tcp from any to 2001:db8::7 port 8443
pass out quick on ! wg-a_b inet6 proto icmp6 all icmp6-type { routersol, neighbrsol, neighbradv }
pass out quick on ! lo0 route-to (lo0 127.0.0.1) inet proto tcp from any to { 0.0.0.0/0 } user 1000 group != 600 keep state
pass out quick on ! lo0 route-to (lo0 ::1) inet6 proto tcp from any to { ::/0 } user 1000 group != 600 keep state
pass out quick on wg-a_b all group 600 keep state
block return out quick log from any to { 0.0.0.0/0 }
block return out quick log from any to { ::/0 }
block return out quick log on wg-a_b all
"""  # noqa: E501


def test_relays_exact_pairs_tcp_only_nft_text() -> None:
    e = full()
    assert e.relay_endpoints == (("198.51.100.7", 443), ("2001:db8::7", 8443))
    assert render_enforcement(e) == NFT_RELAYS
    # Only the exact pairs, over TCP: no rule names a relay address without its port, nor
    # lets UDP to it through (the UDP accept is the gateway's).
    relay_rules = [line for line in NFT_RELAYS.splitlines() if "198.51.100.7" in line]
    assert all("tcp dport 443" in line for line in relay_rules)
    # Without relays the text is unchanged (split tunnels, older records).
    assert render_enforcement(enf(relay_endpoints=[])) == NFT


def test_relays_exact_pairs_tcp_only_pf_text() -> None:
    assert render_anchor(full(), decider_gid=600) == PF_RELAYS


def test_block_table_lets_the_gateway_and_relays_through() -> None:
    text = render_block(
        ["0.0.0.0/0", "::/0"],
        endpoints=["10.231.0.1:51820", "gw.example:51820"],
        relay_endpoints=["198.51.100.7:443", "[2001:db8::7]:8443", "relay.example:443"],
    )
    assert text == (
        "add table inet rustronaut_block\ndelete table inet rustronaut_block\n"
        "table inet rustronaut_block {\n\tcounter blocked { }\n\tchain guard {\n"
        "\t\ttype filter hook output priority 0; policy accept;\n"
        '\t\toifname "lo" accept\n'
        "\t\tip daddr 10.231.0.1 udp dport 51820 accept\n"
        "\t\tip daddr 198.51.100.7 tcp dport 443 accept\n"
        "\t\tip6 daddr 2001:db8::7 tcp dport 8443 accept\n"
        "\t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } "
        "ip6 hoplimit 255 accept\n"
        '\t\tip daddr { 0.0.0.0/0 } counter name "blocked" reject\n'
        '\t\tip6 daddr { ::/0 } counter name "blocked" reject\n\t}\n}\n'
    )


def test_nft_firewall_block_passes_the_pairs() -> None:
    run, fw = _nft_runner()
    fw.block(["0.0.0.0/0", "::/0"], endpoints=["10.231.0.1:51820"], relay_endpoints=RELAYS)
    assert run.files == [
        render_block(["0.0.0.0/0", "::/0"], endpoints=["10.231.0.1:51820"], relay_endpoints=RELAYS)
    ]
    assert "tcp dport 443 accept" in run.files[0]


@pytest.mark.parametrize(
    "value",
    [
        ["198.51.100.7:0"],
        ["198.51.100.7:65536"],
        ["198.51.100.7"],  # no port
        ["198.51.100.7:443; flush ruleset"],
        ["198.51.100.7:443 accept"],
        ["[2001:db8::7]:443 } accept {"],
        ["2001:db8::7:443"],  # an IPv6 endpoint needs brackets
        [""],
    ],
)
def test_hostile_relay_endpoints_never_reach_a_rule(value: list[str]) -> None:
    with pytest.raises(SpecError):
        full(relay_endpoints=value)
    with pytest.raises(SpecError):
        render_block(["0.0.0.0/0"], relay_endpoints=value)


@pytest.mark.parametrize(
    "pairs",
    [
        (("198.51.100.7", 0),),
        (("198.51.100.7", 65536),),
        (("198.51.100.7", "443"),),
        (("198.51.100.7", True),),
        (("relay.example", 443),),  # a name: only the helper's resolved addresses
        (("198.51.100.007", 443),),
        (("2001:DB8::7", 443),),  # not what ipaddress writes
        (("198.51.100.7 tcp dport 1-65535 accept #", 443),),
        (("198.51.100.7",),),
        tuple((f"198.51.100.{i}", 443) for i in range(65)),  # more than 8 relays x 8
    ],
)
def test_hand_built_relay_endpoints_must_be_exact_literals(pairs: object) -> None:
    with pytest.raises(SpecError):
        Enforcement(
            "wg0",
            1,
            None,
            mark_for("wg0"),
            ("0.0.0.0/0",),
            ("::/0",),
            relay_endpoints=pairs,  # type: ignore[arg-type]
        )


def test_hand_built_gateway_endpoints_are_checked_the_same_way() -> None:
    for pairs in ((("10.0.0.1 udp", 1),), (("10.0.0.1", 0),)):
        with pytest.raises(SpecError):
            Enforcement("wg0", 1, None, mark_for("wg0"), ("0.0.0.0/0",), (), endpoints=pairs)


def test_for_spec_takes_literal_relays_only() -> None:
    spec = TunnelSpec(
        interface="wg0",
        addresses=("10.232.0.2/32",),
        peers=(
            PeerSpec(public_key=PUB, endpoint="10.231.0.1:51820", allowed_ips=("10.233.0.0/24",)),
        ),
        relays=(
            RelaySpec(name="r1", endpoint="198.51.100.7:443", server_name="relay.example"),
            RelaySpec(name="r2", endpoint="relay.example:443"),
        ),
    )
    e = Enforcement.for_spec(spec, owner_uid=1000, redirect_port=None)
    assert e.relay_endpoints == (("198.51.100.7", 443),)
    assert e.endpoints == (("10.231.0.1", 51820),)


PF = """\
rdr pass on lo0 inet proto tcp from any to { 10.232.0.0/24, 10.233.0.0/24 } -> 127.0.0.1 port 9081
rdr pass on lo0 inet6 proto tcp from any to { fd00::/64 } -> ::1 port 9081
pass out quick on lo0 all
pass out quick proto { tcp udp } from any to { 10.232.0.1, fd00::53 } port 53
pass out quick proto udp from any to 10.231.0.1 port 51820
pass out quick on ! wg-a_b inet6 proto icmp6 all icmp6-type { routersol, neighbrsol, neighbradv }
pass out quick on ! lo0 route-to (lo0 127.0.0.1) inet proto tcp from any to { 10.232.0.0/24, 10.233.0.0/24 } user 1000 group != 600 keep state
pass out quick on ! lo0 route-to (lo0 ::1) inet6 proto tcp from any to { fd00::/64 } user 1000 group != 600 keep state
pass out quick on wg-a_b all group 600 keep state
block return out quick log from any to { 10.232.0.0/24, 10.233.0.0/24 }
block return out quick log from any to { fd00::/64 }
block return out quick log on wg-a_b all
"""  # noqa: E501


def test_pf_anchor_text_is_exact() -> None:
    assert render_anchor(enf(), decider_gid=600) == PF


class FileReadingRunner(ScriptedRunner):
    """Records the content of the rules file each ``-f <path>`` command was given."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[str] = []

    def __call__(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        if "-f" in argv:
            self.files.append(Path(argv[argv.index("-f") + 1]).read_text())
        return super().__call__(argv, check=check, env=env, timeout=timeout)


def test_pf_commands_exact(tmp_path: Path) -> None:
    run = FileReadingRunner()
    fw = PfFirewall(run, decider_gid=600, workdir=tmp_path)
    run.script.append((("pfctl", "-E"), 0, "", "pf enabled\nToken : 1234567\n"))

    def call(argv: Sequence[str], **kw: object) -> CommandResult:
        if argv[:2] == ["pfctl", "-a"] and argv[3] == "-f":
            run.script.insert(0, (tuple(argv), 0, "", ""))
        return FileReadingRunner.__call__(run, argv, **kw)  # type: ignore[arg-type]

    fw._run = call  # type: ignore[assignment]
    fw.apply(enf())
    fw.apply(enf(redirect_port=9082))  # a replacement holds no second pf reference
    run.script.extend([(("pfctl", "-a", "com.rustronaut/wg-a_b", "-F", "all"), 0, "", "")])
    run.script.extend([(("pfctl", "-X", "1234567"), 0, "", "")])
    fw.remove("wg-a_b")
    assert [c[:3] for c in run.calls] == [
        ("pfctl", "-a", "com.rustronaut/wg-a_b"),
        ("pfctl", "-E"),
        ("pfctl", "-a", "com.rustronaut/wg-a_b"),
        ("pfctl", "-a", "com.rustronaut/wg-a_b"),
        ("pfctl", "-X", "1234567"),
    ]
    assert run.files[0] == PF
    assert "port 9082" in run.files[1]
    assert list(tmp_path.iterdir()) == []  # rules files removed


def test_windivert_filters_exact() -> None:
    f = render_filters(enf(), decider_pid=4242, tunnel_ifidx=17)
    ranges = (
        "(ip.DstAddr >= 10.232.0.0 and ip.DstAddr <= 10.232.0.255) or "
        "(ip.DstAddr >= 10.233.0.0 and ip.DstAddr <= 10.233.0.255) or "
        "(ipv6.DstAddr >= fd00:: and ipv6.DstAddr <= fd00::ffff:ffff:ffff:ffff)"
    )
    assert f == {
        "redirect": f"outbound and not loopback and tcp and ({ranges})",
        "decider": "processId == 4242 and event == CONNECT",
        "killswitch": (
            f"outbound and not loopback and (ifIdx == 17 or ({ranges})) and not tcp and not "
            "((ip.DstAddr == 10.232.0.1 or ipv6.DstAddr == fd00::53) and "
            "(tcp.DstPort == 53 or udp.DstPort == 53))"
        ),
    }


def _nft_runner() -> tuple[FileReadingRunner, NftFirewall]:
    run = FileReadingRunner()
    fw = NftFirewall(run)

    def call(argv: Sequence[str], **kw: object) -> CommandResult:
        if list(argv[:2]) == ["nft", "-f"]:
            run.script.insert(0, (tuple(argv), 0, "", ""))
        return FileReadingRunner.__call__(run, argv, **kw)  # type: ignore[arg-type]

    fw._run = call  # type: ignore[assignment]
    return run, fw


def test_nft_firewall_commands() -> None:
    run, fw = _nft_runner()
    fw.apply(enf())
    fw.remove("wg-a_b")
    fw.block(["10.233.0.0/24"])
    fw.unblock()
    assert [c[:2] for c in run.calls] == [("nft", "-f")] * 4
    assert run.files[0] == NFT
    assert run.files[1] == (
        "add table inet rustronaut_t_wg_da__b\ndelete table inet rustronaut_t_wg_da__b\n"
    )
    assert run.files[2] == render_block(["10.233.0.0/24"])
    assert run.files[3] == "add table inet rustronaut_block\ndelete table inet rustronaut_block\n"


def test_nft_refusal_is_a_command_error_and_leaves_no_file(tmp_path: Path) -> None:
    run = ScriptedRunner()
    fw = NftFirewall(run, workdir=tmp_path)
    with pytest.raises(CommandError):
        fw.apply(enf())
    assert list(tmp_path.iterdir()) == []


def test_reconcile_parses_real_listing_and_keeps_live_and_block() -> None:
    run, fw = _nft_runner()
    listing = (DATA / "nft-list-tables-inet.txt").read_text() + "table inet other\n"
    run.script.append((("nft", "list", "tables", "inet"), 0, listing, ""))
    assert fw.reconcile([], keep_block=True) == ["rustronaut_t_wg_da__b"]
    run.script.append((("nft", "list", "tables", "inet"), 0, listing, ""))
    assert fw.reconcile(["wg-a_b"], keep_block=False) == ["rustronaut_block"]


def test_reconcile_never_raises() -> None:
    assert NftFirewall(ScriptedRunner()).reconcile([], keep_block=False) == []


def test_counters_parse_real_output() -> None:
    run = ScriptedRunner()
    out = (DATA / "nft-list-counters.json").read_text()
    argv = ("nft", "-j", "list", "counters", "table", "inet", "rustronaut_t_wg_da__b")
    run.on(argv, 0, out)
    assert NftFirewall(run).counters("wg-a_b") == {
        "redirected": 0,
        "rejected_ranges": 0,
        "rejected_tunnel": 0,
    }
    assert NftFirewall(ScriptedRunner()).counters("wg-a_b") == {}
    assert json.loads(out)["nftables"]


# ----- the real kernel ---------------------------------------------------------------


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"rtA-fw-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


class NsRunner(SubprocessRunner):
    def __init__(self, ns: str) -> None:
        super().__init__()
        self.ns = ns

    def __call__(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        return super().__call__(
            ["ip", "netns", "exec", self.ns, *argv], check=check, env=env, timeout=timeout
        )


@pytest.mark.root
@pytest.mark.netns
def test_real_nft_apply_replace_block_reconcile(netns: str) -> None:
    fw = NftFirewall(NsRunner(netns))
    fw.block(["10.233.0.0/24"])
    assert fw.tables() == ["rustronaut_block"]
    fw.apply(enf())  # replaces the block table in the same transaction
    assert fw.tables() == ["rustronaut_t_wg_da__b"]
    fw.apply(enf(allowed_ips=["10.240.0.0/16"]))  # atomic replace
    listing = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "list", "table", "inet", table_name("wg-a_b")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "10.240.0.0/16" in listing
    assert "10.233.0.0/24" not in listing
    assert fw.counters("wg-a_b") == {"redirected": 0, "rejected_ranges": 0, "rejected_tunnel": 0}
    fw.block(["10.233.0.0/24"])
    assert fw.reconcile([], keep_block=True) == ["rustronaut_t_wg_da__b"]
    assert fw.tables() == ["rustronaut_block"]
    fw.remove("wg-a_b")  # idempotent
    fw.unblock()
    fw.unblock()
    assert fw.tables() == []


@pytest.mark.root
@pytest.mark.netns
def test_real_ipv6_redirect_lands_on_loopback_with_the_original_destination(netns: str) -> None:
    """IPv6 TCP from the owner to a range lands on [::1]:port; the original destination
    comes back from ``IP6T_SO_ORIGINAL_DST``; a marked socket is left alone."""

    def sh(*argv: str) -> None:
        subprocess.run(["ip", "netns", "exec", netns, *argv], check=True, capture_output=True)

    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "rtAv6a", "type", "veth", "peer", "name", "rtAv6b")
    sh("ip", "link", "set", "rtAv6a", "up")
    sh("ip", "link", "set", "rtAv6b", "up")
    sh("ip", "-6", "route", "add", "fd00:5::/64", "dev", "rtAv6a")
    e = Enforcement.build("rtAv6a", owner_uid=0, redirect_port=9281, allowed_ips=["fd00:5::/64"])
    NftFirewall(NsRunner(netns)).apply(e)
    code = f"""
import socket, struct
srv = socket.socket(socket.AF_INET6); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("::1", 9281)); srv.listen(4)
c = socket.create_connection(("fd00:5::7", 443), timeout=5)
a, _ = srv.accept()
raw = a.getsockopt(socket.IPPROTO_IPV6, 80, 28)  # IP6T_SO_ORIGINAL_DST: sockaddr_in6
port = struct.unpack_from("!H", raw, 2)[0]
print(socket.inet_ntop(socket.AF_INET6, raw[8:24]), port)
m = socket.socket(socket.AF_INET6)
m.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, {e.mark})
m.settimeout(1)
try:
    m.connect(("fd00:5::7", 443))
    print("marked: connected")
except OSError as exc:
    print("marked:", type(exc).__name__)
"""
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "/usr/bin/python3", "-I", "-c", code],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    lines = out.stdout.splitlines()
    assert lines, out.stderr
    assert lines[0] == "fd00:5::7 443", out.stderr
    # Not redirected (nothing answers on the empty veth: a timeout, not the decider).
    assert lines[1] in ("marked: TimeoutError", "marked: OSError"), lines


# A relay's TCP port (and another port, and another address of the same network) in a
# second namespace: each connection is answered "srv" and closed.
RELAY_SIDE = """
import socket, sys, threading
def serve(s):
    while True:
        c, _ = s.accept()
        c.sendall(b"srv")
        c.close()
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    host = host.strip("[]")
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(8)
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print("READY", flush=True)
sys.stdin.read()
"""
# Connect to each target from an ordinary (unmarked, non-owner) socket: "srv" or the error.
DIAL = """
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        c = socket.create_connection((host.strip("[]"), int(port)), timeout=3)
        print(c.recv(10).decode() or "EMPTY")
        c.close()
    except OSError as exc:
        print(type(exc).__name__)
"""
# What really left on the LAN link towards the relay's UDP port (postrouting runs after
# every output verdict).
UDP_PROBE = """
import socket
for fam, host in ((socket.AF_INET, "10.78.0.2"), (socket.AF_INET6, "fd78::2")):
    try:
        socket.socket(fam, socket.SOCK_DGRAM).sendto(b"x", (host, 4443))
    except OSError:
        pass
"""


@pytest.mark.root
@pytest.mark.netns
def test_real_full_tunnel_kill_switch_passes_only_the_relay_pairs(netns: str) -> None:
    """A ``/0`` tunnel enforced: TCP to the relay's exact address+port passes the guard
    (and the block table), TCP to another port of the relay's address or to another address
    in the ranges is rejected, UDP to the relay's port never leaves; with root as the owner
    the relay pair is not redirected either."""
    peer = f"rtA-rl-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", peer], check=True)

    def sh(ns: str, *argv: str, stdin: str | None = None) -> str:
        out = subprocess.run(
            ["ip", "netns", "exec", ns, *argv],
            input=stdin, capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        return out.stdout

    server: subprocess.Popen[str] | None = None
    try:
        sh(netns, "ip", "link", "set", "lo", "up")
        sh(peer, "ip", "link", "set", "lo", "up")
        # The "tunnel" (a veth: no dummy module here) takes every route, like a full tunnel.
        sh(netns, "ip", "link", "add", "rtAt0", "type", "veth", "peer", "name", "rtAt1")
        sh(netns, "ip", "link", "set", "rtAt0", "up")
        sh(netns, "ip", "link", "set", "rtAt1", "up")
        # The LAN towards the relays: more specific than the /0, as wg-quick's policy
        # routing leaves it for the helper's (fwmarked) relay socket.
        sh(netns, "ip", "link", "add", "rtAl0", "type", "veth", "peer", "name", "rtAl1")
        sh(netns, "ip", "link", "set", "rtAl1", "netns", peer)
        sh(netns, "ip", "addr", "add", "10.78.0.1/24", "dev", "rtAl0")
        sh(netns, "ip", "addr", "add", "fd78::1/64", "dev", "rtAl0", "nodad")
        sh(netns, "ip", "link", "set", "rtAl0", "up")
        for addr in ("10.78.0.2/24", "10.78.0.3/24"):
            sh(peer, "ip", "addr", "add", addr, "dev", "rtAl1")
        for addr in ("fd78::2/64", "fd78::3/64"):
            sh(peer, "ip", "addr", "add", addr, "dev", "rtAl1", "nodad")
        sh(peer, "ip", "link", "set", "rtAl1", "up")
        sh(netns, "ip", "route", "add", "0.0.0.0/0", "dev", "rtAt0")
        sh(netns, "ip", "-6", "route", "add", "::/0", "dev", "rtAt0")
        sh(netns, "nft", "-f", "-", stdin=(
            "table inet rtwtest {\n chain post {\n type filter hook postrouting priority 100;"
            ' policy accept;\n oifname "rtAl0" udp dport 4443 counter\n }\n}\n'
        ))  # fmt: skip

        relay4, relay6 = "10.78.0.2:4443", "[fd78::2]:4443"
        other_port4, other_port6 = "10.78.0.2:4444", "[fd78::2]:4444"
        other_addr4, other_addr6 = "10.78.0.3:4443", "[fd78::3]:4443"
        targets = [relay4, relay6, other_port4, other_port6, other_addr4, other_addr6]
        server = subprocess.Popen(
            ["ip", "netns", "exec", peer, "/usr/bin/python3", "-I", "-c", RELAY_SIDE, *targets],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "READY"

        def dial() -> list[str]:
            return sh(netns, "/usr/bin/python3", "-I", "-c", DIAL, *targets).split()

        def udp_left() -> int:
            sh(netns, "/usr/bin/python3", "-I", "-c", UDP_PROBE)
            listing = json.loads(sh(netns, "nft", "-j", "list", "table", "inet", "rtwtest"))
            for item in listing["nftables"]:
                for expr in item.get("rule", {}).get("expr", []):
                    if "counter" in expr:
                        return int(expr["counter"]["packets"])
            raise AssertionError("no counter")

        # Without rules everything answers: the refusals below are the guard's doing.
        assert dial() == ["srv"] * 6
        assert udp_left() == 2

        refused = ["ConnectionRefusedError"] * 4
        fw = NftFirewall(NsRunner(netns))
        rules = {
            "allowed_ips": ["0.0.0.0/0", "::/0"],
            "endpoints": ["10.78.0.2:51820"],
            "relay_endpoints": [relay4, relay6],
        }
        # The helper's case: the owner is a user, the helper (root) dials the relay.
        fw.apply(Enforcement.build("rtAt0", owner_uid=4242, redirect_port=9381, **rules))  # type: ignore[arg-type]
        sh(netns, "ip", "neigh", "flush", "dev", "rtAl0")  # NDP/ARP must work under the rules
        sh(netns, "ip", "-6", "neigh", "flush", "dev", "rtAl0")
        assert dial() == ["srv", "srv", *refused]
        assert udp_left() == 2  # nothing more left: UDP to the relay's port is rejected
        assert fw.counters("rtAt0")["rejected_ranges"] >= 6
        # Root as the owner: the relay pair is not redirected (nothing listens on 9381,
        # so a redirected connection would be refused); other ports are redirected.
        fw.apply(Enforcement.build("rtAt0", owner_uid=0, redirect_port=9381, **rules))  # type: ignore[arg-type]
        assert dial() == ["srv", "srv", *refused]
        assert fw.counters("rtAt0")["redirected"] == 4
        # The tunnel went away under block_when_down: the same pairs, and only they, pass.
        fw.block(
            ["0.0.0.0/0", "::/0"], endpoints=["10.78.0.2:51820"], relay_endpoints=[relay4, relay6]
        )
        fw.remove("rtAt0")
        assert fw.tables() == ["rustronaut_block"]
        assert dial() == ["srv", "srv", *refused]
        assert udp_left() == 2
        fw.unblock()
    finally:
        if server is not None:
            server.kill()
            server.wait(5)
        subprocess.run(["ip", "netns", "del", peer], check=False)
