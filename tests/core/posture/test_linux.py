"""Linux collectors: parsers on captured outputs, and real runs that flip real settings."""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.posture.collector import CollectContext, PostureConfig, collect, run_collector
from core.posture.common import device, files, processes
from core.posture.errors import ParseError
from core.posture.factory import collectors_for
from core.posture.linux import (
    disk,
    domain,
    firewall,
    osinfo,
    screen_lock,
    secure_boot,
    updates,
)
from core.posture.runner import SubprocessRunner
from core.wire.posture import FACTS, FactStatus

pytestmark = pytest.mark.integration

# --- parsers on captured outputs ------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("linux/nft-ufw.json", True),  # policy drop on INPUT
        ("linux/nft-firewalld.json", True),  # reject reached through a jump
        ("linux/nft-vmap.json", True),  # drop inside a verdict map
        ("linux/nft-docker-only.json", False),  # forward/nat only, nothing on input
    ],
)
def test_nft_parser(sample: str, expected: bool, data: Callable[[str], str]) -> None:
    assert firewall.nft_filters_input(data(sample)) is expected


@pytest.mark.parametrize("text", ["", "nft: not json", '{"nftables": 3}', "[]"])
def test_nft_parser_refuses_odd_output(text: str) -> None:
    with pytest.raises(ParseError):
        firewall.nft_filters_input(text)


def test_iptables_and_ufw_parsers(data: Callable[[str], str]) -> None:
    assert firewall.iptables_filters_input(data("linux/iptables-S-ufw-legacy.txt")) is True
    assert firewall.iptables_filters_input(data("linux/iptables-S-open.txt")) is False
    assert firewall.ufw_active(data("linux/ufw-status-active.txt")) is True
    assert firewall.ufw_active(data("linux/ufw-status-inactive.txt")) is False
    with pytest.raises(ParseError):
        firewall.ufw_active(data("linux/ufw-status-not-root.txt"))
    with pytest.raises(ParseError):
        firewall.iptables_filters_input("iptables v1.8.9 (nf_tables): Permission denied")


def test_disk_parsers(data: Callable[[str], str]) -> None:
    assert disk.crypt_in_tree(data("linux/lsblk-s-luks-lvm.json")) is True
    assert disk.crypt_in_tree(data("linux/lsblk-s-plain.json")) is False
    with pytest.raises(ParseError):
        disk.crypt_in_tree('{"blockdevices": []}')
    assert disk.parse_findmnt(data("linux/findmnt-root-overlay.json")) == ("overlay", "overlay")


async def test_disk_luks_btrfs_argv(
    runner: Any, ctx: CollectContext, data: Callable[[str], str]
) -> None:
    runner.add(disk.FINDMNT, data("linux/findmnt-root-btrfs.json"))
    dev = "/dev/mapper/luks-3f2a9c1e-5b7d-4e0a-8c6f-1d2e3f4a5b6c"
    runner.add(
        ("lsblk", "-J", "-s", "-o", "NAME,TYPE,FSTYPE", dev), data("linux/lsblk-s-luks-lvm.json")
    )
    facts = await run_collector(disk.COLLECTOR, ctx)
    assert facts["disk.encrypted"].value is True


async def test_disk_overlay_root_is_unknown(
    runner: Any, ctx: CollectContext, data: Callable[[str], str]
) -> None:
    runner.add(disk.FINDMNT, data("linux/findmnt-root-overlay.json"))
    fact = (await run_collector(disk.COLLECTOR, ctx))["disk.encrypted"]
    assert fact.status is FactStatus.UNKNOWN
    assert fact.reason == "root is on overlay, not a block device"


