"""The agent starts at every log-in on every OS, and the installers ship what starts it:
the systemd user unit (Linux packages), the LaunchAgent (macOS pkg) and the Run value
(Windows installer). Checked on the staged file tree and on the scripts themselves."""

from __future__ import annotations

import os
import plistlib
import shutil
from pathlib import Path

import pytest

from core.engine.localapi.agent import AGENT_LABEL, AGENT_UNIT
from tests.fakes.installers import ROOT, need, run

pytestmark = pytest.mark.unit

UNIT_FILE = ROOT / "resources" / "linux" / AGENT_UNIT
PLIST_FILE = ROOT / "resources" / "macos" / f"{AGENT_LABEL}.plist"
LINUX = ROOT / "installers" / "linux"
MAC = ROOT / "installers" / "macos"


def _unit(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )


def fake_bundle(tmp_path: Path) -> Path:
    """Stand-ins for the three executables of the PyInstaller bundle (layout only)."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for exe in ("rustronaut", "rustronaut-tray", "rustronaut-helper"):
        (bundle / exe).write_text("#!/bin/sh\n")
        (bundle / exe).chmod(0o755)
    return bundle


@pytest.fixture
def stage(tmp_path: Path) -> Path:
    out = tmp_path / "stage"
    argv = ["bash", "-c", f'source "{LINUX}/common.sh" && stage_root "$0" "$1"']
    run([*argv, str(fake_bundle(tmp_path)), str(out)])
    return out


@pytest.mark.integration
def test_the_built_deb_and_rpm_contain_the_agent_unit(tmp_path: Path) -> None:
    need("dpkg-deb", "rpmbuild")
    bundle, out = fake_bundle(tmp_path), tmp_path / "out"
    env = {
        **os.environ,
        "RUSTRONAUT_DEB_COMPRESSION": "gzip:1",
        "RUSTRONAUT_RPM_PAYLOAD": "w1.gzdio",
    }
    deb = run(["bash", str(LINUX / "build-deb.sh"), str(bundle), str(out)], env=env)
    listing = run(["dpkg-deb", "-c", deb.stdout.strip().splitlines()[-1]]).stdout
    assert f"./usr/lib/systemd/user/{AGENT_UNIT}" in listing
    assert "./usr/share/doc/rustronaut/local-api.md" in listing
    rpm = run(["bash", str(LINUX / "build-rpm.sh"), str(bundle), str(out)], env=env)
    files = run(["rpm", "-qpl", rpm.stdout.strip().splitlines()[-1]]).stdout.splitlines()
    assert f"/usr/lib/systemd/user/{AGENT_UNIT}" in files
    scripts = run(["rpm", "-qp", "--scripts", rpm.stdout.strip().splitlines()[-1]]).stdout
    assert f"systemctl --global --quiet enable {AGENT_UNIT}" in scripts


def test_the_linux_packages_ship_the_agent_user_unit(stage: Path) -> None:
    unit = stage / "usr" / "lib" / "systemd" / "user" / AGENT_UNIT
    assert unit.read_text() == UNIT_FILE.read_text()
    assert (unit.stat().st_mode & 0o777) == 0o644
    fields = _unit(unit.read_text())
    exec_start = fields["ExecStart"].split()
    assert exec_start == ["/opt/rustronaut/rustronaut", "agent"]
    assert os.access(stage / exec_start[0].lstrip("/"), os.X_OK)  # the bundled CLI
    assert fields["Restart"] == "on-failure"
    assert fields["WantedBy"] == "default.target"
    # The unit's Documentation= points at a page the package ships.
    doc = fields["Documentation"].removeprefix("file://")
    assert (stage / doc.lstrip("/")).is_file()


def test_the_agent_unit_is_a_valid_unit(stage: Path, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # systemd-analyze checks that ExecStart is executable: point it at the staged CLI.
    unit = stage / "usr" / "lib" / "systemd" / "user" / AGENT_UNIT
    copy = tmp_path / AGENT_UNIT
    copy.write_text(unit.read_text().replace("ExecStart=/opt/", f"ExecStart={stage}/opt/"))
    proc = run(["systemd-analyze", "verify", str(copy)], check=False)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in (proc.stdout + proc.stderr).splitlines() if AGENT_UNIT in line] == []
    # ...and it would notice a mistake.
    copy.write_text(copy.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    proc = run(["systemd-analyze", "verify", str(copy)], check=False)
    assert "restart specifier" in proc.stdout + proc.stderr


def test_maintainer_scripts_enable_the_agent_for_every_user_and_disable_it_on_removal() -> None:
    postinst = (LINUX / "debian" / "postinst").read_text()
    prerm = (LINUX / "debian" / "prerm").read_text()
    spec = (LINUX / "rustronaut.spec").read_text()
    assert "AGENT_UNIT=rustronaut-agent.service" in postinst
    assert 'systemctl --global --quiet enable "$AGENT_UNIT"' in postinst
    assert 'systemctl --global --quiet disable "$AGENT_UNIT"' in prerm
    assert f"/usr/lib/systemd/user/{AGENT_UNIT}" in spec.split("%files", 1)[1]
    post = spec.split("%post\n", 1)[1].split("%preun", 1)[0]
    preun = spec.split("%preun", 1)[1].split("%postun", 1)[0]
    assert f"systemctl --global --quiet enable {AGENT_UNIT}" in post
    assert f"systemctl --global --quiet disable {AGENT_UNIT}" in preun
    for script in ("postinst", "prerm"):
        run(["sh", "-n", str(LINUX / "debian" / script)])


def test_the_macos_launch_agent_runs_the_bundled_cli_per_user() -> None:
    agent = plistlib.loads(PLIST_FILE.read_bytes())
    assert agent["Label"] == AGENT_LABEL
    assert agent["ProgramArguments"] == [
        "/Applications/Rustronaut.app/Contents/MacOS/rustronaut",
        "agent",
    ]
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}  # restart a crash, not a stop
    assert agent["LimitLoadToSessionType"] == "Aqua"  # the user's GUI session: keyring
    assert "UserName" not in agent  # runs as the logged-in user, never root


def test_the_macos_pkg_ships_and_loads_the_launch_agent() -> None:
    build = (MAC / "build-pkg.sh").read_text()
    assert f'resources/macos/{AGENT_LABEL}.plist" "$work/root/Library/LaunchAgents/"' in build
    assert f'plutil -lint "$work/root/Library/LaunchAgents/{AGENT_LABEL}.plist"' in build
    post = (MAC / "scripts" / "postinstall").read_text()
    assert "AGENT_PLIST=/Library/LaunchAgents/$AGENT_LABEL.plist" in post
    assert 'launchctl bootstrap "gui/$uid" "$AGENT_PLIST"' in post
    run(["bash", "-n", str(MAC / "scripts" / "postinstall")])
    run(["bash", "-n", str(MAC / "build-pkg.sh")])


def test_the_windows_installer_starts_the_agent_at_every_log_on_and_removes_it() -> None:
    nsi = (ROOT / "installers" / "windows" / "rustronaut.nsi").read_text()
    assert '!define AGENT_RUN "${APP} Agent"' in nsi
    install, uninstall = nsi.split('Section "Uninstall"', 1)
    # The tray's executable (a GUI program: no console window at log-on) runs the agent.
    exe = '"$INSTDIR\\rustronaut-tray.exe" agent'
    run_value = f"""WriteRegStr HKLM "${{RUN_KEY}}" "${{AGENT_RUN}}" '{exe}'"""
    assert run_value in install
    assert 'DeleteRegValue HKLM "${RUN_KEY}" "${AGENT_RUN}"' in uninstall
