"""Split DNS for the OS (issue 15 item 3): exact commands per method, real outputs parsed,
records that clean up alone, and files that are not ours left alone."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from tests.wg_backends.fakes import ScriptedRunner, data
from tests.wg_backends.keys import PRIV, PUB
from wg_backends.backends.macos import MacOSBackend
from wg_backends.backends.wgquick import WgQuickBackend
from wg_backends.dns import (
    DnsPaths,
    DnsRecord,
    apply_split_dns,
    load_record,
    revert_interface,
    revert_recorded,
    save_record,
)
from wg_backends.dns.macos import MARKER, owner_of
from wg_backends.dns.nrpt import add_script, powershell, remove_script
from wg_backends.dns.resolvconf import FEED_SCRIPT, record_name
from wg_backends.dns.resolved import parse_resolvectl_status
from wg_backends.errors import BackendError, CommandError
from wg_backends.spec import PeerSpec, TunnelSpec

pytestmark = pytest.mark.unit

SPLIT = data("resolvectl-status-rtw0-split.txt")


def spec(suffixes: tuple[str, ...] = ("corp.example", "lab.corp.example")) -> TunnelSpec:
    return TunnelSpec(
        interface="rtw0",
        addresses=("10.77.0.2/32",),
        peers=(
            PeerSpec(public_key=PUB, endpoint="192.0.2.1:51820", allowed_ips=("10.77.0.0/24",)),
        ),
        private_key=PRIV,
        dns=("10.77.0.1", "fd77::1"),
        dns_suffixes=suffixes,
    )


@pytest.fixture
def paths(tmp_path: Path) -> DnsPaths:
    """No resolved socket, no interface-order, a private resolver dir."""
    return DnsPaths(
        resolved_socket=tmp_path / "no-resolved",
        interface_order=tmp_path / "no-order",
        resolver_dir=tmp_path / "resolver",
    )


@pytest.fixture
def resolved(tmp_path: Path) -> Iterator[DnsPaths]:
    """A real unix socket standing for resolved's varlink socket."""
    path = tmp_path / "io.systemd.Resolve"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    try:
        yield DnsPaths(
            resolved_socket=path,
            interface_order=tmp_path / "no-order",
            resolver_dir=tmp_path / "resolver",
        )
    finally:
        sock.close()


# ----- parsing real resolvectl outputs ----------------------------------------------------


def test_parse_resolvectl_status_systemd252() -> None:
    links = parse_resolvectl_status(data("resolvectl-status-systemd252.txt"))
    assert set(links) == {"eno1", "antbr0"}
    assert links["eno1"].index == 2
    assert links["eno1"].servers == ("157.26.166.16", "157.26.166.17")
    assert links["eno1"].domains == ("s2.rpn.ch",)
    assert links["eno1"].default_route is True
    assert links["antbr0"].domains == ("~antiterre.lan",)
    assert links["antbr0"].default_route is False


def test_parse_resolvectl_status_mixed_and_empty_links() -> None:
    links = parse_resolvectl_status(data("resolvectl-status-netbird.txt"))
    assert links["enp7s0"].servers == ()
    assert links["wlp14s0"].servers[-1] == "fe80::e36:23ff:fe89:2d90"
    assert links["wt0"].domains == ("netbird.cloud", "~77.100.in-addr.arpa", "~.")


def test_parse_resolvectl_status_old_continuation_lines() -> None:
    links = parse_resolvectl_status(data("resolvectl-status-old.txt"))
    assert links["eth0"].servers == ("8.8.8.8", "8.8.4.4")
    assert links["eth0"].domains == ("~.",)
    assert links["eth0"].default_route is None  # no Protocols line in that version


def test_parse_resolvectl_status_junk_is_ignored() -> None:
    assert parse_resolvectl_status("") == {}
    assert parse_resolvectl_status("Link x (y)\nDNS Servers: 1.2.3.4\n\x00garbage") == {}


# ----- systemd-resolved -------------------------------------------------------------------


