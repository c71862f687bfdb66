"""Hitless ``update`` with a scripted runner: exact commands per backend, the syncconf file's
exact text, roll-back on failure, and the documented down + up fallbacks."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec
import pytest

from tests.wg_backends.fakes import ScriptedRunner, data
from tests.wg_backends.keys import PRIV, PUB
from wg_backends.backends.macos import MacOSBackend
from wg_backends.backends.networkmanager import NetworkManagerBackend, dns_properties
from wg_backends.backends.wgquick import WgQuickBackend
from wg_backends.backends.windows import WindowsBackend, route_script
from wg_backends.dns import DnsPaths
from wg_backends.dns.nrpt import add_script, powershell, remove_script
from wg_backends.errors import CommandError, SpecError, TunnelStateError
from wg_backends.render import write_config
from wg_backends.runner import CommandResult
from wg_backends.spec import PeerSpec, TunnelSpec

pytestmark = pytest.mark.unit

GW = "Z5pkh0h+v3d7J+LB8I/Zk25bQ8R6heAOq4GQROYl9iQ="  # the peer of wg-show-dump-client.txt
DUMP = data("wg-show-dump-client.txt")  # listen port 60185, fwmark off


class SyncRunner(ScriptedRunner):
    """A scripted runner that also keeps the text of every file given to ``syncconf``."""

    def __init__(self) -> None:
        super().__init__()
        self.synced: list[str] = []
        self.fail_syncs = 0  # how many syncconf calls fail (then succeed)

    def __call__(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        if len(argv) == 4 and argv[1] == "syncconf":
            path = Path(argv[3])
            assert oct(path.stat().st_mode & 0o777) == "0o600"
            self.synced.append(path.read_text())
            # The file's name is per process: answer whatever it is.
            if self.fail_syncs:
                self.fail_syncs -= 1
                self.on(argv, 1, "", "Unable to modify interface: Protocol not supported")
            else:
                self.on(argv)
        return super().__call__(argv, check=check, env=env, timeout=timeout)


def spec(*allowed: str, peers: tuple[PeerSpec, ...] = (), **kw: object) -> TunnelSpec:
    gw = PeerSpec(
        public_key=GW,
        endpoint="10.231.0.1:51820",
        allowed_ips=allowed or ("10.232.0.0/24", "10.233.0.0/24"),
        persistent_keepalive=25,
    )
    base = TunnelSpec(
        interface="rtw0",
        addresses=("10.232.0.2/32",),
        peers=(gw, *peers),
        private_key=PRIV,
        mtu=1420,
    )
    return msgspec.structs.replace(base, **kw) if kw else base


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    directory = tmp_path / "conf"
    write_config(spec(), directory)  # what `up` left: the running tunnel's config
    return directory


def backend(r: ScriptedRunner, conf: Path, tmp_path: Path) -> WgQuickBackend:
    return WgQuickBackend(
        r, config_dir=conf, dns_paths=DnsPaths(resolved_socket=tmp_path / "no-resolved")
    )


# Real `ip -o` outputs (wireguard-go interface in a namespace; note its IPv6 link-local).
ADDR = (
    "2: rtw0    inet 10.232.0.2/32 scope global rtw0\\       valid_lft forever "
    "preferred_lft forever\n"
    "2: rtw0    inet6 fe80::d568:414e:8b3c:d2e2/64 scope link stable-privacy \\       "
    "valid_lft forever preferred_lft forever\n"
)
LINK = (
    "2: rtw0: <POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP> mtu 1420 qdisc pfifo_fast state "
    "UNKNOWN mode DEFAULT group default qlen 500\\    link/none \n"
)


def script_common(r: ScriptedRunner, *, fwmark: str = "off") -> None:
    r.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    r.on(["wg", "show", "rtw0", "fwmark"], 0, fwmark + "\n")
    r.on(["ip", "-o", "address", "show", "dev", "rtw0"], 0, ADDR)
    r.on(["ip", "-o", "link", "show", "dev", "rtw0"], 0, LINK)
    r.on(["wg", "show", "rtw0", "dump"], 0, DUMP)


def test_update_exact_commands_and_syncconf_text(conf: Path, tmp_path: Path) -> None:
    r = SyncRunner()
    script_common(r)
    r.on(["ip", "-4", "route", "replace", "10.240.0.0/16", "dev", "rtw0"])
    r.on(["ip", "-6", "route", "replace", "fd10::/64", "dev", "rtw0"])
    r.on(["ip", "-4", "route", "del", "10.233.0.0/24", "dev", "rtw0"])
    new = spec("10.232.0.0/24", "10.240.0.0/16", "fd10::/64")
    b = backend(r, conf, tmp_path)
    status = b.update(new)
    assert status.up
    calls = [c for c in r.calls if c[:3] != ("wg", "syncconf", "rtw0")]
    syncs = [c for c in r.calls if c[:3] == ("wg", "syncconf", "rtw0")]
    assert len(syncs) == 1
    assert Path(syncs[0][3]).parent == conf
    assert not Path(syncs[0][3]).exists()  # removed after
    assert calls == [
        ("wg", "show", "rtw0", "dump"),
        ("wg", "show", "rtw0", "fwmark"),
        ("ip", "-4", "route", "replace", "10.240.0.0/16", "dev", "rtw0"),
        ("ip", "-6", "route", "replace", "fd10::/64", "dev", "rtw0"),
        ("ip", "-4", "route", "del", "10.233.0.0/24", "dev", "rtw0"),
        ("ip", "-o", "address", "show", "dev", "rtw0"),
        ("ip", "-o", "link", "show", "dev", "rtw0"),
        ("wg", "show", "rtw0", "dump"),
    ]
    assert r.synced == [
        f"[Interface]\nPrivateKey = {PRIV}\nListenPort = 60185\n\n[Peer]\nPublicKey = {GW}\n"
        "Endpoint = 10.231.0.1:51820\nAllowedIPs = 10.232.0.0/24, 10.240.0.0/16, fd10::/64\n"
        "PersistentKeepalive = 25\n"
    ]
    assert "10.240.0.0/16" in (conf / "rtw0.conf").read_text()  # `down` sees the new state


def test_update_addresses_and_mtu_in_place(conf: Path, tmp_path: Path) -> None:
    r = SyncRunner()
    script_common(r)
    r.on(["ip", "-4", "address", "add", "10.232.0.9/32", "dev", "rtw0"])
    r.on(["ip", "-4", "address", "del", "10.232.0.2/32", "dev", "rtw0"])
    r.on(["ip", "link", "set", "mtu", "1380", "up", "dev", "rtw0"])
    b = backend(r, conf, tmp_path)
    b.update(spec(addresses=("10.232.0.9/32",), mtu=1380))
    assert r.calls.index(("ip", "-4", "address", "add", "10.232.0.9/32", "dev", "rtw0")) < (
        r.calls.index(("ip", "-4", "address", "del", "10.232.0.2/32", "dev", "rtw0"))
    )  # never without an address
    assert ("ip", "link", "set", "mtu", "1380", "up", "dev", "rtw0") in r.calls


def test_full_tunnel_update_carries_the_fwmark(conf: Path, tmp_path: Path) -> None:
    full_dump = DUMP.replace("\toff\n", "\t0xca6c\n", 1).replace(
        "10.232.0.0/24,10.233.0.0/24", "0.0.0.0/0,::/0"
    )
    write_config(spec("0.0.0.0/0", "::/0"), conf)
    r = SyncRunner()
    r.on(["wg", "show", "rtw0", "dump"], 0, full_dump)
    r.on(["wg", "show", "rtw0", "fwmark"], 0, "0xca6c\n")
    r.on(["ip", "-o", "address", "show", "dev", "rtw0"], 0, ADDR)
    r.on(["ip", "-o", "link", "show", "dev", "rtw0"], 0, LINK)
    r.on(["wg", "show", "rtw0", "dump"], 0, full_dump)
    b = backend(r, conf, tmp_path)
    extra = PeerSpec(public_key=PUB, endpoint="10.231.0.9:51820", allowed_ips=("10.99.0.0/24",))
    r.on(["ip", "-4", "route", "replace", "10.99.0.0/24", "dev", "rtw0"])
    b.update(spec("0.0.0.0/0", "::/0", peers=(extra,)))
    assert "FwMark = 51820\n" in r.synced[0]
    assert not any(c[:2] == ("wg-quick", "down") for c in r.calls)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (("10.232.0.0/24",), ("0.0.0.0/0", "::/0")),  # split -> full
        (("0.0.0.0/0", "::/0"), ("10.232.0.0/24",)),  # full -> split
        (("::/0", "10.232.0.0/24"), ("10.232.0.0/24",)),  # IPv6 full -> split
    ],
)
def test_split_full_change_falls_back_to_down_up(
    conf: Path, tmp_path: Path, old: tuple[str, ...], new: tuple[str, ...]
) -> None:
    write_config(spec(*old), conf)
    dump = DUMP.replace("10.232.0.0/24,10.233.0.0/24", ",".join(old))
    r = ScriptedRunner()
    path = str(conf / "rtw0.conf")
    r.on(["wg", "show", "rtw0", "dump"], 0, dump)  # update's look
    r.on(["wg", "show", "rtw0", "dump"], 0, dump)  # down's look
    r.on(["wg-quick", "down", path])
    r.on(["ip", "link", "show", "dev", "rtw0"], 1)
    r.on(["wg-quick", "up", path])
    r.on(["wg", "show", "rtw0", "dump"], 0, dump)
    backend(r, conf, tmp_path).update(spec(*new))
    assert [c[:2] for c in r.calls if c[0] == "wg-quick"] == [
        ("wg-quick", "down"),
        ("wg-quick", "up"),
    ]


def test_global_dns_change_falls_back_but_equal_dns_does_not(conf: Path, tmp_path: Path) -> None:
    write_config(spec(dns=("10.232.0.1",)), conf)
    r = SyncRunner()
    script_common(r)
    b = backend(r, conf, tmp_path)
    b.update(spec(dns=("10.232.0.1",)))
    assert not any(c[0] == "wg-quick" for c in r.calls)
    r2 = ScriptedRunner()
    path = str(conf / "rtw0.conf")
    r2.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    r2.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    r2.on(["wg-quick", "down", path])
    r2.on(["ip", "link", "show", "dev", "rtw0"], 1)
    r2.on(["wg-quick", "up", path])
    r2.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    backend(r2, conf, tmp_path).update(spec(dns=("10.232.0.53",)))
    assert ("wg-quick", "up", path) in r2.calls


def test_syncconf_failure_changes_nothing_else(conf: Path, tmp_path: Path) -> None:
    before = (conf / "rtw0.conf").read_text()
    r = SyncRunner()
    r.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    r.on(["wg", "show", "rtw0", "fwmark"], 0, "off\n")
    b = backend(r, conf, tmp_path)
    r.fail_syncs = 1
    with pytest.raises(CommandError, match="Protocol not supported"):
        b.update(spec("10.232.0.0/24", "10.240.0.0/16"))
    assert not any(c[0] == "ip" for c in r.calls)
    assert (conf / "rtw0.conf").read_text() == before
    assert sorted(p.name for p in conf.iterdir()) == ["rtw0.conf"]  # no temp file left


def test_route_failure_rolls_back_peers_and_routes(conf: Path, tmp_path: Path) -> None:
    before = (conf / "rtw0.conf").read_text()
    r = SyncRunner()
    r.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    r.on(["wg", "show", "rtw0", "fwmark"], 0, "off\n")
    r.on(["ip", "-4", "route", "replace", "10.240.0.0/16", "dev", "rtw0"])
    r.on(["ip", "-4", "route", "replace", "10.241.0.0/16", "dev", "rtw0"], 2, "", "No buffer space")
    r.on(["ip", "-4", "route", "del", "10.240.0.0/16", "dev", "rtw0"])
    b = backend(r, conf, tmp_path)
    with pytest.raises(CommandError, match="No buffer space"):
        b.update(spec("10.232.0.0/24", "10.233.0.0/24", "10.240.0.0/16", "10.241.0.0/16"))
    assert len(r.synced) == 2  # the new config, then the old one back
    assert "10.240.0.0/16" in r.synced[0]
    assert "AllowedIPs = 10.232.0.0/24, 10.233.0.0/24\n" in r.synced[1]
    assert "ListenPort = 60185\n" in r.synced[1]
    assert "Address" not in r.synced[1]
    assert r.calls[-1] == ("ip", "-4", "route", "del", "10.240.0.0/16", "dev", "rtw0")
    assert (conf / "rtw0.conf").read_text() == before


def test_update_refusals(conf: Path, tmp_path: Path) -> None:
    r = ScriptedRunner()
    r.on(["wg", "show", "rtw1", "dump"], 1, "", data("wg-show-dump-missing.txt"))
    with pytest.raises(TunnelStateError, match="bring it up"):
        backend(r, conf, tmp_path).update(spec(interface="rtw1"))
    with pytest.raises(SpecError, match="private_key"):
        backend(ScriptedRunner(), conf, tmp_path).update(spec(private_key=None))
    # a live interface of that name that we did not bring up (no config of ours)
    (conf / "rtw0.conf").unlink()
    r = ScriptedRunner()
    r.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    with pytest.raises(TunnelStateError):
        backend(r, conf, tmp_path).update(spec())
    assert r.calls == [("wg", "show", "rtw0", "dump")]


# ----- Windows: wg.exe syncconf + routes on the adapter ------------------------------------

PROGRAM = r"C:\Program Files\WireGuard"
WG_EXE = PROGRAM + r"\wg.exe"
WIREGUARD_EXE = PROGRAM + r"\wireguard.exe"
SVC = ["sc", "query", "WireGuardTunnel$rtw0"]


class WinRunner(SyncRunner):
    """SyncRunner for wg.exe (its syncconf argv starts with the full path)."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        if len(argv) == 4 and argv[0] == WG_EXE and argv[1] == "syncconf":
            return super().__call__(["wg", *argv[1:]], check=check, env=env, timeout=timeout)
        return super().__call__(argv, check=check, env=env, timeout=timeout)