def test_other_parsers(data: Callable[[str], str]) -> None:
    assert secure_boot.parse_mokutil(data("linux/mokutil-enabled.txt")) is True
    assert secure_boot.parse_mokutil(data("linux/mokutil-disabled-setup.txt")) is False
    assert secure_boot.parse_mokutil(data("linux/mokutil-no-efi.txt")) is False
    with pytest.raises(ParseError):
        secure_boot.parse_mokutil(data("linux/mokutil-odd.txt"))
    assert secure_boot.parse_efivar(b"\x06\x00\x00\x00\x01") is True
    assert secure_boot.parse_efivar(b"\x06\x00\x00\x00\x00") is False
    with pytest.raises(ParseError):
        secure_boot.parse_efivar(b"\x06\x00\x00\x00\x07")
    assert domain.realm_joined(data("linux/realm-list-joined.txt")) is True
    assert domain.realm_joined("") is False
    ubuntu = osinfo.parse_os_release(data("linux/os-release-ubuntu.txt"))
    assert (ubuntu["ID"], ubuntu["VERSION_ID"]) == ("ubuntu", "24.04")
    assert osinfo.parse_os_release(data("linux/os-release-arch.txt"))["BUILD_ID"] == "rolling"
    with pytest.raises(ParseError):
        osinfo.parse_os_release("garbage")
    assert screen_lock.parse_gsettings_uint("uint32 300") == 300
    with pytest.raises(ParseError):
        screen_lock.parse_gsettings_bool("'true'")
    assert osinfo.serial_from_dmi("To Be Filled By O.E.M.\n") == osinfo.Unknown(
        "firmware reports no serial number"
    )
    assert osinfo.serial_from_dmi("PF2Q8XZ1\n") == "PF2Q8XZ1"


# --- real runs on this machine --------------------------------------------------------


def _read(path: str) -> str:
    return Path(path).read_text()


def _run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """Blocking on purpose: the test sets state before the collector looks."""
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def _real(**kw: Any) -> CollectContext:
    kw.setdefault("runner", SubprocessRunner())
    return CollectContext(timeout_s=10, **kw)


async def test_full_linux_collection_is_real_and_complete() -> None:
    facts = await collect(collectors_for("linux"), _real())
    assert set(FACTS) <= set(facts), "every fixed fact is answered (known or unknown)"
    assert facts["os.name"].value == "linux"
    assert facts["os.kernel"].value == platform.release()
    assert facts["device.hostname"].value == socket.gethostname()
    release = osinfo.parse_os_release(_read("/etc/os-release"))
    assert facts["os.version"].value == release.get("VERSION_ID")
    assert facts["os.distro"].value == release["ID"]
    for fact in facts.values():
        assert fact.known or fact.reason, fact


@pytest.mark.root
async def test_disk_matches_lsblk_here(sh: Callable[..., str]) -> None:
    """The real root device: encrypted iff lsblk shows a crypt node under it."""
    fact = (await run_collector(disk.COLLECTOR, _real()))["disk.encrypted"]
    source = sh("findmnt", "-n", "-o", "SOURCE", "/").strip().split("[")[0]
    if not source.startswith("/dev/"):
        assert not fact.known
        return
    types = sh("lsblk", "-n", "-s", "-o", "TYPE", source).split()
    assert fact.value is ("crypt" in types)


async def _firewall_in(ns: str) -> object:
    ctx = _real(runner=SubprocessRunner(prefix=("ip", "netns", "exec", ns)))
    return (await run_collector(firewall.COLLECTOR, ctx))["firewall.enabled"].value


@pytest.mark.root
@pytest.mark.netns
async def test_firewall_flips_with_real_nftables_in_netns(
    netns: str, sh: Callable[..., str]
) -> None:
    assert await _firewall_in(netns) is False  # empty rule set in a fresh namespace
    sh(
        "ip",
        "netns",
        "exec",
        netns,
        "nft",
        "-f",
        "-",
        stdin=(
            "table inet rtp {\n  chain input {\n"
            "    type filter hook input priority 0; policy drop;\n  }\n}\n"
        ),
    )
    assert await _firewall_in(netns) is True
    sh("ip", "netns", "exec", netns, "nft", "delete", "table", "inet", "rtp")
    assert await _firewall_in(netns) is False
    # firewalld style: policy accept, a reject reached through a jump
    sh(
        "ip",
        "netns",
        "exec",
        netns,
        "nft",
        "-f",
        "-",
        stdin=(
            "table inet rtp {\n"
            '  chain zones {\n    iifname "eth9" reject with icmpx type admin-prohibited\n  }\n'
            "  chain input {\n    type filter hook input priority 10; policy accept;\n"
            "    ct state established,related accept\n    jump zones\n  }\n}\n"
        ),
    )
    assert await _firewall_in(netns) is True


