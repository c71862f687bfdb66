"""The helper's start check: refuse to run from paths a non-administrator can change.

The helper runs as root (Linux, macOS) or LocalSystem (Windows). If a normal user can
replace its executable, its code or its state directory (device identity, tunnel keys),
that user runs code as root or reads the keys. :func:`verify_helper_paths` checks, before
the helper serves anything, that every *target* (the executable, its directory, the package
directory when not frozen, the state directory) and every directory above each of them is
safe; it raises :class:`UnsafeInstallError` listing every problem (``__main__`` logs them and
exits with :data:`EXIT_UNSAFE`).

POSIX (Linux and macOS), read with ``lstat`` on the real files:

- every component is owned by a trusted uid (root, or the helper's own uid: a helper that
  runs as a service account owns its state directory);
- no component is writable by a group other than a trusted one (gid 0; on macOS also
  ``admin``, gid 80, which owns ``/Applications``) nor by everyone. An *ancestor* (not a
  target) may be world-writable only if it is root-owned and sticky (``/tmp``): nobody can
  rename a root-owned entry out of a sticky directory;
- both the path as written and its resolved form are checked, so a symlink in, or into, a
  user-writable directory is caught. A target that does not exist yet (the state directory
  before the first start) is checked through its nearest existing ancestor, which then must
  not be writable by anyone untrusted (someone could create the directory first).

Windows, read as SDDL (``Get-Acl`` through the injected runner, one PowerShell process for
all paths; ``icacls`` prints localized account names and no owner, SDDL has neither
problem):

- the owner is SYSTEM, Administrators or TrustedInstaller (an owner may always rewrite the
  DACL: a ``C:\\ProgramData\\Rustronaut`` created in advance by a user stays theirs through
  ``icacls /grant``);
- no allow entry gives anyone else a right that changes a target (write or add files or
  folders, delete, delete children, change permissions or owner, generic write or all),
  counting inheritable entries since they apply to what is created inside; on an ancestor
  only the rights that let its next component be renamed or replaced count (delete, delete
  children, permissions, owner, generic all; delete is ignored on a drive root), so
  ``C:\\`` and ``C:\\ProgramData``, where users may create folders, are fine;
- no component is a reparse point (junction, symbolic link).

Installed or from source (decided by ``sys.frozen``, which PyInstaller sets):

- **frozen** (every package we ship: ``.deb``, ``.rpm``, ``.pkg``, the NSIS installer):
  the executable, its folder and the state directory are checked strictly, as above;
- **from source** (a checkout or a venv: how developers, the tests and CI start it) the
  state directory is still checked strictly (it holds the keys). On POSIX the code (the
  interpreter, its folder, the ``wg_backends`` package) is checked with one more trusted
  uid, the owner of the ``wg_backends`` folder, and a warning is logged when that is not
  root: a root helper started from alice's checkout is alice's code by choice, but a
  world-writable or foreign-group-writable component, or one owned by a third account, is
  still refused. A venv installed by root (``/opt/rustronaut/venv``) has root as that
  owner, so it is held to the strict rule. On Windows from source nothing is checked (a
  warning says so): a checkout on a data drive, the runners' tool cache and a user's temp
  folder are owned by, or renamable by, ordinary accounts, so the strict rule would refuse
  every developer and CI run; the service runs only the frozen executable.

Everything but :func:`verify_helper_paths`'s defaults (``sys.executable``, the platform)
is injectable; the SDDL parser and the rules are pure. Never raises anything but
:class:`UnsafeInstallError`: an unreadable path is a problem, not a crash.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import stat
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

from wg_backends.errors import CommandError, WgError
from wg_backends.runner import CommandRunner

__all__ = [
    "EXIT_UNSAFE",
    "Ace",
    "Problem",
    "SddlError",
    "SecurityDescriptor",
    "UnsafeInstallError",
    "check_posix",
    "check_windows",
    "get_acl_argv",
    "helper_targets",
    "parse_get_acl_output",
    "parse_sddl",
    "sddl_problems",
    "trusted_ids",
    "verify_helper_paths",
]

_log = logging.getLogger(__name__)
FROZEN = bool(getattr(sys, "frozen", False))
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # wg_backends

EXIT_UNSAFE = 5  # the helper's exit code when it refuses to run (3: no backend, 4: pywin32)

MACOS_ADMIN_GID = 80


@dataclass(frozen=True, slots=True)
class Problem:
    """One unsafe path and why (``reason`` names who may change it and how)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class UnsafeInstallError(WgError):
    """The helper's files or state directory can be changed by a non-administrator."""

    title = "The Rustronaut helper is not installed safely"
    next_step = (
        "Ask IT to reinstall Rustronaut into a folder only administrators can change "
        "(the default location), then restart the computer."
    )
    code = "helper_unavailable"  # what the client sees: a helper that does not start

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "refusing to run: a non-administrator can change "
            + "; ".join(str(p) for p in self.problems)
        )