def win_status(r: ScriptedRunner, dump: str = DUMP) -> None:
    r.on(SVC, 0, data("sc-query-running.txt"))
    r.on([WG_EXE, "show", "rtw0", "dump"], 0, dump)


def test_windows_update_syncconf_and_routes_exact(tmp_path: Path) -> None:
    conf = tmp_path / "c"
    write_config(spec(), conf)
    r = WinRunner()
    win_status(r)
    routes = route_script(
        "rtw0",
        [ipaddress.ip_network("10.240.0.0/16"), ipaddress.ip_network("fd10::/64")],
        [ipaddress.ip_network("10.233.0.0/24")],
    )
    assert routes == (
        "$ErrorActionPreference = 'Stop'; "
        "New-NetRoute -InterfaceAlias 'rtw0' -DestinationPrefix '10.240.0.0/16' -RouteMetric 0 "
        "-PolicyStore ActiveStore | Out-Null; "
        "New-NetRoute -InterfaceAlias 'rtw0' -DestinationPrefix 'fd10::/64' -RouteMetric 0 "
        "-PolicyStore ActiveStore | Out-Null; "
        "Remove-NetRoute -InterfaceAlias 'rtw0' -DestinationPrefix '10.233.0.0/24' "
        "-Confirm:$false -ErrorAction SilentlyContinue"
    )
    r.on(powershell(routes))
    win_status(r)
    b = WindowsBackend(r, config_dir=conf)
    st = b.update(spec("10.232.0.0/24", "10.240.0.0/16", "fd10::/64"))
    assert st.up
    assert not any(c[0] == WIREGUARD_EXE for c in r.calls)  # the service stays
    assert r.synced == [
        f"[Interface]\nPrivateKey = {PRIV}\nListenPort = 60185\n\n[Peer]\nPublicKey = {GW}\n"
        "Endpoint = 10.231.0.1:51820\nAllowedIPs = 10.232.0.0/24, 10.240.0.0/16, fd10::/64\n"
        "PersistentKeepalive = 25\n"
    ]
    assert "10.240.0.0/16" in (conf / "rtw0.conf").read_text()  # a service restart agrees
    assert sorted(p.name for p in conf.iterdir()) == ["rtw0.conf"]


