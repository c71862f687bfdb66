"""The proxy under a hostile local user: a REAL second account (root: useradd + setpriv).

Issue 16 found, with the engine at the desktop default of 1,024 descriptors, that another
account holding 1,100 half-open connections put the accept loop into a busy spin on
``EMFILE`` (70–90 % CPU, 10 MB of log in 8 s) and the owner's session into ``error``:
the owner check ran only after the handshake and there was no per-account cap. Here:

- another account's connection is closed at accept, before a byte of it is read;
- another account's connections hold no slot: the owner still gets through while it
  floods the proxy (its cap is zero; the owner's is ``max_connections``);
- with the proxy in a child process at 1,024 descriptors, a flood costs little CPU and
  little log; when descriptors do run out, accept backs off (one warning per episode)
  and the owner connects again as soon as they are free.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from core.proxy import EventKind, Limits, ProxyEvent, ProxyServer
from tests.core.proxy.helpers import EchoServer, TableDecider, socks_open
from tests.fakes.wait import async_wait_until, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.root, pytest.mark.hostile_local_user]

ROOT = Path(__file__).resolve().parents[3]
SYSTEM_PYTHON = "/usr/bin/python3"  # the second account cannot read root's pyenv

# Run as the other account with the system python (stdlib only). argv: port, count.
HOLD = """
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
held = []
for _ in range(count):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    held.append(s)
print("ready", flush=True)
sys.stdin.read()  # hold every connection, never sending a byte, until told to stop
"""

# Connect, send nothing, and report whether the proxy closed the connection.
PROBE = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(float(sys.argv[2]))
try:
    print("closed" if s.recv(1) == b"" else "answered")
except ConnectionResetError:
    print("closed")
except TimeoutError:
    print("open")
"""