def test_resolved_exact_commands_and_record(resolved: DnsPaths) -> None:
    r = ScriptedRunner()
    r.on(["resolvectl", "--no-pager", "status"], 0, data("resolvectl-status-systemd252.txt"))
    r.on(["resolvectl", "dns", "rtw0", "10.77.0.1", "fd77::1"])
    r.on(["resolvectl", "domain", "rtw0", "~corp.example", "~lab.corp.example"])
    r.on(["resolvectl", "default-route", "rtw0", "false"])
    r.on(["resolvectl", "--no-pager", "status", "rtw0"], 0, SPLIT)
    record = apply_split_dns(r, spec(), platform="linux", paths=resolved)
    assert r.calls == [
        ("resolvectl", "--no-pager", "status"),
        ("resolvectl", "dns", "rtw0", "10.77.0.1", "fd77::1"),
        ("resolvectl", "domain", "rtw0", "~corp.example", "~lab.corp.example"),
        ("resolvectl", "default-route", "rtw0", "false"),
        ("resolvectl", "--no-pager", "status", "rtw0"),
    ]
    assert record == DnsRecord(
        "rtw0", "resolved", ("10.77.0.1", "fd77::1"), ("corp.example", "lab.corp.example")
    )
    r.calls.clear()
    r.on(["resolvectl", "revert", "rtw0"])
    revert_recorded(r, record, paths=resolved)
    assert r.calls == [("resolvectl", "revert", "rtw0")]


@pytest.mark.parametrize(
    "answer",
    [
        SPLIT.replace("~lab.corp.example", ""),  # a domain missing
        SPLIT.replace("~corp.example ~lab.corp.example", "~corp.example ~lab.corp.example ~."),
        SPLIT.replace("-DefaultRoute", "+DefaultRoute"),  # still takes every other name
        SPLIT.replace("10.77.0.1 fd77::1", "10.77.0.1"),
        SPLIT.replace("rtw0", "rtw1"),
    ],
)
def test_resolved_result_checked_and_reverted_when_wrong(resolved: DnsPaths, answer: str) -> None:
    r = ScriptedRunner()
    r.on(["resolvectl", "--no-pager", "status"], 0, "")
    for argv in (
        ["resolvectl", "dns", "rtw0", "10.77.0.1", "fd77::1"],
        ["resolvectl", "domain", "rtw0", "~corp.example", "~lab.corp.example"],
        ["resolvectl", "default-route", "rtw0", "false"],
    ):
        r.on(argv)
    r.on(["resolvectl", "--no-pager", "status", "rtw0"], 0, answer)
    r.on(["resolvectl", "revert", "rtw0"])
    with pytest.raises(BackendError, match="systemd-resolved"):
        apply_split_dns(r, spec(), platform="linux", paths=resolved)
    assert r.calls[-1] == ("resolvectl", "revert", "rtw0")


def test_resolved_command_failure_reverts(resolved: DnsPaths) -> None:
    r = ScriptedRunner()
    r.on(["resolvectl", "--no-pager", "status"], 0, "")
    r.on(["resolvectl", "dns", "rtw0", "10.77.0.1", "fd77::1"])
    r.on(["resolvectl", "domain", "rtw0", "~corp.example", "~lab.corp.example"], 1, "", "boom")
    r.on(["resolvectl", "revert", "rtw0"])
    with pytest.raises(CommandError):
        apply_split_dns(r, spec(), platform="linux", paths=resolved)
    assert r.calls[-1] == ("resolvectl", "revert", "rtw0")


def test_socket_without_a_working_resolvectl_is_not_resolved(resolved: DnsPaths) -> None:
    r = ScriptedRunner()
    r.on(["resolvectl", "--no-pager", "status"], 1, "", "Failed to get global data")
    r.on(["resolvconf", "--version"], 0, "openresolv 3.12.0\n")
    r.on(["sh", "-c", FEED_SCRIPT, "sh", "rtw0", "nameserver 10.77.0.1", "nameserver fd77::1",
          "search corp.example lab.corp.example"])  # fmt: skip
    assert apply_split_dns(r, spec(), platform="linux", paths=resolved).method == "resolvconf"


def test_a_plain_file_is_not_resolveds_socket(paths: DnsPaths, tmp_path: Path) -> None:
    fake = tmp_path / "io.systemd.Resolve"
    fake.write_text("")
    r = ScriptedRunner()
    r.on(["resolvconf", "--version"], 127)
    record = apply_split_dns(
        r, spec(), platform="linux", paths=msgspec.structs.replace(paths, resolved_socket=fake)
    )
    assert record.method == "none"
    assert ("resolvectl", "--no-pager", "status") not in r.calls


# ----- resolvconf and nothing --------------------------------------------------------------