# ----- POSIX -------------------------------------------------------------------------


def trusted_ids(platform: str = sys.platform) -> tuple[frozenset[int], frozenset[int]]:
    """(uids, gids) that may own or write the helper's paths on ``platform``."""
    uids = {0}
    if hasattr(os, "geteuid"):
        uids.add(os.geteuid())
    gids = {0} | ({MACOS_ADMIN_GID} if platform == "darwin" else set())
    return frozenset(uids), frozenset(gids)


def _uid_name(uid: int) -> str:
    try:
        import pwd

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _gid_name(gid: int) -> str:
    try:
        import grp

        return f"group {gid} ({grp.getgrgid(gid).gr_name})"
    except (ImportError, KeyError):
        return f"group {gid}"


def _components(path: Path) -> list[Path]:
    """``path`` and each directory above it, the path first, ``/`` last."""
    return [path, *path.parents]


def _posix_one(
    path: Path, st: os.stat_result, *, target: bool, uids: frozenset[int], gids: frozenset[int]
) -> str | None:
    mode = st.st_mode
    if st.st_uid not in uids:
        return f"owned by {_uid_name(st.st_uid)}"
    if stat.S_ISLNK(mode):
        return None  # a symlink's own mode means nothing; its directory is checked
    if mode & stat.S_IWGRP and st.st_gid not in gids:
        return f"writable by {_gid_name(st.st_gid)} (mode {stat.S_IMODE(mode):04o})"
    if mode & stat.S_IWOTH:
        sticky = stat.S_ISDIR(mode) and mode & stat.S_ISVTX and st.st_uid == 0
        if target or not sticky:
            return f"writable by everyone (mode {stat.S_IMODE(mode):04o})"
    return None


def _posix_chain(
    path: Path, *, uids: frozenset[int], gids: frozenset[int], seen: set[tuple[Path, bool]]
) -> list[Problem]:
    problems = []
    target = True
    for comp in _components(path):
        try:
            st = comp.lstat()
        except FileNotFoundError:
            continue  # not created yet: its parent becomes the target
        except OSError as exc:
            problems.append(Problem(str(comp), f"cannot be read ({exc.strerror})"))
            target = False
            continue
        if (comp, target) not in seen:
            seen.add((comp, target))
            why = _posix_one(comp, st, target=target, uids=uids, gids=gids)
            if why:
                problems.append(Problem(str(comp), why))
        target = False
    return problems


def check_posix(
    paths: Iterable[Path], *, platform: str = sys.platform, uids: Iterable[int] | None = None
) -> list[Problem]:
    """Problems with ``paths`` (targets) and every directory above them. Reads the disk.

    ``uids`` replaces the trusted uids (default: root and the effective uid).
    """
    t_uids, gids = trusted_ids(platform)
    if uids is not None:
        t_uids = frozenset(uids)
    seen: set[tuple[Path, bool]] = set()
    problems: list[Problem] = []
    for path in paths:
        absolute = Path(os.path.abspath(path))
        problems += _posix_chain(absolute, uids=t_uids, gids=gids, seen=seen)
        real = Path(os.path.realpath(absolute))
        if real != absolute:
            problems += _posix_chain(real, uids=t_uids, gids=gids, seen=seen)
    return list(dict.fromkeys(problems))