@pytest.fixture(scope="module")
def other_account() -> Iterator[pwd.struct_passwd]:
    if os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("needs root, useradd and setpriv")
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip("needs the system python for the second account")
    name = f"rtpr{os.getpid() % 100000}"
    subprocess.run(["useradd", "-m", "--shell", "/usr/sbin/nologin", name], check=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", "-r", name], capture_output=True)


def as_account(account: pwd.struct_passwd, *argv: str) -> list[str]:
    return [
        "setpriv",
        f"--reuid={account.pw_uid}",
        f"--regid={account.pw_gid}",
        "--init-groups",
        *argv,
    ]


class Flood:
    """The other account holding ``count`` connections to ``port`` (stdin open)."""

    def __init__(self, account: pwd.struct_passwd, port: int, count: int) -> None:
        self.proc = subprocess.Popen(
            as_account(account, SYSTEM_PYTHON, "-c", HOLD, str(port), str(count)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd="/",
        )

    def ready(self) -> None:
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    await server.start()
    yield server
    await server.stop()


async def test_other_account_is_closed_at_accept_before_a_byte_is_read(
    other_account: pwd.struct_passwd,
) -> None:
    events: list[ProxyEvent] = []
    decider = TableDecider([("loop", (), ("127.0.0.0/8",), ())])
    # A long handshake deadline: only a refusal at accept closes the connection in time.
    server = ProxyServer(
        decider, limits=Limits(handshake_timeout=60), on_event=events.append, hosts=("127.0.0.1",)
    )
    await server.start(0)
    try:
        probe = await asyncio.to_thread(
            subprocess.run,
            as_account(other_account, SYSTEM_PYTHON, "-c", PROBE, str(server.port), "5"),
            capture_output=True,
            text=True,
            cwd="/",
            timeout=30,
        )
        assert probe.stdout.strip() == "closed", probe.stderr
        await async_wait_until(lambda: events, what="the refusal event")
    finally:
        await server.stop()
    [event] = events
    assert event.kind is EventKind.REFUSED
    assert f"uid {other_account.pw_uid}" in event.reason
    assert event.app.uid == other_account.pw_uid
    assert event.destination == ""
    assert decider.seen == []


async def test_other_accounts_flood_never_starves_the_owner(
    other_account: pwd.struct_passwd, echo: EchoServer
) -> None:
    events: list[ProxyEvent] = []
    server = ProxyServer(
        TableDecider([("loop", (), ("127.0.0.0/8",), ())]),
        limits=Limits(max_connections=64, handshake_timeout=60),
        on_event=events.append,
        hosts=("127.0.0.1",),
    )
    await server.start(0)
    flood = Flood(other_account, server.port, 300)
    try:
        await asyncio.to_thread(flood.ready)
        await async_wait_until(
            lambda: server.counters().refused >= 300, what="the flood refused", timeout=15
        )
        # The other account's 300 connections hold none of the owner's 64 slots.
        for _ in range(3):
            code, _r, w = await socks_open(server.port, "127.0.0.1", echo.port)
            assert code == 0
            w.close()
        # …and its flood reaches the owner's events at a bounded rate, not 300 times:
        # the burst, then one event summing up the rest.
        await async_wait_until(
            lambda: "more refused connections" in events[-1].reason, what="the summary"
        )
        refused = [e for e in events if e.kind is EventKind.REFUSED]
        assert len(refused) <= 15
    finally:
        await asyncio.to_thread(flood.stop)
        await server.stop()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Child:
    """``proxy_child`` in its own process at ``limit`` descriptors, logging to a file."""

    def __init__(self, limit: int, log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.core.proxy.proxy_child", str(limit)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            cwd=ROOT,
        )
        self.port = int(self.ask(None))

    def ask(self, command: str | None) -> str:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def measure(self, seconds: float, during: Callable[[], None]) -> tuple[float, int]:
        """(CPU seconds, bytes logged) over ``seconds`` of wall time from just before
        ``during`` (the load) is started."""
        cpu, size = cpu_seconds(self.proc.pid), self.log.stat().st_size
        end = time.monotonic() + seconds
        during()
        time.sleep(max(0.0, end - time.monotonic()))  # the window itself, not a wait
        return cpu_seconds(self.proc.pid) - cpu, self.log.stat().st_size - size

    def close(self) -> None:
        if self.proc.poll() is None:
            with_stdin = self.proc.stdin
            assert with_stdin is not None
            with_stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


async def test_descriptor_exhaustion_backs_off_and_the_owner_gets_through(
    other_account: pwd.struct_passwd, echo: EchoServer, tmp_path: Path
) -> None:
    child = await asyncio.to_thread(Child, 1024, tmp_path / "proxy.log")
    flood: Flood | None = None
    try:
        # 1. Another account holds 1,100 half-open connections against 1,024 descriptors.
        floods: list[Flood] = []

        def flood_1100() -> None:
            floods.append(Flood(other_account, child.port, 1100))
            floods[0].ready()

        cpu, logged = await asyncio.to_thread(child.measure, 2.0, flood_1100)
        flood = floods.pop()
        print(f"\nflood of 1,100: {cpu:.2f} CPU-s and {logged} bytes of log in 2 s")
        assert cpu < 0.5, f"{cpu:.2f} CPU-s in 2 s under the flood"
        assert logged < 4096, f"{logged} bytes of log in 2 s"
        code, _r, w = await socks_open(child.port, "127.0.0.1", echo.port)
        assert code == 0
        w.close()
        await asyncio.to_thread(flood.stop)
        flood = None
        # 2. Descriptors really run out (the rest of the engine took them): accept fails
        # with EMFILE while connections wait. No spin, one warning for the episode.
        assert int(await asyncio.to_thread(child.ask, "hog")) > 0

        def flood_50() -> None:
            floods.append(Flood(other_account, child.port, 50))
            floods[0].ready()

        waiting = asyncio.create_task(socks_open(child.port, "127.0.0.1", echo.port))
        cpu, logged = await asyncio.to_thread(child.measure, 2.0, flood_50)
        flood = floods.pop()
        print(f"out of descriptors: {cpu:.2f} CPU-s and {logged} bytes of log in 2 s")
        assert cpu < 0.5, f"{cpu:.2f} CPU-s in 2 s while out of descriptors"
        warnings = child.log.read_text().count("cannot accept connections")
        assert warnings == 1, child.log.read_text()[-2000:]
        assert logged < 4096
        assert not waiting.done()
        # 3. Descriptors free again: the owner's waiting connection is served.
        assert await asyncio.to_thread(child.ask, "free") == "freed"
        code, _r, w = await asyncio.wait_for(waiting, 10)
        assert code == 0
        w.close()
        assert child.proc.poll() is None  # the proxy never went down
        wait_until(
            lambda: "accepts connections again" in child.log.read_text(),
            what="the recovery line",
        )
    finally:
        if flood is not None:
            await asyncio.to_thread(flood.stop)
        await asyncio.to_thread(child.close)