@pytest.mark.skipif(shutil.which("gsettings") is None, reason="needs gsettings")
async def test_screen_lock_flips_with_real_gsettings(tmp_path: Path) -> None:
    env = {"GSETTINGS_BACKEND": "keyfile", "XDG_CONFIG_HOME": str(tmp_path)}
    check = _run(
        ["gsettings", "list-keys", "org.gnome.desktop.screensaver"],
        env={**os.environ, **env},
    )
    if check.returncode != 0:
        pytest.skip("GNOME desktop schemas not installed (apt gsettings-desktop-schemas)")
    ctx = _real(runner=SubprocessRunner(env=env))

    def gset(schema: str, key: str, value: str) -> None:
        subprocess.run(
            ["gsettings", "set", schema, key, value], env={**os.environ, **env}, check=True
        )

    gset("org.gnome.desktop.screensaver", "lock-enabled", "true")
    gset("org.gnome.desktop.session", "idle-delay", "240")
    gset("org.gnome.desktop.screensaver", "lock-delay", "30")
    facts = await run_collector(screen_lock.COLLECTOR, ctx)
    assert facts["screen_lock.enabled"].value is True
    assert facts["screen_lock.timeout_s"].value == 270
    gset("org.gnome.desktop.screensaver", "lock-enabled", "false")
    facts = await run_collector(screen_lock.COLLECTOR, ctx)
    assert facts["screen_lock.enabled"].value is False
    assert not facts["screen_lock.timeout_s"].known


@pytest.mark.skipif(shutil.which("apt-config") is None, reason="needs apt")
async def test_updates_flip_with_real_apt_config(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/unattended-upgrade").write_text("#!/bin/sh\n")
    on = tmp_path / "on.conf"
    on.write_text(
        'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n'
    )
    off = tmp_path / "off.conf"
    off.write_text('APT::Periodic::Unattended-Upgrade "0";\n')
    # APT_CONFIG is read first, /etc/apt/apt.conf.d after: give the last word explicitly.
    for conf, expected in ((on, True), (off, False)):
        ctx = _real(runner=SubprocessRunner(env={"APT_CONFIG": str(conf)}), root=root)
        result = _run(
            ["apt-config", "dump"],
            env={**os.environ, "APT_CONFIG": str(conf)},
        )
        merged = updates.apt_periodic(result.stdout).get("APT::Periodic::Unattended-Upgrade")
        if expected and merged != "1":
            pytest.skip("this machine's apt.conf.d overrides Unattended-Upgrade")
        fact = (await run_collector(updates.COLLECTOR, ctx))["updates.auto"]
        assert fact.value is expected
    # without the program installed it is off whatever the configuration says
    ctx = _real(runner=SubprocessRunner(env={"APT_CONFIG": str(on)}), root=tmp_path / "empty")
    assert (await run_collector(updates.COLLECTOR, ctx))["updates.auto"].value is False


async def test_secure_boot_from_efivars_tree(tmp_path: Path) -> None:
    # No mokutil on PATH, so the EFI variable decides.
    nobin = SubprocessRunner(env={"PATH": str(tmp_path / "nobin")})
    assert (await run_collector(secure_boot.COLLECTOR, _real(runner=nobin, root=tmp_path)))[
        "secure_boot.enabled"
    ].value is False  # no /sys/firmware/efi: legacy BIOS boot
    var = tmp_path / secure_boot.EFIVAR.lstrip("/")
    var.parent.mkdir(parents=True)
    var.write_bytes(b"\x06\x00\x00\x00\x01")
    ctx = _real(runner=nobin, root=tmp_path)
    assert (await run_collector(secure_boot.COLLECTOR, ctx))["secure_boot.enabled"].value is True
    var.write_bytes(b"\x06\x00\x00")
    fact = (await run_collector(secure_boot.COLLECTOR, ctx))["secure_boot.enabled"]
    assert not fact.known
    assert "3 bytes" in (fact.reason or "")


async def test_process_and_file_checks_flip(tmp_path: Path) -> None:
    marker = tmp_path / "agent.conf"
    sleeper = shutil.copy("/bin/sleep", tmp_path / "rtpagent")
    config = PostureConfig.create(processes=["rtpagent"], files=[str(marker)])
    ctx = _real(config=config)
    pair = [processes.process_collector(), files.file_collector()]
    facts = await collect(pair, ctx)
    assert facts["process.rtpagent.running"].value is False
    assert facts[f"file.{marker}.present"].value is False
    proc = await asyncio.create_subprocess_exec(sleeper, "30")
    marker.write_text("x")
    try:
        facts = await collect(pair, ctx)
        assert facts["process.rtpagent.running"].value is True
        assert facts[f"file.{marker}.present"].value is True
    finally:
        proc.kill()
        await proc.wait()


async def test_generic_av_check_sees_an_agent_by_name(tmp_path: Path) -> None:
    sleeper = shutil.copy("/bin/sleep", tmp_path / "rtpedr")
    ctx = _real(config=PostureConfig.create(av_processes=["rtpedr"]))
    av = processes.av_collector("linux")
    assert (await run_collector(av, ctx))["av.running"].value in (True, False)
    proc = await asyncio.create_subprocess_exec(sleeper, "30")
    try:
        facts = await run_collector(av, ctx)
        assert facts["av.running"].value is True
        assert "rtpedr" in (facts["av.products"].value or ())
    finally:
        proc.kill()
        await proc.wait()


async def test_device_collector() -> None:
    facts = await run_collector(device.COLLECTOR, _real(config=PostureConfig(client_version="9.9")))
    assert facts["client.version"].value == "9.9"


async def test_screen_lock_kde_then_logind(
    runner: Any, ctx: CollectContext, data: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "KDE")
    runner.add(screen_lock.kde_argv("kreadconfig5", "Autolock", "true"), "true\n")
    runner.add(screen_lock.kde_argv("kreadconfig5", "Timeout", "5"), "10\n")
    runner.add(screen_lock.kde_argv("kreadconfig5", "LockGrace", "5"), "5\n")
    facts = await run_collector(screen_lock.COLLECTOR, ctx)
    assert (facts["screen_lock.enabled"].value, facts["screen_lock.timeout_s"].value) == (
        True,
        605,
    )
    assert runner.calls[0][0] == "kreadconfig6"  # Plasma 6 first, then 5
    # no desktop tools at all: logind decides
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "")
    runner.table.clear()
    runner.add(screen_lock.LOGIND, data("linux/loginctl-idle-lock.txt"))
    facts = await run_collector(screen_lock.COLLECTOR, ctx)
    assert facts["screen_lock.timeout_s"].value == 900
    runner.add(screen_lock.LOGIND, data("linux/loginctl-idle-ignore.txt"))
    fact = (await run_collector(screen_lock.COLLECTOR, ctx))["screen_lock.enabled"]
    assert not fact.known
    assert fact.reason == "no desktop screen-lock settings; logind IdleAction=ignore"
    assert screen_lock.parse_timespan("1h 30min") == 5400
    runner.table.clear()
    fact = (await run_collector(screen_lock.COLLECTOR, ctx))["screen_lock.enabled"]
    assert fact.reason == "no GNOME/KDE screen-lock settings; loginctl: not installed"


