"""The proxy benchmark's C tools build here and talk to each other (tests/bench/cload).

Each tool runs for a fraction of a second: the load generator against the sink directly,
through the splice forwarder and through microsocks, in all three modes. Without a C
compiler these tests skip with the packages to install; under CI=true they fail instead,
since the benchmark cannot run there without one.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bench import cload

pytestmark = pytest.mark.integration

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _compiler() -> str:
    """The C compiler; skips without one, or fails under CI=true."""
    cc = cload.compiler()
    if cc is None:
        reason = f"no C compiler: install {cload.PACKAGES}"
        if IN_CI:
            pytest.fail(f"CI must build the benchmark's C tools: {reason}", pytrace=False)
        pytest.skip(reason)
    return cc


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> cload.Tools:
    _compiler()
    return cload.build(tmp_path_factory.mktemp("cload"))


@pytest.fixture
def sink(tools: cload.Tools) -> Iterator[cload.Server]:
    with cload.Server(tools.sink) as server:
        yield server


def _exchange(tools: cload.Tools, dest: int, socks: int | None) -> None:
    times, errors = cload.setup(tools, dest, socks, 20)
    assert (len(times), errors) == (20, 0)
    assert all(t > 0 for t in times)
    rate = cload.rate(tools, dest, socks, 4, 0.2)
    assert rate.conns > 0
    assert rate.errors == 0
    for streams in (1, 4):
        run = cload.bulk(tools, dest, socks, streams, 0.2, warmup=0.05)
        assert run.errors == 0
        assert 0 < run.bytes <= run.total


@pytest.mark.parametrize("source", [*cload.SOURCES])
def test_sources_compile_without_warnings(source: str) -> None:
    done = subprocess.run(
        [_compiler(), *cload.FLAGS, "-Werror", "-fsyntax-only", str(cload.HERE / source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_build_is_cached_by_source_hash(tools: cload.Tools) -> None:
    cache = tools.loadgen.parent.parent
    mtimes = [p.stat().st_mtime_ns for p in (tools.loadgen, tools.sink, tools.splice_fwd)]
    again = cload.build(cache)
    assert again == tools
    assert [p.stat().st_mtime_ns for p in (again.loadgen, again.sink, again.splice_fwd)] == mtimes


def test_no_compiler_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(cload.NoCompiler, match="gcc libc6-dev"):
        cload.build(tmp_path)


def test_loadgen_to_sink_directly(tools: cload.Tools, sink: cload.Server) -> None:
    _exchange(tools, sink.port, None)


def test_loadgen_through_splice_forwarder(tools: cload.Tools, sink: cload.Server) -> None:
    with cload.Server(tools.splice_fwd, "-t", str(sink.port)) as fwd:
        _exchange(tools, fwd.port, None)
        # the forwarder passes bytes both ways: echo mode, through it
        with socket.create_connection(("127.0.0.1", fwd.port), timeout=5) as s:
            s.sendall(b"Ehello")
            got = b""
            while len(got) < 5:
                got += s.recv(5 - len(got))
            assert got == b"hello"


def test_loadgen_through_socks5(tools: cload.Tools, sink: cload.Server) -> None:
    if shutil.which("microsocks") is None:
        pytest.skip("microsocks is not installed (scripts/apt/proxy.txt)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        ["microsocks", "-i", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            assert proc.poll() is None, "microsocks exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        _exchange(tools, sink.port, port)
    finally:
        proc.terminate()
        proc.wait(5)


def test_sink_speaks_the_python_generators_protocol(sink: cload.Server) -> None:
    """T + count is confirmed with "k" after exactly count bytes; R is answered with "r"."""
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as s:
        head = b"T" + struct.pack("!Q", 3 << 20)
        s.sendall(head[:4])  # a header split over two reads
        time.sleep(0.05)
        s.sendall(head[4:])
        for _ in range(3):
            s.sendall(b"x" * (1 << 20))
        assert s.recv(1) == b"k"
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as s:
        s.sendall(b"T" + struct.pack("!Q", 0))
        assert s.recv(1) == b"k"
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as s:
        s.sendall(b"R")
        assert s.recv(1) == b"r"