# ----- Windows: SDDL -----------------------------------------------------------------

SYSTEM = "S-1-5-18"
ADMINISTRATORS = "S-1-5-32-544"
TRUSTED_INSTALLER = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
CREATOR_OWNER = "S-1-3-0"
OWNER_RIGHTS = "S-1-3-4"
TRUSTED_OWNERS = frozenset({SYSTEM, ADMINISTRATORS, TRUSTED_INSTALLER})
# CREATOR OWNER entries apply to whoever creates a child (who needs a right that is
# checked anyway); OWNER RIGHTS to the owner (checked to be trusted).
TRUSTED_TRUSTEES = TRUSTED_OWNERS | {CREATOR_OWNER, OWNER_RIGHTS}

_ALIASES = {
    "SY": SYSTEM,
    "BA": ADMINISTRATORS,
    "CO": CREATOR_OWNER,
    "OW": OWNER_RIGHTS,
    "BU": "S-1-5-32-545",
    "AU": "S-1-5-11",
    "WD": "S-1-1-0",
    "IU": "S-1-5-4",
    "AC": "S-1-15-2-1",
    "LS": "S-1-5-19",
    "NS": "S-1-5-20",
    "PU": "S-1-5-32-547",
    "LA": "LA",  # the machine's built-in Administrator account: a user, not trusted here
}
_RIGHTS = {
    "GA": 0x10000000, "GR": 0x80000000, "GW": 0x40000000, "GX": 0x20000000,
    "RC": 0x20000, "SD": 0x10000, "WD": 0x40000, "WO": 0x80000,
    "CC": 0x1, "DC": 0x2, "LC": 0x4, "SW": 0x8, "RP": 0x10, "WP": 0x20, "DT": 0x40,
    "LO": 0x80, "CR": 0x100,
    "FA": 0x1F01FF, "FR": 0x120089, "FW": 0x120116, "FX": 0x1200A0,
    "KA": 0xF003F, "KR": 0x20019, "KW": 0x20006, "KX": 0x20019,
}  # fmt: skip
ADD_FILE, ADD_SUBDIR, DELETE_CHILD = 0x2, 0x4, 0x40
DELETE, WRITE_DAC, WRITE_OWNER = 0x10000, 0x40000, 0x80000
GENERIC_ALL, GENERIC_WRITE = 0x10000000, 0x40000000
# Rights that change a target (or, inheritable, what is created in it) ...
TARGET_WRITE = ADD_FILE | ADD_SUBDIR | DELETE_CHILD | DELETE | WRITE_DAC | WRITE_OWNER
TARGET_WRITE |= GENERIC_ALL | GENERIC_WRITE
# ... and rights on an ancestor that let its next component be renamed or replaced.
ANCESTOR_WRITE = DELETE_CHILD | DELETE | WRITE_DAC | WRITE_OWNER | GENERIC_ALL
_ALLOW = frozenset({"A", "OA", "XA", "ZA"})
_SID = re.compile(r"S-1-[0-9]+(?:-[0-9]+)*|[A-Z]{2}")
_HEAD = re.compile(
    rf"^(?:O:(?P<owner>{_SID.pattern}))?(?:G:(?:{_SID.pattern}))?(?:D:(?P<dflags>[A-Z_]*))?"
)


class SddlError(ValueError):
    """A security descriptor string this module cannot read."""


@dataclass(frozen=True, slots=True)
class Ace:
    """One access control entry: ``type`` (A, D, OA, ...), flags, access mask, trustee SID."""

    type: str
    flags: frozenset[str]
    mask: int
    sid: str


