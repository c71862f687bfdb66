"""The signed apt repository (issue 19, Deliver 4): installers/linux/repo-apt.sh.

Built from two small packages (the real build-deb.sh over a fake bundle, versions N and
N+1), served on loopback HTTP and read by the real ``apt-get update`` in a throwaway apt
state that trusts only the repository's exported key (``Signed-By``). Every tamper must
be refused by apt itself: an index byte, a re-packed .deb, a Release signed by another
key, a stripped signature, an expired ``Valid-Until``. The install/upgrade/downgrade/
purge flow in a booted Debian root is tests/installers/test_fresh_root.py.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from tests.fakes.freshroot import AptDir, serve
from tests.fakes.installers import ROOT, GpgHome, need, run

pytestmark = [pytest.mark.integration, pytest.mark.root]

LINUX = ROOT / "installers" / "linux"
REPO_APT = LINUX / "repo-apt.sh"
N, N1 = "1.0.0", "1.0.1"


@dataclass
class Debs:
    old: Path
    new: Path


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Debs:
    need("dpkg-deb")
    bundle = tmp_path_factory.mktemp("fakebundle") / "rustronaut"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "_internal" / "base_library.zip").write_bytes(b"fake")
    for exe in ("rustronaut", "rustronaut-tray", "rustronaut-helper"):
        (bundle / exe).write_text(f"#!/bin/sh\necho '{exe} (fake bundle)'\n")
        (bundle / exe).chmod(0o755)
    out = tmp_path_factory.mktemp("debs")
    built = []
    for version in (N, N1):
        env = {**os.environ, "RUSTRONAUT_DEB_COMPRESSION": "gzip:1", "RUSTRONAUT_VERSION": version}
        proc = run(["bash", str(LINUX / "build-deb.sh"), str(bundle), str(out)], env=env)
        built.append(Path(proc.stdout.strip().splitlines()[-1]))
    return Debs(*built)


@pytest.fixture(scope="module")
def other_key() -> Iterator[GpgHome]:
    """A second signing key: a valid signature, but not by the repository's key."""
    need("gpg", "gpgconf")
    home = Path(tempfile.mkdtemp(prefix="rtgpg2"))
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    try:
        run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
             "Mallory <mallory@example.invalid>", "ed25519", "sign", "never"], env=env)  # fmt: skip
        listing = run(["gpg", "--list-keys", "--with-colons"], env=env).stdout
        keyid = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
        yield GpgHome(home, keyid, home / "unused.asc")
    finally:
        run(["gpgconf", "--kill", "all"], env=env, check=False)
        shutil.rmtree(home, ignore_errors=True)


def build_repo(
    gpg: GpgHome, out: Path, *pkgs: Path, extra: tuple[str, ...] = (), epoch: int | None = None
) -> str:
    env = gpg.env()
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = str(epoch)
    argv = ["bash", str(REPO_APT), "--key", gpg.keyid, "--out", str(out), *extra]
    return run([*argv, *map(str, pkgs)], env=env).stdout


