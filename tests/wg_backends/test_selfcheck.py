"""The helper's start check (``wg_backends/helper/selfcheck.py``) and the macOS tool prefix.

POSIX is tested on real files: real modes, ``chown`` to a real second account (root only).
Windows runs nowhere here: its check goes through a scripted runner that answers with
security descriptors captured on real Windows machines (``tests/data/wg/windows-sddl.txt``);
descriptors built here from those (inheritance, the installer's grants) say so.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path, PureWindowsPath

import pytest

from tests.wg_backends.accounts import second_account
from tests.wg_backends.fakes import DATA, ScriptedRunner
from wg_backends.backends.macos import TOOLS, TOOLS_PREFIX, MacOSBackend
from wg_backends.helper.selfcheck import (
    EXIT_UNSAFE,
    Problem,
    SddlError,
    UnsafeInstallError,
    check_posix,
    check_windows,
    get_acl_argv,
    helper_targets,
    parse_sddl,
    sddl_problems,
    verify_helper_paths,
)

ROOT = Path(__file__).resolve().parents[2]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")


def tree(base: Path) -> tuple[Path, Path]:
    """A root-owned install like the .deb's: ``opt/rustronaut/bin/helper`` and a state dir."""
    exe = base / "opt" / "rustronaut" / "bin" / "helper"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    for d in (base / "opt", base / "opt" / "rustronaut", exe.parent):
        d.chmod(0o755)
    state = base / "var" / "lib" / "rustronaut" / "helper"
    state.mkdir(parents=True, mode=0o700)
    return exe, state


def reasons(problems: list[Problem]) -> dict[str, str]:
    return {p.path: p.reason for p in problems}


# ----- POSIX, real files ---------------------------------------------------------------


def test_a_root_only_install_passes(tmp_path: Path) -> None:
    exe, state = tree(tmp_path)
    assert check_posix([exe, exe.parent, state]) == []


@needs_root
def test_files_owned_by_another_account_are_refused(tmp_path: Path) -> None:
    exe, state = tree(tmp_path)
    with second_account() as user:
        os.chown(exe, user.uid, user.gid)  # the user could rewrite the binary root runs
        os.chown(state, user.uid, user.gid)
        got = reasons(check_posix([exe, exe.parent, state]))
    assert got == {
        str(exe): f"owned by uid {user.uid} ({user.name})",
        str(state): f"owned by uid {user.uid} ({user.name})",
    }


@needs_root
def test_a_directory_above_owned_by_a_user_is_refused(tmp_path: Path) -> None:
    # /home/alice/apps/rustronaut/bin/helper: root-owned files, but alice may rename
    # "apps" away and put her own tree in its place.
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    exe, _ = tree(home)
    with second_account() as user:
        os.chown(home, user.uid, user.gid)
        got = reasons(check_posix([exe]))
    assert got == {str(home): f"owned by uid {user.uid} ({user.name})"}


@needs_root
@pytest.mark.parametrize(
    ("mode", "gid", "why"),
    [
        (0o775, 0, None),  # group root may write: root's own group
        (0o775, 4242, "writable by group 4242 (mode 0775)"),
        (0o777, 0, "writable by everyone (mode 0777)"),
        (0o1777, 0, "writable by everyone (mode 1777)"),  # sticky does not save a target
        (0o755, 4242, None),  # the group may only read
    ],
)
def test_group_and_world_write_on_a_target(
    tmp_path: Path, mode: int, gid: int, why: str | None
) -> None:
    exe, _ = tree(tmp_path)
    os.chown(exe.parent, 0, gid)
    exe.parent.chmod(mode)
    got = reasons(check_posix([exe.parent]))
    assert got == ({str(exe.parent): why} if why else {})


