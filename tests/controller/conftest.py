"""Fixtures: a running controller with its dev OIDC provider, device keys, posture reports."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from controller.testing import RunningController, run_controller
from core.controlplane.models import EnrollRequest
from core.wire.posture import Fact, PostureReport, sign_report
from core.wire.signing import b64url


@dataclass
class DeviceKeys:
    """A device's key pairs and the enrollment request built from them."""

    signing: Ed25519PrivateKey
    wg_private: X25519PrivateKey

    @property
    def wg_public(self) -> str:
        raw = self.wg_private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(raw).decode()

    @property
    def signing_public(self) -> str:
        raw = self.signing.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return b64url(raw)

    def enroll_request(self, name: str = "laptop") -> EnrollRequest:
        return EnrollRequest(
            name=name,
            platform="linux",
            wg_public_key=self.wg_public,
            signing_key=self.signing_public,
        )

    def report(
        self, device_id: str, nonce: str, *, encrypted: bool = True, issued_at: float | None = None
    ) -> str:
        now = time.time() if issued_at is None else issued_at
        rep = PostureReport(
            device_id=device_id,
            nonce=nonce,
            issued_at=now,
            facts=(Fact.of("disk.encrypted", encrypted, now), Fact.of("os.name", "linux", now)),
        )
        return sign_report(rep, self.signing)


def new_device() -> DeviceKeys:
    """Fresh device keys."""
    return DeviceKeys(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())


@pytest.fixture
async def controller() -> AsyncIterator[RunningController]:
    """A controller on 127.0.0.1 (SQLite in a temp dir) with demo users alice and bob."""
    async with run_controller(sensitive_rate_per_min=1000) as rc:
        yield rc


PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _reap_stale_clusters(as_pg: list[str]) -> None:
    """Stop and remove clusters of earlier runs whose pytest process died (a crash or a
    kill skips fixture teardown); a live owner's cluster is left alone."""
    for owner in Path(tempfile.gettempdir()).glob("rtc-pg-*/owner"):
        try:
            os.kill(int(owner.read_text()), 0)
            continue  # its owner still runs
        except ProcessLookupError:
            pass
        except (ValueError, OSError):
            continue
        subprocess.run(
            [
                *as_pg,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(owner.parent / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=30,
        )
        shutil.rmtree(owner.parent, ignore_errors=True)


@dataclass(frozen=True)
class Cluster:
    """A private PostgreSQL cluster: its URL and postmaster pid."""

    url: str
    pid: int


@contextlib.contextmanager
def pg_cluster(settings: tuple[str, ...] = ()) -> Iterator[Cluster]:
    """A private PostgreSQL cluster on a unix socket in a temp dir (``settings``: extra
    ``name=value`` server settings), stopped and removed afterwards. Needs ``PG_BIN``."""
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    _reap_stale_clusters(as_pg)
    tmp = Path(tempfile.mkdtemp(prefix="rtc-pg-"))
    tmp.chmod(0o755)
    (tmp / "owner").write_text(str(os.getpid()))
    data, sock = tmp / "data", tmp / "sock"
    sock.mkdir()
    if as_pg:
        shutil.chown(tmp, "postgres")
        shutil.chown(sock, "postgres")
    subprocess.run(
        [*as_pg, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    ctl = [*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "-w"]
    subprocess.run(
        [
            *ctl,
            "-l",
            str(tmp / "log"),
            "-o",
            " ".join([f"-k {sock} -c listen_addresses=''", *(f"-c {s}" for s in settings)]),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        yield Cluster(f"postgresql://postgres@/postgres?host={sock}", pid)
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private PostgreSQL cluster on a unix socket in a temp dir, removed afterwards."""
    if not (PG_BIN / "initdb").exists():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL 15 is not installed (apt: postgresql)")
        pytest.skip("PostgreSQL 15 is not installed (apt: postgresql)")
    with pg_cluster() as cluster:
        yield cluster.url