@pytest.fixture(scope="module")
def repo(debs: Debs, gpg_home: GpgHome, tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("apt-ftparchive", "gpgv", "apt-get")
    out = tmp_path_factory.mktemp("aptrepo") / "repo"
    build_repo(gpg_home, out, debs.old, debs.new)
    return out


def fields(stanza: str) -> dict[str, str]:
    """Single-line fields of a deb822 stanza (continuation lines are ignored)."""
    return dict(
        (k, v.strip())
        for k, _, v in (line.partition(":") for line in stanza.splitlines())
        if k and not k[0].isspace()
    )


def update(repo: Path, tmp: Path) -> tuple[AptDir, str]:
    """``apt-get update`` against ``repo`` served on loopback; (state, combined output).
    Asserts nothing: callers check the exit code they expect through the output."""
    apt = AptDir(tmp / "apt")
    with serve(repo) as url:
        apt.configure(url, repo / "rustronaut.gpg")
        proc = apt.apt("update")
        out = f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        if proc.returncode == 0:
            dl = tmp / "dl"
            dl.mkdir()
            got = run(
                ["apt-get", "-q", *apt.options(), "download", "rustronaut"], cwd=dl, check=False
            )
            out += f"\ndownload rc={got.returncode}\n{got.stdout}\n{got.stderr}"
    return apt, out


# --- what the script writes --------------------------------------------------------


def test_release_is_signed_hashed_and_expires(repo: Path, debs: Debs) -> None:
    dists = repo / "dists" / "stable"
    keyring = repo / "rustronaut.gpg"
    assert (
        run(["gpgv", "--keyring", str(keyring), str(dists / "InRelease")], check=False).returncode
        == 0
    )
    assert (
        run(
            ["gpgv", "--keyring", str(keyring), str(dists / "Release.gpg"), str(dists / "Release")],
            check=False,
        )
    ).returncode == 0
    release = (dists / "Release").read_text()
    head = fields(release)
    assert head["Suite"] == head["Codename"] == "stable"
    assert head["Components"] == "main"
    assert head["Architectures"] == run(["dpkg", "--print-architecture"]).stdout.strip()
    lifetime = parsedate_to_datetime(head["Valid-Until"]) - parsedate_to_datetime(head["Date"])
    assert lifetime.days == 30
    assert abs(parsedate_to_datetime(head["Date"]).timestamp() - time.time()) < 600
    # Strong hashes only; every index is listed under SHA256.
    assert "SHA256:" in release
    assert "MD5Sum:" not in release
    assert "\nSHA1:" not in release
    arch = head["Architectures"]
    sha256 = release.split("SHA256:")[1].split("SHA512:")[0]
    for index in (f"main/binary-{arch}/Packages", f"main/binary-{arch}/Packages.gz"):
        assert re.search(rf"^ [0-9a-f]{{64}} +\d+ {re.escape(index)}$", sha256, re.M), index
    # The keyring is binary (signed-by with a .gpg name), the sources file deb822.
    assert not keyring.read_bytes().startswith(b"-----BEGIN")
    assert (repo / "rustronaut.sources").read_text() == (
        "Types: deb\nURIs: https://packages.rustronaut.example/apt\nSuites: stable\n"
        "Components: main\nSigned-By: /usr/share/keyrings/rustronaut.gpg\n"
    )
    # Both versions are published, in the pool.
    packages = (dists / "main" / f"binary-{arch}" / "Packages").read_text()
    versions = sorted(fields(s)["Version"] for s in packages.strip().split("\n\n"))
    assert versions == [N, N1]
    for deb in (debs.old, debs.new):
        assert (
            repo / "pool" / "main" / "r" / "rustronaut" / deb.name
        ).read_bytes() == deb.read_bytes()


def test_rerun_is_idempotent_and_keeps_earlier_releases(
    debs: Debs, gpg_home: GpgHome, tmp_path: Path
) -> None:
    out = tmp_path / "repo"
    build_repo(gpg_home, out, debs.old)
    build_repo(gpg_home, out, debs.new)
    build_repo(gpg_home, out, debs.new)  # again: nothing changes but the signature date
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    packages = (out / "dists" / "stable" / "main" / f"binary-{arch}" / "Packages").read_text()
    assert sorted(fields(s)["Version"] for s in packages.strip().split("\n\n")) == [N, N1]
    assert not list(out.rglob(".*.tmp"))


def test_republishing_a_version_with_other_content_is_refused(
    debs: Debs, gpg_home: GpgHome, tmp_path: Path
) -> None:
    out = tmp_path / "repo"
    build_repo(gpg_home, out, debs.old)
    swapped = tmp_path / "swap" / debs.old.name
    swapped.parent.mkdir()
    shutil.copy(debs.new, swapped)
    argv = ["bash", str(REPO_APT), "--key", gpg_home.keyid, "--out", str(out), str(swapped)]
    proc = run(argv, env=gpg_home.env(), check=False)
    assert proc.returncode == 1
    assert "already published with other content" in proc.stderr
    assert (out / "pool/main/r/rustronaut" / debs.old.name).read_bytes() == debs.old.read_bytes()


@pytest.mark.parametrize(
    "args",
    [[], ["--key", "X"], ["--key", "X", "--out", "/tmp/x"], ["--out", "/tmp/x", "a.deb"],
     ["--key", "X", "--out", "/tmp/x", "nope.rpm"],
     ["--key", "X", "--out", "/tmp/x", "/nonexistent.deb"],
     ["--key", "X", "--out", "/tmp/x", "--valid-days", "0", "a.deb"], ["--bogus"]],
)  # fmt: skip
def test_usage_errors_exit_2(args: list[str]) -> None:
    proc = run(["bash", str(REPO_APT), *args], check=False)
    assert proc.returncode == 2, proc.stderr


def test_unknown_key_is_refused(debs: Debs, gpg_home: GpgHome, tmp_path: Path) -> None:
    argv = ["bash", str(REPO_APT), "--key", "0" * 40, "--out", str(tmp_path / "r"), str(debs.old)]
    proc = run(argv, env=gpg_home.env(), check=False)
    assert proc.returncode == 1
    assert "no public key" in proc.stderr


# --- what apt accepts and refuses --------------------------------------------------


def test_apt_accepts_the_genuine_repository(repo: Path, debs: Debs, tmp_path: Path) -> None:
    apt, out = update(repo, tmp_path)
    assert out.startswith("rc=0"), out
    assert "download rc=0" in out, out
    policy = apt.cache("policy", "rustronaut").stdout
    assert f"Candidate: {N1}" in policy, policy
    assert f" {N} " in policy, policy
    got = list((tmp_path / "dl").iterdir())
    assert [p.name for p in got] == [debs.new.name]
    assert got[0].read_bytes() == debs.new.read_bytes()


def _copy(repo: Path, tmp: Path) -> Path:
    dst = tmp / "repo"
    shutil.copytree(repo, dst)
    return dst


def _resign(repo: Path, gpg: GpgHome) -> None:
    dists = repo / "dists" / "stable"
    base = ["gpg", "--batch", "--yes", "--local-user", gpg.keyid]
    run(
        [*base, "--clearsign", "--output", str(dists / "InRelease"), str(dists / "Release")],
        env=gpg.env(),
    )
    run(
        [
            *base,
            "--armor",
            "--detach-sign",
            "--output",
            str(dists / "Release.gpg"),
            str(dists / "Release"),
        ],
        env=gpg.env(),
    )


def tamper_index_byte(repo: Path, tmp: Path, other: GpgHome) -> None:
    """One byte of the index apt fetches (Packages.gz, recompressed): the Release still
    names the old hash."""
    for gz in repo.glob("dists/stable/main/binary-*/Packages.gz"):
        text = gzip.decompress(gz.read_bytes()).decode()
        text = text.replace(f"Version: {N1}", f"Version: {N1[:-1]}9", 1)
        gz.write_bytes(gzip.compress(text.encode()))
        gz.with_suffix("").write_text(text)


def tamper_repacked_deb(repo: Path, tmp: Path, other: GpgHome) -> None:
    """The newest .deb replaced by a re-packed one (same name and size, one byte off)."""
    deb = (
        repo
        / "pool/main/r/rustronaut"
        / f"rustronaut_{N1}_{run(['dpkg', '--print-architecture']).stdout.strip()}.deb"
    )
    data = bytearray(deb.read_bytes())
    data[len(data) // 2] ^= 0xFF
    deb.write_bytes(bytes(data))


def tamper_other_key(repo: Path, tmp: Path, other: GpgHome) -> None:
    """InRelease and Release.gpg validly signed, by a key the sources file does not name."""
    _resign(repo, other)


def tamper_stripped_signature(repo: Path, tmp: Path, other: GpgHome) -> None:
    """InRelease without its signature, Release.gpg gone: an unsigned repository."""
    dists = repo / "dists" / "stable"
    shutil.copy(dists / "Release", dists / "InRelease")
    (dists / "Release.gpg").unlink()


def tamper_release_edited(repo: Path, tmp: Path, other: GpgHome) -> None:
    """A Release rewritten (Valid-Until pushed back a year) with the old signatures kept."""
    dists = repo / "dists" / "stable"
    release = (dists / "Release").read_text()
    until = fields(release)["Valid-Until"]
    year = re.search(r"\d{4}", until)
    assert year is not None
    later = until.replace(year.group(0), str(int(year.group(0)) + 1))
    (dists / "Release").write_text(release.replace(until, later))
    inrelease = (dists / "InRelease").read_text()
    (dists / "InRelease").write_text(inrelease.replace(until, later))


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (tamper_index_byte, r"Hash Sum mismatch|unexpected size"),
        (tamper_repacked_deb, r"Hash Sum mismatch|unexpected size"),
        (tamper_other_key, r"NO_PUBKEY|not signed|couldn't be verified"),
        (tamper_stripped_signature, r"is not signed|NO_PUBKEY|not signed"),
        (tamper_release_edited, r"BADSIG|invalid signature|not signed|couldn't be verified"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[len("tamper_") :] if callable(v) else "",
)
def test_apt_refuses_every_tamper(
    tamper: Callable[[Path, Path, GpgHome], None],
    message: str,
    repo: Path,
    other_key: GpgHome,
    tmp_path: Path,
) -> None:
    copy = _copy(repo, tmp_path)
    tamper(copy, tmp_path, other_key)
    apt, out = update(copy, tmp_path)
    assert re.search(message, out), out
    if tamper is tamper_repacked_deb:
        # The signed indexes are genuine; the swapped package's download is refused.
        assert out.startswith("rc=0"), out
        assert "download rc=100" in out, out
        assert not list((tmp_path / "dl").glob("*.deb")), out
    else:
        # apt-get update fails and nothing of the repository reaches apt's lists.
        assert out.startswith("rc=100"), out
        policy = apt.cache("policy", "rustronaut")
        assert "Candidate:" not in policy.stdout, policy.stdout


def test_apt_refuses_an_expired_release(debs: Debs, gpg_home: GpgHome, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    forty_days_ago = int(time.time()) - 40 * 86400
    build_repo(gpg_home, out, debs.old, epoch=forty_days_ago)
    _, result = update(out, tmp_path)
    assert result.startswith("rc=100"), result
    assert "is expired" in result, result


def test_release_script_builds_repositories_only_when_signing() -> None:
    proc = run(
        ["bash", str(ROOT / "scripts" / "build-installers.sh"), "linux", "--repo", "/nonexistent"],
        check=False,
    )
    assert proc.returncode == 2
    assert "--repo needs --sign" in proc.stderr
    text = (ROOT / "scripts" / "build-installers.sh").read_text()
    assert 'repo-apt.sh --key "$key" --out "$repo/apt" "$deb"' in text
    assert 'repo-yum.sh --key "$key" --out "$repo/rpm" "$rpm"' in text
