"""Packages that install and leave cleanly (issue 19, Deliver 2).

- Every tool the helper runs is a hard dependency of the .deb (``Depends``) and of the
  .rpm (``Requires``): without one, dpkg and rpm refuse the install instead of the helper
  dying at start. The table below classifies every command the Linux code runs; a scan of
  the sources fails when a new command appears that the table does not know.
- Removing or purging the .deb removes only what the package created: a pre-existing
  ``/opt`` (empty, or holding other software) and the other directories the package shares
  with the system are still there afterwards, with their mode and owner.

The packages are built by the real build scripts from a tiny fake bundle (three shell
scripts: build-deb.sh and build-rpm.sh only need the three executables), so building both
takes about a second; installs run in the throwaway roots of conftest.py (``dpkg --root``).
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.installers import ROOT, ThrowawayRoot, _filtered_status, need, run
from wg_backends.backends.wgquick import WgQuickBackend

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LINUX = ROOT / "installers" / "linux"

# Every command the helper and the tray run on Linux. REQUIRED: the helper cannot bring a
# tunnel up without it, so the packages depend on it: tool -> (Debian package, RPM
# requirement as written in rustronaut.spec).
REQUIRED: dict[str, tuple[str, str]] = {
    "wg": ("wireguard-tools", "wireguard-tools"),
    "wg-quick": ("wireguard-tools", "wireguard-tools"),
    "ip": ("iproute2", "(iproute or iproute2)"),  # the helper, and wg-quick itself
    "nft": ("nftables", "nftables"),  # the helper's firewall; wg-quick's full tunnel
    "sysctl": ("procps", "(procps-ng or procps)"),  # wg-quick's full tunnel (src_valid_mark)
}
# In an Essential package: always there, and Debian policy says not to list them.
ESSENTIAL: dict[str, str] = {
    "bash": "bash",  # wg-quick is a bash script
    "sh": "dash",
    "findmnt": "util-linux",
    "lsblk": "util-linux",
}
# Run when present; the code works without them: tool -> what happens without it.
OPTIONAL: dict[str, str] = {
    "resolvectl": "split DNS through systemd-resolved only when it runs",
    "resolvconf": "split DNS falls back to none; a full tunnel's DNS needs it (Suggests)",
    "nmcli": "the NetworkManager backend, chosen only where wg-quick is not",
    "systemctl": "the agent is started directly; posture: no dnf timer",
    "gsettings": "posture: GNOME screen lock unknown; no system proxy read",
    "loginctl": "posture: the logind fallback of the screen lock",
    "kreadconfig5": "posture: KDE screen lock unknown",
    "kreadconfig6": "posture: KDE screen lock unknown",
    "mokutil": "posture: Secure Boot read from efivarfs instead",
    "realm": "posture: domain join unknown",
    "ufw": "posture: one of several firewall probes",
    "iptables": "posture: one of several firewall probes",
    "firewall-cmd": "posture: one of several firewall probes",
    "apt-config": "posture: automatic updates (apt systems only)",
}
# String literals the scan sees that are not Linux commands.
NOT_COMMANDS = {
    "launchctl",  # macOS branch of agent.py
    "reg",  # Windows branch of proxy.py
    "scutil",  # macOS branch of proxy.py
}
SCANNED = [
    "wg_backends/backends/wgquick.py",
    "wg_backends/backends/networkmanager.py",
    "wg_backends/dns/__init__.py",
    "wg_backends/dns/resolved.py",
    "wg_backends/dns/resolvconf.py",
    "wg_backends/firewall/nft.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "wg_backends/helper").glob("*.py")),
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "core/posture/linux").glob("*.py")),
    "core/controlplane/proxy.py",
    "core/engine/localapi/agent.py",
]
# A call with a literal argv[0]: run(["ip", ...]), ctx.run(("nft", ...)), runner([...]).
_RUN_LITERAL = re.compile(r"(?:_run|runner|\brun)\(\s*[\[(]\s*\"([^\"]+)\"")
# A call through a constant: ctx.run(NFT), runner.run([GSETTINGS, ...]).
_RUN_CONSTANT = re.compile(r"(?:_run|runner|\brun)\(\s*[\[(]?\s*([A-Z][A-Z0-9_]*)\b")
# Module constants: NFT = ("nft", ...), GSETTINGS = "gsettings".
_CONSTANT = re.compile(r"^([A-Z][A-Z0-9_]*)\s*=\s*[\[(]?\s*\"([^\"]+)\"", re.M)
# Alternatives tried in turn: for tool in ("kreadconfig6", "kreadconfig5").
_TOOL_LOOP = re.compile(r"for tool in \(([^)]*)\)")


def commands_in_sources() -> dict[str, set[str]]:
    """Command names the Linux code runs, by the files that run them."""
    found: dict[str, set[str]] = {}
    for rel in SCANNED:
        text = (ROOT / rel).read_text()
        constants = dict(m.groups() for m in _CONSTANT.finditer(text))
        names = [m.group(1) for m in _RUN_LITERAL.finditer(text)]
        names += [
            constants[m.group(1)] for m in _RUN_CONSTANT.finditer(text) if m.group(1) in constants
        ]
        for loop in _TOOL_LOOP.finditer(text):
            names += re.findall(r"\"([^\"]+)\"", loop.group(1))
        for name in names:
            found.setdefault(name, set()).add(rel)
    # The wg-quick backend's tools are constructor defaults, not literals in a call.
    defaults = inspect.signature(WgQuickBackend.__init__).parameters
    for param in ("wg_quick", "wg"):
        found.setdefault(defaults[param].default, set()).add("wg_backends/backends/wgquick.py")
    return found


def relation_names(field: str) -> list[list[str]]:
    """A Depends-style field as its alternatives: [["a"], ["b", "c"]] for "a, b | c"."""
    groups = []
    for part in field.split(","):
        alts = [a.strip().split(" ")[0] for a in part.split("|") if a.strip()]
        if alts:
            groups.append(alts)
    return groups


def owning_package(tool: str) -> str | None:
    """The Debian package shipping ``tool`` on this machine (merged /usr aware)."""
    path = shutil.which(tool, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        return None
    real = os.path.realpath(path)
    for candidate in (path, real, re.sub(r"^/usr", "", path), re.sub(r"^/usr", "", real)):
        proc = run(["dpkg-query", "-S", candidate], check=False)
        owners = [ln for ln in proc.stdout.splitlines() if not ln.startswith("diversion ")]
        if proc.returncode == 0 and owners:
            return owners[0].split(":")[0].strip()
    return None


@pytest.fixture(scope="module")
def fake_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What build-deb.sh/build-rpm.sh accept as a bundle: the three executables."""
    bundle = tmp_path_factory.mktemp("fakebundle") / "rustronaut"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "_internal" / "base_library.zip").write_bytes(b"fake")
    for exe in ("rustronaut", "rustronaut-tray", "rustronaut-helper"):
        path = bundle / exe
        path.write_text(f"#!/bin/sh\necho '{exe} (fake bundle)'\n")
        path.chmod(0o755)
    return bundle