def test_windows_update_route_failure_restores_everything(tmp_path: Path) -> None:
    conf = tmp_path / "c"
    write_config(spec(), conf)
    before = (conf / "rtw0.conf").read_text()
    r = WinRunner()
    win_status(r)
    add = [ipaddress.ip_network("10.240.0.0/16")]
    r.on(powershell(route_script("rtw0", add, [])), 1, "", "New-NetRoute : Access is denied.")
    r.on(powershell(route_script("rtw0", [], add)))
    with pytest.raises(CommandError, match="Access is denied"):
        WindowsBackend(r, config_dir=conf).update(
            spec("10.232.0.0/24", "10.233.0.0/24", "10.240.0.0/16")
        )
    assert len(r.synced) == 2
    assert "AllowedIPs = 10.232.0.0/24, 10.233.0.0/24\n" in r.synced[1]
    assert r.calls[-1] == tuple(powershell(route_script("rtw0", [], add)))
    assert (conf / "rtw0.conf").read_text() == before


def test_windows_address_change_reinstalls_the_service(tmp_path: Path) -> None:
    conf = tmp_path / "c"
    write_config(spec(), conf)
    r = WinRunner()
    win_status(r)
    r.on(SVC, 0, data("sc-query-running.txt"))
    r.on([WIREGUARD_EXE, "/uninstalltunnelservice", "rtw0"])
    r.on(SVC, 1060, data("sc-query-missing.txt"))
    r.on([WIREGUARD_EXE, "/installtunnelservice", str(conf / "rtw0.conf")])
    win_status(r)
    win_status(r)
    WindowsBackend(r, config_dir=conf).update(spec(addresses=("10.232.0.9/32",)))
    assert [c[1] for c in r.calls if c[0] == WIREGUARD_EXE] == [
        "/uninstalltunnelservice",
        "/installtunnelservice",
    ]