def test_resolvconf_exact_command_and_name_from_interface_order(
    paths: DnsPaths, tmp_path: Path
) -> None:
    order = tmp_path / "interface-order"
    order.write_text(  # Debian resolvconf's own file
        "# interface-order(5)\nlo.inet6\nlo.inet\nlo.@(dnsmasq|pdnsd)\n"
        "lo.!(pdns|pdns-recursor)\nlo\ntun*\ntap*\nhso*\nem+([0-9])?(_+([0-9]))*\n"
    )
    assert record_name("rtw0", order) == "tun.rtw0"
    p = msgspec.structs.replace(paths, interface_order=order)
    r = ScriptedRunner()
    r.on(["resolvconf", "--version"], 0, "openresolv 3.12.0\n")
    r.on(["sh", "-c", FEED_SCRIPT, "sh", "tun.rtw0", "nameserver 10.77.0.1",
          "nameserver fd77::1", "search corp.example lab.corp.example"])  # fmt: skip
    record = apply_split_dns(r, spec(), platform="linux", paths=p)
    assert record.method == "resolvconf"
    assert record.name == "tun.rtw0"
    assert FEED_SCRIPT == 'n="$1"; shift; printf \'%s\\n\' "$@" | resolvconf -a "$n" -m 0 -x'
    r.calls.clear()
    r.on(["resolvconf", "-d", "tun.rtw0", "-f"])
    revert_recorded(r, record, paths=p)
    assert r.calls == [("resolvconf", "-d", "tun.rtw0", "-f")]


def test_resolvconf_failure_removes_the_record(paths: DnsPaths) -> None:
    r = ScriptedRunner()
    r.on(["resolvconf", "--version"], 0)
    r.on(["sh", "-c", FEED_SCRIPT, "sh", "rtw0", "nameserver 10.77.0.1", "nameserver fd77::1",
          "search corp.example lab.corp.example"], 1, "", "signature mismatch")  # fmt: skip
    r.on(["resolvconf", "-d", "rtw0", "-f"])
    with pytest.raises(CommandError):
        apply_split_dns(r, spec(), platform="linux", paths=paths)
    assert r.calls[-1] == ("resolvconf", "-d", "rtw0", "-f")


def test_neither_resolved_nor_resolvconf_leaves_the_system_alone(paths: DnsPaths) -> None:
    r = ScriptedRunner()  # resolvconf --version: unscripted, exit 127
    record = apply_split_dns(r, spec(), platform="linux", paths=paths)
    assert record.method == "none"
    assert record.applied == ()
    assert record.skipped == ("corp.example", "lab.corp.example")
    assert "left alone" in record.note
    assert r.calls == [("resolvconf", "--version")]
    revert_recorded(r, record, paths=paths)
    assert r.calls == [("resolvconf", "--version")]


def test_apply_needs_suffixes(paths: DnsPaths) -> None:
    with pytest.raises(ValueError, match="no dns_suffixes"):
        apply_split_dns(ScriptedRunner(), spec(()), platform="linux", paths=paths)


# ----- macOS /etc/resolver -----------------------------------------------------------------


def test_macos_resolver_files_written_and_removed(paths: DnsPaths) -> None:
    r = ScriptedRunner()
    record = apply_split_dns(r, spec(), platform="darwin", paths=paths)
    assert r.calls == []
    assert record.method == "macos-resolver"
    assert record.applied == ("corp.example", "lab.corp.example")
    f = paths.resolver_dir / "corp.example"
    assert f.read_text() == (
        f"{MARKER}rtw0\n# written by the Rustronaut helper; removed on disconnect\n"
        "nameserver 10.77.0.1\nnameserver fd77::1\n"
    )
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
    revert_recorded(r, record, paths=paths)
    assert sorted(os.listdir(paths.resolver_dir)) == []


