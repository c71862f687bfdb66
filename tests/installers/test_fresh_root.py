"""Issue 19, "Done when": the real package from the signed apt repository in a fresh,
booted Debian 12 root.

A copy of a minbase bookworm root (systemd, dbus; cached by tests/fakes/freshroot.py) is
booted with ``systemd-nspawn -b`` on the host's network, so it reaches the repository
that installers/linux/repo-apt.sh built from the real PyInstaller bundle (two versions,
N and N+1) and the test serves on loopback. Inside, the way docs/deployment.md tells IT:
the key in /usr/share/keyrings, a deb822 sources file with ``Signed-By``, then

- ``apt-get install --no-install-recommends rustronaut`` pulls the dependencies from
  the Debian mirror, and the helper runs under the hardened unit (``systemctl
  is-active``; ``systemd-analyze security`` exposure at most 3.0, measured online);
- N+1 published, ``apt-get upgrade`` installs it and the helper runs again;
- ``apt-get install rustronaut=N`` is refused without ``--allow-downgrades``;
- ``apt-get purge`` leaves the root's file list as before the install, but for apt's
  own state and the dependencies' files; no account or group of ours is left;
- with openresolv installed, the unit's privileged ExecStartPre backs up a foreign
  /etc/resolv.conf (what openresolv cannot do inside the sandbox) and the helper runs
  and a purge removes that copy once resolv.conf is the admin's file again (postrm).

Needs root, debootstrap and systemd-nspawn (skipped with the reason otherwise), and the
Debian mirror the first time (the pristine root and the dependencies).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import __version__
from tests.fakes.freshroot import Machine, pristine_root, serve
from tests.fakes.installers import ROOT, GpgHome, need, run

pytestmark = [pytest.mark.root, pytest.mark.integration]

LINUX = ROOT / "installers" / "linux"
N = __version__
N1 = f"{__version__}+next1"
MAX_EXPOSURE = 3.0
_OVERALL = re.compile(r"Overall exposure level for \S+: (\d+\.\d) (\w+)")

# What apt, dpkg and systemd themselves change in a root whatever the package (relative
# paths, prefixes): caches, logs, package databases, the linker cache.
APT_OWN = (
    "var/cache/apt/",
    "var/lib/apt/",
    "var/log/",
    "var/cache/debconf/",
    "var/lib/dpkg/",
    "var/cache/ldconfig/",
    "etc/ld.so.cache",
    "var/lib/systemd/",
)
# What the pulled dependencies' maintainer scripts create (links they manage, not files
# they ship): alternatives, init links, enabled units, fontconfig's conf.d choices.
DEPENDENCY_SCRIPTS = (
    "etc/alternatives/",
    "etc/systemd/system/",
    "etc/rc0.d/",
    "etc/rc1.d/",
    "etc/rc2.d/",
    "etc/rc3.d/",
    "etc/rc4.d/",
    "etc/rc5.d/",
    "etc/rc6.d/",
    "etc/rcS.d/",
    "etc/fonts/conf.d/",
    "usr/local/share/fonts",
)
USRMERGE = {"bin", "sbin", "lib", "lib64"}
TIMES: dict[str, float] = {}


def _list(root: Path) -> set[str]:
    """Every path on the root's own file system, relative (the host's view of the copy:
    the container's /proc, /sys, /dev, /run and /tmp are its own mounts, not these)."""
    out: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            out.add(os.path.normpath(os.path.join(rel, name)))
    return out


def _installed(m: Machine) -> set[str]:
    return set(m.sh("dpkg-query -W -f '${Package}\\n'").stdout.split())


