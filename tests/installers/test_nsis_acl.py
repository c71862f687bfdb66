"""The Windows installer's owner and ACL steps (``installers/windows/rustronaut.nsi``).

No Windows runs here: the script is rendered by ``makensis -PPO`` (the preprocessor:
every macro expanded, every ``!define`` substituted, exactly the lines the installer
executes) and the commands are checked as text, in order; then it is compiled for real
with a tiny payload (well under a second, uncompressed). What icacls leaves behind, and
that the helper accepts it, is tested in ``tests/wg_backends/test_selfcheck.py``
(``INSTDIR_SDDL``, ``DATA_SDDL``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fakes.installers import ROOT, need, run

NSI = ROOT / "installers" / "windows" / "rustronaut.nsi"
ICACLS = '"$SYSDIR\\icacls.exe"'
DATA = "$APPDATA\\Rustronaut"  # C:\ProgramData\Rustronaut (SetShellVarContext all)
SYSTEM, ADMINS, USERS = "*S-1-5-18", "*S-1-5-32-544", "*S-1-5-32-545"


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("payload")
    for exe in ("rustronaut.exe", "rustronaut-tray.exe", "rustronaut-helper.exe"):
        (out / exe).write_bytes(b"MZ")
    (out / "_internal").mkdir()
    (out / "_internal" / "base_library.zip").write_bytes(b"PK")
    return out


@pytest.fixture(scope="module")
def main_section(payload: Path) -> list[str]:
    """The install section's lines after the preprocessor: stripped, without comments,
    ``!verbose`` and LogicLib's labels and jumps (its ``${If}`` becomes ``StrCmp``)."""
    need("makensis")
    proc = run(["makensis", "-PPO", "-DVERSION=0.0.1", f"-DPAYLOAD={payload}", str(NSI)])
    text = proc.stdout.split('Section "Rustronaut" SecMain', 1)[1].split("SectionEnd", 1)[0]
    return [
        s
        for line in text.splitlines()
        if (s := line.strip())
        and not s.startswith((";", "!verbose", "_LogicLib_", "Goto _LogicLib_"))
    ]


# ${If} $0 != 0 (skip the block when $0 is 0), ${If} $0 == 2 (skip it unless 2).
NONZERO = re.compile(r"StrCmp `\$0` `0` `_LogicLib_ElseLabel_[0-9]+` ``")
IS_TWO = re.compile(r"StrCmp `\$0` `2` `` `_LogicLib_ElseLabel_[0-9]+`")


def index(lines: list[str], line: str, start: int = 0) -> int:
    """Where ``line`` is (exactly), at or after ``start``."""
    assert line in lines[start:], f"{line!r} not in the installer (after line {start})"
    return lines.index(line, start)


def checked(lines: list[str], at: int) -> None:
    """The command at ``at`` is followed by its exit code check, which quits on failure."""
    assert lines[at + 1] == "Pop $0", lines[at : at + 4]
    assert NONZERO.fullmatch(lines[at + 2]), lines[at : at + 4]
    assert lines[at + 3].startswith('DetailPrint "Could not ')
    assert lines[at + 5 : at + 7] == ["SetErrorLevel 1", "Quit"]


def test_install_dir_locked_down_before_files_and_service(main_section: list[str]) -> None:
    lines = main_section
    stop = index(lines, "Pop $0")  # StopHelper first (see test_windows_installer.py)
    owner = index(lines, f"nsExec::ExecToLog '{ICACLS} \"$INSTDIR\" /setowner {ADMINS} /C'")
    acl = index(
        lines,
        f'nsExec::ExecToLog \'{ICACLS} "$INSTDIR" /inheritance:r /grant:r '
        f"{SYSTEM}:(OI)(CI)F {ADMINS}:(OI)(CI)F {USERS}:(OI)(CI)RX'",
    )
    files = index(lines, next(x for x in lines if x.startswith("File /r")))
    service = index(lines, next(x for x in lines if 'sc.exe" create' in x))
    assert stop < index(lines, 'CreateDirectory "$INSTDIR"') < owner < acl < files < service
    checked(lines, owner)
    checked(lines, acl)
    # A custom /D= directory is $INSTDIR too: no step names the default location.
    assert not [x for x in lines if "icacls" in x and "Program Files" in x]
    # icacls never recurses (/T would follow a junction planted inside).
    assert not [x for x in lines if "icacls" in x and " /T" in x]