def test_windows_split_dns_nrpt_on_up_and_down(tmp_path: Path) -> None:
    conf = tmp_path / "c"
    s = spec(dns=("10.232.0.1",), dns_suffixes=("corp.example",))
    r = WinRunner()
    r.on(SVC, 1060, data("sc-query-missing.txt"))
    r.on([WIREGUARD_EXE, "/installtunnelservice", str(conf / "rtw0.conf")])
    r.on(SVC, 0, data("sc-query-running.txt"))
    r.on(powershell(add_script("rtw0", ("10.232.0.1",), ("corp.example",))))
    b = WindowsBackend(r, config_dir=conf)
    b.up(s)
    assert "DNS" not in (conf / "rtw0.conf").read_text()  # the service must not take over DNS
    assert b.dns_record("rtw0") is not None
    r.calls.clear()
    remove = powershell(remove_script("rtw0") + "; Clear-DnsClientCache")
    r.on(remove)
    r.on(SVC, 0, data("sc-query-running.txt"))
    r.on([WIREGUARD_EXE, "/uninstalltunnelservice", "rtw0"])
    b.down("rtw0")
    assert r.calls[0] == tuple(remove)
    assert b.dns_record("rtw0") is None


# ----- macOS: wg-quick's utun device, `route` ----------------------------------------------