def test_macos_never_overwrites_or_removes_a_file_that_is_not_ours(
    paths: DnsPaths, tmp_path: Path
) -> None:
    paths.resolver_dir.mkdir()
    foreign = paths.resolver_dir / "corp.example"
    foreign.write_text("nameserver 192.0.2.53\n")
    other_tunnel = paths.resolver_dir / "lab.corp.example"
    other_tunnel.write_text(f"{MARKER}rtw9\nnameserver 10.9.0.1\n")
    target = tmp_path / "victim"
    target.write_text("precious\n")
    (paths.resolver_dir / "x.corp.example").symlink_to(target)
    wanted = ("corp.example", "lab.corp.example", "x.corp.example", "y.corp.example")
    record = apply_split_dns(ScriptedRunner(), spec(wanted), platform="darwin", paths=paths)
    assert record.applied == ("y.corp.example",)
    assert record.skipped == ("corp.example", "lab.corp.example", "x.corp.example")
    assert "not ours" in record.note
    assert foreign.read_text() == "nameserver 192.0.2.53\n"
    assert target.read_text() == "precious\n"
    assert owner_of(other_tunnel) == "rtw9"
    revert_interface(ScriptedRunner(), "rtw0", platform="darwin", paths=paths)  # by scan
    assert sorted(os.listdir(paths.resolver_dir)) == [
        "corp.example", "lab.corp.example", "x.corp.example"
    ]  # fmt: skip
    assert target.read_text() == "precious\n"


def test_macos_backend_applies_split_dns_after_wg_quick_up(paths: DnsPaths, tmp_path: Path) -> None:
    r = ScriptedRunner()
    conf = tmp_path / "conf"
    b = MacOSBackend(r, config_dir=conf, prefix="/opt/homebrew", dns_paths=paths)
    r.on(["/opt/homebrew/bin/wg", "show", "rtw0", "dump"], 1)
    r.on(["/opt/homebrew/bin/wg-quick", "up", str(conf / "rtw0.conf")])
    b.up(spec())
    assert "DNS" not in (conf / "rtw0.conf").read_text()  # no global takeover
    assert (paths.resolver_dir / "corp.example").exists()
    assert b.dns_record("rtw0") == DnsRecord(
        "rtw0", "macos-resolver", ("10.77.0.1", "fd77::1"), ("corp.example", "lab.corp.example")
    )
    r.on(["/opt/homebrew/bin/wg", "show", "rtw0", "dump"], 0, data("wg-show-dump-client.txt"))
    r.on(["/opt/homebrew/bin/wg-quick", "down", str(conf / "rtw0.conf")])
    b.down("rtw0")
    assert not (paths.resolver_dir / "corp.example").exists()
    assert b.dns_record("rtw0") is None


# ----- Windows NRPT ------------------------------------------------------------------------


def test_nrpt_exact_powershell() -> None:
    r = ScriptedRunner()
    add = add_script("rtw0", ("10.77.0.1", "fd77::1"), ("corp.example", "lab.corp.example"))
    assert add == (
        "$ErrorActionPreference = 'Stop'; "
        "Get-DnsClientNrptRule | Where-Object { $_.Comment -eq 'Rustronaut rtw0' } "
        "| Remove-DnsClientNrptRule -Force; "
        "Add-DnsClientNrptRule -Namespace '.corp.example','corp.example' "
        "-NameServers '10.77.0.1','fd77::1' "
        "-Comment 'Rustronaut rtw0'; "
        "Add-DnsClientNrptRule -Namespace '.lab.corp.example','lab.corp.example' "
        "-NameServers '10.77.0.1','fd77::1' "
        "-Comment 'Rustronaut rtw0'; "
        "Clear-DnsClientCache"
    )
    r.on(powershell(add))
    record = apply_split_dns(r, spec(), platform="win32")
    assert r.calls == [tuple(powershell(add))]
    assert r.calls[0][:7] == ("powershell.exe", "-NoLogo", "-NoProfile", "-NonInteractive",
                              "-ExecutionPolicy", "Bypass", "-Command")  # fmt: skip
    assert record.method == "nrpt"
    r.calls.clear()
    remove = remove_script("rtw0") + "; Clear-DnsClientCache"
    r.on(powershell(remove))
    revert_interface(r, "rtw0", platform="win32")  # by comment, no record needed
    assert r.calls == [tuple(powershell(remove))]


def test_nrpt_failure_removes_what_was_added() -> None:
    r = ScriptedRunner()
    add = add_script("rtw0", ("10.77.0.1", "fd77::1"), ("corp.example", "lab.corp.example"))
    r.on(powershell(add), 1, "", "Add-DnsClientNrptRule : Access is denied.")
    with pytest.raises(CommandError):
        apply_split_dns(r, spec(), platform="win32")
    assert r.calls[-1] == tuple(powershell(remove_script("rtw0") + "; Clear-DnsClientCache"))


def test_nrpt_quotes_are_doubled_even_though_specs_cannot_carry_them() -> None:
    assert "'Rustronaut a''b'" in remove_script("a'b")


# ----- records -----------------------------------------------------------------------------


