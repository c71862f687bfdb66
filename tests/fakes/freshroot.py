"""Helpers of the apt repository tests (tests/installers/test_apt_repo.py and
test_fresh_root.py): a loopback HTTP server for a repository directory, a throwaway apt
configuration that reads only our sources file, and a booted Debian root under
``systemd-nspawn``.

Why a booted root: this machine has no systemd as PID 1, and the package's promise
("install, the helper runs under the hardened unit, upgrade, purge leaves nothing") can
only be checked under a real systemd. The pristine root (``debootstrap --variant=minbase``
with systemd and dbus) is built once per machine into :data:`CACHE` and copied per test;
the copy, the machine and every mount are removed by :meth:`Machine.close` even when the
test fails.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.installers import run
from tests.fakes.wait import wait_until

__all__ = [
    "CACHE",
    "INCLUDE",
    "AptDir",
    "Machine",
    "pristine_root",
    "serve",
]

CACHE = Path("/var/cache/rustronaut-tests")
INCLUDE = ("systemd", "systemd-sysv", "dbus")
"""What the pristine root holds beyond minbase: enough to boot under nspawn, nothing of
ours and none of our dependencies (apt must pull those: the honest dependency test)."""
MIRROR = "http://deb.debian.org/debian"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port); yields the base URL.

    Each request reads the files as they are now, so a test may change them between
    ``apt-get update`` runs. The server is shut down on exit."""
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="apt-repo-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class AptDir:
    """A throwaway apt state: our deb822 sources file only, no system keys, no status.

    ``apt-get`` run through :meth:`apt` reads and writes nothing of the host's apt
    (lists, cache, status, trusted keys); only this directory."""

    path: Path

    def configure(self, url: str, keyring: Path, suite: str = "stable") -> None:
        for d in ("sources.list.d", "trusted.gpg.d", "preferences.d", "state/lists/partial",
                  "cache/archives/partial"):  # fmt: skip
            (self.path / d).mkdir(parents=True, exist_ok=True)
        (self.path / "sources.list").write_text("")
        (self.path / "status").write_text("")
        (self.path / "sources.list.d" / "rustronaut.sources").write_text(
            f"Types: deb\nURIs: {url}\nSuites: {suite}\nComponents: main\nSigned-By: {keyring}\n"
        )

    def options(self) -> list[str]:
        p = self.path
        pairs = {
            "Dir::Etc::sourcelist": p / "sources.list",
            "Dir::Etc::sourceparts": p / "sources.list.d",
            "Dir::Etc::trusted": p / "trusted.gpg",
            "Dir::Etc::trustedparts": p / "trusted.gpg.d",
            "Dir::Etc::preferencesparts": p / "preferences.d",
            "Dir::State": p / "state",
            "Dir::State::status": p / "status",
            "Dir::Cache": p / "cache",
            "APT::Sandbox::User": "root",
            # A client's defaults; the host's apt.conf.d may turn them off (this machine's
            # snapshot mirror does), and Check-Date=false skips the Valid-Until check too.
            "Acquire::Check-Valid-Until": "true",
            "Acquire::Check-Date": "true",
        }
        return [a for k, v in pairs.items() for a in ("-o", f"{k}={v}")]

    def apt(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``apt-get ARGS`` in this state; never raises on a non-zero exit."""
        env = {**os.environ, "LC_ALL": "C"}
        return run(["apt-get", "-q", *self.options(), *args], check=False, env=env)

    def cache(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``apt-cache ARGS`` in this state."""
        env = {**os.environ, "LC_ALL": "C"}
        return run(["apt-cache", *self.options(), *args], check=False, env=env)


def pristine_root() -> Path:
    """The cached minbase bookworm root with systemd (built by debootstrap when missing,
    ~1 min and ~250 MB, into a temporary name renamed when complete). Never booted or
    modified: tests boot copies."""
    key = hashlib.sha256(" ".join(("minbase", *INCLUDE)).encode()).hexdigest()[:12]
    final = CACHE / f"bookworm-{key}"
    if (final / "root" / "usr" / "lib" / "systemd" / "systemd").exists():
        return final / "root"
    CACHE.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".build-", dir=CACHE))
    try:
        run(["debootstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}", "bookworm",
             str(build / "root"), MIRROR])  # fmt: skip
        # apt in the copies fetches from the same mirror debootstrap used.
        (build / "root" / "etc/apt/sources.list").write_text(f"deb {MIRROR} bookworm main\n")
        build.rename(final)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return final / "root"


