"""The macOS package's own WireGuard tools (``installers/macos/stage-tools.sh``).

The real script runs here (bash); ``otool``, which exists only on macOS, is a stub on
``PATH`` that records its argv and answers with ``otool -L`` outputs captured on real Macs
(``tests/data/wg/otool-L.txt``). ``bash`` is this machine's real bash (5.x); a stub stands
for macOS's bash 3.2. The helper side (runs only from the prefix, refuses user-owned
tools) is tested in ``tests/wg_backends/test_selfcheck.py``.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.fakes.installers import ROOT
from wg_backends.backends.macos import TOOLS, TOOLS_PREFIX

SCRIPT = ROOT / "installers" / "macos" / "stage-tools.sh"
OTOOL_DATA = ROOT / "tests" / "data" / "wg" / "otool-L.txt"
# What matters in wireguard-tools' darwin wg-quick (written here, not copied): its
# shebang, its PATH line and its config search path.
WG_QUICK = """#!/usr/bin/env bash
set -e -o pipefail
export PATH="/usr/bin:/bin:/usr/sbin:/sbin:${SELF%/*}:$PATH"
CONFIG_SEARCH_PATHS=( /etc/wireguard /usr/local/etc/wireguard )
cmd "${WG_QUICK_USERSPACE_IMPLEMENTATION:-wireguard-go}" utun
"""


def captures() -> dict[str, str]:
    out: dict[str, list[str]] = {}
    name = ""
    for line in OTOOL_DATA.read_text().splitlines():
        if line.startswith("== "):
            name = line[3:]
            out[name] = []
        elif name and not line.startswith("#"):
            out[name].append(line)
    return {k: "\n".join(v) + "\n" for k, v in out.items()}


OTOOL = captures()


def make_src(base: Path, otool: dict[str, str]) -> tuple[Path, Path, Path]:
    """Tools in ``base/src``, a stub ``otool`` in ``base/stub`` answering ``otool`` per tool,
    and the log of its calls."""
    src, stub = base / "src", base / "stub"
    src.mkdir()
    stub.mkdir()
    for tool in ("wg", "wireguard-go"):
        (src / tool).write_bytes(b"\xcf\xfa\xed\xfe")  # a Mach-O magic: never run here
        (src / tool).chmod(0o755)
    shutil.copy("/bin/bash", src / "bash")
    (src / "wg-quick").write_text(WG_QUICK)
    (src / "wg-quick").chmod(0o755)
    log = base / "otool.log"
    for tool, name in otool.items():
        (stub / f"{tool}.out").write_text(OTOOL[name])
    (stub / "otool").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >>"{log}"\n'
        '[ "$1" = -L ] || exit 64\n'
        f'cat "{stub}/$(basename "$2").out"\n'
    )
    (stub / "otool").chmod(0o755)
    return src, stub, log


def stage(src: Path, dest: Path, stub: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{stub}:/usr/bin:/bin", "LC_ALL": "C"}
    return subprocess.run(["bash", str(SCRIPT), str(src), str(dest)], env=env,
                          capture_output=True, text=True, timeout=30)  # fmt: skip


ALL_SYSTEM = {"wg": "system_bash", "wireguard-go": "system_bash", "bash": "system_bash"}


def test_tools_are_staged_0755_with_a_wg_quick_that_names_no_homebrew_path(
    tmp_path: Path,
) -> None:
    src, stub, log = make_src(tmp_path, ALL_SYSTEM)
    dest = tmp_path / "root" / "Library" / "Application Support" / "Rustronaut" / "bin"
    proc = stage(src, dest, stub)
    assert proc.returncode == 0, proc.stderr
    # The prefix is the one the backend runs from.
    assert str(dest).endswith(TOOLS_PREFIX + "/bin")
    assert sorted(p.name for p in dest.iterdir()) == sorted(TOOLS)
    for p in [dest, *dest.iterdir()]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o755, p
    assert (dest / "bash").read_bytes() == Path("/bin/bash").read_bytes()
    quick = (dest / "wg-quick").read_text()
    assert quick.splitlines()[0] == "#!/usr/bin/env bash"  # the helper's PATH: ours first
    assert "CONFIG_SEARCH_PATHS=( /etc/wireguard )" in quick
    assert "/usr/local" not in quick
    assert "/opt/homebrew" not in quick
    # Each Mach-O was inspected, by exact command line, before it was copied.
    assert log.read_text().splitlines() == [
        f"-L {src}/wg",
        f"-L {src}/wireguard-go",
        f"-L {src}/bash",
    ]


def test_a_binary_linking_homebrew_libraries_is_refused(tmp_path: Path) -> None:
    # Homebrew's own bash links its gettext (/opt/homebrew/opt/gettext/lib/libintl...).
    src, stub, _ = make_src(tmp_path, {**ALL_SYSTEM, "bash": "homebrew_tool"})
    proc = stage(src, tmp_path / "dest", stub)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        f"stage-tools.sh: {src}/bash links libraries outside /usr/lib and /System: "
        "/opt/homebrew/opt/openssl/lib/libssl.1.0.0.dylib "
    )
    assert not (tmp_path / "dest" / "bash").exists()


@pytest.mark.parametrize(
    "line",
    [
        'export PATH="/opt/homebrew/bin:$PATH"',
        "exec /usr/local/bin/wireguard-go utun",
    ],
)
def test_a_wg_quick_naming_homebrew_is_refused(tmp_path: Path, line: str) -> None:
    src, stub, _ = make_src(tmp_path, ALL_SYSTEM)
    (src / "wg-quick").write_text(WG_QUICK + line + "\n")
    proc = stage(src, tmp_path / "dest", stub)
    assert proc.returncode == 2
    assert f"stage-tools.sh: {src}/wg-quick names a Homebrew path" in proc.stderr
    assert line in proc.stderr  # grep -n shows where


def test_homebrews_rewritten_search_path_is_replaced(tmp_path: Path) -> None:
    src, stub, _ = make_src(tmp_path, ALL_SYSTEM)
    text = WG_QUICK.replace("/usr/local/etc/wireguard", "/opt/homebrew/etc/wireguard")
    (src / "wg-quick").write_text(text.replace("#!/usr/bin/env bash", "#!/opt/homebrew/bin/bash"))
    proc = stage(src, tmp_path / "dest", stub)
    assert proc.returncode == 0, proc.stderr
    quick = (tmp_path / "dest" / "wg-quick").read_text()
    assert "homebrew" not in quick


def test_an_old_bash_or_a_missing_tool_is_refused(tmp_path: Path) -> None:
    src, stub, _ = make_src(tmp_path, ALL_SYSTEM)
    (src / "bash").unlink()
    (src / "bash").write_text("#!/bin/sh\nexit 1\n")  # macOS's bash 3.2 fails the test
    (src / "bash").chmod(0o755)
    proc = stage(src, tmp_path / "dest", stub)
    assert (proc.returncode, proc.stderr) == (
        2,
        f"stage-tools.sh: {src}/bash is older than bash 4 (wg-quick needs 4+)\n",
    )
    (src / "wireguard-go").chmod(0o644)
    proc = stage(src, tmp_path / "dest2", stub)
    assert (proc.returncode, proc.stderr) == (
        2,
        f"stage-tools.sh: {src}/wireguard-go is missing or not executable\n",
    )


def test_build_pkg_stages_the_tools_and_the_postinstall_locks_them() -> None:
    build = (ROOT / "installers" / "macos" / "build-pkg.sh").read_text()
    assert 'TOOLS="Library/Application Support/Rustronaut/bin"' in build
    assert 'bash "$here/stage-tools.sh" "$tools_src" "$work/root/$TOOLS"' in build
    assert build.index('stage-tools.sh" "$tools_src"') < build.index("pkgbuild --root")
    assert "--ownership recommended" in build
    post = (ROOT / "installers" / "macos" / "scripts" / "postinstall").read_text()
    assert 'BIN="/Library/Application Support/Rustronaut/bin"' in post
    assert 'chown -hR root:wheel "$BIN"' in post
    assert 'chmod 0755 "$BIN" "$BIN/wg" "$BIN/wg-quick" "$BIN/wireguard-go" "$BIN/bash"' in post
    # The postinstall locks the tools before it starts the daemon that runs them.
    assert post.index("chown -hR root:wheel") < post.index("launchctl bootstrap system")
    assert os.access(SCRIPT, os.X_OK)