def test_record_roundtrip_0600_and_hostile_records_refused(tmp_path: Path) -> None:
    rec = DnsRecord("rtw0", "resolvconf", ("10.77.0.1",), ("corp.example",), name="tun.rtw0")
    path = save_record(tmp_path / "d", rec)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_record(tmp_path / "d", "rtw0") == rec
    assert load_record(tmp_path / "d", "rtw1") is None
    path.write_text('{"interface": "rtw1", "method": "resolvconf"}')
    assert load_record(tmp_path / "d", "rtw0") is None  # another interface's record
    path.write_text('{"interface": "rtw0", "method": "rm -rf"}')
    assert load_record(tmp_path / "d", "rtw0") is None
    path.write_text("{")
    assert load_record(tmp_path / "d", "rtw0") is None


def test_recorded_resolver_names_never_leave_the_directory(paths: DnsPaths, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text(f"{MARKER}rtw0\n")
    rec = DnsRecord("rtw0", "macos-resolver", ("10.77.0.1",), ("../victim", ".hidden"))
    revert_recorded(ScriptedRunner(), rec, paths=paths)
    assert victim.exists()


# ----- wg-quick backend with split DNS -----------------------------------------------------


def test_wgquick_up_with_suffixes_has_no_dns_line_and_applies_resolved(
    resolved: DnsPaths, tmp_path: Path
) -> None:
    r = ScriptedRunner()
    conf = tmp_path / "conf"
    path = str(conf / "rtw0.conf")
    r.on(["ip", "link", "show", "dev", "rtw0"], 1)
    r.on(["wg-quick", "up", path])
    r.on(["resolvectl", "--no-pager", "status"], 0, "")
    r.on(["resolvectl", "dns", "rtw0", "10.77.0.1", "fd77::1"])
    r.on(["resolvectl", "domain", "rtw0", "~corp.example", "~lab.corp.example"])
    r.on(["resolvectl", "default-route", "rtw0", "false"])
    r.on(["resolvectl", "--no-pager", "status", "rtw0"], 0, SPLIT)
    b = WgQuickBackend(r, config_dir=conf, dns_paths=resolved)
    b.up(spec())
    assert "DNS" not in (conf / "rtw0.conf").read_text()
    assert b.dns_record("rtw0") is not None
    # down: DNS first (the link still exists), then wg-quick down
    r.calls.clear()
    r.on(["resolvectl", "revert", "rtw0"])
    r.on(["wg", "show", "rtw0", "dump"], 0, data("wg-show-dump-client.txt"))
    r.on(["wg-quick", "down", path])
    b.down("rtw0")
    assert r.calls == [
        ("resolvectl", "revert", "rtw0"),
        ("wg", "show", "rtw0", "dump"),
        ("wg-quick", "down", path),
    ]
    assert b.dns_record("rtw0") is None


def test_wgquick_up_dns_failure_tears_the_tunnel_down(resolved: DnsPaths, tmp_path: Path) -> None:
    r = ScriptedRunner()
    conf = tmp_path / "conf"
    path = str(conf / "rtw0.conf")
    r.on(["ip", "link", "show", "dev", "rtw0"], 1)
    r.on(["wg-quick", "up", path])
    r.on(["resolvectl", "--no-pager", "status"], 0, "")
    r.on(["resolvectl", "dns", "rtw0", "10.77.0.1", "fd77::1"], 1, "", "Failed to set DNS")
    r.on(["resolvectl", "revert", "rtw0"])
    r.on(["wg-quick", "down", path])
    r.on(["ip", "link", "show", "dev", "rtw0"], 1)
    with pytest.raises(CommandError, match="Failed to set DNS"):
        WgQuickBackend(r, config_dir=conf, dns_paths=resolved).up(spec())
    assert ("wg-quick", "down", path) in r.calls
    assert not (conf / "rtw0.conf").exists()


def test_wgquick_purge_reverts_split_dns_without_a_record(
    resolved: DnsPaths, tmp_path: Path
) -> None:
    r = ScriptedRunner()
    r.on(["wg", "show", "rtw0", "dump"], 1, "", data("wg-show-dump-missing.txt"))
    r.on(["resolvectl", "--no-pager", "status"], 0, "")
    r.on(["resolvectl", "revert", "rtw0"])
    WgQuickBackend(r, config_dir=tmp_path, dns_paths=resolved).purge("rtw0")
    assert ("resolvectl", "revert", "rtw0") in r.calls
