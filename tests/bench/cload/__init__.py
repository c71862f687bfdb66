"""The C tools of the proxy benchmark, built from source at run time, and how to run them.

``build()`` compiles ``loadgen.c``, ``sink.c`` and ``splice_fwd.c`` beside this file with
the system compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``; ``-O2 -pthread``) into a
cache directory named by the hash of the sources, compiler and flags, so a run after a
change rebuilds and an unchanged tree reuses the binaries. It raises ``NoCompiler`` (with
the Debian packages to install) when there is no compiler and ``BuildError`` (with the
compiler's output) when a source does not build.

The tools speak only to 127.0.0.1. ``Server`` starts the sink or the splice forwarder and
reads the port it prints; ``setup``, ``rate`` and ``bulk`` run the load generator once and
parse its output (``Rate``, ``Bulk``). README.md beside this file documents the tools and
the sink's protocol. Used by ``tests/bench/bench_proxy.py`` and
``tests/bench/test_cload_build.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BuildError",
    "Bulk",
    "NoCompiler",
    "Rate",
    "Server",
    "Tools",
    "build",
    "bulk",
    "compiler",
    "rate",
    "setup",
]

HERE = Path(__file__).resolve().parent
SOURCES = ("loadgen.c", "sink.c", "splice_fwd.c")
HEADERS = ("cload.h",)
FLAGS = ("-O2", "-pthread", "-Wall", "-Wextra")
PACKAGES = "gcc libc6-dev"  # Debian: the compiler and the C library headers


class NoCompiler(RuntimeError):
    """No C compiler on PATH (nor in ``$CC``)."""


class BuildError(RuntimeError):
    """The compiler rejected a source; the message carries its output."""


@dataclass(frozen=True)
class Tools:
    """Paths of the built tools."""

    loadgen: Path
    sink: Path
    splice_fwd: Path


def compiler() -> str | None:
    """The C compiler to use: ``$CC`` if set and found, else cc, gcc or clang; or None."""
    env = os.environ.get("CC", "").strip()
    candidates = [env] if env else ["cc", "gcc", "clang"]
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    return None


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    root = Path(base) / "rustronaut-bench"
    try:
        root.mkdir(parents=True, exist_ok=True)
        return root
    except OSError:
        return Path(tempfile.gettempdir()) / f"rustronaut-bench-{os.getuid()}"


def build(cache: Path | None = None) -> Tools:
    """Build (or reuse) the tools; see the module docstring. Safe to call concurrently:
    each binary is compiled to a temporary name and renamed into place."""
    cc = compiler()
    if cc is None:
        raise NoCompiler(
            "no C compiler found (tried $CC, cc, gcc, clang): the proxy benchmark builds its "
            f"load generator, sink and splice forwarder from source; install {PACKAGES} "
            "(scripts/apt/proxy.txt lists them; scripts/bootstrap.sh installs it)"
        )
    digest = hashlib.sha256()
    for name in (*SOURCES, *HEADERS):
        digest.update(name.encode() + b"\0" + (HERE / name).read_bytes() + b"\0")
    digest.update(" ".join((cc, *FLAGS)).encode())
    out = (cache or _cache_root()) / f"cload-{digest.hexdigest()[:16]}"
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for source in SOURCES:
        binary = out / source.removesuffix(".c")
        paths[binary.name] = binary
        if binary.exists():
            continue
        tmp = out / f".{binary.name}.{os.getpid()}"
        argv = [cc, *FLAGS, "-o", str(tmp), str(HERE / source)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise BuildError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
        if done.stderr.strip():  # the sources build without warnings; say so if not
            print(f"cload: warnings building {source}:\n{done.stderr}", flush=True)
        os.replace(tmp, binary)
    return Tools(paths["loadgen"], paths["sink"], paths["splice_fwd"])


class Server:
    """A running sink or splice forwarder: ``Server(tools.sink)`` or
    ``Server(tools.splice_fwd, "-t", str(port))``. ``port`` is where it listens;
    ``close()`` stops it (idempotent); also a context manager."""

    def __init__(self, binary: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(binary), *args], stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            self.close()
            raise RuntimeError(f"{binary.name} did not start: {line!r}")
        self.port = int(line[1])
        self.pid = self.proc.pid

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run(tools: Tools, mode: str, dest: int, socks: int | None, *args: str) -> list[str]:
    argv = [str(tools.loadgen), mode, "-d", str(dest), *args]
    if socks is not None:
        argv += ["-s", str(socks)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    lines = done.stdout.splitlines()
    if not lines or not lines[-1].startswith(f"# {mode} "):
        raise RuntimeError(f"{' '.join(argv)}: no summary ({done.returncode}): {done.stderr}")
    return lines


def _fields(summary: str) -> dict[str, float]:
    return {k: float(v) for k, v in (f.split("=", 1) for f in summary.split()[2:])}


@dataclass(frozen=True)
class Rate:
    """A ``rate`` run: completed transactions over ``seconds``."""

    conns: int
    seconds: float
    errors: int

    @property
    def per_s(self) -> float:
        return self.conns / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Bulk:
    """A ``bulk`` run: ``bytes`` in the measured ``seconds``; ``total`` with the warm-up."""

    bytes: int
    seconds: float
    total: int
    errors: int

    @property
    def gbps(self) -> float:
        return self.bytes / self.seconds / 1e9 if self.seconds else 0.0


def setup(tools: Tools, dest: int, socks: int | None, n: int) -> tuple[list[float], int]:
    """``n`` sequential transactions: (each one's µs, errors)."""
    lines = _run(tools, "setup", dest, socks, "-n", str(n))
    times = [float(line) for line in lines if not line.startswith("#")]
    return times, int(_fields(lines[-1])["errors"])


def rate(tools: Tools, dest: int, socks: int | None, clients: int, seconds: float) -> Rate:
    """``clients`` concurrent transaction loops for ``seconds``."""
    lines = _run(tools, "rate", dest, socks, "-c", str(clients), "-t", str(seconds))
    f = _fields(lines[-1])
    return Rate(int(f["conns"]), f["seconds"], int(f["errors"]))


def bulk(
    tools: Tools, dest: int, socks: int | None, streams: int, seconds: float, warmup: float = 0.3
) -> Bulk:
    """``streams`` streams pushing to the sink for ``warmup`` + ``seconds``."""
    lines = _run(
        tools, "bulk", dest, socks, "-c", str(streams), "-t", str(seconds), "-w", str(warmup)
    )
    f = _fields(lines[-1])
    return Bulk(int(f["bytes"]), f["seconds"], int(f["total"]), int(f["errors"]))
