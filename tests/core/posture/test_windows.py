"""Windows collectors on committed captured outputs (English, German, French, Japanese,
odd and error outputs), with the exact command lines asserted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.posture.collector import CollectContext, collect, run_collector
from core.posture.errors import ParseError
from core.posture.factory import collectors_for
from core.posture.windows import (
    av,
    bitlocker,
    domain,
    firewall,
    osinfo,
    screen_lock,
    secure_boot,
    tools,
    updates,
)
from core.wire.posture import FACTS

pytestmark = pytest.mark.unit

Data = Callable[[str], str]


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("manage-bde-status-en-encrypted.txt", True),
        ("manage-bde-status-de-encrypted.txt", True),  # "100,0 %", "Der Schutz ist aktiviert."
        ("manage-bde-status-en-decrypted.txt", False),
        ("manage-bde-status-en-suspended.txt", False),  # 100 % but protection suspended
        ("manage-bde-status-fr-in-progress.txt", False),  # 45,3 %
    ],
)
def test_manage_bde(data: Data, sample: str, expected: bool) -> None:
    assert bitlocker.parse_manage_bde(data(f"windows/{sample}")) is expected


@pytest.mark.parametrize(
    "sample", ["manage-bde-status-ja-encrypted.txt", "manage-bde-status-en-access-denied.txt"]
)
def test_manage_bde_unreadable(data: Data, sample: str) -> None:
    with pytest.raises(ParseError):
        bitlocker.parse_manage_bde(data(f"windows/{sample}"))


async def test_bitlocker_falls_back_to_powershell_for_unknown_language(
    runner: Any, ctx: CollectContext, data: Data
) -> None:
    runner.add(("manage-bde", "-status", "C:"), data("windows/manage-bde-status-ja-encrypted.txt"))
    runner.add(bitlocker.get_bitlocker_argv("C:"), data("windows/get-bitlockervolume-on.json"))
    assert (await run_collector(bitlocker.COLLECTOR, ctx))["disk.encrypted"].value is True
    assert runner.calls[-1][0] == "powershell.exe"
    assert "Get-BitLockerVolume -MountPoint 'C:'" in runner.calls[-1][-1]
    runner.add(
        bitlocker.get_bitlocker_argv("C:"), data("windows/get-bitlockervolume-encrypting.json")
    )
    assert (await run_collector(bitlocker.COLLECTOR, ctx))["disk.encrypted"].value is False


async def test_bitlocker_access_denied_is_unknown(
    runner: Any, ctx: CollectContext, data: Data
) -> None:
    runner.add(
        ("manage-bde", "-status", "C:"),
        data("windows/manage-bde-status-en-access-denied.txt"),
        rc=-1,
    )
    fact = (await run_collector(bitlocker.COLLECTOR, ctx))["disk.encrypted"]
    assert not fact.known
    assert fact.reason == (
        "manage-bde: exited -1: ERROR: An attempt to access a required resource was denied."
    )


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("netsh-advfirewall-allprofiles-state-en-on.txt", True),
        ("netsh-advfirewall-allprofiles-state-en-public-off.txt", False),
        ("netsh-advfirewall-allprofiles-state-de-on.txt", True),  # CRLF, "Status EIN"
        ("netsh-advfirewall-allprofiles-state-fr-off.txt", False),  # "État Inactif"
    ],
)
def test_netsh(data: Data, sample: str, expected: bool) -> None:
    assert firewall.parse_netsh_state(data(f"windows/{sample}")) is expected


@pytest.mark.parametrize(
    "sample",
    ["netsh-advfirewall-allprofiles-state-gpo-odd.txt", "netsh-advfirewall-service-stopped.txt"],
)
def test_netsh_odd(data: Data, sample: str) -> None:
    with pytest.raises(ParseError):
        firewall.parse_netsh_state(data(f"windows/{sample}"))


async def test_firewall_collector(runner: Any, ctx: CollectContext, data: Data) -> None:
    runner.add(
        ("netsh", "advfirewall", "show", "allprofiles", "state"),
        data("windows/netsh-advfirewall-allprofiles-state-fr-off.txt"),
    )
    assert (await run_collector(firewall.COLLECTOR, ctx))["firewall.enabled"].value is False
    # odd netsh output: PowerShell decides (NotConfigured = default = on)
    runner.add(firewall.NETSH, data("windows/netsh-advfirewall-allprofiles-state-gpo-odd.txt"))
    runner.add(firewall.GET_PROFILE, data("windows/get-netfirewallprofile.json"))
    assert (await run_collector(firewall.COLLECTOR, ctx))["firewall.enabled"].value is True
    # neither readable: unknown, never true
    runner.add(firewall.GET_PROFILE, "not json")
    fact = (await run_collector(firewall.COLLECTOR, ctx))["firewall.enabled"]
    assert not fact.known
    assert (fact.reason or "").startswith("unexpected output: PowerShell JSON")


def test_security_center(data: Data) -> None:
    assert av.parse_security_center(data("windows/securitycenter2-defender.json")) == [
        "Windows Defender"
    ]
    assert av.parse_security_center(data("windows/securitycenter2-multi.json")) == [
        "Sophos Anti-Virus"
    ]
    assert av.parse_security_center(data("windows/securitycenter2-defender-off.json")) == []
    assert av.parse_security_center("") == []
    with pytest.raises(ParseError):
        av.parse_security_center('{"displayName": "X", "productState": "on"}')


async def test_av_collector(runner: Any, ctx: CollectContext, data: Data) -> None:
    assert av.SECURITY_CENTER[:4] == ("powershell.exe", "-NoLogo", "-NoProfile", "-NonInteractive")
    runner.add(av.SECURITY_CENTER, data("windows/securitycenter2-multi.json"))
    facts = await run_collector(av.COLLECTOR, ctx)
    assert facts["av.running"].value is True
    assert facts["av.products"].value == ("Sophos Anti-Virus",)
    # Windows Server: no Security Center → named processes (none of them run here)
    runner.add(
        av.SECURITY_CENTER, "", rc=1, stderr=data("windows/securitycenter2-invalid-namespace.txt")
    )
    facts = await run_collector(av.COLLECTOR, ctx)
    assert facts["av.running"].value is False
    assert facts["av.products"].value == ()


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("dsregcmd-status-entra-joined.txt", True),
        ("dsregcmd-status-ad-joined.txt", True),
        ("dsregcmd-status-workgroup.txt", False),
    ],
)
def test_dsregcmd(data: Data, sample: str, expected: bool) -> None:
    assert domain.parse_dsregcmd(data(f"windows/{sample}")) is expected


async def test_domain_and_mdm(runner: Any, ctx: CollectContext, data: Data) -> None:
    runner.add(("dsregcmd", "/status"), data("windows/dsregcmd-status-entra-joined.txt"))
    runner.add(
        ("reg", "query", r"HKLM\SOFTWARE\Microsoft\Enrollments", "/s", "/v", "ProviderID"),
        data("windows/reg-query-enrollments-intune.txt"),
    )
    facts = await collect([domain.COLLECTOR, domain.MDM], ctx)
    assert (facts["domain.joined"].value, facts["mdm.enrolled"].value) == (True, True)
    runner.add(domain.REG_ENROLLMENTS, data("windows/reg-query-enrollments-none-de.txt"))
    assert (await run_collector(domain.MDM, ctx))["mdm.enrolled"].value is False
    runner.add(domain.REG_ENROLLMENTS, "", rc=1, stderr=data("windows/reg-query-not-found-de.txt"))
    assert (await run_collector(domain.MDM, ctx))["mdm.enrolled"].value is False
    runner.add(domain.DSREGCMD, "Der Befehl wurde nicht gefunden.\n")
    assert not (await run_collector(domain.COLLECTOR, ctx))["domain.joined"].known


async def test_os_info(runner: Any, ctx: CollectContext, data: Data) -> None:
    runner.add(osinfo.REG_CURRENT_VERSION, data("windows/reg-query-currentversion.txt"))
    runner.add(osinfo.REG_ARCH, data("windows/reg-query-processor-architecture.txt"))
    facts = await run_collector(osinfo.COLLECTOR, ctx)
    got = {n: f.value for n, f in facts.items()}
    assert got == {
        "os.name": "windows",
        "os.distro": "professional",
        "os.version": "10.0.22631",
        "os.kernel": "10.0.22631",
        "os.build": "22631.3312",
        "os.arch": "arm64",
    }
    # registry unreadable → ver (localized "Version"/"version")
    runner.add(osinfo.REG_CURRENT_VERSION, "", rc=1, stderr="ERROR: Access is denied.")
    runner.add(osinfo.VER, data("windows/ver-fr.txt"))
    facts = await run_collector(osinfo.COLLECTOR, ctx)
    assert facts["os.build"].value == "22631.3296"
    assert not facts["os.distro"].known
    assert osinfo.parse_ver(data("windows/ver-de.txt"))["os.version"] == "10.0.19045"


async def test_serial(runner: Any, ctx: CollectContext, data: Data) -> None:
    runner.add(osinfo.SERIAL_PS, data("windows/win32-bios-serial.txt"))
    assert (await run_collector(osinfo.SERIAL, ctx))["device.serial"].value == "PF2Q8XZ1"
    runner.add(osinfo.SERIAL_PS, data("windows/win32-bios-serial-placeholder.txt"))
    assert not (await run_collector(osinfo.SERIAL, ctx))["device.serial"].known


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("confirm-securebootuefi-on.txt", True),
        ("confirm-securebootuefi-bios.txt", False),
        ("confirm-securebootuefi-denied.txt", None),
    ],
)
async def test_secure_boot(
    runner: Any, ctx: CollectContext, data: Data, sample: str, expected: bool | None
) -> None:
    runner.add(secure_boot.CONFIRM, data(f"windows/{sample}"))
    fact = (await run_collector(secure_boot.COLLECTOR, ctx))["secure_boot.enabled"]
    assert fact.value is expected
    assert "Confirm-SecureBootUEFI -ErrorAction Stop" in secure_boot.CONFIRM[-1]


async def test_screen_lock(runner: Any, ctx: CollectContext, data: Data) -> None:
    runner.add(screen_lock.REG_DESKTOP, data("windows/reg-query-desktop-secure-saver.txt"))
    runner.add(screen_lock.REG_POLICY, "", rc=1, stderr=data("windows/reg-query-not-found-en.txt"))
    runner.add(screen_lock.REG_INACTIVITY, "", rc=1)
    facts = await run_collector(screen_lock.COLLECTOR, ctx)
    assert (facts["screen_lock.enabled"].value, facts["screen_lock.timeout_s"].value) == (True, 600)
    # Windows default: ScreenSaveActive=1 but no screen saver → no lock
    runner.add(screen_lock.REG_DESKTOP, data("windows/reg-query-desktop-default.txt"))
    facts = await run_collector(screen_lock.COLLECTOR, ctx)
    assert facts["screen_lock.enabled"].value is False
    # policy overrides the user's settings
    runner.add(screen_lock.REG_POLICY, data("windows/reg-query-desktop-policy.txt"))
    facts = await run_collector(screen_lock.COLLECTOR, ctx)
    assert facts["screen_lock.timeout_s"].value == 300
    # machine inactivity limit wins: 0x384 = 900 s
    runner.add(screen_lock.REG_INACTIVITY, data("windows/reg-query-inactivity.txt"))
    facts = await run_collector(screen_lock.COLLECTOR, ctx)
    assert facts["screen_lock.timeout_s"].value == 900


async def test_updates(runner: Any, ctx: CollectContext, data: Data) -> None:
    runner.add(updates.REG_AU, "", rc=1, stderr=data("windows/reg-query-not-found-en.txt"))
    runner.add(updates.SC_QC, data("windows/sc-qc-wuauserv.txt"))
    assert (await run_collector(updates.COLLECTOR, ctx))["updates.auto"].value is True
    runner.add(updates.SC_QC, data("windows/sc-qc-wuauserv-disabled-de.txt"))
    assert (await run_collector(updates.COLLECTOR, ctx))["updates.auto"].value is False
    runner.add(updates.SC_QC, data("windows/sc-qc-wuauserv.txt"))
    runner.add(updates.REG_AU, data("windows/reg-query-au-notify.txt"))  # AUOptions 2
    assert (await run_collector(updates.COLLECTOR, ctx))["updates.auto"].value is False


def test_reg_query_parser(data: Data) -> None:
    keys = tools.parse_reg_query(data("windows/reg-query-currentversion.txt"))
    values = keys[r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion"]
    assert values["UBR"] == 0xCF0
    assert values["EditionSubManufacturer"] == ""
    assert values["SystemRoot"] == r"C:\WINDOWS"
    assert tools.ps_json_objects("\ufeff[]") == []


async def test_every_fact_answered_when_every_tool_hangs(runner: Any, ctx: CollectContext) -> None:
    """A Windows box whose every tool hangs: all facts unknown with a timeout reason."""

    class Hang:
        async def run(self, argv: Any, *, timeout_s: float) -> Any:
            runner.hang(argv)
            return await runner.run(argv, timeout_s=timeout_s)

    hctx = CollectContext(runner=Hang(), timeout_s=0.05, clock=lambda: 1.0)
    facts = await collect(collectors_for("windows"), hctx)
    assert set(FACTS) <= set(facts)
    for name in ("disk.encrypted", "firewall.enabled", "secure_boot.enabled", "updates.auto"):
        assert not facts[name].known
        assert (facts[name].reason or "").endswith("timed out after 0.05s"), facts[name]