@pytest.fixture(scope="module")
def deb(fake_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("dpkg-deb")
    out = tmp_path_factory.mktemp("deb")
    env = {**os.environ, "RUSTRONAUT_DEB_COMPRESSION": "gzip:1"}
    proc = run(["bash", str(LINUX / "build-deb.sh"), str(fake_bundle), str(out)], env=env)
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def rpm(fake_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("rpmbuild")
    out = tmp_path_factory.mktemp("rpm")
    env = {**os.environ, "RUSTRONAUT_RPM_PAYLOAD": "w1.gzdio"}
    proc = run(["bash", str(LINUX / "build-rpm.sh"), str(fake_bundle), str(out)], env=env)
    return Path(proc.stdout.strip().splitlines()[-1])


# --- declared dependencies ----------------------------------------------------------


def test_every_command_the_code_runs_is_classified() -> None:
    found = commands_in_sources()
    known = REQUIRED.keys() | ESSENTIAL.keys() | OPTIONAL.keys() | NOT_COMMANDS
    unknown = {name: sorted(files) for name, files in found.items() if name not in known}
    assert not unknown, f"classify these commands in this test's tables: {unknown}"
    # The scan sees what it should (so a broken scan cannot pass silently).
    assert {"wg", "wg-quick", "ip", "nft", "resolvectl", "gsettings", "mokutil"} <= found.keys()


def test_the_tables_name_the_packages_that_ship_the_tools() -> None:
    """Checked against this Debian machine for the tools it has."""
    checked = 0
    for tool, (package, _) in REQUIRED.items():
        owner = owning_package(tool)
        if owner is not None:
            assert owner == package, (tool, owner)
            checked += 1
    for tool, package in ESSENTIAL.items():
        owner = owning_package(tool)
        if owner is not None:
            assert owner == package, (tool, owner)
            essential = run(["dpkg-query", "-W", "-f", "${Essential}", package]).stdout
            assert essential == "yes", package
            checked += 1
    assert checked >= 5


def test_deb_depends_on_every_required_tool(deb: Path) -> None:
    fields = run(["dpkg-deb", "-f", str(deb), "Depends", "Recommends"]).stdout
    depends = run(["dpkg-deb", "-f", str(deb), "Depends"]).stdout
    # A hard dependency: its own group, not only an alternative, not only a Recommends.
    hard = {alts[0] for alts in relation_names(depends) if len(alts) == 1}
    for tool, (package, _) in REQUIRED.items():
        assert package in hard, f"{tool}: {package} not in Depends ({fields})"
    for package in set(ESSENTIAL.values()):
        assert package not in hard, f"{package} is Essential: not listed (Debian policy)"


def test_rpm_requires_every_required_tool(rpm: Path) -> None:
    requires = {
        line.strip() for line in run(["rpm", "-qp", "--requires", str(rpm)]).stdout.splitlines()
    }
    for tool, (_, requirement) in REQUIRED.items():
        assert requirement in requires, f"{tool}: {requirement} not in {sorted(requires)}"
    weak = run(["rpm", "-qp", "--recommends", str(rpm)]).stdout
    assert "wireguard-tools" not in weak  # a hard requirement now, not a Recommends


def test_rpm_refuses_to_install_without_the_tools(rpm: Path, tmp_path: Path) -> None:
    """An empty rpm database: the transaction check names every missing tool package."""
    need("rpm")
    rpmcmd = ["rpm", f"--root={tmp_path}", "--dbpath=/var/lib/rpm"]
    run([*rpmcmd, "--initdb"])
    proc = run([*rpmcmd, "-i", "--test", "--nosignature", str(rpm)], check=False)
    assert proc.returncode != 0
    assert "Failed dependencies" in proc.stderr
    for _, requirement in REQUIRED.values():
        assert f"{requirement} is needed by rustronaut" in proc.stderr, proc.stderr


@pytest.mark.root
def test_dpkg_refuses_to_configure_without_the_tools(
    deb: Path, throwaway_root: Callable[[Path], ThrowawayRoot]
) -> None:
    """A Debian root without them (the --no-install-recommends case of the issue)."""
    root = throwaway_root(deb)
    missing = {package for package, _ in REQUIRED.values()}
    depends = {
        alts[0] for alts in relation_names(run(["dpkg-deb", "-f", str(deb), "Depends"]).stdout)
    }
    root.p("/var/lib/dpkg/status").write_text(_filtered_status(depends - missing))
    proc = root.dpkg("-i", str(deb), check=False)
    assert proc.returncode != 0
    assert "dependency problems prevent configuration of rustronaut" in proc.stderr
    for package in missing:
        assert f"depends on {package}; however" in proc.stderr, proc.stderr
    # Unconfigured, so the helper's unit was never enabled.
    assert not root.p(
        "/etc/systemd/system/multi-user.target.wants/rustronaut-helper.service"
    ).exists()
    root.dpkg("--purge", "rustronaut")


# --- removal removes only what the package created --------------------------------


def snapshot(root: ThrowawayRoot, paths: list[str]) -> dict[str, tuple[int, int, int]]:
    """(mode, uid, gid) of each path that exists in the root."""
    out = {}
    for inner in paths:
        try:
            st = root.p(inner).lstat()
        except FileNotFoundError:
            continue
        out[inner] = (stat.S_IMODE(st.st_mode) | stat.S_IFMT(st.st_mode), st.st_uid, st.st_gid)
    return out


def package_paths(deb: Path) -> list[str]:
    """Every path in the package and every directory above one, plus its state dirs."""
    paths = {"/var/lib/rustronaut", "/run/rustronaut", "/etc/rustronaut"}
    for line in run(["dpkg-deb", "-c", str(deb)]).stdout.splitlines():
        name = line.split(None, 5)[5].split(" -> ")[0].lstrip(".").rstrip("/")
        while name:
            paths.add(name)
            name = name.rsplit("/", 1)[0]
    return sorted(paths)


@pytest.mark.root
@pytest.mark.parametrize("opt", ["empty", "shared", "absent"])
def test_purge_leaves_what_existed_before(
    deb: Path, throwaway_root: Callable[[Path], ThrowawayRoot], opt: str
) -> None:
    """/opt empty (a stock Debian: no package owns it), /opt holding other software, or
    no /opt at all (then the package created it, and purge takes it away again)."""
    root = throwaway_root(deb)
    if opt == "absent":
        root.p("/opt").rmdir()
    else:
        root.p("/opt").chmod(0o751)  # not the package's 0755: restored as it was
        os.chown(root.p("/opt"), 0, 0)
    if opt == "shared":
        root.p("/opt/other").mkdir()
        root.p("/opt/other/tool").write_text("someone else's\n")
    paths = package_paths(deb)
    before = snapshot(root, paths)

    root.dpkg("-i", str(deb))
    assert root.p("/opt/rustronaut/rustronaut-helper").is_file()
    root.dpkg("--remove", "rustronaut")
    # Already after remove (dpkg deletes the files then): /opt as it was.
    assert snapshot(root, ["/opt"]) == {k: v for k, v in before.items() if k == "/opt"}
    root.dpkg("--purge", "rustronaut")

    after = snapshot(root, paths)
    assert after == before, {
        "left behind": sorted(after.keys() - before.keys()),
        "gone": sorted(before.keys() - after.keys()),
        "changed": sorted(k for k in after.keys() & before.keys() if after[k] != before[k]),
    }
    if opt == "shared":
        assert root.p("/opt/other/tool").read_text() == "someone else's\n"
    assert root.dpkg("-s", "rustronaut", check=False).returncode != 0


@pytest.mark.root
def test_reinstall_after_remove_keeps_the_record(
    deb: Path, throwaway_root: Callable[[Path], ThrowawayRoot]
) -> None:
    """install, remove, install again (from the config-files state), purge: /opt stays."""
    root = throwaway_root(deb)
    root.dpkg("-i", str(deb))
    root.dpkg("--remove", "rustronaut")
    assert root.p("/opt").is_dir()
    root.dpkg("-i", str(deb))
    root.dpkg("--purge", "rustronaut")
    assert root.p("/opt").is_dir()
    assert not root.p("/opt/rustronaut").exists()
    assert not root.p("/var/lib/rustronaut").exists()


def test_maintainer_scripts_parse_and_preinst_lists_the_shared_dirs(
    deb: Path, tmp_path: Path
) -> None:
    run(["dpkg-deb", "-e", str(deb), str(tmp_path)])
    preinst = (tmp_path / "preinst").read_text()
    assert "@SHARED_DIRS@" not in preinst
    listed = re.search(r'^SHARED_DIRS="([^"]*)"$', preinst, re.M)
    assert listed is not None
    dirs = listed.group(1).split()
    assert "/opt" in dirs
    assert "/etc/xdg/autostart" in dirs
    assert dirs == sorted(dirs)  # parents before children, for postrm's mkdir
    assert not [d for d in dirs if d.startswith(("/opt/rustronaut", "/etc/rustronaut"))]
    for script in ("preinst", "postrm"):
        run(["sh", "-n", str(tmp_path / script)])