BREW_WG = "/opt/homebrew/bin/wg"


def mac(r: ScriptedRunner, tmp_path: Path, conf: Path, utun: str = "utun4") -> MacOSBackend:
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "rtw0.name").write_text(utun + "\n")
    return MacOSBackend(
        r,
        config_dir=conf,
        prefix="/opt/homebrew",
        run_dir=run_dir,
        dns_paths=DnsPaths(resolver_dir=tmp_path / "resolver"),
    )


def test_macos_update_syncconf_on_utun_and_route_commands(conf: Path, tmp_path: Path) -> None:
    r = SyncRunner()
    r.on([BREW_WG, "show", "rtw0", "dump"], 0, DUMP)
    r.on(["route", "-q", "-n", "add", "-inet", "10.240.0.0/16", "-interface", "utun4"])
    r.on(["route", "-q", "-n", "add", "-inet6", "fd10::/64", "-interface", "utun4"])
    r.on(["route", "-q", "-n", "delete", "-inet", "10.233.0.0/24", "-interface", "utun4"])
    r.on([BREW_WG, "show", "rtw0", "dump"], 0, DUMP)
    mac(r, tmp_path, conf).update(spec("10.232.0.0/24", "10.240.0.0/16", "fd10::/64"))
    syncs = [c for c in r.calls if c[1] == "syncconf"]
    assert [c[:3] for c in syncs] == [(BREW_WG, "syncconf", "utun4")]
    assert "FwMark" not in r.synced[0]
    assert "ListenPort = 60185\n" in r.synced[0]
    assert [c for c in r.calls if c[0] == "route"] == [
        ("route", "-q", "-n", "add", "-inet", "10.240.0.0/16", "-interface", "utun4"),
        ("route", "-q", "-n", "add", "-inet6", "fd10::/64", "-interface", "utun4"),
        ("route", "-q", "-n", "delete", "-inet", "10.233.0.0/24", "-interface", "utun4"),
    ]
    assert not any(c[0] == "ip" for c in r.calls)
    assert r.envs[r.calls.index(syncs[0])] == {
        "PATH": "/opt/homebrew/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "WG_QUICK_USERSPACE_IMPLEMENTATION": "/opt/homebrew/bin/wireguard-go",
    }


