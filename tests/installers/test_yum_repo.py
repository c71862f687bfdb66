"""The signed dnf/yum repository (issue 19, Deliver 4, yum part): installers/linux/repo-yum.sh.

Two tiny ``rustronaut`` packages, versions N (1.0.0) and N+1 (1.1.0), are built here with
rpmbuild (a one-file noarch spec: what the repository proves does not depend on the
package's contents, and a package without Requires installs into an empty root) and signed
by the real installers/linux/sign.sh. repo-yum.sh turns them into a repository whose
repomd.xml is signed; the repository is served over loopback HTTP and used by the real
``dnf`` (Debian's dnf 4) with ``--installroot`` (an empty directory: its own rpm database,
cache and configuration; no system repository is read):

- the signature verifies with ``gpgv`` against the published key alone, primary.xml lists
  both versions with the sha256 of the files served, repomd.xml the sha256 of every
  metadata file;
- dnf installs N, upgrades to N+1 once N+1 is published by running repo-yum.sh again, and
  goes back to N only when asked (``dnf downgrade``), never through ``dnf install``;
- dnf refuses every tamper: a byte of repomd.xml, a byte of primary.xml (its checksum in
  repomd.xml no longer matches), metadata signed by another key, a stripped signature, a
  package swapped for another build, an unsigned package in correctly signed metadata;
- repo-yum.sh refuses to publish an unsigned package or one signed by another key.

Runs in about 10 s (dnf ≈ 0.3 s a transaction).
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from tests.fakes.installers import ROOT, GpgHome, need, run

pytestmark = [pytest.mark.integration, pytest.mark.root, pytest.mark.timeout(120)]

LINUX = ROOT / "installers" / "linux"
REPO_YUM = LINUX / "repo-yum.sh"
N, N1 = "1.0.0", "1.1.0"
REPO_NS = {"repo": "http://linux.duke.edu/metadata/repo"}
COMMON_NS = {"common": "http://linux.duke.edu/metadata/common"}

SPEC = """\
Name:      rustronaut
Version:   %{pkg_version}
Release:   1
Summary:   Rustronaut test package
License:   Apache-2.0
BuildArch: noarch
%description
A one-file stand-in for the client: the repository tests need versions, not contents.
%install
mkdir -p %{buildroot}/opt/rustronaut
echo %{pkg_version} > %{buildroot}/opt/rustronaut/VERSION
%files
/opt/rustronaut/VERSION
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def make_gpg_home(name: str) -> GpgHome:
    """An unprotected Ed25519 signing key in a throwaway home (short path: agent socket)."""
    home = Path(tempfile.mkdtemp(prefix="rtyum"))
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", name, "ed25519", "sign", "never"],
        env=env,
    )
    listing = run(["gpg", "--list-keys", "--with-colons"], env=env).stdout
    keyid = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
    pub = home / "key.asc"
    pub.write_text(run(["gpg", "--armor", "--export", keyid], env=env).stdout)
    return GpgHome(home, keyid, pub)


@dataclass
class Built:
    """The signed test packages and the keys."""

    release: GpgHome
    other: GpgHome
    rpms: dict[str, Path]  # version -> signed .rpm (sign.sh, release key)
    unsigned: dict[str, Path]  # version -> the same build before signing
    rebuilt: Path  # N+1 built and signed a second time: same name, other bytes
    keyfile: Path  # the release key where IT installs it (outside the served tree)