@dataclass
class Machine:
    """A booted copy of the pristine root (``systemd-nspawn -b``, host network).

    Without systemd as the host's PID 1 there is no machined (``machinectl`` and
    ``systemd-run -M`` do not work), so commands enter the container's namespaces with
    ``nsenter`` through the PID of its init; the container's own systemd runs them."""

    name: str
    path: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    leader: int | None = None

    @classmethod
    def boot(cls, pristine: Path) -> Machine:
        base = Path(tempfile.mkdtemp(prefix="rtnspawn"))
        # A machine name takes only letters, digits and "-" (mkdtemp's suffix may hold "_").
        m = cls(name=f"rt-{os.getpid()}-{secrets.token_hex(3)}", path=base / "root")
        try:
            # Reflink where the file system can, else a plain copy (~3 s for 250 MB).
            run(["cp", "-a", "--reflink=auto", str(pristine), str(m.path)])
            (m.path / "etc/hostname").write_text(m.name + "\n")
            m.log = base / "console.log"
            m.proc = subprocess.Popen(
                ["systemd-nspawn", "--quiet", "--boot", f"--machine={m.name}",
                 f"--directory={m.path}", "--register=no", "--keep-unit", "--console=passive",
                 "--resolv-conf=copy-host", "--timezone=off"],
                stdin=subprocess.DEVNULL, stdout=m.log.open("wb"), stderr=subprocess.STDOUT,
            )  # fmt: skip
            wait_until(m._booted, 90, what=f"{m.name} booted", interval=0.2)
        except BaseException:
            m.close()
            raise
        return m

    def _find_leader(self) -> int | None:
        assert self.proc is not None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == self.proc.pid and (entry / "comm").read_text().strip() == "systemd":
                    return int(entry.name)
        return None

    def _booted(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            log = self.log.read_text(errors="replace")[-2000:] if self.log else ""
            raise AssertionError(f"systemd-nspawn exited {self.proc.returncode}: {log}")
        if self.leader is None:
            self.leader = self._find_leader()
            if self.leader is None:
                return False
        state = self.sh("systemctl is-system-running 2>/dev/null || true", check=False)
        return state.stdout.strip() in {"running", "degraded"}

    def sh(
        self, script: str, *, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run ``sh -c SCRIPT`` as root inside the machine (all its namespaces, its root),
        with a clean environment (LC_ALL=C, noninteractive debconf); output captured."""
        assert self.leader is not None, "not booted"
        argv = ["nsenter", f"--target={self.leader}", "--all", "--root", "--wd=/",
                "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C",
                "DEBIAN_FRONTEND=noninteractive", "HOME=/root",
                "/bin/sh", "-c", script]  # fmt: skip
        proc = run(argv, check=False, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"in {self.name}: {script!r} exited {proc.returncode}\n"
                f"stdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
            )
        return proc

    def close(self) -> None:
        """Shut the machine down (SIGTERM: nspawn asks its init to halt; SIGKILL if it
        has not stopped in 30 s), unmount what is left, remove the copy. Idempotent;
        never raises."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Never remove through a mount point.
        mounts = [
            line.split()[1]
            for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(self.path.parent) + "/")
        ]
        for point in sorted(mounts, reverse=True):
            run(["umount", "-l", point], check=False)
        shutil.rmtree(self.path.parent, ignore_errors=True)