@pytest.mark.parametrize("name", ["utun4; rm -rf /", "../../x", "", "en0"])
def test_macos_update_refuses_a_strange_device_record(
    conf: Path, tmp_path: Path, name: str
) -> None:
    r = SyncRunner()
    r.on([BREW_WG, "show", "rtw0", "dump"], 0, DUMP)
    with pytest.raises(TunnelStateError):
        mac(r, tmp_path, conf, utun=name).update(spec("10.232.0.0/24"))
    assert not any(len(c) > 1 and c[1] == "syncconf" for c in r.calls)


def test_macos_address_change_restarts_with_wg_quick(conf: Path, tmp_path: Path) -> None:
    r = SyncRunner()
    path = str(conf / "rtw0.conf")
    for _ in range(2):
        r.on([BREW_WG, "show", "rtw0", "dump"], 0, DUMP)
    r.on(["/opt/homebrew/bin/wg-quick", "down", path])
    r.on([BREW_WG, "show", "rtw0", "dump"], 1)
    r.on(["/opt/homebrew/bin/wg-quick", "up", path])
    r.on([BREW_WG, "show", "rtw0", "dump"], 0, DUMP)
    mac(r, tmp_path, conf).update(spec(addresses=("10.232.0.9/32",)))
    assert [c[1] for c in r.calls if c[0].endswith("wg-quick")] == ["down", "up"]


# ----- NetworkManager: nmcli modify + reapply for DNS, wg syncconf for peers -----------------

NM_LIST = ["nmcli", "-t", "-f", "NAME,UUID,TYPE,DEVICE,STATE", "connection", "show"]
NM_UUID = "7f3c2a8e-5c1d-4b6e-9a0f-2d4e6b8c1a3f"
NM_ACTIVE = f"rtw0:{NM_UUID}:wireguard:rtw0:activated\n"


def nm_up(r: SyncRunner, conf: Path, s: TunnelSpec) -> NetworkManagerBackend:
    path = str(conf / "rtw0.conf")
    r.on(NM_LIST, 0, "")
    r.on(["nmcli", "connection", "import", "type", "wireguard", "file", path], 0,
         data("nmcli-import.txt"))  # fmt: skip
    r.on(["nmcli", "connection", "modify", "uuid", NM_UUID, "connection.autoconnect", "no",
          *dns_properties(s)])  # fmt: skip
    r.on(["nmcli", "connection", "up", "uuid", NM_UUID])
    b = NetworkManagerBackend(r, config_dir=conf)
    b.up(s)
    return b


def test_nm_split_dns_properties_exact() -> None:
    s = spec(dns=("10.232.0.1", "fd77::1"), dns_suffixes=("corp.example", "lab.example"))
    assert dns_properties(s) == [
        "ipv4.dns", "10.232.0.1",
        "ipv4.dns-search", "~corp.example,~lab.example",
        "ipv4.dns-priority", "50",
        "ipv6.dns", "fd77::1",
        "ipv6.dns-search", "~corp.example,~lab.example",
        "ipv6.dns-priority", "50",
    ]  # fmt: skip
    assert dns_properties(spec(dns=("10.232.0.1",))) == []  # global DNS: the import's