def test_install_dir_owned_by_a_user_or_a_junction_is_refused(main_section: list[str]) -> None:
    lines = main_section
    probe = index(
        lines,
        'System::Call \'kernel32::SetEnvironmentVariable(t "RUSTRONAUT_DIR", t "$INSTDIR")i.r0\'',
    )
    ps = lines[probe + 1]
    # The path reaches PowerShell through the environment, never inside the script text.
    assert ps.startswith('nsExec::ExecToStack `"$SYSDIR\\WindowsPowerShell\\v1.0\\powershell.exe" ')
    assert "$INSTDIR" not in ps
    script = ps.split("-Command ", 1)[1]
    assert "$$p = $$env:RUSTRONAUT_DIR" in script
    assert "ReparsePoint) { exit 2 }" in script
    assert ".GetOwner([Security.Principal.SecurityIdentifier]).Value" in script
    assert "if (@('S-1-5-18','S-1-5-32-544') -contains $$o) { exit 0 }; exit 1" in script
    assert lines[probe + 2 : probe + 4] == ["Pop $0", "Pop $1"]
    assert IS_TWO.fullmatch(lines[probe + 4])
    assert lines[probe + 5] == 'DetailPrint "$INSTDIR is a junction or link: choose another folder"'
    assert lines[probe + 7 : probe + 9] == ["SetErrorLevel 1", "Quit"]
    assert NONZERO.fullmatch(lines[probe + 9])  # any other answer: not ours, or unreadable
    assert lines[probe + 10].startswith('DetailPrint "$INSTDIR was created by a user who is not')
    assert lines[probe + 12 : probe + 14] == ["SetErrorLevel 1", "Quit"]
    # ... and all of it before the directory is created or changed.
    assert probe < index(lines, 'CreateDirectory "$INSTDIR"')


def test_programdata_made_by_a_user_is_moved_aside_then_ours_is_locked(
    main_section: list[str],
) -> None:
    lines = main_section
    probe = index(
        lines,
        'System::Call \'kernel32::SetEnvironmentVariable(t "RUSTRONAUT_DIR", t "'
        + DATA
        + "\")i.r0'",
    )
    rename = index(lines, f'Rename "{DATA}" "{DATA}.untrusted-$2"', probe)
    assert NONZERO.fullmatch(lines[probe + 4])  # owner not SYSTEM/Administrators, or a link
    # Could not be moved (a handle open): stop, never trust or delete it.
    assert re.fullmatch(
        rf"IfFileExists `{re.escape(DATA)}\\\*\.\*` `` `_LogicLib_ElseLabel_[0-9]+`",
        lines[rename + 1],
    )
    assert lines[rename + 4 : rename + 6] == ["SetErrorLevel 1", "Quit"]
    create = index(lines, f'CreateDirectory "{DATA}"', rename)
    owner = index(lines, f"nsExec::ExecToLog '{ICACLS} \"{DATA}\" /setowner {ADMINS} /C'", create)
    acl = index(
        lines,
        f'nsExec::ExecToLog \'{ICACLS} "{DATA}" /inheritance:r /grant:r '
        f"{SYSTEM}:(OI)(CI)F {ADMINS}:(OI)(CI)F'",
        owner,
    )
    checked(lines, owner)
    checked(lines, acl)
    service = index(lines, next(x for x in lines if 'sc.exe" create' in x))
    last = acl
    for sub in ("helper", "tunnels"):
        d = f"{DATA}\\{sub}"
        made = index(lines, f'CreateDirectory "{d}"', last)
        sub_owner = index(
            lines, f"nsExec::ExecToLog '{ICACLS} \"{d}\" /setowner {ADMINS} /C'", made
        )
        reset = index(lines, f"nsExec::ExecToLog '{ICACLS} \"{d}\" /reset /C'", sub_owner)
        checked(lines, sub_owner)
        checked(lines, reset)
        last = reset
    assert last < service
    # Users get nothing on the data directory.
    assert not [x for x in lines if "icacls" in x and DATA in x and USERS in x]


def test_the_helper_checks_the_install_before_the_service_exists(main_section: list[str]) -> None:
    lines = main_section
    check = index(
        lines,
        'nsExec::ExecToStack \'"$INSTDIR\\rustronaut-helper.exe" --check-install '
        f'--state-dir "{DATA}\\helper"\'',
    )
    assert lines[check + 1 : check + 3] == ["Pop $0", "Pop $1"]
    assert NONZERO.fullmatch(lines[check + 3])
    assert lines[check + 4].startswith('DetailPrint "Rustronaut cannot run from $INSTDIR')
    assert lines[check + 6 : check + 8] == ["SetErrorLevel 1", "Quit"]
    assert re.search(r"WriteUninstaller", " ".join(lines[:check]))
    service = index(lines, next(x for x in lines if 'sc.exe" create' in x))
    assert check < service
    # The binPath's state directory is the one that was locked down and checked.
    bin_path = next(x for x in lines if x.startswith("StrCpy $4 'binPath="))
    assert f'--state-dir \\"{DATA}\\helper\\"' in bin_path


def test_the_script_compiles(payload: Path, tmp_path: Path) -> None:
    need("makensis")
    out = tmp_path / "setup.exe"
    run(["makensis", "-V2", "-DVERSION=0.0.1", f"-DPAYLOAD={payload}", f"-DOUTFILE={out}",
         "-DCOMPRESSION=none", str(NSI)])  # fmt: skip
    assert out.read_bytes()[:2] == b"MZ"