@pytest.fixture(scope="module")
def releases(
    bundle_dir: Path, gpg_home: GpgHome, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The real package at versions N and N+1 (gzip -1: a 170 MB bundle with xz takes
    minutes; the compression is not what this test checks)."""
    need("dpkg-deb", "apt-ftparchive", "gpg", "gpgv")
    out = tmp_path_factory.mktemp("releases")
    debs = {}
    t0 = time.monotonic()
    for version in (N, N1):
        env = {**os.environ, "RUSTRONAUT_DEB_COMPRESSION": "gzip:1", "RUSTRONAUT_VERSION": version}
        proc = run(
            ["bash", str(LINUX / "build-deb.sh"), str(bundle_dir), str(out / version)], env=env
        )
        debs[version] = Path(proc.stdout.strip().splitlines()[-1])
    TIMES["build two .debs"] = time.monotonic() - t0
    return debs


@pytest.fixture
def machine() -> Iterator[Machine]:
    need("debootstrap", "systemd-nspawn", "nsenter")
    for step in [k for k in TIMES if k != "build two .debs"]:
        del TIMES[step]
    t0 = time.monotonic()
    pristine = pristine_root()
    TIMES["pristine root (cached after the first run)"] = time.monotonic() - t0
    t0 = time.monotonic()
    m = Machine.boot(pristine)
    TIMES["copy + boot"] = time.monotonic() - t0
    try:
        yield m
    finally:
        t0 = time.monotonic()
        m.close()
        TIMES["shutdown + cleanup"] = time.monotonic() - t0
        print("\n[fresh root] " + ", ".join(f"{k}: {v:.1f} s" for k, v in TIMES.items()))


def _publish(gpg: GpgHome, repo: Path, deb: Path) -> None:
    run(
        ["bash", str(LINUX / "repo-apt.sh"), "--key", gpg.keyid, "--out", str(repo), str(deb)],
        env=gpg.env(),
    )


def _helper_active(m: Machine) -> None:
    state = m.sh("systemctl is-active rustronaut-helper.service || true").stdout.strip()
    if state != "active":
        status = m.sh("systemctl status --no-pager -n 30 rustronaut-helper.service || true").stdout
        raise AssertionError(f"helper is {state!r}:\n{status}")


def _timed(name: str, m: Machine, script: str, **kw: object) -> str:
    t0 = time.monotonic()
    out = m.sh(script, **kw).stdout  # type: ignore[arg-type]
    TIMES[name] = time.monotonic() - t0
    return out


def test_install_upgrade_downgrade_purge_from_the_signed_repository(
    machine: Machine, releases: dict[str, Path], gpg_home: GpgHome, tmp_path: Path
) -> None:
    m = machine
    repo = tmp_path / "repo"
    _publish(gpg_home, repo, releases[N])
    with serve(repo) as url:
        # What IT deploys (docs/deployment.md, "Package repositories"): the key as a
        # binary keyring and the sources file naming it, pointed at this server.
        keyring = m.path / "usr/share/keyrings/rustronaut.gpg"
        keyring.write_bytes((repo / "rustronaut.gpg").read_bytes())
        keyring.chmod(0o644)
        sources = (repo / "rustronaut.sources").read_text()
        sources = re.sub(r"(?m)^URIs: .*$", f"URIs: {url}", sources)
        (m.path / "etc/apt/sources.list.d/rustronaut.sources").write_text(sources)
        _timed("apt-get update (Debian + ours)", m, "apt-get -q update")
        packages_before = _installed(m)
        before = _list(m.path)
        accounts_before = {f: (m.path / "etc" / f).read_text() for f in ("passwd", "group")}

        _timed(
            "install N (+ dependencies)",
            m,
            "apt-get -q install -y --no-install-recommends rustronaut",
        )
        assert m.sh("dpkg-query -W -f '${Version}' rustronaut").stdout == N
        _helper_active(m)
        security = m.sh("systemd-analyze security --no-pager rustronaut-helper.service").stdout
        found = _OVERALL.search(security)
        assert found, security[-2000:]
        assert float(found.group(1)) <= MAX_EXPOSURE, security
        TIMES[f"exposure {found.group(1)} {found.group(2)}"] = 0.0

        # N+1 published: a plain upgrade takes it, the helper runs the new version.
        _publish(gpg_home, repo, releases[N1])
        _timed("update + upgrade to N+1", m, "apt-get -q update && apt-get -q upgrade -y")
        assert m.sh("dpkg-query -W -f '${Version}' rustronaut").stdout == N1
        _helper_active(m)
        assert m.sh("systemctl show -P NRestarts rustronaut-helper.service").stdout.strip() == "0"

        # Back to N: refused unless asked for.
        refused = m.sh(f"apt-get -q install -y rustronaut={N}", check=False)
        assert refused.returncode == 100, refused.stdout + refused.stderr
        assert "--allow-downgrades" in refused.stderr, refused.stderr
        assert m.sh("dpkg-query -W -f '${Version}' rustronaut").stdout == N1
        m.sh(f"apt-get -q install -y --allow-downgrades rustronaut={N}")
        assert m.sh("dpkg-query -W -f '${Version}' rustronaut").stdout == N
        _helper_active(m)

        _timed("purge", m, "apt-get -q purge -y rustronaut")
    after = _list(m.path)
    pulled = _installed(m) - packages_before
    assert "rustronaut" not in pulled
    owned: set[str] = set()
    if pulled:
        listing = m.sh("dpkg -L " + " ".join(sorted(pulled))).stdout
        for line in listing.splitlines():
            if line.startswith("/"):
                path = line.lstrip("/")
                owned.add(path)
                # dpkg lists /bin/ip; on a merged-/usr root the file is usr/bin/ip.
                if path.split("/")[0] in USRMERGE:
                    owned.add("usr/" + path)

    def ours(path: str) -> bool:
        return not path.startswith(APT_OWN) and path not in owned

    added = sorted(p for p in after - before if ours(p))
    removed = sorted(p for p in before - after if not p.startswith(APT_OWN))
    # Left by the dependencies' maintainer scripts (e.g. alternatives), never ours.
    leftovers = [p for p in added if "rustronaut" in p or p.startswith(("opt", "etc/rustronaut"))]
    assert not removed, f"purge removed what existed before: {removed[:20]}"
    assert not leftovers, f"left after purge: {leftovers}"
    unexplained = [p for p in added if not p.startswith(DEPENDENCY_SCRIPTS)]
    assert not unexplained, f"{len(unexplained)} new paths: {unexplained}"
    for f, text in accounts_before.items():
        now = (m.path / "etc" / f).read_text()
        assert "rustronaut" not in now, f"/etc/{f} after purge:\n{now}"
        assert now.splitlines()[: len(text.splitlines())] == text.splitlines()


def test_helper_backs_up_a_foreign_resolv_conf_for_openresolv(
    machine: Machine, releases: dict[str, Path], gpg_home: GpgHome, tmp_path: Path
) -> None:
    """The unit's ExecStartPre under real systemd: with openresolv installed and a plain
    /etc/resolv.conf of someone else's, the backup openresolv restores later exists
    (openresolv cannot write it from inside ProtectSystem=strict) and the helper runs."""
    m = machine
    repo = tmp_path / "repo"
    _publish(gpg_home, repo, releases[N])
    with serve(repo) as url:
        (m.path / "usr/share/keyrings/rustronaut.gpg").write_bytes(
            (repo / "rustronaut.gpg").read_bytes()
        )
        sources = re.sub(
            r"(?m)^URIs: .*$", f"URIs: {url}", (repo / "rustronaut.sources").read_text()
        )
        (m.path / "etc/apt/sources.list.d/rustronaut.sources").write_text(sources)
        m.sh("apt-get -q update && apt-get -q install -y --no-install-recommends openresolv")
        # A plain file of someone else's (still the host's resolver: apt needs it).
        resolv = m.path / "etc/resolv.conf"
        original = "# written by the network admin\n" + resolv.read_text()
        m.sh("rm -f /etc/resolv.conf /etc/resolv.conf.bak")
        resolv.write_text(original)
        _timed(
            "install N with openresolv",
            m,
            "apt-get -q install -y --no-install-recommends rustronaut",
        )
    _helper_active(m)
    assert (m.path / "etc/resolv.conf.bak").read_text() == original
    # A second start keeps the first backup (never overwrites openresolv's restore point).
    (m.path / "etc/resolv.conf").write_text("# Generated by resolvconf\nnameserver 10.0.0.1\n")
    m.sh("systemctl restart rustronaut-helper.service")
    _helper_active(m)
    assert (m.path / "etc/resolv.conf.bak").read_text() == original
    # Back to the admin's file, then purge: the admin's resolv.conf stays as it was.
    (m.path / "etc/resolv.conf").write_text(original)
    m.sh("apt-get -q purge -y rustronaut")
    assert (m.path / "etc/resolv.conf").read_text() == original
    # postrm purge removes the copy the unit made once it equals resolv.conf again.
    assert not (m.path / "etc/resolv.conf.bak").exists()
