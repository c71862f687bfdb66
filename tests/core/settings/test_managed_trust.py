"""Broken and hostile managed places (issue 16, item 8): who may speak for the organization.

Real files with real owners and modes. The tests marked ``root`` hand files to a
throwaway second account (``useradd``, removed at the end) and run code as it
(``setpriv``). A "release" copy of the ``core`` package — the same code without the
test-build marker beside it — shows what an installed client does with
``RUSTRONAUT_MANAGED_DIR``.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core import settings
from core.settings.managed import _trust
from core.settings.managed.linux import DEFAULT_DIR, LinuxManagedSource
from core.settings.managed.macos import DOMAIN, MacManagedSource

pytestmark = [pytest.mark.unit, pytest.mark.hostile_local_user, pytest.mark.broken_mdm]

ROOT = Path(__file__).resolve().parents[3]
WriteJson = Callable[[Path, object], Path]

# Prints the directory the Linux reader would use and whether the build counts as a test
# build, as the client started from ``sys.argv[1]`` sees it.
PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
from core.settings.managed import _trust
from core.settings.managed.linux import LinuxManagedSource
print(LinuxManagedSource().directory, _trust.is_test_build())
"""


def _copy_core(dest: Path) -> Path:
    shutil.copytree(
        ROOT / "core", dest / "core", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    for path in [dest, *dest.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return dest


def _probe(tree: Path, env_dir: Path, *, user: pwd.struct_passwd | None = None) -> str:
    env = {"PATH": os.environ["PATH"], "RUSTRONAUT_MANAGED_DIR": str(env_dir)}
    argv = [sys.executable, "-I", "-c", PROBE, str(tree)]
    if user is not None:
        argv = [
            "setpriv",
            "--reuid",
            str(user.pw_uid),
            "--regid",
            str(user.pw_gid),
            "--init-groups",
            *argv,
        ]
        env["HOME"] = user.pw_dir
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A directory every account can traverse (pytest's own tmp root is private)."""
    path = Path(tempfile.mkdtemp(prefix="rtmdm-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def stranger() -> Iterator[pwd.struct_passwd]:
    """A throwaway second local account (root only), removed at the end."""
    name = f"rtmdm{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "-m", "-s", "/usr/sbin/nologin", name], check=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", "-r", name], check=False, capture_output=True)


# ------------------------------------------------------------------ test builds only
def test_the_source_tree_is_a_test_build_and_honours_the_variable(managed_dir: Path) -> None:
    assert (ROOT / _trust.MARKER).is_file(), "the repository must carry the test-build marker"
    assert _trust.is_test_build()
    assert LinuxManagedSource().directory == managed_dir


def test_an_installed_copy_ignores_the_variable(reachable: Path, tmp_path: Path) -> None:
    """Any user could set RUSTRONAUT_MANAGED_DIR to an empty directory and unlock every
    managed key: outside a test build the variable is ignored."""
    tree = _copy_core(reachable / "release")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _probe(tree, empty) == f"{DEFAULT_DIR} False"
    # The same copy with the marker beside it is a test build again.
    (tree / _trust.MARKER).touch()
    assert _probe(tree, empty) == f"{empty} True"


def test_a_frozen_build_is_never_a_test_build(monkeypatch: pytest.MonkeyPatch) -> None:
    _trust.is_test_build.cache_clear()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    try:
        assert not _trust.is_test_build()
        assert LinuxManagedSource().directory == DEFAULT_DIR
        assert _trust.trusted_owners() == frozenset({0})
    finally:
        monkeypatch.undo()
        _trust.is_test_build.cache_clear()


@pytest.mark.root
def test_another_account_cannot_use_the_variable(
    reachable: Path, stranger: pwd.struct_passwd
) -> None:
    """A second local account, with its own empty directory, still gets /etc/rustronaut
    from an installed client."""
    tree = _copy_core(reachable / "release")
    own = Path(stranger.pw_dir) / "nothing-managed"
    own.mkdir()
    os.chown(own, stranger.pw_uid, stranger.pw_gid)
    assert _probe(tree, own, user=stranger) == f"{DEFAULT_DIR} False"


@pytest.mark.root
def test_a_marker_owned_by_someone_else_does_not_make_a_test_build(
    reachable: Path, stranger: pwd.struct_passwd
) -> None:
    tree = _copy_core(reachable / "release")
    marker = tree / _trust.MARKER
    marker.touch()
    os.chown(marker, stranger.pw_uid, stranger.pw_gid)
    assert _probe(tree, reachable) == f"{DEFAULT_DIR} False"


# --------------------------------------------------------------- owners and modes
def _rejected(s: settings.EffectiveSettings, *fragments: str) -> None:
    assert s.managed_rejected is not None, s
    for fragment in fragments:
        assert fragment in s.managed_rejected, s.managed_rejected


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_a_managed_file_writable_by_group_or_others_is_rejected(
    managed_dir: Path, write_json: WriteJson, mode: int
) -> None:
    path = write_json(managed_dir / "managed.json", {"always_on": True, "proxy_port": 9001})
    os.chmod(path, mode)
    s = settings.load()
    _rejected(s, str(path), "writable by", "chmod go-w")
    assert (s.always_on, s.source("always_on")) == (False, "default")
    assert s.proxy_port == 9080
    os.chmod(path, 0o644)
    assert settings.load().managed_rejected is None


@pytest.mark.parametrize("where", ["managed.d", "."])
def test_a_writable_managed_directory_is_rejected(
    managed_dir: Path, write_json: WriteJson, where: str
) -> None:
    """Whoever can write the directory can replace the files in it."""
    write_json(managed_dir / "managed.json", {"always_on": True})
    write_json(managed_dir / "managed.d" / "10-pins.json", {"proxy_port": 9001})
    folder = (managed_dir / where).resolve()
    os.chmod(folder, 0o777)
    s = settings.load()
    _rejected(s, str(folder), "writable by everyone")
    assert s.source("always_on") == "default"
    assert s.source("proxy_port") == "default"


def test_a_fifo_in_place_of_a_managed_file_is_rejected_without_hanging(
    managed_dir: Path,
) -> None:
    os.mkfifo(managed_dir / "managed.json")
    _rejected(settings.load(), "not a regular file")


@pytest.mark.root
def test_a_managed_file_owned_by_another_account_is_rejected(
    managed_dir: Path, write_json: WriteJson, stranger: pwd.struct_passwd
) -> None:
    base = write_json(managed_dir / "managed.json", {"always_on": True})
    drop = write_json(managed_dir / "managed.d" / "50-user.json", {"always_on": False})
    os.chown(drop, stranger.pw_uid, stranger.pw_gid)
    s = settings.load()
    _rejected(s, str(drop), f"owned by {stranger.pw_name} (uid {stranger.pw_uid}), not root")
    assert s.source("always_on") == "default"
    # Never half-read: the rejected file's value is nowhere, the good file's neither.
    assert not any(origin == str(base) for origin in s.origins.values())
    os.chown(drop, 0, 0)
    s = settings.load()
    assert s.managed_rejected is None
    assert (s.always_on, s.origin("always_on")) == (False, str(drop))


@pytest.mark.root
def test_a_managed_d_owned_by_another_account_is_rejected(
    managed_dir: Path, write_json: WriteJson, stranger: pwd.struct_passwd
) -> None:
    write_json(managed_dir / "managed.json", {"always_on": True})
    dropins = managed_dir / "managed.d"
    dropins.mkdir()
    os.chown(dropins, stranger.pw_uid, stranger.pw_gid)
    _rejected(settings.load(), str(dropins), "not root")


@pytest.mark.root
def test_a_release_build_trusts_only_root(
    tmp_path: Path, write_json: WriteJson, stranger: pwd.struct_passwd
) -> None:
    """Outside test builds the running account's own files are not trusted either."""
    folder = tmp_path / "m"
    path = write_json(folder / "managed.json", {"always_on": True})
    source = LinuxManagedSource(folder, owners=frozenset({0}))
    assert settings.load(managed_sources=[source]).always_on is True
    os.chown(path, stranger.pw_uid, stranger.pw_gid)
    assert settings.load(managed_sources=[source]).managed_rejected is not None


def test_the_watcher_notices_a_chmod(managed_dir: Path, write_json: WriteJson) -> None:
    path = write_json(managed_dir / "managed.json", {"always_on": True})
    source = LinuxManagedSource()
    before = source.fingerprint()
    os.chmod(path, 0o664)
    assert source.fingerprint() != before


# ------------------------------------------------------------------------- macOS
def _plist(path: Path, doc: dict[str, object]) -> None:
    import plistlib

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(plistlib.dumps(doc))


def test_the_per_user_plist_is_chosen_by_uid_not_by_user_or_logname(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """USER and LOGNAME are the user's to set; naming another account's folder would
    apply that account's (weaker) managed settings."""
    me = pwd.getpwuid(os.getuid()).pw_name
    name = f"{DOMAIN}.plist"
    _plist(tmp_path / me / name, {"always_on": True})
    _plist(tmp_path / "lenient" / name, {"always_on": False})
    monkeypatch.setenv("USER", "lenient")
    monkeypatch.setenv("LOGNAME", "lenient")
    monkeypatch.setenv("LNAME", "lenient")
    monkeypatch.setenv("USERNAME", "lenient")
    source = MacManagedSource(root=tmp_path)
    assert source.files()[1] == tmp_path / me / name
    s = settings.load(managed_sources=[source])
    assert (s.always_on, s.origin("always_on")) == (True, str(tmp_path / me / name))


def test_a_writable_managed_preferences_folder_is_rejected(tmp_path: Path) -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    _plist(tmp_path / me / f"{DOMAIN}.plist", {"always_on": True})
    os.chmod(tmp_path / me, 0o775)
    s = settings.load(managed_sources=[MacManagedSource(root=tmp_path)])
    _rejected(s, str(tmp_path / me), "writable by its group")
    assert s.source("always_on") == "default"


def test_rejections_are_plain_data_in_json(
    managed_dir: Path, write_json: WriteJson, capsys: pytest.CaptureFixture[str]
) -> None:
    os.chmod(write_json(managed_dir / "managed.json", {"always_on": True}), 0o666)
    doc = settings.as_json(settings.load())
    assert "writable by everyone" in str(doc["managed_rejected"])
    json.dumps(doc)
