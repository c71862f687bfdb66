"""Backends with a scripted runner: exact command lines, all-or-nothing, real outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.wg_backends.fakes import ScriptedRunner, data
from tests.wg_backends.keys import PRIV, PUB
from wg_backends.backends import WireGuardBackend, backend_class, select_backend
from wg_backends.backends.macos import MacOSBackend, parse_scutil_nc_list
from wg_backends.backends.networkmanager import (
    NetworkManagerBackend,
    parse_nmcli_import,
    parse_nmcli_terse,
)
from wg_backends.backends.wgquick import WgQuickBackend
from wg_backends.backends.windows import WindowsBackend, parse_sc_query
from wg_backends.dns import DnsPaths
from wg_backends.errors import BackendError, BackendUnavailable, CommandError, TunnelStateError
from wg_backends.spec import PeerSpec, TunnelSpec

pytestmark = pytest.mark.unit

DUMP = data("wg-show-dump-client.txt")


def spec(name: str = "rtw0") -> TunnelSpec:
    return TunnelSpec(
        interface=name,
        addresses=("10.232.0.2/32",),
        peers=(
            PeerSpec(public_key=PUB, endpoint="10.231.0.1:51820", allowed_ips=("10.233.0.0/24",)),
        ),
        private_key=PRIV,
    )


# ----- wg-quick ------------------------------------------------------------------------


def test_wgquick_up_exact_argv_and_config(tmp_path: Path) -> None:
    r = ScriptedRunner()
    conf = tmp_path / "conf"
    r.on(["ip", "link", "show", "dev", "rtw0"], 1, "", 'Device "rtw0" does not exist.')
    r.on(["wg-quick", "up", str(conf / "rtw0.conf")])
    WgQuickBackend(r, config_dir=conf).up(spec())
    assert r.calls == [("ip", "link", "show", "dev", "rtw0"),
                       ("wg-quick", "up", str(conf / "rtw0.conf"))]  # fmt: skip
    assert "PrivateKey = " + PRIV in (conf / "rtw0.conf").read_text()


def test_wgquick_up_failure_tears_down_everything(tmp_path: Path) -> None:
    r = ScriptedRunner()
    conf = tmp_path / "conf"
    path = str(conf / "rtw0.conf")
    r.on(["ip", "link", "show", "dev", "rtw0"], 1)
    r.on(["wg-quick", "up", path], 1, "", "RTNETLINK answers: File exists")
    r.on(["wg-quick", "down", path], 0)
    r.on(["ip", "link", "show", "dev", "rtw0"], 1)
    with pytest.raises(CommandError) as err:
        WgQuickBackend(r, config_dir=conf).up(spec())
    assert err.value.argv == ("wg-quick", "up", path)
    assert err.value.returncode == 1
    assert "File exists" in err.value.stderr
    assert r.calls[-2:] == [("wg-quick", "down", path), ("ip", "link", "show", "dev", "rtw0")]
    assert not (conf / "rtw0.conf").exists()


def test_wgquick_refuses_existing_interface_and_touches_nothing(tmp_path: Path) -> None:
    r = ScriptedRunner()
    r.on(["ip", "link", "show", "dev", "eth0"], 0, "2: eth0: <BROADCAST> ...")
    with pytest.raises(TunnelStateError, match="exists"):
        WgQuickBackend(r, config_dir=tmp_path / "c").up(spec("eth0"))
    assert r.calls == [("ip", "link", "show", "dev", "eth0")]
    assert not (tmp_path / "c").exists()


def test_wgquick_down_and_idempotence(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir(mode=0o700)
    (conf / "rtw0.conf").write_text("x")
    r = ScriptedRunner()
    r.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    r.on(["wg-quick", "down", str(conf / "rtw0.conf")])
    b = WgQuickBackend(r, config_dir=conf)
    b.down("rtw0")
    assert ("wg-quick", "down", str(conf / "rtw0.conf")) in r.calls
    assert not (conf / "rtw0.conf").exists()
    r.calls.clear()
    r.on(["wg", "show", "rtw0", "dump"], 1, "", data("wg-show-dump-missing.txt"))
    r.on(["wg", "show", "rtw0", "dump"], 1, "", data("wg-show-dump-missing.txt"))
    b.down("rtw0")  # nothing there: only idempotent clean-up of what a crash may leave
    assert not any(c[0] == "wg-quick" or c[:3] == ("ip", "link", "delete") for c in r.calls)


def test_wgquick_down_without_config_deletes_interface(tmp_path: Path) -> None:
    r = ScriptedRunner()
    r.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    r.on(["ip", "link", "show", "dev", "rtw0"], 0, "7: rtw0: <POINTOPOINT,NOARP,UP>")
    r.on(["ip", "link", "delete", "dev", "rtw0"])
    WgQuickBackend(r, config_dir=tmp_path).down("rtw0")
    assert ("ip", "link", "delete", "dev", "rtw0") in r.calls


RULES_FULL = """0:\tfrom all lookup local
32764:\tfrom all lookup main suppress_prefixlength 0
32765:\tnot from all fwmark 0xca6c lookup 51820
32766:\tfrom all lookup main
"""
RULES_CLEAN = "0:\tfrom all lookup local\n32766:\tfrom all lookup main\n"


def test_wgquick_purge_from_the_record_alone(tmp_path: Path) -> None:
    """After a crash: no config, no interface; DNS record, rules and nft tables remain."""
    r = ScriptedRunner()
    r.on(["wg", "show", "rtw0", "dump"], 1, "", data("wg-show-dump-missing.txt"))
    r.on(["resolvconf", "-d", "rtw0", "-f"])
    r.on(["ip", "link", "show", "dev", "rtw0"], 1, "", 'Device "rtw0" does not exist.')
    for proto in ("-4", "-6"):
        r.on(["ip", proto, "rule", "show"], 0, RULES_FULL)
        r.on(["ip", proto, "rule", "delete", "table", "51820"])
        r.on(["ip", proto, "rule", "show"], 0, RULES_FULL.replace(
            "32765:\tnot from all fwmark 0xca6c lookup 51820\n", ""))  # fmt: skip
        r.on(["ip", proto, "rule", "show"], 0, RULES_FULL.replace(
            "32765:\tnot from all fwmark 0xca6c lookup 51820\n", ""))  # fmt: skip
        r.on(["ip", proto, "rule", "delete", "table", "main", "suppress_prefixlength", "0"])
        r.on(["ip", proto, "rule", "show"], 0, RULES_CLEAN)
    r.on(["nft", "list", "tables"], 0, "table ip wg-quick-rtw0\ntable ip6 wg-quick-rtw0\n")
    r.on(["nft", "delete", "table", "ip", "wg-quick-rtw0"])
    r.on(["nft", "delete", "table", "ip6", "wg-quick-rtw0"])
    no_resolved = DnsPaths(resolved_socket=tmp_path / "no-resolved")  # whatever this host runs
    WgQuickBackend(r, config_dir=tmp_path, dns_paths=no_resolved).purge("rtw0", table=51820)
    assert [c for c in r.calls if c[-1] != "show" and c[:2] != ("wg", "show")] == [
        ("resolvconf", "-d", "rtw0", "-f"),
        ("ip", "link", "show", "dev", "rtw0"),
        ("ip", "-4", "rule", "delete", "table", "51820"),
        ("ip", "-4", "rule", "delete", "table", "main", "suppress_prefixlength", "0"),
        ("ip", "-6", "rule", "delete", "table", "51820"),
        ("ip", "-6", "rule", "delete", "table", "main", "suppress_prefixlength", "0"),
        ("nft", "list", "tables"),
        ("nft", "delete", "table", "ip", "wg-quick-rtw0"),
        ("nft", "delete", "table", "ip6", "wg-quick-rtw0"),
    ]
    assert r.script == []  # every scripted step was used


def test_wgquick_purge_keeps_the_rule_another_full_tunnel_needs(tmp_path: Path) -> None:
    other = RULES_FULL.replace("0xca6c lookup 51820", "0xca6d lookup 51821")
    r = ScriptedRunner()
    r.on(
        ["ip", "-4", "rule", "show"],
        0,
        RULES_FULL + "32763:\tnot from all fwmark 0xca6d lookup 51821\n",
    )
    r.on(["ip", "-4", "rule", "delete", "table", "51820"])
    r.on(["ip", "-4", "rule", "show"], 0, other)
    r.on(["ip", "-4", "rule", "show"], 0, other)
    WgQuickBackend(r, config_dir=tmp_path)._delete_rules("-4", 51820)
    assert (
        "ip",
        "-4",
        "rule",
        "delete",
        "table",
        "main",
        "suppress_prefixlength",
        "0",
    ) not in r.calls


def test_wgquick_status_and_env_passed(tmp_path: Path) -> None:
    r = ScriptedRunner()
    r.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    st = WgQuickBackend(r, config_dir=tmp_path).status("rtw0")
    assert st.up
    assert st.backend == "wg-quick"
    assert st.tx_bytes == 932
    r.on(["wg", "show", "rtw0", "dump"], 1)
    assert not WgQuickBackend(r, config_dir=tmp_path).status("rtw0").up


def test_wgquick_available() -> None:
    r = ScriptedRunner()
    r.on(["wg", "--version"], 0, "wireguard-tools v1.0.20210914")
    r.on(["wg-quick"], 1, "", "Usage: wg-quick [ up | down | save | strip ]")
    assert WgQuickBackend(r).available()
    assert not WgQuickBackend(ScriptedRunner()).available()


# ----- macOS ---------------------------------------------------------------------------


def test_macos_uses_homebrew_paths_and_userspace_env(tmp_path: Path) -> None:
    r = ScriptedRunner()
    b = MacOSBackend(r, config_dir=tmp_path / "c", prefix="/opt/homebrew")
    r.on(["/opt/homebrew/bin/wg", "show", "office", "dump"], 1)
    r.on(["/opt/homebrew/bin/wg-quick", "up", str(tmp_path / "c" / "office.conf")])
    b.up(spec("office"))
    assert r.calls[-1] == ("/opt/homebrew/bin/wg-quick", "up", str(tmp_path / "c/office.conf"))
    env = r.envs[-1]
    assert env is not None
    assert env["WG_QUICK_USERSPACE_IMPLEMENTATION"] == "/opt/homebrew/bin/wireguard-go"
    assert env["PATH"].startswith("/opt/homebrew/bin:")


def test_scutil_nc_list_finds_only_wireguard_app_tunnels() -> None:
    tunnels = parse_scutil_nc_list(data("scutil-nc-list.txt"))
    assert [(t.name, t.state, t.enabled) for t in tunnels] == [
        ("office", "Disconnected", True),
        ("home lab", "Connected", True),
    ]
    r = ScriptedRunner()
    r.on(["scutil", "--nc", "list"], 0, data("scutil-nc-list.txt"))
    assert len(MacOSBackend(r, prefix="/usr/local").app_tunnels()) == 2
    assert MacOSBackend(ScriptedRunner(), prefix="/usr/local").app_tunnels() == ()


# ----- Windows -------------------------------------------------------------------------

WG_EXE = r"C:\Program Files\WireGuard\wg.exe"
WIREGUARD_EXE = r"C:\Program Files\WireGuard\wireguard.exe"


@pytest.mark.parametrize(
    ("name", "state"),
    [("sc-query-running.txt", "RUNNING"), ("sc-query-start-pending.txt", "START_PENDING"),
     ("sc-query-stopped.txt", "STOPPED"), ("sc-query-missing.txt", None)],
)  # fmt: skip
def test_parse_sc_query(name: str, state: str | None) -> None:
    assert parse_sc_query(data(name)) == state


def test_windows_up_waits_for_running(tmp_path: Path) -> None:
    r = ScriptedRunner()
    svc = ["sc", "query", "WireGuardTunnel$rtw0"]
    r.on(svc, 1060, data("sc-query-missing.txt"))
    r.on([WIREGUARD_EXE, "/installtunnelservice", str(tmp_path / "rtw0.conf")])
    r.on(svc, 0, data("sc-query-start-pending.txt"))
    r.on(svc, 0, data("sc-query-running.txt"))
    WindowsBackend(r, config_dir=tmp_path).up(spec())
    assert r.calls[1] == (WIREGUARD_EXE, "/installtunnelservice", str(tmp_path / "rtw0.conf"))
    assert r.calls.count(tuple(svc)) == 3


def test_windows_up_failure_uninstalls(tmp_path: Path) -> None:
    r = ScriptedRunner()
    svc = ["sc", "query", "WireGuardTunnel$rtw0"]
    r.on(svc, 1060, data("sc-query-missing.txt"))
    r.on([WIREGUARD_EXE, "/installtunnelservice", str(tmp_path / "rtw0.conf")])
    r.on(svc, 0, data("sc-query-stopped.txt"))
    r.on([WIREGUARD_EXE, "/uninstalltunnelservice", "rtw0"])
    with pytest.raises(BackendError, match="did not start"):
        WindowsBackend(r, config_dir=tmp_path).up(spec())
    assert r.calls[-1] == (WIREGUARD_EXE, "/uninstalltunnelservice", "rtw0")
    assert not (tmp_path / "rtw0.conf").exists()


def test_windows_status_and_down(tmp_path: Path) -> None:
    r = ScriptedRunner()
    svc = ["sc", "query", "WireGuardTunnel$rtw0"]
    r.on(svc, 0, data("sc-query-running.txt"))
    r.on([WG_EXE, "show", "rtw0", "dump"], 0, DUMP)
    st = WindowsBackend(r, config_dir=tmp_path).status("rtw0")
    assert st.up
    assert st.state == "RUNNING"
    assert st.rx_bytes == 1932
    r.on(svc, 0, data("sc-query-running.txt"))
    r.on([WIREGUARD_EXE, "/uninstalltunnelservice", "rtw0"])
    WindowsBackend(r, config_dir=tmp_path).down("rtw0")
    assert r.calls[-1] == (WIREGUARD_EXE, "/uninstalltunnelservice", "rtw0")
    r.on(svc, 1060, data("sc-query-missing.txt"))
    assert not WindowsBackend(r, config_dir=tmp_path).status("rtw0").up


# ----- NetworkManager ------------------------------------------------------------------

LIST = ["nmcli", "-t", "-f", "NAME,UUID,TYPE,DEVICE,STATE", "connection", "show"]
UUID = "7f3c2a8e-5c1d-4b6e-9a0f-2d4e6b8c1a3f"


def test_nmcli_parsers() -> None:
    rows = parse_nmcli_terse(data("nmcli-connection-show-active.txt"))
    assert rows[2].name == "Cafe: Guest"
    assert rows[2].device == ""
    assert rows[1].type == "wireguard"
    assert rows[1].state == "activated"
    assert parse_nmcli_import(data("nmcli-import.txt")) == UUID
    with pytest.raises(BackendError):
        parse_nmcli_import("Error: something")
    with pytest.raises(BackendError):
        parse_nmcli_terse("a:b\n")


def test_nm_up_exact_argv(tmp_path: Path) -> None:
    r = ScriptedRunner()
    r.on(LIST, 0, data("nmcli-connection-show-active.txt").replace("rtw0", "other"))
    path = str(tmp_path / "rtw0.conf")
    r.on(["nmcli", "connection", "import", "type", "wireguard", "file", path], 0,
         data("nmcli-import.txt"))  # fmt: skip
    r.on(["nmcli", "connection", "modify", "uuid", UUID, "connection.autoconnect", "no"])
    r.on(["nmcli", "connection", "up", "uuid", UUID])
    NetworkManagerBackend(r, config_dir=tmp_path).up(spec())
    assert r.calls[1:] == [
        ("nmcli", "connection", "import", "type", "wireguard", "file", path),
        ("nmcli", "connection", "modify", "uuid", UUID, "connection.autoconnect", "no"),
        ("nmcli", "connection", "up", "uuid", UUID),
    ]
    assert not (tmp_path / "rtw0.conf").exists()  # NetworkManager keeps its own copy


def test_nm_up_failure_deletes_connection(tmp_path: Path) -> None:
    r = ScriptedRunner()
    r.on(LIST, 0, "")
    path = str(tmp_path / "rtw0.conf")
    r.on(["nmcli", "connection", "import", "type", "wireguard", "file", path], 0,
         data("nmcli-import.txt"))  # fmt: skip
    r.on(["nmcli", "connection", "modify", "uuid", UUID, "connection.autoconnect", "no"])
    r.on(["nmcli", "connection", "up", "uuid", UUID], 4, "", data("nmcli-up-failed.txt"))
    r.on(["nmcli", "connection", "delete", "uuid", UUID])
    with pytest.raises(CommandError, match="activation failed"):
        NetworkManagerBackend(r, config_dir=tmp_path).up(spec())
    assert r.calls[-1] == ("nmcli", "connection", "delete", "uuid", UUID)
    assert not (tmp_path / "rtw0.conf").exists()


def test_nm_status_down(tmp_path: Path) -> None:
    r = ScriptedRunner()
    r.on(LIST, 0, data("nmcli-connection-show-active.txt"))
    r.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    st = NetworkManagerBackend(r, config_dir=tmp_path).status("rtw0")
    assert st.up
    assert st.state == "activated"
    assert st.backend == "networkmanager"
    assert st.rx_bytes == 1932
    r.on(LIST, 0, data("nmcli-connection-show-inactive.txt"))
    assert not NetworkManagerBackend(r, config_dir=tmp_path).status("rtw0").up
    r.on(LIST, 0, data("nmcli-connection-show-active.txt"))
    r.on(["nmcli", "connection", "down", "uuid", UUID])
    r.on(["nmcli", "connection", "delete", "uuid", UUID])
    NetworkManagerBackend(r, config_dir=tmp_path).down("rtw0")
    assert r.calls[-2:] == [("nmcli", "connection", "down", "uuid", UUID),
                            ("nmcli", "connection", "delete", "uuid", UUID)]  # fmt: skip
    r.on(LIST, 0, "")
    NetworkManagerBackend(r, config_dir=tmp_path).down("rtw0")  # idempotent
    assert r.calls[-1] == tuple(LIST)


def test_nm_available() -> None:
    r = ScriptedRunner()
    r.on(["nmcli", "-t", "-f", "RUNNING", "general"], 0, data("nmcli-general-running.txt"))
    assert NetworkManagerBackend(r).available()
    assert not NetworkManagerBackend(ScriptedRunner()).available()


# ----- factory -------------------------------------------------------------------------


def test_factory_ranks_and_falls_back() -> None:
    r = ScriptedRunner()
    r.on(["nmcli", "-t", "-f", "RUNNING", "general"], 0, "running\n")
    b = select_backend(runner=r, platform="linux")  # wg-quick unavailable in this script
    assert b.name == "networkmanager"
    assert isinstance(b, WireGuardBackend)
    r.on(["wg", "--version"], 0, "wireguard-tools")
    r.on(["wg-quick"], 1, "", "Usage: wg-quick")
    assert select_backend(runner=r, platform="linux").name == "wg-quick"
    with pytest.raises(BackendUnavailable, match="tried: windows"):
        select_backend(runner=ScriptedRunner(), platform="win32")
    with pytest.raises(BackendUnavailable, match="none"):
        select_backend(runner=ScriptedRunner(), platform="sunos5")
    assert backend_class("windows") is WindowsBackend
    with pytest.raises(KeyError):
        backend_class("nope")


def test_factory_preferred_first() -> None:
    r = ScriptedRunner()
    r.on(["nmcli", "-t", "-f", "RUNNING", "general"], 0, "running\n")
    assert select_backend("networkmanager", runner=r, platform="linux").name == "networkmanager"
    assert r.calls[0][0] == "nmcli"
