"""Run a real ``rustronaut-helper`` process for tests (optionally inside a netns).

:func:`start_helper` launches ``python -I -m wg_backends.helper`` with a private socket,
state and config directory under ``workdir``, waits for the socket and returns a
:class:`HelperProc`; :meth:`HelperProc.stop` sends SIGTERM (the helper brings its
tunnels down) and waits. Reusable by engine end-to-end tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HelperProc", "start_helper"]


@dataclass
class HelperProc:
    """A running helper and its paths."""

    proc: subprocess.Popen[bytes]
    socket: Path
    state_dir: Path
    config_dir: Path
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the helper and wait for it (kill after 10 s). Returns its exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_helper(
    workdir: Path,
    *,
    netns: str | None = None,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> HelperProc:
    """Start a helper; raises ``RuntimeError`` (with its log) if its socket never appears."""
    workdir.mkdir(parents=True, exist_ok=True)
    sock = workdir / "run" / "helper.sock"
    state = workdir / "state"
    conf = workdir / "tunnels"
    log = workdir / "helper.log"
    argv = [
        sys.executable, "-I", "-m", "wg_backends.helper",
        "--socket", str(sock), "--state-dir", str(state), "--config-dir", str(conf),
        "--log-level", "DEBUG", *(extra or []),
    ]  # fmt: skip
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()  # a stale socket of a killed helper must not look like a live one
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})}
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=full_env)
    hp = HelperProc(proc, sock, state, conf, log)
    deadline = time.monotonic() + 15
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            hp.stop()
            raise RuntimeError(f"helper did not start:\n{hp.log_text()}")
        time.sleep(0.02)
    return hp