async def test_domain_from_sssd_without_realmd(tmp_path: Path) -> None:
    nobin = SubprocessRunner(env={"PATH": str(tmp_path / "nobin")})
    ctx = _real(runner=nobin, root=tmp_path)
    fact = (await run_collector(domain.COLLECTOR, ctx))["domain.joined"]
    assert fact.reason == "realm: not installed; no SSSD configuration"
    conf = tmp_path / "etc/sssd/sssd.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[domain/LDAP]\nid_provider = ldap\n")
    assert not (await run_collector(domain.COLLECTOR, ctx))["domain.joined"].known
    conf.write_text(
        "[sssd]\ndomains = corp.example.com\n[domain/corp.example.com]\nid_provider = ad\n"
    )
    assert (await run_collector(domain.COLLECTOR, ctx))["domain.joined"].value is True


async def test_tools_run_in_the_c_locale() -> None:
    result = await SubprocessRunner().run(("sh", "-c", "echo $LC_ALL"), timeout_s=5)
    assert result.stdout == "C\n"


async def test_serial_from_a_dmi_tree(tmp_path: Path) -> None:
    ctx = _real(root=tmp_path)
    fact = (await run_collector(osinfo.SERIAL, ctx))["device.serial"]
    assert fact.reason == "no DMI data (/sys/class/dmi/id)"
    dmi = tmp_path / "sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "product_serial").write_text("To Be Filled By O.E.M.\n")
    (dmi / "board_serial").write_text("  \n")
    fact = (await run_collector(osinfo.SERIAL, ctx))["device.serial"]
    assert fact.reason == "firmware reports no serial number"
    (dmi / "chassis_serial").write_text("CZC1234XYZ\n")
    assert (await run_collector(osinfo.SERIAL, ctx))["device.serial"].value == "CZC1234XYZ"
