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
from wg_backends.spec import validate_interface

DATA = Path(__file__).resolve().parents[1] / "data" / "firewall"


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


PF = """\
rdr pass on lo0 inet proto tcp from any to { 10.232.0.0/24, 10.233.0.0/24 } -> 127.0.0.1 port 9081
rdr pass on lo0 inet6 proto tcp from any to { fd00::/64 } -> ::1 port 9081
pass out quick on lo0 all
pass out quick proto { tcp udp } from any to { 10.232.0.1, fd00::53 } port 53
pass out quick proto udp from any to 10.231.0.1 port 51820
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