def test_nm_up_with_split_dns_and_hitless_update(tmp_path: Path) -> None:
    conf = tmp_path / "nm"
    s = spec(dns=("10.232.0.1",), dns_suffixes=("corp.example",))
    r = SyncRunner()
    b = nm_up(r, conf, s)
    assert r.calls[2] == (
        "nmcli", "connection", "modify", "uuid", NM_UUID, "connection.autoconnect", "no",
        "ipv4.dns", "10.232.0.1", "ipv4.dns-search", "~corp.example", "ipv4.dns-priority", "50",
    )  # fmt: skip
    r.calls.clear()
    new = spec("10.232.0.0/24", "10.240.0.0/16", dns=("10.232.0.1",),
               dns_suffixes=("corp.example", "lab.example"))  # fmt: skip
    r.on(NM_LIST, 0, NM_ACTIVE)
    r.on(NM_LIST, 0, NM_ACTIVE)
    r.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    r.on(["nmcli", "connection", "modify", "uuid", NM_UUID, *dns_properties(new)])
    r.on(["nmcli", "device", "reapply", "rtw0"])
    r.on(["wg", "show", "rtw0", "fwmark"], 0, "off\n")
    r.on(["ip", "-4", "route", "replace", "10.240.0.0/16", "dev", "rtw0"])
    r.on(["ip", "-4", "route", "del", "10.233.0.0/24", "dev", "rtw0"])
    r.on(NM_LIST, 0, NM_ACTIVE)
    r.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    b.update(new)
    flow = [c for c in r.calls if c != tuple(NM_LIST) and c[:3] != ("wg", "show", "rtw0")]
    assert [c[:4] for c in flow] == [
        ("nmcli", "connection", "modify", "uuid"),
        ("nmcli", "device", "reapply", "rtw0"),  # DNS first: the live peers get re-synced
        ("wg", "syncconf", "rtw0", flow[2][3]),
        ("ip", "-4", "route", "replace"),
        ("ip", "-4", "route", "del"),
    ]
    assert "ListenPort = 60185\n" in r.synced[0]
    assert not any(c[:3] == ("nmcli", "connection", "up") for c in r.calls)
    assert sorted(p.name for p in conf.iterdir()) == ["rtw0.applied.conf", "rtw0.dns.json"]


def test_nm_address_change_falls_back_to_down_up(tmp_path: Path) -> None:
    conf = tmp_path / "nm"
    r = SyncRunner()
    b = nm_up(r, conf, spec())
    r.calls.clear()
    r.on(NM_LIST, 0, NM_ACTIVE)
    r.on(NM_LIST, 0, NM_ACTIVE)
    r.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    r.on(NM_LIST, 0, NM_ACTIVE)  # down
    r.on(["nmcli", "connection", "down", "uuid", NM_UUID])
    r.on(["nmcli", "connection", "delete", "uuid", NM_UUID])
    new = spec(addresses=("10.232.0.9/32",))
    path = str(conf / "rtw0.conf")
    r.on(NM_LIST, 0, "")
    r.on(["nmcli", "connection", "import", "type", "wireguard", "file", path], 0,
         data("nmcli-import.txt"))  # fmt: skip
    r.on(["nmcli", "connection", "modify", "uuid", NM_UUID, "connection.autoconnect", "no"])
    r.on(["nmcli", "connection", "up", "uuid", NM_UUID])
    r.on(NM_LIST, 0, NM_ACTIVE)  # the status returned
    r.on(["wg", "show", "rtw0", "dump"], 0, DUMP)
    b.update(new)
    assert ("nmcli", "connection", "delete", "uuid", NM_UUID) in r.calls
    assert ("nmcli", "connection", "up", "uuid", NM_UUID) in r.calls


def test_nm_update_refuses_an_inactive_connection(tmp_path: Path) -> None:
    r = SyncRunner()
    r.on(NM_LIST, 0, NM_ACTIVE.replace("activated", ""))
    with pytest.raises(TunnelStateError, match="bring it up"):
        NetworkManagerBackend(r, config_dir=tmp_path).update(spec())
