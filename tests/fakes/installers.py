"""Helpers of the installer tests (imported by tests/installers' conftest.py and test
modules as ``tests.fakes.installers``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "installers" / "data"


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run argv, capture text output; check=True unless told otherwise."""
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(argv, **kw)  # type: ignore[call-overload, no-any-return]


def need(*tools: str) -> None:
    """Skip (locally) / fail (CI) when a tool is missing: the apt list must provide it."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        msg = f"missing tools {missing} (scripts/apt/installers.txt)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


@dataclass
class GpgHome:
    """A throwaway GNUPGHOME with one unprotected Ed25519 signing key."""

    home: Path
    keyid: str
    pubkey: Path

    def env(self) -> dict[str, str]:
        """os.environ with GNUPGHOME pointing here."""
        return {**os.environ, "GNUPGHOME": str(self.home)}


@dataclass
class CodeSigning:
    """A test CA and a code-signing certificate it issued, as PKCS#12."""

    ca_pem: Path
    p12: Path
    password: str = "test-pass"

    def env(self) -> dict[str, str]:
        """Environment for installers/windows/sign.sh and build-installer.sh."""
        return {
            **os.environ,
            "RUSTRONAUT_WIN_CERT_P12": str(self.p12),
            "RUSTRONAUT_WIN_CERT_PASS": self.password,
            "RUSTRONAUT_WIN_CAFILE": str(self.ca_pem),
        }


def make_ca(directory: Path, name: str) -> CodeSigning:
    """openssl: a self-signed CA, a codeSigning leaf it signs, and a .p12 of leaf + chain."""
    directory.mkdir(parents=True, exist_ok=True)
    d = directory
    run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(d / "ca.key"),
            "-out",
            str(d / "ca.pem"),
            "-subj",
            f"/CN={name} CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]
    )
    run(
        [
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(d / "cs.key"),
            "-out",
            str(d / "cs.csr"),
            "-subj",
            f"/CN={name} Code Signing",
        ]
    )
    (d / "ext.cnf").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=codeSigning\n"
    )
    run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(d / "cs.csr"),
            "-CA",
            str(d / "ca.pem"),
            "-CAkey",
            str(d / "ca.key"),
            "-CAcreateserial",
            "-out",
            str(d / "cs.pem"),
            "-days",
            "2",
            "-extfile",
            str(d / "ext.cnf"),
        ]
    )
    cs = CodeSigning(ca_pem=d / "ca.pem", p12=d / "cs.p12")
    run(
        [
            "openssl",
            "pkcs12",
            "-export",
            "-out",
            str(cs.p12),
            "-inkey",
            str(d / "cs.key"),
            "-in",
            str(d / "cs.pem"),
            "-certfile",
            str(d / "ca.pem"),
            "-passout",
            f"pass:{cs.password}",
        ]
    )
    return cs


def _mounted_under(path: Path) -> list[str]:
    prefix = str(path)
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point == prefix or point.startswith(prefix + "/"):
            mounts.append(point)
    return sorted(mounts, key=len, reverse=True)


@dataclass
class ThrowawayRoot:
    """A container-less chroot for ``dpkg --root`` (see the module docstring)."""

    path: Path
    mounts: list[Path] = field(default_factory=list)

    def dpkg(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``dpkg --root=PATH ARGS`` with a clean PATH inside the root."""
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LC_ALL": "C",
        }
        return run(["dpkg", f"--root={self.path}", *args], env=env, check=check)

    def chroot(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run argv inside the root."""
        return run(["chroot", str(self.path), *argv], check=check, timeout=60)

    def p(self, inner: str) -> Path:
        """The host path of a path inside the root."""
        return self.path / inner.lstrip("/")

    def processes(self, name: str) -> list[int]:
        """PIDs whose root directory is this root and whose command name is ``name``."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(entry / "root") != str(self.path):
                    continue
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm == name[:15]:
                pids.append(int(entry.name))
        return pids

    def group(self, name: str) -> str | None:
        """The root's /etc/group line of ``name``, or None."""
        for line in self.p("/etc/group").read_text().splitlines():
            if line.split(":")[0] == name:
                return line
        return None


def _deb_depends(deb: Path) -> set[str]:
    field_ = run(["dpkg-deb", "-f", str(deb), "Depends"]).stdout
    names = set()
    for part in field_.replace("|", ",").split(","):
        name = part.strip().split(" ")[0].split(":")[0]
        if name:
            names.add(name)
    return names


def _filtered_status(names: set[str]) -> str:
    """The host's dpkg status stanzas of the named packages (and only those)."""
    stanzas = Path("/var/lib/dpkg/status").read_text().split("\n\n")
    keep = []
    for stanza in stanzas:
        for line in stanza.splitlines():
            if line.startswith("Package: "):
                if line[9:].strip() in names:
                    keep.append(stanza.strip() + "\n")
                break
    return "\n".join(keep)