@dataclass(frozen=True, slots=True)
class SecurityDescriptor:
    """Owner SID (``None`` if absent) and DACL (``None``: a null DACL, everyone allowed)."""

    owner: str | None
    dacl: tuple[Ace, ...] | None


def _sid(text: str) -> str:
    return _ALIASES.get(text, text) if len(text) == 2 else text


def _mask(text: str) -> int:
    if text.lower().startswith("0x") or text.isdigit():
        return int(text, 0) & 0xFFFFFFFF
    if len(text) % 2:
        raise SddlError(f"bad rights {text!r}")
    mask = 0
    for i in range(0, len(text), 2):
        code = text[i : i + 2]
        if code not in _RIGHTS:
            raise SddlError(f"unknown right {code!r}")
        mask |= _RIGHTS[code]
    return mask


def _ace_strings(text: str) -> list[str]:
    """The top-level ``(...)`` groups of ``text`` (conditional entries nest parentheses),
    up to an ``S:`` (the SACL, not read). Anything else is an error."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            if depth == 0:
                start = i + 1
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SddlError("unbalanced parentheses")
            if depth == 0:
                out.append(text[start:i])
        elif depth == 0:
            if text.startswith("S:", i):
                break  # the SACL: not read
            raise SddlError(f"unexpected {text[i : i + 20]!r}")
    if depth:
        raise SddlError("unbalanced parentheses")
    return out


def parse_sddl(text: str) -> SecurityDescriptor:
    """Owner and DACL of an SDDL string (as ``Get-Acl``'s ``Sddl`` prints it). Pure.

    Raises :class:`SddlError` for a string it cannot read.
    """
    text = text.strip()
    m = _HEAD.match(text)
    if m is None or m.end() == 0:
        raise SddlError(f"not SDDL: {text[:60]!r}")
    owner = _sid(m.group("owner")) if m.group("owner") else None
    if m.group("dflags") is None:
        if text[m.end() :] and not text.startswith("S:", m.end()):
            raise SddlError(f"not SDDL: {text[:60]!r}")
        return SecurityDescriptor(owner, None)
    if "NO_ACCESS_CONTROL" in m.group("dflags"):
        return SecurityDescriptor(owner, None)
    aces = []
    for body in _ace_strings(text[m.end() :]):
        fields = body.split(";")
        if len(fields) < 6:
            raise SddlError(f"bad entry ({body[:60]})")
        kind, flags, rights, sid = fields[0], fields[1], fields[2], fields[5]
        if len(flags) % 2:
            raise SddlError(f"bad flags {flags!r}")
        aces.append(
            Ace(
                kind,
                frozenset(flags[i : i + 2] for i in range(0, len(flags), 2)),
                _mask(rights),
                _sid(sid),
            )
        )
    return SecurityDescriptor(owner, tuple(aces))


FULL_CONTROL = 0x1F01FF


def _rights_words(ace_mask: int, bad: int) -> str:
    if ace_mask & GENERIC_ALL or ace_mask & FULL_CONTROL == FULL_CONTROL:
        return "has full control"
    names = [
        (WRITE_DAC, "change permissions"),
        (WRITE_OWNER, "take ownership"),
        (DELETE, "delete or rename"),
        (DELETE_CHILD, "delete what is inside"),
        (ADD_FILE | GENERIC_WRITE, "write or add files"),
        (ADD_SUBDIR, "append or add folders"),
    ]
    return "may " + ", ".join(word for bit, word in names if bad & bit)


def sddl_problems(sd: SecurityDescriptor, *, target: bool, drive_root: bool = False) -> list[str]:
    """Why ``sd`` lets a non-administrator change the object (empty if it does not). Pure.

    ``target``: the object itself matters (see the module docstring); otherwise it is an
    ancestor. ``drive_root``: ``C:\\`` and the like, which cannot be deleted or renamed.
    """
    out = []
    if sd.owner not in TRUSTED_OWNERS:
        out.append(f"owned by {sd.owner or 'nobody known'} (not SYSTEM or Administrators)")
    if sd.dacl is None:
        return [*out, "has no access list (everyone may do anything)"]
    for ace in sd.dacl:
        if ace.type not in _ALLOW or ace.sid in TRUSTED_TRUSTEES:
            continue
        inherit_only = "IO" in ace.flags
        if inherit_only and not (target and ace.flags & {"OI", "CI"}):
            continue  # not this object's right, and nothing inside it matters
        watched = TARGET_WRITE if target else ANCESTOR_WRITE
        if drive_root and not inherit_only:
            watched &= ~DELETE
        bad = ace.mask & watched
        if bad:
            where = " (in what is created inside)" if inherit_only else ""
            out.append(f"{ace.sid} {_rights_words(ace.mask, bad)}{where}")
    return out


# ----- Windows: reading through the runner ------------------------------------------

REPARSE_POINT = 0x400


def _powershell() -> str:
    root = os.environ.get("SYSTEMROOT", r"C:\Windows")  # Windows' names ignore case
    return str(PureWindowsPath(root, "System32", "WindowsPowerShell", "v1.0", "powershell.exe"))


def get_acl_script(paths: Sequence[PureWindowsPath]) -> str:
    """The PowerShell that prints ``<attributes>|<sddl>`` (``-`` if missing) per path."""
    quoted = ",".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    return (
        "$ErrorActionPreference='Stop'\n"
        f"foreach ($p in @({quoted})) {{\n"
        "  if (Test-Path -LiteralPath $p) {\n"
        "    $i = Get-Item -LiteralPath $p -Force\n"
        "    '{0}|{1}' -f [int]$i.Attributes, (Get-Acl -LiteralPath $p).Sddl\n"
        "  } else { '-' }\n"
        "}\n"
    )


def get_acl_argv(paths: Sequence[PureWindowsPath]) -> list[str]:
    """The command line (``-EncodedCommand``: no quoting of paths on a command line)."""
    encoded = base64.b64encode(get_acl_script(paths).encode("utf-16-le")).decode("ascii")
    return [_powershell(), "-NoProfile", "-NonInteractive", "-EncodedCommand", encoded]


def parse_get_acl_output(text: str, count: int) -> list[tuple[int, str] | None]:
    """One ``(attributes, sddl)`` or ``None`` (missing) per path. Raises :class:`SddlError`."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != count:
        raise SddlError(f"expected {count} lines from Get-Acl, got {len(lines)}")
    out: list[tuple[int, str] | None] = []
    for line in lines:
        if line == "-":
            out.append(None)
            continue
        attrs, sep, sddl = line.partition("|")
        if not sep or not attrs.isdigit():
            raise SddlError(f"unexpected Get-Acl line {line[:60]!r}")
        out.append((int(attrs), sddl))
    return out


def _windows_chain(path: PureWindowsPath) -> list[PureWindowsPath]:
    return [path, *path.parents]


def check_windows(paths: Sequence[PureWindowsPath], runner: CommandRunner) -> list[Problem]:
    """Problems with ``paths`` (targets) and every folder above them, read in one go."""
    chain: list[PureWindowsPath] = []
    for path in paths:
        for comp in _windows_chain(path):
            if comp not in chain:
                chain.append(comp)
    argv = get_acl_argv(chain)
    env = {"SYSTEMROOT": os.environ.get("SYSTEMROOT", r"C:\Windows")}  # PowerShell needs it
    try:
        res = runner(argv, check=True, env=env, timeout=60)
        facts = dict(zip(chain, parse_get_acl_output(res.stdout, len(chain)), strict=True))
    except (CommandError, SddlError) as exc:
        return [Problem(str(paths[0]), f"its permissions could not be read ({exc})")]
    problems: list[Problem] = []
    seen: set[tuple[PureWindowsPath, bool]] = set()
    for path in paths:
        target = True
        for comp in _windows_chain(path):
            fact = facts[comp]
            if fact is None:
                continue  # not created yet: its parent becomes the target
            if (comp, target) not in seen:
                seen.add((comp, target))
                attrs, sddl = fact
                reasons = []
                if attrs & REPARSE_POINT:
                    reasons.append("is a junction or link")
                try:
                    sd = parse_sddl(sddl)
                    root = comp == PureWindowsPath(comp.anchor)
                    reasons += sddl_problems(sd, target=target, drive_root=root)
                except SddlError as exc:
                    reasons.append(f"unreadable permissions ({exc})")
                problems += [Problem(str(comp), r) for r in reasons]
            target = False
    return list(dict.fromkeys(problems))


# ----- the helper's paths -------------------------------------------------------------


def helper_targets(
    state_dir: Path | PureWindowsPath,
    *,
    executable: str = sys.executable,
    frozen: bool = FROZEN,
    package_dir: str = PACKAGE_DIR,
    windows: bool = sys.platform == "win32",
) -> list[Path] | list[PureWindowsPath]:
    """What must be admin-only: the executable and its folder, the code (when not frozen:
    the ``wg_backends`` package; frozen, the code is in the executable's folder), the state
    directory (last).
    """
    if windows:
        exe = PureWindowsPath(executable)
        win = [exe, exe.parent] + ([] if frozen else [PureWindowsPath(package_dir)])
        return [*win, PureWindowsPath(state_dir)]
    names = [executable, os.path.dirname(executable)] + ([] if frozen else [package_dir])
    return [Path(n) for n in names] + [Path(state_dir)]


def _source_owner(package_dir: str, platform: str) -> int | None:
    """The owner of a from-source ``wg_backends`` if it is not already trusted, else None."""
    try:
        uid = os.stat(package_dir).st_uid
    except OSError:
        return None  # the strict check reports it
    return None if uid in trusted_ids(platform)[0] else uid


def verify_helper_paths(
    state_dir: Path,
    runner: CommandRunner,
    *,
    platform: str = sys.platform,
    frozen: bool = FROZEN,
    executable: str = sys.executable,
    package_dir: str = PACKAGE_DIR,
    targets: Sequence[Path] | Sequence[PureWindowsPath] | None = None,
) -> None:
    """Raise :class:`UnsafeInstallError` if a non-administrator can change the helper.

    Frozen or from source: see the module docstring. ``targets`` replaces
    :func:`helper_targets` and checks them all strictly. Blocking (reads the disk; on
    Windows runs PowerShell once, about a second). Logs a warning when it relaxes a rule.
    """
    windows = platform == "win32"
    if targets is not None:
        if windows:
            problems = check_windows([PureWindowsPath(p) for p in targets], runner)
        else:
            problems = check_posix([Path(p) for p in targets], platform=platform)
    elif windows:
        if not frozen:
            _log.warning(
                "running from source (%s): not checking who can change the helper; "
                "only the installed (frozen) helper is checked",
                package_dir,
            )
            return
        paths = helper_targets(state_dir, executable=executable, frozen=True, windows=True)
        problems = check_windows([PureWindowsPath(p) for p in paths], runner)
    else:
        code = helper_targets(
            state_dir, executable=executable, frozen=frozen, package_dir=package_dir,
            windows=False,
        )[:-1]  # fmt: skip
        uids = trusted_ids(platform)[0]
        owner = None if frozen else _source_owner(package_dir, platform)
        if owner is not None:
            _log.warning(
                "running from source owned by %s (%s): trusting that account for the code",
                _uid_name(owner),
                package_dir,
            )
            uids |= {owner}
        problems = check_posix([Path(p) for p in code], platform=platform, uids=uids)
        problems += check_posix([Path(state_dir)], platform=platform)
    if problems:
        raise UnsafeInstallError(list(dict.fromkeys(problems)))
