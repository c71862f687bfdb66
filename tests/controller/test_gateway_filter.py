"""The gateway's per-device filter: exact nftables text, validation, runners (issue 15 item 4)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from controller.gateway import (
    CommandResult,
    Gateway,
    GatewayError,
    GatewayGroup,
    command_interface,
    subprocess_runner,
)
from controller.gateway_filter import FilterError, render_filter, table_name

EXPECTED = """\
# rustronaut gateway filter for wg-gw.0
table inet rtc_gw_wg_gw_0
delete table inet rtc_gw_wg_gw_0
table inet rtc_gw_wg_gw_0 {
  set grants4 { type ipv4_addr . ipv4_addr; flags interval; \
elements = { 10.77.0.2 . 10.20.0.0/16, 10.77.0.2 . 10.30.1.5, 10.77.0.10 . 10.40.0.0/24 }; }
  set grants6 { type ipv6_addr . ipv6_addr; flags interval; elements = { fd77::2 . fd20::/64 }; }
  set always4 { type ipv4_addr; flags interval; elements = { 10.77.0.1, 10.77.0.53 }; }
  set always6 { type ipv6_addr; flags interval; }
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    iifname != "wg-gw.0" accept
    ip saddr . ip daddr @grants4 accept
    ip6 saddr . ip6 daddr @grants6 accept
    ip daddr @always4 accept
    ip6 daddr @always6 accept
    counter drop
  }
  chain input {
    type filter hook input priority filter - 10; policy accept;
    iifname != "wg-gw.0" accept
    ip saddr . ip daddr @grants4 accept
    ip6 saddr . ip6 daddr @grants6 accept
    ip daddr @always4 accept
    ip6 daddr @always6 accept
    counter drop
  }
}
"""

GRANTS = {
    # overlapping networks collapse (interval sets refuse overlaps); other family ignored
    "10.77.0.2/32": ["10.20.0.0/24", "10.20.0.0/16", "10.30.1.5", "fd20::/64"],
    "10.77.0.10": ["10.40.0.0/24"],
    "10.77.0.3": [],
    "fd77::2": ["fd20::/64", "10.20.0.0/24"],
}


def test_exact_text_sorted_collapsed_and_per_family() -> None:
    assert render_filter("wg-gw.0", GRANTS, ["10.77.0.1/32", "10.77.0.53"]) == EXPECTED
    assert table_name("wg-gw.0") == "rtc_gw_wg_gw_0"


@pytest.mark.parametrize(
    ("grants", "always", "match"),
    [
        ({"10.77.0.0/24": []}, [], "not a single host"),
        ({"laptop": []}, [], "not an IP address"),
        ({"10.77.0.2": ["10.20.0.1/24"]}, [], "host bits"),
        ({"10.77.0.2": ["10.20.0.0/33"]}, [], "not valid"),
        # what a hostile string would try: end the set and flush the firewall
        ({"10.77.0.2": ["10.0.0.0/8 }; flush ruleset; table ip x {"]}, [], "not valid"),
        ({"10.77.0.2 . 0.0.0.0/0": []}, [], "not an IP address"),
        ({}, ["10.77.0.53\n"], "not valid"),
    ],
)
def test_bad_values_are_refused_by_name(
    grants: dict[str, list[str]], always: list[str], match: str
) -> None:
    with pytest.raises(FilterError, match=match):
        render_filter("wg0", grants, always)


@pytest.mark.parametrize("name", ['wg0"; flush ruleset; "', "-wg0", "", "a" * 16, "wg 0"])
def test_bad_interface_names_are_refused(name: str) -> None:
    with pytest.raises(FilterError, match="interface"):
        render_filter(name, {}, [])


class StdinRecorder:
    """A runner that records argv and the script it was given on standard input."""

    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[tuple[tuple[str, ...], str | None]] = []
        self.fail = fail

    def __call__(self, argv: Sequence[str], *, input: str | None = None) -> CommandResult:
        self.calls.append((tuple(argv), input))
        if self.fail is not None and command_interface(argv, input) == self.fail:
            return CommandResult(tuple(argv), 1, "", "Error: Could not process rule")
        return CommandResult(tuple(argv), 0, "", "")


def test_apply_filter_is_one_nft_transaction_on_stdin() -> None:
    rec = StdinRecorder()
    gw = Gateway("wg-gw.0", rec, keepalive_s=5)
    script = gw.apply_filter(GRANTS, ["10.77.0.1/32", "10.77.0.53"])
    assert script == EXPECTED
    assert rec.calls == [(("nft", "-f", "-"), EXPECTED)]
    gw.remove_filter()
    assert rec.calls[-1] == (
        ("nft", "-f", "-"),
        "# rustronaut gateway filter for wg-gw.0\n"
        "table inet rtc_gw_wg_gw_0\ndelete table inet rtc_gw_wg_gw_0\n",
    )
    gw.set_peer("K=", ["10.77.0.2/32"])
    assert rec.calls[-1] == (
        (
            "wg",
            "set",
            "wg-gw.0",
            "peer",
            "K=",
            "allowed-ips",
            "10.77.0.2/32",
            "persistent-keepalive",
            "5",
        ),
        None,
    )


def test_a_bad_grant_runs_nothing() -> None:
    rec = StdinRecorder()
    with pytest.raises(FilterError):
        Gateway("wg0", rec).apply_filter({"10.77.0.2": ["10.20.0.0/8"]})
    assert rec.calls == []


def test_a_runner_without_stdin_is_a_gateway_error_not_a_crash() -> None:
    calls: list[tuple[str, ...]] = []

    def legacy(argv: Sequence[str]) -> CommandResult:
        calls.append(tuple(argv))
        return CommandResult(tuple(argv), 0, "", "")

    gw = Gateway("wg0", legacy)
    with pytest.raises(GatewayError, match="standard input"):
        gw.apply_filter({})
    gw.set_peer("K=", ["10.77.0.2/32"])  # peers still work
    assert calls == [("wg", "set", "wg0", "peer", "K=", "allowed-ips", "10.77.0.2/32")]


def test_unfiltered_gateway_runs_no_nft() -> None:
    rec = StdinRecorder()
    gw = Gateway("wg0", rec, filtered=False)
    gw.apply_filter({"10.77.0.2": ["10.20.0.0/24"]})
    gw.remove_filter()
    assert rec.calls == []


def test_group_validates_once_then_every_member_converges_past_a_failing_one() -> None:
    rec = StdinRecorder(fail="gwa")
    group = GatewayGroup([Gateway("gwa", rec), Gateway("gwb", rec)])
    with pytest.raises(FilterError):
        group.apply_filter({"10.77.0.2": ["nope"]})
    assert rec.calls == []  # no member touched
    with pytest.raises(GatewayError, match="Could not process rule"):
        group.apply_filter({"10.77.0.2": ["10.20.0.0/24"]})
    assert [command_interface(a, i) for a, i in rec.calls] == ["gwa", "gwb"]
    assert rec.calls[1][1] == render_filter("gwb", {"10.77.0.2": ["10.20.0.0/24"]})


def test_command_interface_lets_a_runner_route_each_command() -> None:
    assert command_interface(["wg", "set", "gw2", "peer", "K="]) == "gw2"
    assert command_interface(["wg", "show", "gw2", "allowed-ips"]) == "gw2"
    assert command_interface(["nft", "-f", "-"], render_filter("gw2", {})) == "gw2"
    assert command_interface(["nft", "-f", "-"], "table inet x\n") is None
    assert command_interface(["nft", "list", "ruleset"]) is None


def test_subprocess_runner_feeds_stdin() -> None:
    result = subprocess_runner(["cat"], input="hello\n")
    assert (result.returncode, result.stdout) == (0, "hello\n")
    assert subprocess_runner(["/nonexistent/tool"]).returncode == 127