@pytest.fixture(scope="module")
def built(gpg_home: GpgHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    need("rpmbuild", "rpmsign", "rpmkeys", "gpg", "gpgv", "createrepo_c")
    base = tmp_path_factory.mktemp("yumpkgs")
    other = make_gpg_home("Someone Else <other@attacker.example>")
    try:
        (base / "rustronaut.spec").write_text(SPEC)

        def build(version: str, into: Path, host: str = "build") -> Path:
            run(
                [
                    "rpmbuild",
                    "-bb",
                    "--quiet",
                    "--define",
                    f"_buildhost {host}",
                    "--define",
                    f"_topdir {base / 'top'}",
                    "--define",
                    f"_rpmdir {into}",
                    "--define",
                    f"pkg_version {version}",
                    "--define",
                    "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
                    str(base / "rustronaut.spec"),
                ]
            )
            return into / f"rustronaut-{version}-1.noarch.rpm"

        unsigned = {v: build(v, base / "unsigned") for v in (N, N1)}
        signed_dir = base / "signed"
        signed_dir.mkdir()
        for rpm in unsigned.values():
            shutil.copy2(rpm, signed_dir)
        run(["bash", str(LINUX / "sign.sh"), str(signed_dir), gpg_home.keyid], env=gpg_home.env())
        rpms = {v: signed_dir / p.name for v, p in unsigned.items()}
        # Another build of N+1 (another build host: other bytes), signed by the release key too.
        rebuilt_dir = base / "rebuilt"
        rebuilt = build(N1, rebuilt_dir, host="rebuild")
        run(["bash", str(LINUX / "sign.sh"), str(rebuilt_dir), gpg_home.keyid], env=gpg_home.env())
        keyfile = base / "pki" / "RPM-GPG-KEY-rustronaut"
        keyfile.parent.mkdir()
        shutil.copy2(gpg_home.pubkey, keyfile)
        yield Built(gpg_home, other, rpms, unsigned, rebuilt, keyfile)
    finally:
        run(["gpgconf", "--kill", "all"], env=other.env(), check=False)
        shutil.rmtree(other.home, ignore_errors=True)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Server:
    """A loopback HTTP server over ``www``; each repository is a sub-directory."""

    www: Path
    port: int

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    www = tmp_path_factory.mktemp("www")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, name="yum-repo-http", daemon=True)
    thread.start()
    try:
        yield Server(www, httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def repo_yum(
    built: Built, server: Server, name: str, *rpms: Path, key: GpgHome | None = None
) -> subprocess.CompletedProcess[str]:
    """Run repo-yum.sh into server.www/name (check=False: the caller reads the result)."""
    key = key or built.release
    return run(
        [
            "bash",
            str(REPO_YUM),
            "--key",
            key.keyid,
            "--out",
            str(server.www / name),
            "--baseurl",
            server.url(name),
            "--gpgkey",
            built.keyfile.as_uri(),
            *map(str, rpms),
        ],
        env=key.env(),
        check=False,
    )


@pytest.fixture(scope="module")
def repo(built: Built, server: Server) -> Path:
    """The published repository after two releases: N, then N+1 added by a second run."""
    for version in (N, N1):
        proc = repo_yum(built, server, "good", built.rpms[version])
        assert proc.returncode == 0, proc.stderr
    return server.www / "good"


# --- dnf in an empty install root -------------------------------------------------------


@dataclass
class Client:
    """dnf with its own install root: rpm database, cache, configuration, repo file."""

    root: Path

    def dnf(self, *args: str) -> tuple[int, str]:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        proc = run(
            [
                "dnf",
                "-y",
                "--noplugins",
                f"--installroot={self.root}",
                f"--config={self.root / 'etc/dnf/dnf.conf'}",
                "--releasever=test",
                f"--setopt=reposdir={self.root / 'etc/yum.repos.d'}",
                f"--setopt=cachedir={self.root / 'var/cache/dnf'}",
                *args,
            ],
            env=env,
            check=False,
        )
        return proc.returncode, proc.stdout + proc.stderr

    def installed(self) -> str | None:
        """The installed rustronaut version (rpm's own database in the root), or None."""
        proc = run(
            ["rpm", f"--root={self.root}", "-q", "--qf", "%{VERSION}", "rustronaut"], check=False
        )
        return proc.stdout if proc.returncode == 0 else None

    def librepo_log(self) -> str:
        """librepo's log in the root: why a download failed (dnf's output only says that
        all mirrors failed)."""
        log = self.root / "var/log/dnf.librepo.log"
        return log.read_text() if log.exists() else ""

    def version_file(self) -> str:
        return (self.root / "opt/rustronaut/VERSION").read_text().strip()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Callable[[Path], Client]]:
    """Factory: a fresh install root using the repository's own rustronaut.repo. dnf's
    repo_gpgcheck starts a gpg-agent per repository keyring: stopped at the end."""
    need("dnf", "rpm")

    def make(repository: Path) -> Client:
        root = tmp_path / f"root-{repository.name}"
        (root / "etc/yum.repos.d").mkdir(parents=True)
        (root / "etc/dnf").mkdir(parents=True)
        (root / "etc/dnf/dnf.conf").write_text(
            "[main]\ngpgcheck=1\nbest=True\nskip_if_unavailable=False\n"
            "install_weak_deps=False\nkeepcache=False\n"
        )
        shutil.copy2(repository / "rustronaut.repo", root / "etc/yum.repos.d/rustronaut.repo")
        return Client(root)

    yield make
    for home in tmp_path.glob("root-*/var/cache/dnf/*/pubring"):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )


# --- the repository ---------------------------------------------------------------------


def test_repository_layout_and_repo_file(built: Built, server: Server, repo: Path) -> None:
    assert sorted(p.name for p in repo.glob("*.rpm")) == [
        f"rustronaut-{N}-1.noarch.rpm",
        f"rustronaut-{N1}-1.noarch.rpm",
    ]
    assert (
        (repo / "repodata/repomd.xml.asc").read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    )
    shown = run(
        ["gpg", "--show-keys", "--with-colons", str(repo / "RPM-GPG-KEY-rustronaut")]
    ).stdout
    assert [line.split(":")[9] for line in shown.splitlines() if line[:4] == "fpr:"] == [
        built.release.keyid
    ]
    lines = (repo / "rustronaut.repo").read_text().splitlines()
    assert lines[0] == "[rustronaut]"
    for expected in (
        f"baseurl={server.url('good')}",
        "enabled=1",
        "gpgcheck=1",
        "repo_gpgcheck=1",
        f"gpgkey={built.keyfile.as_uri()}",
    ):
        assert expected in lines


def test_default_repo_file_points_at_the_installed_key(built: Built, tmp_path: Path) -> None:
    proc = run(
        [
            "bash",
            str(REPO_YUM),
            "--key",
            built.release.keyid,
            "--out",
            str(tmp_path / "r"),
            str(built.rpms[N]),
        ],
        env=built.release.env(),
    )
    assert "1 packages" in proc.stdout
    text = (tmp_path / "r/rustronaut.repo").read_text()
    assert "gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-rustronaut\n" in text
    assert "baseurl=https://packages.rustronaut.example/rpm\n" in text


