"""The .deb and .rpm: built from the session's bundle, signed (debsigs, rpmsign, detached
GPG signatures, signed SHA256SUMS) with a throwaway key, verified by verify.sh — and a
copy with one flipped byte refused; the .deb installed into a throwaway root with
``dpkg --root`` (see conftest.py for why not this machine), its unit verified with
``systemd-analyze verify --root``, upgraded over a running helper (one helper after, never
two), removed (IT's managed settings and the helper's state kept) and purged.

systemd is not PID 1 here, so two paths are tested: "systemd not running" (the scripts
enable the unit offline and skip starting it) and a test double of ``systemctl``
(tests/installers/data/fake-systemctl) that really starts the unit's ExecStart — the
bundled helper — and SIGTERMs it on stop, so helper processes can be counted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from core import __version__
from tests.fakes.installers import DATA, ROOT, GpgHome, ThrowawayRoot, need, run

pytestmark = [pytest.mark.integration, pytest.mark.root, pytest.mark.timeout(900)]

LINUX = ROOT / "installers" / "linux"
UNIT = "rustronaut-helper.service"
WANTS = f"/etc/systemd/system/multi-user.target.wants/{UNIT}"


@dataclass(frozen=True)
class Packages:
    """The signed release directory and its files."""

    dir: Path
    deb: Path
    rpm: Path
    debsig_env: dict[str, str]


def build_deb(bundle: Path, out: Path, version: str | None = None) -> Path:
    env = {**os.environ, "RUSTRONAUT_DEB_COMPRESSION": "gzip:1"}
    if version:
        env["RUSTRONAUT_VERSION"] = version
    proc = run(["bash", str(LINUX / "build-deb.sh"), str(bundle), str(out)], env=env)
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def packages(
    bundle_dir: Path, gpg_home: GpgHome, tmp_path_factory: pytest.TempPathFactory
) -> Packages:
    need("dpkg-deb", "rpmbuild", "rpmsign", "rpmkeys", "debsigs", "debsig-verify", "gpgv")
    out = tmp_path_factory.mktemp("release")
    deb = build_deb(bundle_dir, out)
    env = {**gpg_home.env(), "RUSTRONAUT_RPM_PAYLOAD": "w1.gzdio"}
    rpm = Path(
        run(["bash", str(LINUX / "build-rpm.sh"), str(bundle_dir), str(out)], env=env)
        .stdout.strip()
        .splitlines()[-1]
    )
    run(["bash", str(LINUX / "sign.sh"), str(out), gpg_home.keyid], env=gpg_home.env())
    # debsig-verify's policy and keyring for this key (the release docs ship the same).
    short = gpg_home.keyid[-16:]
    pol = tmp_path_factory.mktemp("debsig")
    (pol / "policies" / short).mkdir(parents=True)
    (pol / "keyrings" / short).mkdir(parents=True)
    (pol / "keyrings" / short / "debsig.gpg").write_bytes(
        subprocess.run(
            ["gpg", "--export", gpg_home.keyid], env=gpg_home.env(), capture_output=True, check=True
        ).stdout
    )
    (pol / "policies" / short / "rustronaut.pol").write_text(
        (LINUX / "debsig-policy.pol.in").read_text().replace("@KEYID@", short)
    )
    debsig_env = {
        **os.environ,
        "RUSTRONAUT_DEBSIG_POLICIES": str(pol / "policies"),
        "RUSTRONAUT_DEBSIG_KEYRINGS": str(pol / "keyrings"),
    }
    return Packages(out, deb, rpm, debsig_env)


def verify(pkgs: Packages, gpg: GpgHome, directory: Path) -> subprocess.CompletedProcess[str]:
    return run(
        ["bash", str(LINUX / "verify.sh"), str(gpg.pubkey), str(directory)],
        env=pkgs.debsig_env,
        check=False,
    )


def flip_byte(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x01
    path.write_bytes(bytes(data))


# --- build and content ------------------------------------------------------------


def test_deb_control_and_contents(packages: Packages) -> None:
    fields = run(["dpkg-deb", "-f", str(packages.deb)]).stdout
    assert f"Version: {__version__}" in fields
    assert "Package: rustronaut" in fields
    listing = run(["dpkg-deb", "-c", str(packages.deb)]).stdout
    for path in (
        "./opt/rustronaut/rustronaut-tray",
        "./opt/rustronaut/rustronaut",
        "./opt/rustronaut/rustronaut-helper",
        "./usr/bin/rustronaut -> /opt/rustronaut/rustronaut",
        f"./lib/systemd/system/{UNIT}",
        "./usr/share/applications/com.rustronaut.Client.desktop",
        "./etc/xdg/autostart/com.rustronaut.Client-autostart.desktop",
        "./usr/share/metainfo/com.rustronaut.Client.metainfo.xml",
        "./usr/share/icons/hicolor/scalable/apps/com.rustronaut.Client.svg",
        "./etc/rustronaut/managed.d/",
        "./usr/share/doc/rustronaut/mdm/managed.example.json",
    ):
        assert path in listing, path
    # Every file owned by root (--root-owner-group), whoever built it.
    owners = {line.split()[1] for line in listing.splitlines()}
    assert owners == {"root/root"}
    # IT's managed.json is never shipped (so never replaced or removed by dpkg).
    assert "managed.json" not in listing


def test_packaged_unit_runs_the_bundled_helper(packages: Packages, tmp_path: Path) -> None:
    run(["dpkg-deb", "-x", str(packages.deb), str(tmp_path)])
    unit = (tmp_path / "lib/systemd/system" / UNIT).read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.startswith("ExecStart=/opt/rustronaut/rustronaut-helper --group rustronaut")
    # Everything else as in resources/helper (the WireGuard engineer's unit).
    resource = (ROOT / "resources/helper" / UNIT).read_text().splitlines()
    assert [ln for ln in unit.splitlines() if not ln.startswith("ExecStart=")] == [
        ln for ln in resource if not ln.startswith("ExecStart=")
    ]


def test_maintainer_scripts_parse() -> None:
    for script in ("preinst", "postinst", "prerm", "postrm"):
        run(["sh", "-n", str(LINUX / "debian" / script)])
        bad = run(["sh", str(LINUX / "debian" / script), "bogus-action"], check=False)
        assert bad.returncode == 1
        assert "unknown argument" in bad.stderr


def test_rpm_metadata_and_scriptlets(packages: Packages) -> None:
    info = run(["rpm", "-qp", "--qf", "%{NAME} %{VERSION}\n", str(packages.rpm)]).stdout
    assert info.strip() == f"rustronaut {__version__}"
    files = run(["rpm", "-qpl", str(packages.rpm)]).stdout.splitlines()
    assert f"/usr/lib/systemd/system/{UNIT}" in files
    assert "/opt/rustronaut/rustronaut-helper" in files
    scripts = run(["rpm", "-qp", "--scripts", str(packages.rpm)]).stdout
    assert "groupadd --system rustronaut" in scripts
    assert "systemctl stop rustronaut-helper.service" in scripts
    configs = run(["rpm", "-qpc", str(packages.rpm)]).stdout
    assert "/etc/xdg/autostart/com.rustronaut.Client-autostart.desktop" in configs


# --- signatures ---------------------------------------------------------------------


def test_signed_release_verifies(packages: Packages, gpg_home: GpgHome) -> None:
    names = {p.name for p in packages.dir.iterdir()}
    assert {"SHA256SUMS", "SHA256SUMS.asc", f"{packages.deb.name}.asc"} <= names
    assert "_gpgorigin" in run(["ar", "t", str(packages.deb)]).stdout  # debsigs
    proc = verify(packages, gpg_home, packages.dir)
    assert proc.returncode == 0, proc.stderr
    assert f"OK  {packages.deb.name}" in proc.stdout
    assert f"OK  {packages.rpm.name}" in proc.stdout


@pytest.mark.parametrize("target", ["deb", "rpm"])
def test_one_flipped_byte_fails_verification(
    packages: Packages, gpg_home: GpgHome, tmp_path: Path, target: str
) -> None:
    copy = tmp_path / "release"
    shutil.copytree(packages.dir, copy)
    pkg = copy / getattr(packages, target).name
    flip_byte(pkg)
    proc = verify(packages, gpg_home, copy)
    assert proc.returncode == 1
    assert "FAILED" in proc.stderr
    assert pkg.name in proc.stderr


def test_resummed_tampered_package_fails_on_the_checksum_signature(
    packages: Packages, gpg_home: GpgHome, tmp_path: Path
) -> None:
    """An attacker who also rewrites SHA256SUMS cannot sign it."""
    copy = tmp_path / "release"
    shutil.copytree(packages.dir, copy)
    flip_byte(copy / packages.deb.name)
    sums = run(["sha256sum", packages.deb.name, packages.rpm.name], cwd=copy).stdout
    (copy / "SHA256SUMS").write_text(sums)
    proc = verify(packages, gpg_home, copy)
    assert proc.returncode == 1
    assert "SHA256SUMS signature" in proc.stderr


def test_detached_signature_and_debsigs_each_catch_tampering(
    packages: Packages, gpg_home: GpgHome, tmp_path: Path
) -> None:
    """Each layer alone refuses a tampered .deb (not only the checksum list)."""
    copy = tmp_path / "one.deb"
    shutil.copy(packages.deb, copy)
    flip_byte(copy, 0.9)
    keyring = tmp_path / "key.gpg"
    subprocess.run(
        ["gpg", "--batch", "--dearmor", "-o", str(keyring), str(gpg_home.pubkey)], check=True
    )
    ok = run(
        ["gpgv", "--keyring", str(keyring), f"{packages.deb}.asc", str(packages.deb)], check=False
    )
    assert ok.returncode == 0, ok.stderr
    bad = run(["gpgv", "--keyring", str(keyring), f"{packages.deb}.asc", str(copy)], check=False)
    assert bad.returncode != 0
    env = packages.debsig_env
    dv = ["debsig-verify", "--policies-dir", env["RUSTRONAUT_DEBSIG_POLICIES"]]
    dv += ["--keyrings-dir", env["RUSTRONAUT_DEBSIG_KEYRINGS"]]
    assert run([*dv, str(packages.deb)], check=False).returncode == 0
    assert run([*dv, str(copy)], check=False).returncode != 0


def test_verify_script_usage_errors(tmp_path: Path, gpg_home: GpgHome) -> None:
    assert run(["bash", str(LINUX / "verify.sh")], check=False).returncode != 0
    missing = run(
        ["bash", str(LINUX / "verify.sh"), str(tmp_path / "nokey"), str(tmp_path)], check=False
    )
    assert missing.returncode == 2
    empty = run(
        ["bash", str(LINUX / "verify.sh"), str(gpg_home.pubkey), str(tmp_path)], check=False
    )
    assert empty.returncode == 1
    assert "SHA256SUMS" in empty.stderr


# --- install / verify unit / remove / purge --------------------------------------


def test_install_remove_purge_without_systemd(
    packages: Packages, throwaway_root: Callable[[Path], ThrowawayRoot]
) -> None:
    need("systemd-analyze")
    root = throwaway_root(packages.deb)
    proc = root.dpkg("-i", str(packages.deb))
    assert "systemd is not running" in proc.stdout + proc.stderr
    # Group, directories, enabled unit, desktop integration.
    assert root.group("rustronaut") is not None
    assert oct(root.p("/var/lib/rustronaut/helper").stat().st_mode & 0o777) == "0o700"
    assert root.p("/etc/rustronaut/managed.d").is_dir()
    assert os.readlink(root.p(WANTS)) == f"/lib/systemd/system/{UNIT}"
    assert root.p("/usr/share/applications/com.rustronaut.Client.desktop").is_file()
    # The installed CLI runs inside the root.
    assert __version__ in root.chroot("/usr/bin/rustronaut", "version").stdout
    # The installed unit is valid, with its ExecStart present in the root...
    ok = run(
        ["systemd-analyze", "verify", f"--root={root.path}", f"/lib/systemd/system/{UNIT}"],
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    # ...and the check can fail: a unit whose ExecStart is missing is refused.
    broken = root.p(f"/etc/systemd/system/{UNIT}")
    broken.write_text(
        root.p(f"/lib/systemd/system/{UNIT}")
        .read_text()
        .replace("/opt/rustronaut/rustronaut-helper", "/opt/rustronaut/missing-helper")
    )
    bad = run(
        ["systemd-analyze", "verify", f"--root={root.path}", f"/etc/systemd/system/{UNIT}"],
        check=False,
    )
    assert bad.returncode != 0
    assert "missing-helper" in bad.stderr
    broken.unlink()

    # IT writes managed settings; the helper has state.
    root.p("/etc/rustronaut/managed.json").write_text('{"controller_url": "https://c.example"}')
    root.p("/var/lib/rustronaut/helper/state.json").write_text("{}")

    root.dpkg("--remove", "rustronaut")
    assert not root.p("/opt/rustronaut").exists()
    assert not root.p(f"/lib/systemd/system/{UNIT}").exists()
    assert not root.p("/usr/bin/rustronaut").exists()
    # Kept on remove: IT's settings, the helper's state, the group.
    assert root.p("/etc/rustronaut/managed.json").is_file()
    assert root.p("/var/lib/rustronaut/helper/state.json").is_file()
    assert root.group("rustronaut") is not None
    status = root.dpkg("-s", "rustronaut", check=False).stdout
    assert "Status: deinstall ok config-files" in status

    root.dpkg("--purge", "rustronaut")
    assert not root.p("/var/lib/rustronaut").exists()
    assert not root.p(WANTS).exists()
    assert root.group("rustronaut") is None
    # IT's file stays even on purge (documented in postrm and docs/deployment.md).
    assert root.p("/etc/rustronaut/managed.json").is_file()
    assert not root.p("/etc/rustronaut/managed.d").exists()
    assert root.dpkg("-s", "rustronaut", check=False).returncode != 0


def test_upgrade_over_a_running_helper_leaves_exactly_one(
    packages: Packages,
    bundle_dir: Path,
    tmp_path: Path,
    throwaway_root: Callable[[Path], ThrowawayRoot],
) -> None:
    root = throwaway_root(packages.deb)
    # systemd "running": the maintainer scripts test /run/systemd/system.
    root.p("/run/systemd/system").mkdir(parents=True)
    fake = root.p("/usr/local/sbin/systemctl")
    fake.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "fake-systemctl", fake)
    fake.chmod(0o755)
    log = root.p("/var/log/fake-systemctl.log")
    sock = root.p("/run/rustronaut/helper.sock")

    root.dpkg("-i", str(packages.deb))
    first = root.processes("rustronaut-helper")
    assert len(first) == 1, log.read_text()
    _wait_for(sock.exists, "the helper socket after install")

    newer = build_deb(bundle_dir, tmp_path / "newer", version=f"{__version__}.1")
    log.write_text("")
    root.dpkg("-i", str(newer))
    calls = log.read_text().splitlines()
    # The old helper was stopped before the new files were unpacked, then started again.
    assert calls.index(f"stop {UNIT}") < calls.index(f"restart {UNIT}"), calls
    after = root.processes("rustronaut-helper")
    assert len(after) == 1, (after, calls)
    assert after != first
    assert not Path(f"/proc/{first[0]}").exists() or first[0] not in after
    _wait_for(sock.exists, "the helper socket after upgrade")
    assert f"{__version__}.1" in root.dpkg("-s", "rustronaut").stdout

    root.dpkg("--purge", "rustronaut")
    assert root.processes("rustronaut-helper") == []
    assert not sock.exists()
    assert not root.p("/opt/rustronaut").exists()


def _wait_for(cond: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_rpm_installs_and_erases_in_a_throwaway_root(
    packages: Packages, throwaway_root: Callable[[Path], ThrowawayRoot]
) -> None:
    """rpm --root runs the scriptlets chrooted too: group, enablement, erase."""
    root = throwaway_root(packages.deb)
    rpm = ["rpm", f"--root={root.path}", "--dbpath=/var/lib/rpm"]
    run([*rpm, "--initdb"])
    # --nodeps: the root's rpm database knows none of the Debian host's libraries.
    run([*rpm, "-i", "--nodeps", "--nosignature", str(packages.rpm)])
    assert root.group("rustronaut") is not None
    assert root.p(f"/usr/lib/systemd/system/{UNIT}").is_file()
    assert root.p("/opt/rustronaut/rustronaut-helper").is_file()
    assert oct(root.p("/var/lib/rustronaut/helper").stat().st_mode & 0o777) == "0o700"
    assert root.p(f"/etc/systemd/system/multi-user.target.wants/{UNIT}").is_symlink()
    run([*rpm, "-e", "rustronaut"])
    assert not root.p("/opt/rustronaut").exists()
    assert not root.p(f"/etc/systemd/system/multi-user.target.wants/{UNIT}").exists()
    # No purge in RPM: the helper's state and the group stay (docs/deployment.md).
    assert root.p("/var/lib/rustronaut/helper").is_dir()
    assert root.group("rustronaut") is not None
