"""Fixtures of the sign-in tests: the real npm OpenID provider, an in-memory keyring, and
a check for a real Secret Service (skip locally, fail under CI when it is missing)."""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend

ROOT = Path(__file__).resolve().parents[3]
NPM_TOOL = ROOT / "tests" / "tools" / "oidc-provider"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CLIENT_ID = "rustronaut-test"


def need(ok: bool, reason: str) -> None:
    """Skip with ``reason`` locally; fail under CI (which must be able to run it)."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"CI must run this test but the machine cannot: {reason}", pytrace=False)
    pytest.skip(reason)


class NotViable:
    """A ``priority`` that raises: keyring registers every ``KeyringBackend`` subclass and
    would otherwise pick test backends as candidates for the process-wide keyring."""

    def __get__(self, obj: object, cls: type | None = None) -> float:
        raise RuntimeError("test backend, never chosen automatically")


class MemoryKeyring(KeyringBackend):
    """A secure-looking in-memory backend for flow tests (keyring semantics, no D-Bus)."""

    priority = NotViable()  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}
        self.writes = 0

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.writes += 1
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        from keyring.errors import PasswordDeleteError

        if (service, username) not in self.items:
            raise PasswordDeleteError("not found")
        del self.items[(service, username)]


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    return MemoryKeyring()


@dataclass
class NpmProvider:
    """A running ``tests/tools/oidc-provider/server.js``."""

    issuer: str
    kid: str
    port: int
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


_START_WAIT = 15.0  # seconds; a normal start takes about 0.4 s


def start_npm_provider(port: int = 0, **options: str) -> NpmProvider:
    """Start the node provider and wait for its one JSON line.

    ``options`` become ``--name=value`` (underscores to dashes): the ``=`` form because a
    value that starts with a dash (a random secret can) is otherwise refused by node's
    ``parseArgs`` as ambiguous.

    It starts in about 0.4 s. Once in CI a start printed nothing for a whole minute, so a
    start that says nothing within ``_START_WAIT`` s is killed and tried once more, and a
    failure says what the provider wrote on stderr.
    """
    need(shutil.which("node") is not None, "needs node (apt: nodejs)")
    need(
        (NPM_TOOL / "node_modules" / "oidc-provider").is_dir(),
        "needs 'npm install' in tests/tools/oidc-provider (scripts/bootstrap.sh does it)",
    )
    problems: list[str] = []
    for _attempt in range(2):
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(
                [
                    "node",
                    "server.js",
                    f"--port={port}",
                    f"--client-id={CLIENT_ID}",
                    *(f"--{name.replace('_', '-')}={value}" for name, value in options.items()),
                ],
                cwd=NPM_TOOL,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
            )
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], _START_WAIT)
            line = proc.stdout.readline() if ready else b""
            if line:
                info = json.loads(line)
                port_ = int(info["issuer"].rsplit(":", 1)[1])
                return NpmProvider(info["issuer"], info["kid"], port_, proc)
            proc.kill()
            proc.wait(5)
            proc.stdout.close()
            assert proc.stdin is not None
            proc.stdin.close()
            errors.seek(0)
            said = errors.read().decode(errors="replace")[-2000:]
            state = "timed out" if not ready else f"exit {proc.returncode}"
            problems.append(f"{state}; stderr: {said!r}")
    raise RuntimeError("oidc-provider did not start: " + " / ".join(problems))


@pytest.fixture(scope="module")
def npm_provider() -> Iterator[NpmProvider]:
    provider = start_npm_provider()
    try:
        yield provider
    finally:
        provider.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def secret_service_problem() -> str | None:
    """Why no real Secret Service is usable here, or None."""
    import keyring
    from keyring.backends import SecretService

    backend = keyring.get_keyring()
    chain = getattr(backend, "backends", [backend])
    if not any(isinstance(b, SecretService.Keyring) for b in chain):
        return (
            f"needs a real Secret Service (run under scripts/with-keyring.sh); "
            f"backend here is {type(backend).__module__}"
        )
    try:
        backend.set_password("rustronaut-probe", "probe", "x")
        backend.delete_password("rustronaut-probe", "probe")
    except Exception as exc:
        return f"the Secret Service is not usable ({type(exc).__name__}: {exc})"
    return None


@pytest.fixture
def secret_service() -> None:
    """Require a real, unlocked Secret Service (gnome-keyring in a D-Bus session)."""
    problem = secret_service_problem()
    need(problem is None, problem or "")
