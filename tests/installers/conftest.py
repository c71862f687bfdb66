"""Fixtures of the installer tests: one PyInstaller bundle per session, a throwaway GnuPG
home, a test code-signing CA, and throwaway roots for ``dpkg --root``.

The bundle is built once per session (~1–3 min on a 2-core runner) into a temporary
directory and shared by the bundle, .deb/.rpm and NSIS tests. ``RUSTRONAUT_TEST_BUNDLE``
names an already built ``dist/rustronaut`` to reuse instead (local iterations only).

Throwaway root (why not the CI machine itself): the package's maintainer scripts create
a system group, enable a unit and write /etc and /var/lib — on a machine other engineers
test on at the same time, those would leak into their tests. ``dpkg --root=DIR`` runs the
maintainer scripts chrooted into DIR, so DIR is made a "container-less chroot": the host's
/usr under an overlayfs (the package's writes land in the upper layer; the host's /usr is
never modified), copies of /etc's account files, the host's dpkg status limited to the
package's dependencies (so they are satisfied honestly: those libraries are really there),
a /dev/null node and /proc. Everything is unmounted and removed afterwards, including any
process still running with DIR as its root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.installers import (
    ROOT,
    CodeSigning,
    GpgHome,
    ThrowawayRoot,
    _deb_depends,
    _filtered_status,
    _mounted_under,
    make_ca,
    need,
    run,
)
from tests.fakes.wait import wait_until

BUILD_LOG: dict[str, float] = {}


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/rustronaut built from build.spec (once per session)."""
    reuse = os.environ.get("RUSTRONAUT_TEST_BUNDLE")
    if reuse:
        return Path(reuse)
    base = tmp_path_factory.mktemp("pyinstaller")
    t0 = time.monotonic()
    proc = run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(base / "dist"),
            "--workpath",
            str(base / "work"),
            str(ROOT / "build.spec"),
        ],
        cwd=ROOT,
        check=False,
    )
    BUILD_LOG["pyinstaller_s"] = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-4000:]
    shutil.rmtree(base / "work", ignore_errors=True)
    out = base / "dist" / "rustronaut"
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"\n[bundle] built in {BUILD_LOG['pyinstaller_s']:.1f} s, {size / 1e6:.0f} MB")
    return out


@pytest.fixture(scope="session")
def gpg_home() -> Iterator[GpgHome]:
    """Created under /tmp with a short path (gpg-agent's socket path limit); the agent
    started by the signing is killed and the directory removed at the end."""
    need("gpg", "gpgconf")
    home = Path(tempfile.mkdtemp(prefix="rtgpg"))
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    try:
        run(
            [
                "gpg",
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                "Rustronaut Test Release <release@rustronaut.example>",
                "ed25519",
                "sign",
                "never",
            ],
            env=env,
        )
        listing = run(["gpg", "--list-keys", "--with-colons"], env=env).stdout
        keyid = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
        pub = home / "release-key.asc"
        pub.write_text(run(["gpg", "--armor", "--export", keyid], env=env).stdout)
        yield GpgHome(home, keyid, pub)
    finally:
        run(["gpgconf", "--kill", "all"], env=env, check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def code_signing(tmp_path_factory: pytest.TempPathFactory) -> CodeSigning:
    """The test Authenticode certificate (made here, never a real one)."""
    need("openssl")
    return make_ca(tmp_path_factory.mktemp("codesign"), "Rustronaut Test")


@pytest.fixture
def throwaway_root() -> Iterator[Callable[[Path], ThrowawayRoot]]:
    """Factory ``make(deb) -> ThrowawayRoot``; everything is torn down afterwards."""
    need("dpkg", "chroot", "mount", "umount")
    made: list[ThrowawayRoot] = []

    def make(deb: Path) -> ThrowawayRoot:
        path = Path(tempfile.mkdtemp(prefix="rtroot"))
        root = ThrowawayRoot(path)
        made.append(root)
        ov = Path(tempfile.mkdtemp(prefix="rtov"))
        (ov / "up").mkdir()
        (ov / "wk").mkdir()
        root.mounts.append(ov)
        (path / "usr").mkdir()
        run(
            [
                "mount",
                "-t",
                "overlay",
                "overlay",
                "-o",
                f"lowerdir=/usr,upperdir={ov}/up,workdir={ov}/wk",
                str(path / "usr"),
            ]
        )
        for link in ("bin", "sbin", "lib", "lib64"):
            if Path(f"/{link}").is_symlink():
                (path / link).symlink_to(f"usr/{link}")
        for d in ("etc/dpkg", "var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"):
            (path / d).mkdir(parents=True)
        for d in ("tmp", "run", "opt", "var/log", "dev", "proc", "root"):
            (path / d).mkdir(parents=True, exist_ok=True)
        (path / "tmp").chmod(0o1777)
        for f in ("passwd", "group", "shadow", "gshadow", "login.defs", "nsswitch.conf"):
            if Path(f"/etc/{f}").exists():
                shutil.copy2(f"/etc/{f}", path / "etc" / f)
        (path / "var/lib/dpkg/status").write_text(_filtered_status(_deb_depends(deb)))
        (path / "var/lib/dpkg/available").touch()
        run(["mknod", "-m", "666", str(path / "dev/null"), "c", "1", "3"])
        run(["mount", "-t", "proc", "proc", str(path / "proc")])
        return root

    yield make

    def inside(root: ThrowawayRoot) -> list[int]:
        """Processes whose root directory is ``root`` (left behind by package scripts)."""
        pids = []
        for pid in [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/root") == str(root.path):
                    pids.append(pid)
        return pids

    for root in made:
        for pid in inside(root):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        # Killed processes release the mounts only once gone; best effort, then unmount.
        with contextlib.suppress(AssertionError):
            wait_until(lambda: not inside(root), 5, what="the root's processes gone")  # noqa: B023
        for point in _mounted_under(root.path):
            run(["umount", "-l", point], check=False)
        # Never remove through a mount point: only when nothing is mounted below.
        if not _mounted_under(root.path):
            shutil.rmtree(root.path, ignore_errors=True)
            for extra in root.mounts:
                shutil.rmtree(extra, ignore_errors=True)