def test_repomd_signature_verifies_with_gpgv_and_the_published_key(
    repo: Path, tmp_path: Path
) -> None:
    keyring = tmp_path / "key.gpg"
    run(
        [
            "gpg",
            "--batch",
            "--dearmor",
            "--output",
            str(keyring),
            str(repo / "RPM-GPG-KEY-rustronaut"),
        ]
    )
    proc = run(
        [
            "gpgv",
            "--keyring",
            str(keyring),
            str(repo / "repodata/repomd.xml.asc"),
            str(repo / "repodata/repomd.xml"),
        ],
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def attr(elem: ET.Element, path: str, name: str, ns: dict[str, str]) -> str:
    """Attribute ``name`` of the child at ``path`` (failing when either is missing)."""
    child = elem.find(path, ns)
    assert child is not None, path
    value = child.get(name)
    assert value is not None, (path, name)
    return value


def metadata_problems(repo: Path) -> list[str]:
    """What a client checks below the signature: every file repomd.xml names has its
    checksum, and every package primary.xml names has its checksum."""
    problems = []
    repomd = ET.parse(repo / "repodata/repomd.xml").getroot()
    for data in repomd.findall("repo:data", REPO_NS):
        href = attr(data, "repo:location", "href", REPO_NS)
        checksum = data.find("repo:checksum", REPO_NS)
        assert checksum is not None
        assert checksum.get("type") == "sha256"
        if sha256(repo / href) != checksum.text:
            problems.append(f"{href}: checksum differs from repomd.xml")
    for pkg in primary_packages(repo):
        if sha256(repo / pkg["href"]) != pkg["sha256"]:
            problems.append(f"{pkg['href']}: checksum differs from primary.xml")
    return problems


def primary_packages(repo: Path) -> list[dict[str, str]]:
    repomd = ET.parse(repo / "repodata/repomd.xml").getroot()
    (primary,) = [
        attr(d, "repo:location", "href", REPO_NS)
        for d in repomd.findall("repo:data", REPO_NS)
        if d.get("type") == "primary"
    ]
    root = ET.fromstring(gzip.decompress((repo / primary).read_bytes()))
    out = []
    for pkg in root.findall("common:package", COMMON_NS):
        checksum = pkg.find("common:checksum", COMMON_NS)
        assert checksum is not None
        assert checksum.get("type") == "sha256"
        out.append(
            {
                "name": pkg.findtext("common:name", namespaces=COMMON_NS) or "",
                "version": attr(pkg, "common:version", "ver", COMMON_NS),
                "href": attr(pkg, "common:location", "href", COMMON_NS),
                "sha256": checksum.text or "",
            }
        )
    return out


def test_primary_lists_both_versions_with_the_checksums_of_the_files(
    built: Built, repo: Path
) -> None:
    packages = primary_packages(repo)
    assert sorted((p["name"], p["version"]) for p in packages) == [
        ("rustronaut", N),
        ("rustronaut", N1),
    ]
    for p in packages:
        assert p["sha256"] == sha256(built.rpms[p["version"]])
    assert metadata_problems(repo) == []


# --- tampering: the cases, checked by gpgv + metadata and by dnf --------------------------


def _primary_file(repo: Path) -> Path:
    return next((repo / "repodata").glob("*-primary.xml.gz"))


def _resign(repo: Path, home: GpgHome) -> None:
    run(
        [
            "gpg",
            "--batch",
            "--yes",
            "--local-user",
            home.keyid,
            "--armor",
            "--detach-sign",
            "--output",
            str(repo / "repodata/repomd.xml.asc"),
            str(repo / "repodata/repomd.xml"),
        ],
        env=home.env(),
    )


def _regenerate(repo: Path, built: Built) -> None:
    """What a thief of the upload credentials (not of the key) cannot do: new metadata
    over the swapped files, re-signed by the genuine key. Bypasses repo-yum.sh's checks."""
    run(["createrepo_c", "--quiet", "--no-database", "--general-compress-type", "gz", str(repo)])
    _resign(repo, built.release)


def tamper_repomd_byte(repo: Path, built: Built) -> None:
    text = (repo / "repodata/repomd.xml").read_text()
    flip_byte(repo / "repodata/repomd.xml", text.index("<revision>") + len("<revision>"))


def tamper_primary_byte(repo: Path, built: Built) -> None:
    primary = _primary_file(repo)
    xml = gzip.decompress(primary.read_bytes()).replace(
        b"Rustronaut test package", b"Rustronaut test packagE"
    )
    primary.write_bytes(gzip.compress(xml, mtime=0))


def tamper_other_key(repo: Path, built: Built) -> None:
    _resign(repo, built.other)


def tamper_stripped_signature(repo: Path, built: Built) -> None:
    (repo / "repodata/repomd.xml.asc").unlink()


def tamper_swapped_package(repo: Path, built: Built) -> None:
    """Another (genuinely signed) build under N+1's name: primary.xml's sha256 differs."""
    shutil.copy2(built.rebuilt, repo / built.rebuilt.name)


def tamper_unsigned_package(repo: Path, built: Built) -> None:
    """N+1 without its rpm signature, in metadata regenerated and signed by the right key."""
    shutil.copy2(built.unsigned[N1], repo / built.unsigned[N1].name)
    _regenerate(repo, built)


Tamper = Callable[[Path, Built], None]
BAD_SIGNATURE = "repomd.xml GPG signature verification error: Bad GPG signature"
CHECKSUM = "checksum doesn't match"  # librepo, in dnf's output or (packages) its log


@dataclass(frozen=True)
class Case:
    tamper: Tamper
    signature_ok: bool  # gpgv still accepts repomd.xml.asc
    metadata_bad: bool  # a checksum below the signature no longer matches
    dnf_says: str  # part of dnf's refusal


TAMPERS: dict[str, Case] = {
    "repomd-byte": Case(tamper_repomd_byte, False, False, BAD_SIGNATURE),
    "primary-byte": Case(tamper_primary_byte, True, True, CHECKSUM),
    "other-key": Case(tamper_other_key, False, False, BAD_SIGNATURE),
    "stripped-signature": Case(
        tamper_stripped_signature, False, False, "GPG signature is not available"
    ),
    "swapped-package": Case(tamper_swapped_package, True, True, CHECKSUM),
    "unsigned-package": Case(
        tamper_unsigned_package, True, False, "rustronaut-1.1.0-1.noarch.rpm is not signed"
    ),
}


def tampered_copy(repo: Path, server: Server, case: str, built: Built, user: str) -> Path:
    copy = server.www / f"{user}-{case}"
    shutil.copytree(repo, copy)
    (copy / "rustronaut.repo").write_text(
        (repo / "rustronaut.repo").read_text().replace(server.url("good"), server.url(copy.name))
    )
    TAMPERS[case].tamper(copy, built)
    return copy


@pytest.mark.parametrize("case", TAMPERS)
def test_tamper_is_seen_by_gpgv_or_the_metadata_checksums(
    case: str, built: Built, server: Server, repo: Path, tmp_path: Path
) -> None:
    signature_ok, metadata_bad = TAMPERS[case].signature_ok, TAMPERS[case].metadata_bad
    copy = tampered_copy(repo, server, case, built, "gpgv")
    keyring = tmp_path / "key.gpg"
    run(["gpg", "--batch", "--dearmor", "--output", str(keyring), str(built.keyfile)])
    asc = copy / "repodata/repomd.xml.asc"
    verified = asc.exists() and (
        run(
            ["gpgv", "--keyring", str(keyring), str(asc), str(copy / "repodata/repomd.xml")],
            check=False,
        ).returncode
        == 0
    )
    assert verified is signature_ok
    if signature_ok:
        # The signature still holds: the chain below it must break (or, for an unsigned
        # package in re-signed metadata, only the package signature can catch it: dnf).
        assert bool(metadata_problems(copy)) is metadata_bad


@pytest.mark.parametrize("case", TAMPERS)
def test_dnf_refuses_the_tampered_repository(
    case: str, built: Built, server: Server, repo: Path, client: Callable[[Path], Client]
) -> None:
    copy = tampered_copy(repo, server, case, built, "dnf")
    c = client(copy)
    code, out = c.dnf("install", "rustronaut")
    assert code != 0, out
    assert TAMPERS[case].dnf_says in out + c.librepo_log(), out
    assert c.installed() is None


def test_dnf_installs_n_upgrades_to_n1_and_downgrades_only_when_asked(
    built: Built, server: Server, client: Callable[[Path], Client]
) -> None:
    live = server.www / "live"
    # Release N.
    assert repo_yum(built, server, "live", built.rpms[N]).returncode == 0
    snapshot_n = server.www / "snapshot-n"
    shutil.copytree(live, snapshot_n)
    c = client(live)
    code, out = c.dnf("install", "rustronaut")
    assert code == 0, out
    assert "Importing GPG key" in out  # from gpgkey= (the file IT installed), not the server
    assert (c.installed(), c.version_file()) == (N, N)
    # Release N+1: the same script adds it to the published repository.
    assert repo_yum(built, server, "live", built.rpms[N1]).returncode == 0
    code, out = c.dnf("upgrade", "--refresh")
    assert code == 0, out
    assert (c.installed(), c.version_file()) == (N1, N1)
    # A replay of release N's genuinely signed repository (a mirror rolled back, or an
    # attacker serving old metadata): dnf accepts the metadata (yum repositories carry no
    # expiry) but neither upgrade nor install goes back.
    shutil.rmtree(live)
    shutil.copytree(snapshot_n, live)
    for command in (("upgrade", "--refresh"), ("install", "rustronaut")):
        code, out = c.dnf(*command)
        assert code == 0, out
        assert (c.installed(), c.version_file()) == (N1, N1), out
    # Going back takes asking for it: `dnf downgrade` (or naming the version to install).
    code, out = c.dnf("downgrade", "rustronaut")
    assert code == 0, out
    assert (c.installed(), c.version_file()) == (N, N)


# --- what repo-yum.sh refuses to publish ------------------------------------------------


@pytest.fixture
def signed_by_other(built: Built, tmp_path: Path) -> Path:
    d = tmp_path / "other"
    d.mkdir()
    shutil.copy2(built.unsigned[N], d)
    run(["bash", str(LINUX / "sign.sh"), str(d), built.other.keyid], env=built.other.env())
    return d / built.unsigned[N].name


@pytest.mark.parametrize("which", ["unsigned", "other-key"])
def test_repo_yum_refuses_packages_not_signed_by_the_key(
    which: str, built: Built, server: Server, signed_by_other: Path
) -> None:
    rpm = built.unsigned[N] if which == "unsigned" else signed_by_other
    proc = repo_yum(built, server, f"refused-{which}", rpm)
    assert proc.returncode == 1
    assert "is not signed by" in proc.stderr
    assert built.release.keyid in proc.stderr
    assert not (server.www / f"refused-{which}").exists()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--key", "K"],
        ["--key", "K", "--out", "D"],
        ["--out", "D", "x.rpm"],
        ["--bogus"],
        ["--key", "K", "--out", "D", "x.deb"],
    ],
)
def test_repo_yum_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    proc = run(["bash", str(REPO_YUM), *args], cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "repo-yum.sh" in proc.stderr