@needs_root
@pytest.mark.parametrize(
    ("mode", "owner", "why"),
    [
        (0o1777, 0, None),  # like /tmp: nobody can rename root's entries out of it
        (0o1777, 4242, "owned by uid 4242"),
        (0o0777, 0, "writable by everyone (mode 0777)"),
    ],
)
def test_world_writable_ancestor_only_if_sticky_and_root_owned(
    tmp_path: Path, mode: int, owner: int, why: str | None
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    exe, _ = tree(shared)
    os.chown(shared, owner, 0)
    shared.chmod(mode)
    got = reasons(check_posix([exe]))
    assert got == ({str(shared): why} if why else {})


@needs_root
def test_a_symlink_into_a_user_directory_is_followed(tmp_path: Path) -> None:
    tree(tmp_path)
    user_dir = tmp_path / "userland"
    user_dir.mkdir(mode=0o755)
    real_bin = user_dir / "bin"
    real_bin.mkdir(mode=0o755)
    (tmp_path / "opt" / "link").symlink_to(real_bin)
    with second_account() as user:
        os.chown(user_dir, user.uid, user.gid)
        got = reasons(check_posix([tmp_path / "opt" / "link"]))
    # The link itself sits in a root-only directory; its target does not.
    assert got == {str(user_dir): f"owned by uid {user.uid} ({user.name})"}


def test_a_state_dir_not_created_yet_is_judged_by_its_parent(tmp_path: Path) -> None:
    _, state = tree(tmp_path)
    state.rmdir()
    assert check_posix([state]) == []  # /var/lib/rustronaut: root, 0755
    state.parent.chmod(0o1777)  # anyone could create "helper" first
    assert reasons(check_posix([state])) == {str(state.parent): "writable by everyone (mode 1777)"}


@needs_root
def test_the_admin_group_is_trusted_on_macos_only(tmp_path: Path) -> None:
    # /Applications is root:admin 0775 on every Mac.
    exe, _ = tree(tmp_path)
    os.chown(exe.parent, 0, 80)
    exe.parent.chmod(0o775)
    assert check_posix([exe], platform="darwin") == []
    assert reasons(check_posix([exe], platform="linux")) == {
        str(exe.parent): "writable by group 80 (mode 0775)"
    }


@needs_root
def test_the_helpers_own_account_is_trusted(tmp_path: Path) -> None:
    # A helper running as a service account owns its state directory (StateDirectory=).
    _, state = tree(tmp_path)
    os.chown(state, 4243, 4243)
    assert reasons(check_posix([state], uids={0})) == {str(state): "owned by uid 4243"}
    assert check_posix([state], uids={0, 4243}) == []


def test_targets_frozen_and_from_a_venv() -> None:
    frozen = helper_targets(
        Path("/var/lib/rustronaut/helper"), executable="/opt/rustronaut/rustronaut-helper",
        frozen=True, windows=False,
    )  # fmt: skip
    assert frozen == [
        Path("/opt/rustronaut/rustronaut-helper"),
        Path("/opt/rustronaut"),
        Path("/var/lib/rustronaut/helper"),
    ]
    venv = helper_targets(
        Path("/var/lib/rustronaut/helper"), executable="/opt/rustronaut/venv/bin/python",
        frozen=False, package_dir="/opt/rustronaut/venv/lib/site-packages", windows=False,
    )  # fmt: skip
    assert Path("/opt/rustronaut/venv/lib/site-packages") in venv


def test_verify_raises_with_every_problem(tmp_path: Path) -> None:
    exe, state = tree(tmp_path)
    state.chmod(0o777)
    exe.chmod(0o757)
    with pytest.raises(UnsafeInstallError) as info:
        verify_helper_paths(state, ScriptedRunner(), platform="linux", targets=[exe, state])
    assert [p.path for p in info.value.problems] == [str(exe), str(state)]
    assert info.value.code == "helper_unavailable"
    assert str(info.value).startswith("refusing to run: a non-administrator can change ")


def test_the_helper_refuses_to_start_with_a_clear_line_and_exit_code(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o777)
    state.chmod(0o777)
    proc = subprocess.run(
        [sys.executable, "-I", "-m", "wg_backends.helper", "--socket", str(tmp_path / "s.sock"),
         "--state-dir", str(state), "--config-dir", str(tmp_path / "conf")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == EXIT_UNSAFE == 5, proc.stderr
    assert (
        f"ERROR rustronaut.helper: refusing to run: a non-administrator can change {state}: "
        "writable by everyone (mode 0777)"
    ) in proc.stderr
    assert not (tmp_path / "s.sock").exists()


@needs_root
def test_the_helper_refuses_a_state_dir_another_account_owns(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with second_account() as user:
        os.chown(state, user.uid, user.gid)  # alice made it first: she reads the keys
        proc = helper_process(tmp_path, state)
    assert proc.returncode == EXIT_UNSAFE, proc.stderr
    assert (
        f"ERROR rustronaut.helper: refusing to run: a non-administrator can change {state}: "
        f"owned by uid {user.uid} ({user.name})"
    ) in proc.stderr


def test_check_install_only_checks(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    argv = [sys.executable, "-I", "-m", "wg_backends.helper", "--check-install",
            "--state-dir", str(state), "--socket", str(tmp_path / "s.sock")]  # fmt: skip
    ok = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "ERROR" not in ok.stderr  # (a warning if this checkout is not root's: see above)
    state.chmod(0o757)
    bad = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == EXIT_UNSAFE
    assert bad.stderr.count("refusing to run") == 1
    assert f"can change {state}: writable by everyone (mode 0757)" in bad.stderr
    assert not (tmp_path / "s.sock").exists()


def helper_process(
    tmp_path: Path, state: Path, *, code: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The real helper, from this checkout or from a copy of ``wg_backends`` in ``code``."""
    args = ["--socket", str(tmp_path / "s.sock"), "--state-dir", str(state),
            "--config-dir", str(tmp_path / "conf")]  # fmt: skip
    if code is None:
        argv = [sys.executable, "-I", "-m", "wg_backends.helper", *args]
    else:
        boot = (
            f"import runpy, sys; sys.path.insert(0, {str(code)!r}); sys.argv[1:] = {args!r}; "
            "runpy.run_module('wg_backends.helper', run_name='__main__')"
        )
        argv = [sys.executable, "-I", "-c", boot]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)


@needs_root
def test_a_root_helper_from_a_users_checkout_trusts_that_user_for_the_code(
    tmp_path: Path,
) -> None:
    # A developer runs the helper as root from her own checkout: her code by choice (a
    # warning says so); the state directory is still held to the strict rule.
    checkout = tmp_path / "home" / "src"
    shutil.copytree(ROOT / "wg_backends", checkout / "wg_backends",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    state = tmp_path / "state"
    state.mkdir(mode=0o777)
    state.chmod(0o777)
    with second_account() as user:
        for d, _, files in os.walk(tmp_path / "home"):
            os.chown(d, user.uid, user.gid)
            for f in files:
                os.chown(os.path.join(d, f), user.uid, user.gid)
        proc = helper_process(tmp_path, state, code=checkout)
    assert proc.returncode == EXIT_UNSAFE, proc.stderr
    refusals = [line for line in proc.stderr.splitlines() if "refusing to run" in line]
    assert refusals == [
        f"{refusals[0].split(' ERROR ')[0]} ERROR rustronaut.helper: refusing to run: a "
        f"non-administrator can change {state}: writable by everyone (mode 0777)"
    ]
    assert (
        f"WARNING wg_backends.helper.selfcheck: running from source owned by uid {user.uid} "
        f"({user.name}) ({checkout / 'wg_backends'}): trusting that account for the code"
    ) in proc.stderr


def code_tree(base: Path) -> tuple[Path, Path, Path]:
    """A root-owned interpreter in ``base/py/bin`` and a package in ``base/src/wg_backends``."""
    exe, state = tree(base)
    pkg = base / "src" / "wg_backends"
    pkg.mkdir(parents=True)
    for d in (base / "src", pkg):
        d.chmod(0o755)
    return exe, pkg, state


@needs_root
@pytest.mark.parametrize("frozen", [False, True])
def test_from_source_the_code_owner_is_trusted_frozen_never(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, frozen: bool
) -> None:
    exe, pkg, state = code_tree(tmp_path)
    with second_account() as user, caplog.at_level(logging.WARNING):
        for p in (exe, exe.parent, pkg.parent, pkg):
            os.chown(p, user.uid, user.gid)
        owned = f"owned by uid {user.uid} ({user.name})"
        kw = {
            "platform": "linux",
            "frozen": frozen,
            "executable": str(exe),
            "package_dir": str(pkg),
        }
        if frozen:  # an installed helper: the user could rewrite what root runs
            with pytest.raises(UnsafeInstallError) as info:
                verify_helper_paths(state, ScriptedRunner(), **kw)  # type: ignore[arg-type]
            assert reasons(list(info.value.problems)) == {str(exe): owned, str(exe.parent): owned}
            assert "running from source" not in caplog.text
            return
        verify_helper_paths(state, ScriptedRunner(), **kw)  # type: ignore[arg-type]
        assert f"running from source owned by uid {user.uid} ({user.name})" in caplog.text
        # Still refused from source: the state dir owned by that user, a world-writable
        # package, a third account's file.
        os.chown(state, user.uid, user.gid)
        pkg.chmod(0o757)
        os.chown(exe, 4242, 4242)
        with pytest.raises(UnsafeInstallError) as info:
            verify_helper_paths(state, ScriptedRunner(), **kw)  # type: ignore[arg-type]
        assert reasons(list(info.value.problems)) == {
            str(exe): "owned by uid 4242",
            str(pkg): "writable by everyone (mode 0757)",
            str(state): owned,
        }


def test_from_source_as_root_a_root_owned_tree_is_strict(tmp_path: Path) -> None:
    # /opt/rustronaut/venv installed by root: nobody else is trusted.
    exe, pkg, state = code_tree(tmp_path)
    pkg.parent.chmod(0o775)
    os.chown(pkg.parent, os.geteuid(), 4242)
    with pytest.raises(UnsafeInstallError) as info:
        verify_helper_paths(state, ScriptedRunner(), platform="linux", frozen=False,
                            executable=str(exe), package_dir=str(pkg))  # fmt: skip
    assert reasons(list(info.value.problems)) == {
        str(pkg.parent): "writable by group 4242 (mode 0775)"
    }


# ----- macOS: the package's own tools ----------------------------------------------------


def mac_tools(base: Path) -> Path:
    bin_dir = base / "bin"
    bin_dir.mkdir(mode=0o755)
    for tool in TOOLS:
        (bin_dir / tool).write_text("#!/bin/sh\n")
        (bin_dir / tool).chmod(0o755)
    return bin_dir


def test_macos_runs_the_packaged_tools_by_default(tmp_path: Path) -> None:
    r = ScriptedRunner()
    b = MacOSBackend(r, config_dir=tmp_path / "c")
    assert TOOLS_PREFIX == "/Library/Application Support/Rustronaut"
    bin_dir = f"{TOOLS_PREFIX}/bin"
    r.on([f"{bin_dir}/wg", "show", "office", "dump"], 1)
    b.status("office")
    assert r.calls[-1][0] == f"{bin_dir}/wg"
    assert b._wg_quick == f"{bin_dir}/wg-quick"
    assert b._env == {
        "PATH": f"{bin_dir}:/usr/bin:/bin:/usr/sbin:/sbin",  # bash 4 of the package first
        "WG_QUICK_USERSPACE_IMPLEMENTATION": f"{bin_dir}/wireguard-go",
    }
    assert "homebrew" not in repr(b._env).lower()
    assert "/usr/local" not in repr(b._env)


def _answer_probe(r: ScriptedRunner, bin_dir: Path) -> None:
    r.on([f"{bin_dir}/wg", "--version"], 0, "wireguard-tools v1.0.20250521\n")
    r.on([f"{bin_dir}/wg-quick"], 1, "", "Usage: wg-quick [ up | down ] ...\n")


def test_macos_backend_available_from_a_root_only_prefix(tmp_path: Path) -> None:
    bin_dir = mac_tools(tmp_path)
    r = ScriptedRunner()
    _answer_probe(r, bin_dir)
    assert MacOSBackend(r, prefix=str(tmp_path)).available()


@needs_root
def test_macos_backend_refuses_a_user_owned_tool(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # What a Homebrew prefix is: owned by the user who installed Homebrew.
    bin_dir = mac_tools(tmp_path)
    r = ScriptedRunner()
    _answer_probe(r, bin_dir)
    with second_account() as user, caplog.at_level(logging.ERROR):
        os.chown(bin_dir / "wireguard-go", user.uid, user.gid)
        assert not MacOSBackend(r, prefix=str(tmp_path)).available()
    assert r.calls == []  # nothing was run
    assert (
        "not running WireGuard tools a non-administrator can change: "
        f"{bin_dir}/wireguard-go: owned by uid {user.uid} ({user.name})"
    ) in caplog.text


def test_macos_backend_refuses_a_group_writable_prefix(tmp_path: Path) -> None:
    bin_dir = mac_tools(tmp_path)
    bin_dir.chmod(0o777)
    r = ScriptedRunner()
    _answer_probe(r, bin_dir)
    assert not MacOSBackend(r, prefix=str(tmp_path)).available()


# ----- Windows: SDDL ---------------------------------------------------------------------


def captured() -> dict[str, tuple[PureWindowsPath, str]]:
    out = {}
    for line in (DATA / "windows-sddl.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, path, sddl = line.split("\t")
            out[name] = (PureWindowsPath(path), sddl)
    return out


REAL = captured()
TI = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
USER = "S-1-5-21-1004336348-1177238915-682003330-1001"
# What the installer's icacls leaves (owner Administrators; SYSTEM and Administrators full
# control, Users read and execute on the install directory), and what files inherit.
INSTDIR_SDDL = "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)"
INSTDIR_FILE_SDDL = "O:BAG:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1200a9;;;BU)"
DATA_SDDL = "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
DATA_CHILD_SDDL = "O:BAG:SYD:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)"
# A folder made in E:\ (data_root) inherits Authenticated Users' modify, delete included.
E_CHILD_SDDL = (
    "O:BAG:SYD:AI(A;ID;FA;;;BA)(A;OICIIOID;GA;;;BA)(A;ID;FA;;;SY)(A;OICIIOID;GA;;;SY)"
    "(A;ID;0x1301bf;;;AU)(A;OICIIOID;SDGXGWGR;;;AU)(A;ID;0x1200a9;;;BU)(A;OICIIOID;GXGR;;;BU)"
)


def test_real_descriptors_parse() -> None:
    for name, (_, text) in REAL.items():
        sd = parse_sddl(text)
        assert sd.dacl, name
    system32 = parse_sddl(REAL["system32"][1])
    assert system32.owner == TI
    assert len(system32.dacl or ()) == 13
    users = [a for a in system32.dacl or () if a.sid == "S-1-5-32-545"]
    assert [(a.flags, a.mask) for a in users] == [
        (frozenset({"OI", "CI", "IO"}), 0xA0000000),
        (frozenset(), 0x1200A9),
    ]


@pytest.mark.parametrize(
    ("sddl", "target", "root", "expected"),
    [
        # Windows' own folders: fine as the program's folder and above it.
        (REAL["system32"][1], True, False, []),
        (REAL["protected_file"][1], True, False, []),
        # C:\ lets users create folders: fine above, not as a target.
        (REAL["c_root"][1], False, True, []),
        (
            REAL["c_root"][1],
            True,
            True,
            [
                "S-1-5-11 may delete or rename, write or add files (in what is created inside)",
                "S-1-5-11 may append or add folders",
            ],
        ),
        # ProgramData (owned by SYSTEM): users may add files and folders in it.
        ("O:SY" + REAL["programdata"][1], False, False, []),
        (
            "O:SY" + REAL["programdata"][1],
            True,
            False,
            ["S-1-5-32-545 may write or add files, append or add folders"],
        ),
        # A data drive's root: modify for Authenticated Users, but a root cannot be renamed.
        ("O:BA" + REAL["data_root"][1], False, True, []),
        # E:\Apps made there: Authenticated Users may rename it and put their own in place.
        (E_CHILD_SDDL, False, False, ["S-1-5-11 may delete or rename"]),
        (
            E_CHILD_SDDL,
            True,
            False,
            [
                "S-1-5-11 may delete or rename, write or add files, append or add folders",
                "S-1-5-11 may delete or rename, write or add files (in what is created inside)",
            ],
        ),
        # A user with full control (a real Get-Acl), and the built-in Administrator account.
        (
            REAL["user_full"][1],
            True,
            False,
            [
                "LA has full control",
                "S-1-5-21-3167813660-1240564177-918740779-3110 has full control",
            ],
        ),
        # What the installer sets.
        (INSTDIR_SDDL, True, False, []),
        (INSTDIR_FILE_SDDL, True, False, []),
        (DATA_SDDL, True, False, []),
        # C:\ProgramData\Rustronaut made by a user before the installer, after the old
        # installer's icacls /grant:r: the ACL is right, but the owner may rewrite it.
        (
            f"O:{USER}G:{USER}D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)",
            True,
            False,
            [f"owned by {USER} (not SYSTEM or Administrators)"],
        ),
        ("O:BAD:NO_ACCESS_CONTROL", True, False, ["has no access list (everyone may do anything)"]),
        (
            "D:PAI(A;OICI;FA;;;SY)",
            True,
            False,
            ["owned by nobody known (not SYSTEM or Administrators)"],
        ),
        # A deny entry takes nothing away from the check; an audit part is ignored.
        ("O:BAD:P(D;;FA;;;WD)(A;;FA;;;SY)S:AI(AU;SAFA;FA;;;WD)", True, False, []),
        # A conditional entry (nested parentheses) is an allow entry like any other.
        ('O:BAD:P(XA;;FA;;;WD;(@User.dept == "it"))', True, False, ["S-1-1-0 has full control"]),
    ],
)  # fmt: skip
def test_sddl_rules(sddl: str, target: bool, root: bool, expected: list[str]) -> None:
    assert sddl_problems(parse_sddl(sddl), target=target, drive_root=root) == expected


@pytest.mark.parametrize(
    "bad", ["", "hello", "O:BAD:(A;;ZZ;;;WD)", "O:BAD:(A;;FA;;;WD", "O:BAD:(A;;FA)"]
)
def test_unreadable_sddl_is_an_error(bad: str) -> None:
    with pytest.raises(SddlError):
        parse_sddl(bad)


# ----- Windows: the check through the runner ---------------------------------------------

EXE = PureWindowsPath(r"C:\Program Files\Rustronaut\rustronaut-helper.exe")
STATE = PureWindowsPath(r"C:\ProgramData\Rustronaut\helper")
DIR, FILE, JUNCTION = 16, 32, 16 | 0x400


def script_of(argv: tuple[str, ...]) -> str:
    assert argv[:4] == (
        r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
        "-NoProfile",
        "-NonInteractive",
        "-EncodedCommand",
    )
    return base64.b64decode(argv[4]).decode("utf-16-le")


def windows_run(
    answers: dict[PureWindowsPath, tuple[int, str] | None], targets: list[PureWindowsPath]
) -> tuple[list[Problem], ScriptedRunner]:
    chain: list[PureWindowsPath] = []
    for t in targets:
        chain += [c for c in (t, *t.parents) if c not in chain]
    out = "".join("-\r\n" if answers[c] is None else "{}|{}\r\n".format(*answers[c]) for c in chain)  # type: ignore[str-format]
    r = ScriptedRunner()
    r.on(get_acl_argv(chain), 0, out)
    return check_windows(targets, r), r


def default_install() -> dict[PureWindowsPath, tuple[int, str] | None]:
    return {
        EXE: (FILE, INSTDIR_FILE_SDDL),
        EXE.parent: (DIR, INSTDIR_SDDL),
        PureWindowsPath(r"C:\Program Files"): (DIR, REAL["system32"][1]),  # same shape
        PureWindowsPath("C:\\"): (DIR, REAL["c_root"][1]),
        STATE: (DIR, DATA_CHILD_SDDL),
        STATE.parent: (DIR, DATA_SDDL),
        PureWindowsPath(r"C:\ProgramData"): (DIR, "O:SY" + REAL["programdata"][1]),
    }


def test_windows_default_install_passes_in_one_powershell_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYSTEMROOT", r"C:\Windows")
    problems, r = windows_run(default_install(), [EXE, EXE.parent, STATE])
    assert problems == []
    assert len(r.calls) == 1
    script = script_of(r.calls[0])
    assert (
        "foreach ($p in @('C:\\Program Files\\Rustronaut\\rustronaut-helper.exe',"
        "'C:\\Program Files\\Rustronaut','C:\\Program Files','C:\\',"
        "'C:\\ProgramData\\Rustronaut\\helper','C:\\ProgramData\\Rustronaut','C:\\ProgramData'))"
    ) in script
    assert "(Get-Acl -LiteralPath $p).Sddl" in script
    assert r.envs[0] == {"SYSTEMROOT": r"C:\Windows"}  # PowerShell needs it


def test_windows_custom_directory_before_the_fix_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # /D=E:\Apps\Rustronaut with the old installer: everything inherits from E:\.
    monkeypatch.setenv("SYSTEMROOT", r"C:\Windows")
    exe = PureWindowsPath(r"E:\Apps\Rustronaut\rustronaut-helper.exe")
    file_sddl = "O:BAG:SYD:AI(A;ID;FA;;;BA)(A;ID;FA;;;SY)(A;ID;0x1301bf;;;AU)(A;ID;0x1200a9;;;BU)"
    answers = {
        exe: (FILE, file_sddl),
        exe.parent: (DIR, E_CHILD_SDDL),
        exe.parents[1]: (DIR, E_CHILD_SDDL),
        PureWindowsPath("E:\\"): (DIR, "O:BA" + REAL["data_root"][1]),
    }
    problems, _ = windows_run(answers, [exe, exe.parent])
    assert {p.path for p in problems} == {str(exe), str(exe.parent), r"E:\Apps"}
    assert (
        Problem(
            str(exe), "S-1-5-11 may delete or rename, write or add files, append or add folders"
        )
        in problems
    )
    # With the installer's ACL on E:\Apps\Rustronaut, only E:\Apps remains (the helper
    # still refuses: whoever may rename E:\Apps may swap the whole folder).
    answers[exe] = (FILE, INSTDIR_FILE_SDDL)
    answers[exe.parent] = (DIR, INSTDIR_SDDL)
    problems, _ = windows_run(answers, [exe, exe.parent])
    assert problems == [Problem(r"E:\Apps", "S-1-5-11 may delete or rename")]


def test_windows_data_dir_created_by_a_user_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEMROOT", r"C:\Windows")
    answers = default_install()
    answers[STATE.parent] = (DIR, f"O:{USER}G:{USER}D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)")
    answers[STATE] = (DIR, f"O:{USER}G:{USER}D:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)")
    problems, _ = windows_run(answers, [STATE])
    assert problems == [
        Problem(str(STATE), f"owned by {USER} (not SYSTEM or Administrators)"),
        Problem(str(STATE.parent), f"owned by {USER} (not SYSTEM or Administrators)"),
    ]


def test_windows_junction_and_missing_state_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEMROOT", r"C:\Windows")
    answers = default_install()
    answers[STATE] = None  # first start: the parent is judged as the target
    problems, _ = windows_run(answers, [STATE])
    assert problems == []
    answers[STATE.parent] = None  # then ProgramData itself would be the target
    problems, _ = windows_run(answers, [STATE])
    assert problems == [
        Problem(r"C:\ProgramData", "S-1-5-32-545 may write or add files, append or add folders")
    ]
    answers = default_install()
    answers[STATE.parent] = (JUNCTION, DATA_SDDL)
    problems, _ = windows_run(answers, [STATE])
    assert problems == [Problem(str(STATE.parent), "is a junction or link")]


def test_windows_unreadable_answers_fail_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEMROOT", r"C:\Windows")
    r = ScriptedRunner()  # PowerShell "fails": exit 127
    problems = check_windows([STATE], r)
    assert [p.path for p in problems] == [str(STATE)]
    assert problems[0].reason.startswith("its permissions could not be read")
    answers = default_install()
    answers[STATE] = (DIR, "O:BAD:(A;;QQ;;;WD)")
    problems, _ = windows_run(answers, [STATE])
    assert problems == [Problem(str(STATE), "unreadable permissions (unknown right 'QQ')")]


def test_windows_paths_are_quoted_for_powershell() -> None:
    odd = PureWindowsPath(r"D:\O'Brien's apps\x")
    script = script_of(tuple(get_acl_argv([odd])))
    assert r"@('D:\O''Brien''s apps\x')" in script


def test_verify_on_windows_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEMROOT", r"C:\Windows")
    answers = default_install()
    answers[EXE.parent] = (DIR, E_CHILD_SDDL)
    chain: list[PureWindowsPath] = []
    for t in (EXE, EXE.parent, STATE):
        chain += [c for c in (t, *t.parents) if c not in chain]
    r = ScriptedRunner()
    r.on(get_acl_argv(chain), 0, "".join("{}|{}\n".format(*answers[c]) for c in chain))  # type: ignore[str-format]
    with pytest.raises(UnsafeInstallError) as info:
        verify_helper_paths(Path(str(STATE)), r, platform="win32", targets=[EXE, EXE.parent, STATE])
    assert {p.path for p in info.value.problems} == {str(EXE.parent)}


def test_verify_frozen_on_windows_checks_exe_folder_and_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYSTEMROOT", r"C:\Windows")
    answers = default_install()
    answers[STATE.parent] = (DIR, f"O:{USER}G:{USER}D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)")
    chain: list[PureWindowsPath] = []
    for t in (EXE, EXE.parent, STATE):
        chain += [c for c in (t, *t.parents) if c not in chain]
    r = ScriptedRunner()
    r.on(get_acl_argv(chain), 0, "".join("{}|{}\r\n".format(*answers[c]) for c in chain))  # type: ignore[str-format]
    with pytest.raises(UnsafeInstallError) as info:
        verify_helper_paths(Path(str(STATE)), r, platform="win32", frozen=True, executable=str(EXE))
    assert list(info.value.problems) == [
        Problem(str(STATE.parent), f"owned by {USER} (not SYSTEM or Administrators)")
    ]
    assert len(r.calls) == 1


def test_windows_from_source_checks_nothing_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = ScriptedRunner()
    with caplog.at_level(logging.WARNING):
        verify_helper_paths(Path(str(STATE)), r, platform="win32", frozen=False,
                            executable=r"D:\a\repo\.venv\Scripts\python.exe")  # fmt: skip
    assert r.calls == []
    assert "running from source" in caplog.text
