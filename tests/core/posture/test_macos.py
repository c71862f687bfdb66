"""macOS collectors on committed captured outputs, with the exact command lines asserted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.posture.collector import CollectContext, collect, run_collector
from core.posture.errors import ParseError
from core.posture.factory import collectors_for
from core.posture.macos import (
    enrollment,
    filevault,
    firewall,
    osinfo,
    screen_lock,
    secure_boot,
    updates,
)
from core.wire.posture import FACTS

pytestmark = pytest.mark.unit

Data = Callable[[str], str]


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("fdesetup-on.txt", True),
        ("fdesetup-off.txt", False),
        ("fdesetup-encrypting.txt", False),
        ("fdesetup-deferred.txt", False),
        ("fdesetup-on-deferred-user.txt", True),
    ],
)
def test_fdesetup(data: Data, sample: str, expected: bool) -> None:
    assert filevault.parse_fdesetup(data(f"macos/{sample}")) is expected


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("socketfilterfw-enabled.txt", True),
        ("socketfilterfw-disabled.txt", False),
        ("socketfilterfw-block-all.txt", True),
        ("socketfilterfw-sequoia.txt", True),
    ],
)
def test_socketfilterfw(data: Data, sample: str, expected: bool) -> None:
    assert firewall.parse_socketfilterfw(data(f"macos/{sample}")) is expected


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        (filevault.parse_fdesetup, "Error: Unable to communicate with the FileVault service.\n"),
        (firewall.parse_socketfilterfw, "socketfilterfw: command not supported\n"),
        (updates.parse_schedule, ""),
        (enrollment.parse_profiles, "profiles: this command requires root\n"),
        (secure_boot.parse_nvram_policy, "garbage"),
        (osinfo.parse_sw_vers, "ProductName: macOS\n"),
        (osinfo.parse_ioreg_serial, "+-o Root\n"),
        (screen_lock.parse_screen_lock, "sysadminctl: unrecognized option\n"),
    ],
)
def test_odd_outputs_refused(parser: Callable[[str], object], text: str) -> None:
    with pytest.raises(ParseError):
        parser(text)


async def test_filevault_odd_output_is_unknown(
    runner: Any, ctx: CollectContext, data: Data
) -> None:
    runner.add(("fdesetup", "status"), data("macos/fdesetup-odd.txt"))
    fact = (await run_collector(filevault.COLLECTOR, ctx))["disk.encrypted"]
    assert not fact.known
    assert (fact.reason or "").startswith("unexpected output: fdesetup")


async def test_os_and_serial(runner: Any, ctx: CollectContext, data: Data) -> None:
    runner.add(("sw_vers",), data("macos/sw_vers-rsr.txt"))
    runner.add(("uname", "-rm"), "22.5.0 arm64\n")
    runner.add(
        ("ioreg", "-c", "IOPlatformExpertDevice", "-d", "2"), data("macos/ioreg-platform.txt")
    )
    facts = await collect([osinfo.COLLECTOR, osinfo.SERIAL], ctx)
    got = {n: f.value for n, f in facts.items()}
    assert got == {
        "os.name": "macos",
        "os.distro": "macos",
        "os.version": "13.4.1",
        "os.build": "22F770820d (c)",
        "os.kernel": "22.5.0",
        "os.arch": "arm64",
        "device.serial": "C02XY123JKL0",
    }
    assert osinfo.parse_sw_vers(data("macos/sw_vers-catalina.txt"))["os.distro"] == "macosx"
    assert osinfo.parse_sw_vers(data("macos/sw_vers-sonoma.txt"))["os.build"] == "23E224"
    runner.add(osinfo.IOREG, data("macos/ioreg-platform-vm.txt"))
    assert not (await run_collector(osinfo.SERIAL, ctx))["device.serial"].known


@pytest.mark.parametrize(
    ("status", "idle", "idle_rc", "enabled", "timeout"),
    [
        ("sysadminctl-screenlock-immediate.txt", "300\n", 0, True, 300),
        ("sysadminctl-screenlock-300.txt", "600\n", 0, True, 900),
        ("sysadminctl-screenlock-immediate.txt", "", 1, True, 1200),  # idleTime unset: default
        ("sysadminctl-screenlock-immediate.txt", "0\n", 0, False, None),  # never idles
        ("sysadminctl-screenlock-off.txt", "300\n", 0, False, None),
    ],
)
async def test_screen_lock(
    runner: Any,
    ctx: CollectContext,
    data: Data,
    status: str,
    idle: str,
    idle_rc: int,
    enabled: bool,
    timeout: int | None,
) -> None:
    # sysadminctl logs to stderr
    runner.add(("sysadminctl", "-screenLock", "status"), "", stderr=data(f"macos/{status}"))
    runner.add(
        ("defaults", "-currentHost", "read", "com.apple.screensaver", "idleTime"), idle, rc=idle_rc
    )
    facts = await run_collector(screen_lock.COLLECTOR, ctx)
    assert facts["screen_lock.enabled"].value is enabled
    assert facts["screen_lock.timeout_s"].value == timeout


async def test_updates(runner: Any, ctx: CollectContext, data: Data) -> None:
    runner.add(("softwareupdate", "--schedule"), data("macos/softwareupdate-schedule-on.txt"))
    runner.add(updates.CRITICAL, "", rc=1)  # key unset: on by default
    assert (await run_collector(updates.COLLECTOR, ctx))["updates.auto"].value is True
    runner.add(updates.CRITICAL, "0\n")
    assert (await run_collector(updates.COLLECTOR, ctx))["updates.auto"].value is False
    runner.add(updates.SCHEDULE, data("macos/softwareupdate-schedule-off.txt"))
    assert (await run_collector(updates.COLLECTOR, ctx))["updates.auto"].value is False
    assert updates.parse_schedule(data("macos/softwareupdate-schedule-old-on.txt")) is True


async def test_secure_boot(runner: Any, ctx: CollectContext, data: Data) -> None:
    runner.add(secure_boot.NVRAM, data("macos/nvram-secureboot-full.txt"))
    assert (await run_collector(secure_boot.COLLECTOR, ctx))["secure_boot.enabled"].value is True
    runner.add(secure_boot.NVRAM, data("macos/nvram-secureboot-none.txt"))
    assert (await run_collector(secure_boot.COLLECTOR, ctx))["secure_boot.enabled"].value is False
    runner.add(secure_boot.NVRAM, "", rc=1, stderr=data("macos/nvram-secureboot-missing.txt"))
    runner.add(("uname", "-m"), "arm64\n")
    fact = (await run_collector(secure_boot.COLLECTOR, ctx))["secure_boot.enabled"]
    assert not fact.known
    runner.add(("uname", "-m"), "x86_64\n")  # Intel without T2
    assert (await run_collector(secure_boot.COLLECTOR, ctx))["secure_boot.enabled"].value is False


async def test_mdm_and_domain(runner: Any, ctx: CollectContext, data: Data) -> None:
    runner.add(
        ("profiles", "status", "-type", "enrollment"),
        data("macos/profiles-enrollment-approved.txt"),
    )
    runner.add(("dsconfigad", "-show"), data("macos/dsconfigad-bound.txt"))
    facts = await collect([enrollment.COLLECTOR, enrollment.DOMAIN], ctx)
    assert (facts["mdm.enrolled"].value, facts["domain.joined"].value) == (True, True)
    runner.add(enrollment.PROFILES, data("macos/profiles-enrollment-none.txt"))
    runner.add(enrollment.DSCONFIGAD, data("macos/dsconfigad-unbound.txt"))
    facts = await collect([enrollment.COLLECTOR, enrollment.DOMAIN], ctx)
    assert (facts["mdm.enrolled"].value, facts["domain.joined"].value) == (False, False)


async def test_firewall_argv(runner: Any, ctx: CollectContext, data: Data) -> None:
    runner.add(
        ("/usr/libexec/ApplicationFirewall/socketfilterfw", "--getglobalstate"),
        data("macos/socketfilterfw-disabled.txt"),
    )
    assert (await run_collector(firewall.COLLECTOR, ctx))["firewall.enabled"].value is False


async def test_whole_mac_without_tools_is_all_unknown_not_false(ctx: CollectContext) -> None:
    facts = await collect(collectors_for("macos"), ctx)
    assert set(FACTS) <= set(facts)
    for name in ("disk.encrypted", "firewall.enabled", "screen_lock.enabled", "mdm.enrolled"):
        assert not facts[name].known
        assert (facts[name].reason or "").endswith("not installed")
