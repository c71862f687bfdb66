"""Release verification that proves something (issue 19, Deliver 1), with the real tools.

Small real packages (one file each, built in well under a second by ``dpkg-deb`` and
``rpmbuild``) are signed by ``installers/linux/sign.sh`` with the session's throwaway key
(conftest.py) and checked by ``verify.sh`` in every situation a stock Debian can be in:
debsig-verify installed with the policy, installed without it, not installed. Every
tamper — a payload byte, a re-packed package, a stripped signature, a wrong key, either
on the whole release or only inside one package — must fail with a message naming the
file. ``install-verified.sh`` (the documented procedure as a script) is run for real with
``dpkg --root`` / ``rpm --root`` into scratch roots, and dpkg's own debsig enforcement is
tested in a private mount namespace (``unshare -m``), so the machine's /etc is never
changed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.installers import ROOT, GpgHome, need, run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LINUX = ROOT / "installers" / "linux"
VERIFY = LINUX / "verify.sh"
INSTALL = LINUX / "install-verified.sh"
DEB = "rustronaut-probe_1.0_all.deb"
RPM = "rustronaut-probe-1.0-1.noarch.rpm"
GENUINE = "genuine payload\n"
EVIL = "evil payload\n"
#: The documented rpm check (docs/deployment.md): plain ``rpm -K`` exits 0 on an unsigned
#: package; with this level it exits 1 unless a header signature by an imported key is good.
RPM_CHECKSIG = ["rpmkeys", "--checksig", "--define", "_pkgverify_level signature"]


@dataclass(frozen=True)
class Keys:
    """The genuine release key (session fixture) and an intruder's key."""

    release: GpgHome
    intruder: GpgHome


def _new_key(name: str) -> GpgHome:
    home = Path(tempfile.mkdtemp(prefix="rtgpg"))
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    uid = f"{name} <{name.lower()}@rustronaut.example>"
    run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"],
        env=env,
    )
    listing = run(["gpg", "--list-keys", "--with-colons"], env=env).stdout
    keyid = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
    pub = home / "key.asc"
    pub.write_text(run(["gpg", "--armor", "--export", keyid], env=env).stdout)
    return GpgHome(home, keyid, pub)


@pytest.fixture(scope="module")
def keys(gpg_home: GpgHome) -> Iterator[Keys]:
    need("gpg", "gpgv", "gpgconf", "dpkg-deb", "debsigs", "debsig-verify", "rpmbuild")
    need("rpmsign", "rpmkeys", "ar", "sha256sum")
    intruder = _new_key("Intruder")
    try:
        yield Keys(gpg_home, intruder)
    finally:
        run(["gpgconf", "--kill", "all"], env=intruder.env(), check=False)
        shutil.rmtree(intruder.home, ignore_errors=True)


def build_deb(out: Path, payload: str = GENUINE) -> Path:
    """A one-file .deb (no maintainer scripts): /opt/rustronaut-probe/payload."""
    tree = Path(tempfile.mkdtemp(prefix="rtdeb"))
    try:
        (tree / "DEBIAN").mkdir()
        (tree / "DEBIAN/control").write_text(
            "Package: rustronaut-probe\nVersion: 1.0\nArchitecture: all\n"
            "Maintainer: Rustronaut <release@rustronaut.example>\nDescription: probe\n"
        )
        (tree / "opt/rustronaut-probe").mkdir(parents=True)
        (tree / "opt/rustronaut-probe/payload").write_text(payload)
        deb = out / DEB
        run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(tree), str(deb)])
        return deb
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def build_rpm(out: Path, payload: str = GENUINE) -> Path:
    """A one-file noarch .rpm with the same payload."""
    top = Path(tempfile.mkdtemp(prefix="rtrpm"))
    try:
        spec = top / "probe.spec"
        spec.write_text(
            "Name: rustronaut-probe\nVersion: 1.0\nRelease: 1\nSummary: probe\nLicense: MIT\n"
            "BuildArch: noarch\n%description\nprobe\n%install\n"
            "mkdir -p %{buildroot}/opt/rustronaut-probe\n"
            f"printf '{payload.strip()}\\n' > %{{buildroot}}/opt/rustronaut-probe/payload\n"
            "%files\n/opt/rustronaut-probe/payload\n"
        )
        run(
            [
                "rpmbuild",
                "-bb",
                "--define",
                f"_topdir {top}",
                "--define",
                "_binary_payload w1.gzdio",
                str(spec),
            ]
        )
        rpm = out / RPM
        shutil.copy2(top / "RPMS/noarch" / RPM, rpm)
        return rpm
    finally:
        shutil.rmtree(top, ignore_errors=True)


def sign(out: Path, key: GpgHome, *, embedded: bool = True) -> None:
    """sign.sh with ``key``; ``embedded=False`` leaves out debsigs and rpmsign."""
    env = key.env()
    if not embedded:
        env |= {"RUSTRONAUT_DEBSIGS": "0", "RUSTRONAUT_RPMSIGN": "0"}
    run(["bash", str(LINUX / "sign.sh"), str(out), key.keyid], env=env)


def embed_signature(pkg: Path, key: GpgHome) -> None:
    """Only the embedded signature (debsigs origin / rpm header), by ``key``."""
    if pkg.suffix == ".deb":
        run(["debsigs", "--sign=origin", f"--default-key={key.keyid}", str(pkg)], env=key.env())
    else:
        gpg = shutil.which("gpg")
        run(
            [
                "rpmsign",
                "--addsign",
                "--define",
                f"_gpg_name {key.keyid}",
                "--define",
                f"__gpg {gpg}",
                str(pkg),
            ],
            env=key.env(),
        )


@pytest.fixture(scope="module")
def release(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A genuine signed release: .deb + .rpm, .asc, SHA256SUMS(.asc), the release key."""
    out = tmp_path_factory.mktemp("release")
    build_deb(out)
    build_rpm(out)
    sign(out, keys.release)
    shutil.copy2(keys.release.pubkey, out / "rustronaut-release-key.asc")
    return out


def copy_release(release: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "release"
    shutil.copytree(release, dst)
    return dst


def verify(key: Path, directory: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run(
        ["bash", str(VERIFY), str(key), str(directory)], env={**os.environ, **env}, check=False
    )


def path_without(tool: str, tmp_path: Path) -> str:
    """A PATH in which ``tool`` is missing and everything else of /usr/bin is found."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for entry in Path("/usr/bin").iterdir():
        if entry.name != tool:
            (bin_ / entry.name).symlink_to(entry)
    return f"{bin_}:/usr/sbin:/sbin"


def debsig_dirs(tmp_path: Path, key: GpgHome) -> tuple[Path, Path]:
    """debsig-verify's policies and keyrings directories for ``key``, as documented."""
    pol, kr = tmp_path / "policies", tmp_path / "keyrings"
    short = key.keyid[-16:]
    (pol / short).mkdir(parents=True)
    (kr / short).mkdir(parents=True)
    (pol / short / "rustronaut.pol").write_text(
        (LINUX / "debsig-policy.pol.in").read_text().replace("@KEYID@", short)
    )
    exported = subprocess.run(["gpg", "--export", key.keyid], env=key.env(), capture_output=True)
    (kr / short / "debsig.gpg").write_bytes(exported.stdout)
    return pol, kr


def flip_byte(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x01
    path.write_bytes(bytes(data))


def assert_refused(proc: subprocess.CompletedProcess[str], *names: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stderr
    reason = proc.stderr.split("FAILED:", 1)[1].strip()
    assert reason, "the failure gives no reason"
    for name in names:
        assert name in proc.stderr, (name, proc.stderr)


# --- a genuine release passes on a stock Debian -------------------------------------


def test_genuine_release_passes_with_debsig_verify_but_no_policy(keys: Keys, release: Path) -> None:
    """Finding: with debsig-verify installed and no policy for the key (stock Debian),
    verify.sh failed on the genuine release with an empty reason."""
    assert not Path("/etc/debsig/policies", keys.release.keyid[-16:]).exists()
    proc = verify(keys.release.pubkey, release)
    assert proc.returncode == 0, proc.stderr
    assert f"OK  {DEB}" in proc.stdout
    assert f"OK  {RPM}" in proc.stdout
    # Says what it did instead of debsig-verify, and which key it trusted.
    assert "debsigs origin signature checked with gpgv" in proc.stdout + proc.stderr
    assert keys.release.keyid in proc.stdout


def test_genuine_release_passes_with_the_documented_debsig_policy(
    keys: Keys, release: Path, tmp_path: Path
) -> None:
    pol, kr = debsig_dirs(tmp_path, keys.release)
    proc = verify(
        keys.release.pubkey,
        release,
        RUSTRONAUT_DEBSIG_POLICIES=str(pol),
        RUSTRONAUT_DEBSIG_KEYRINGS=str(kr),
    )
    assert proc.returncode == 0, proc.stderr
    assert "checked with debsig-verify and gpgv" in proc.stdout
    assert f"OK  {DEB}" in proc.stdout


def test_genuine_release_passes_without_debsig_verify(
    keys: Keys, release: Path, tmp_path: Path
) -> None:
    proc = verify(keys.release.pubkey, release, PATH=path_without("debsig-verify", tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "debsigs origin signature checked with gpgv" in proc.stdout + proc.stderr


def test_without_rpmkeys_the_rpm_header_check_is_named_as_skipped(
    keys: Keys, release: Path, tmp_path: Path
) -> None:
    proc = verify(keys.release.pubkey, release, PATH=path_without("rpmkeys", tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert f"SKIPPED: {RPM} rpm header signature (rpmkeys not installed)" in proc.stderr


def test_pinned_fingerprint(keys: Keys, release: Path) -> None:
    ok = verify(keys.release.pubkey, release, RUSTRONAUT_RELEASE_FPR=keys.release.keyid)
    assert ok.returncode == 0, ok.stderr
    bad = verify(keys.intruder.pubkey, release, RUSTRONAUT_RELEASE_FPR=keys.release.keyid)
    assert_refused(bad, keys.intruder.pubkey.name, "fingerprint")


# --- every tamper is refused, naming the file -----------------------------------------


@pytest.mark.parametrize("name", [DEB, RPM])
def test_a_payload_byte(keys: Keys, release: Path, tmp_path: Path, name: str) -> None:
    rel = copy_release(release, tmp_path)
    flip_byte(rel / name, 0.8)
    assert_refused(verify(keys.release.pubkey, rel), name)


@pytest.mark.parametrize("name", [DEB, RPM])
def test_a_repacked_package(keys: Keys, release: Path, tmp_path: Path, name: str) -> None:
    rel = copy_release(release, tmp_path)
    (build_deb if name == DEB else build_rpm)(rel, EVIL)
    assert_refused(verify(keys.release.pubkey, rel), name)


@pytest.mark.parametrize("name", [DEB, RPM])
def test_a_stripped_detached_signature(
    keys: Keys, release: Path, tmp_path: Path, name: str
) -> None:
    rel = copy_release(release, tmp_path)
    (rel / f"{name}.asc").unlink()
    assert_refused(verify(keys.release.pubkey, rel), f"{name}.asc")


def test_a_stripped_debsigs_signature(keys: Keys, release: Path, tmp_path: Path) -> None:
    rel = copy_release(release, tmp_path)
    run(["ar", "d", str(rel / DEB), "_gpgorigin"])
    assert_refused(verify(keys.release.pubkey, rel), DEB)


def test_a_release_signed_by_another_key(keys: Keys, tmp_path: Path) -> None:
    rel = tmp_path / "release"
    rel.mkdir()
    build_deb(rel, EVIL)
    build_rpm(rel, EVIL)
    sign(rel, keys.intruder)
    assert_refused(verify(keys.release.pubkey, rel), "SHA256SUMS")


@pytest.mark.parametrize("name", [DEB, RPM])
@pytest.mark.parametrize("inner", ["missing", "wrong key"])
def test_embedded_signature_checked_on_its_own(
    keys: Keys, tmp_path: Path, name: str, inner: str
) -> None:
    """Even when the detached signatures and SHA256SUMS are good (a release pipeline
    that skipped or mis-keyed the embedded signature), the package's own signature — the
    one dpkg (debsig) and rpm check at install time — must be there and by the key."""
    rel = tmp_path / "release"
    rel.mkdir()
    pkg = (build_deb if name == DEB else build_rpm)(rel)
    if inner == "wrong key":
        embed_signature(pkg, keys.intruder)
    sign(rel, keys.release, embedded=False)
    for env in ({}, {"PATH": path_without("debsig-verify", tmp_path)}):
        proc = verify(keys.release.pubkey, rel, **env)
        assert_refused(proc, name)
        assert ("debsigs" if name == DEB else "rpm header signature") in proc.stderr


def test_a_repacked_deb_with_a_transplanted_debsigs_signature(keys: Keys, tmp_path: Path) -> None:
    """The genuine _gpgorigin moved into a re-packed .deb (outer layer re-signed by the
    release pipeline): the embedded signature no longer matches its members."""
    genuine = tmp_path / "genuine"
    genuine.mkdir()
    embed_signature(build_deb(genuine), keys.release)
    run(["ar", "x", str(genuine / DEB), "_gpgorigin"], cwd=genuine)
    rel = tmp_path / "release"
    rel.mkdir()
    evil = build_deb(rel, EVIL)
    run(["ar", "q", str(evil), str(genuine / "_gpgorigin")])
    sign(rel, keys.release, embedded=False)
    proc = verify(keys.release.pubkey, rel)
    assert_refused(proc, DEB, "debsigs origin signature")
    assert "BAD signature" in proc.stderr


def test_embedded_wrong_key_refused_by_debsig_verify_with_the_policy(
    keys: Keys, tmp_path: Path
) -> None:
    rel = tmp_path / "release"
    rel.mkdir()
    embed_signature(build_deb(rel), keys.intruder)
    sign(rel, keys.release, embedded=False)
    pol, kr = debsig_dirs(tmp_path, keys.release)
    proc = verify(
        keys.release.pubkey,
        rel,
        RUSTRONAUT_DEBSIG_POLICIES=str(pol),
        RUSTRONAUT_DEBSIG_KEYRINGS=str(kr),
    )
    assert_refused(proc, DEB, "debsig-verify")


# --- rpm: -K proves nothing; the documented check does --------------------------------


def test_rpm_checksig_exit_codes(keys: Keys, release: Path, tmp_path: Path) -> None:
    unsigned = build_rpm(tmp_path)
    wrong = tmp_path / "wrong.rpm"
    shutil.copy2(unsigned, wrong)
    embed_signature(wrong, keys.intruder)
    flipped = tmp_path / "flipped.rpm"
    shutil.copy2(release / RPM, flipped)
    flip_byte(flipped, 0.8)
    db = ["--dbpath", str(tmp_path / "rpmdb")]
    run(["rpmkeys", *db, "--import", str(keys.release.pubkey)])
    # The finding: plain rpm -K "passes" an unsigned package.
    assert run(["rpmkeys", *db, "-K", str(unsigned)]).stdout.strip().endswith("digests OK")
    expected = {release / RPM: 0, unsigned: 1, wrong: 1, flipped: 1}
    got = {p: run([*RPM_CHECKSIG, *db, str(p)], check=False).returncode for p in expected}
    assert got == expected
    good = run([*RPM_CHECKSIG, *db, str(release / RPM)]).stdout
    assert good.strip().endswith("digests signatures OK")
    documented = "rpmkeys --checksig --define '_pkgverify_level signature'"
    assert documented in docs_section("Verify before installing")


def docs_section(title: str) -> str:
    text = (ROOT / "docs" / "deployment.md").read_text()
    start = text.index(f"### {title}")
    end = re.search(r"\n##+ ", text[start + 4 :])
    return text[start : start + 4 + end.start() if end else None]


# --- dpkg's own debsig enforcement (mount namespace: the machine's /etc stays) --------


def in_namespace(script: str, binds: dict[Path, str]) -> subprocess.CompletedProcess[str]:
    """Run ``sh -c script`` in a private mount namespace with ``binds`` (host path ->
    path) bind-mounted; nothing is visible outside and all goes with the process."""
    need("unshare", "mount")
    mounts = "".join(f"mount --bind '{src}' '{dst}' && " for src, dst in binds.items())
    return run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", mounts + script], check=False
    )


@pytest.fixture
def debsig_binds(tmp_path: Path) -> dict[Path, str]:
    """Empty stand-ins for dpkg.cfg, debsig's policies and keyrings, bind-mounted over
    the real ones inside the namespace (dpkg.cfg starts as the stock file)."""
    cfg = tmp_path / "dpkg.cfg"
    shutil.copy2("/etc/dpkg/dpkg.cfg", cfg)
    pol, kr = tmp_path / "ns-policies", tmp_path / "ns-keyrings"
    pol.mkdir()
    kr.mkdir()
    return {
        cfg: "/etc/dpkg/dpkg.cfg",
        pol: "/etc/debsig/policies",
        kr: "/usr/share/debsig/keyrings",
    }


def dpkg_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for d in ("info", "updates", "triggers"):
        (root / "var/lib/dpkg" / d).mkdir(parents=True)
    (root / "var/lib/dpkg/status").touch()
    (root / "var/lib/dpkg/available").touch()
    return root


@pytest.mark.root
def test_dpkg_enforces_debsig_only_when_set_up(
    keys: Keys, release: Path, tmp_path: Path, debsig_binds: dict[Path, str]
) -> None:
    stripped = tmp_path / "stripped" / DEB
    stripped.parent.mkdir()
    build_deb(stripped.parent, EVIL)
    root = dpkg_root(tmp_path)
    # Stock Debian (no-debsig in dpkg.cfg): an unsigned package installs.
    stock = in_namespace(f"dpkg --root='{root}' -i '{stripped}'", debsig_binds)
    assert stock.returncode == 0, stock.stderr
    assert (root / "opt/rustronaut-probe/payload").read_text() == EVIL
    # Set up as documented (install-verified.sh --enforce-debsig), dpkg refuses it.
    root = dpkg_root(tmp_path / "second")
    wrong = tmp_path / "wrong" / DEB
    wrong.parent.mkdir()
    embed_signature(build_deb(wrong.parent, EVIL), keys.intruder)
    script = (
        f"bash '{INSTALL}' --enforce-debsig '{keys.release.pubkey}' && "
        f"! grep -qx no-debsig /etc/dpkg/dpkg.cfg && "
        f"for p in '{stripped}' '{wrong}'; do "
        f'  if dpkg --root=\'{root}\' -i "$p"; then echo INSTALLED "$p"; exit 9; fi; done; '
        f"dpkg --root='{root}' -i '{release / DEB}'"
    )
    proc = in_namespace(script, debsig_binds)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.count("verification on package") == 2
    assert (root / "opt/rustronaut-probe/payload").read_text() == GENUINE
    # The namespace's dpkg.cfg was edited, the machine's was not.
    cfg = next(src for src, dst in debsig_binds.items() if dst == "/etc/dpkg/dpkg.cfg")
    assert "no-debsig" not in re.findall(r"^\s*(no-debsig)\s*$", cfg.read_text(), re.M)
    assert re.search(r"^no-debsig\s*$", Path("/etc/dpkg/dpkg.cfg").read_text(), re.M)


# --- install-verified.sh ----------------------------------------------------------------


def install(
    key: Path,
    rel: Path,
    tmp_path: Path,
    root: Path,
    package: str = DEB,
    hook: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """install-verified.sh --root ROOT KEY REL PACKAGE, staging under tmp_path/staging."""
    env = {**os.environ, "RUSTRONAUT_STAGING_PARENT": str(tmp_path / "staging")}
    (tmp_path / "staging").mkdir(mode=0o755, exist_ok=True)
    if hook is not None:
        script = tmp_path / "hook.sh"
        script.write_text(hook)
        env["RUSTRONAUT_TEST_AFTER_VERIFY"] = str(script)
    argv = ["bash", str(INSTALL), "--root", str(root), str(key), str(rel), package]
    return run(argv, env=env, check=False)


@pytest.mark.root
def test_install_verified_installs_the_genuine_deb(
    keys: Keys, release: Path, tmp_path: Path
) -> None:
    rel = copy_release(release, tmp_path)
    root = dpkg_root(tmp_path)
    hook = 'stat -c "%U %a" "$1" > "$1/../seen"; ls "$1" > "$1/../listing"\n'
    proc = install(keys.release.pubkey, rel, tmp_path, root, hook=hook)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (root / "opt/rustronaut-probe/payload").read_text() == GENUINE
    # Verified in a fresh root-only staging directory, removed afterwards.
    assert (tmp_path / "staging/seen").read_text().split() == ["root", "700"]
    assert DEB in (tmp_path / "staging/listing").read_text().split()
    assert sorted(p.name for p in (tmp_path / "staging").iterdir()) == ["listing", "seen"]
    assert f"re-checked {DEB}" in proc.stdout


@pytest.mark.root
def test_install_verified_installs_the_rpm_with_rpm_root(
    keys: Keys, release: Path, tmp_path: Path
) -> None:
    rel = copy_release(release, tmp_path)
    root = tmp_path / "rpmroot"
    root.mkdir()
    proc = install(keys.release.pubkey, rel, tmp_path, root, RPM)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (root / "opt/rustronaut-probe/payload").read_text() == GENUINE


@pytest.mark.root
def test_a_package_swapped_after_verification_is_not_installed(
    keys: Keys, release: Path, tmp_path: Path
) -> None:
    """Finding: verify, then ``dpkg -i`` from the download directory installs whatever
    is there by then. The script installs its own verified copy."""
    rel = copy_release(release, tmp_path)
    evil = tmp_path / "evil"
    evil.mkdir()
    build_deb(evil, EVIL)
    root = dpkg_root(tmp_path)
    # The old procedure: verify.sh passes, the file is swapped, dpkg installs the swap.
    assert verify(keys.release.pubkey, rel).returncode == 0
    shutil.copy2(evil / DEB, rel / DEB)
    run(["dpkg", f"--root={root}", "-i", str(rel / DEB)])
    assert (root / "opt/rustronaut-probe/payload").read_text() == EVIL
    # The script: the swap in the download directory after verification changes nothing.
    rel = copy_release(release, tmp_path / "again")
    root = dpkg_root(tmp_path / "again")
    hook = f"cp '{evil / DEB}' '{rel / DEB}'\n"
    proc = install(keys.release.pubkey, rel, tmp_path, root, hook=hook)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (root / "opt/rustronaut-probe/payload").read_text() == GENUINE


@pytest.mark.root
def test_a_staged_package_changed_before_install_is_refused(
    keys: Keys, release: Path, tmp_path: Path
) -> None:
    rel = copy_release(release, tmp_path)
    evil = tmp_path / "evil"
    evil.mkdir()
    build_deb(evil, EVIL)
    root = dpkg_root(tmp_path)
    hook = f"cp '{evil / DEB}' \"$1/{DEB}\"\n"
    proc = install(keys.release.pubkey, rel, tmp_path, root, hook=hook)
    assert_refused(proc, DEB)
    assert not (root / "opt/rustronaut-probe").exists()
    assert list((tmp_path / "staging").iterdir()) == []


@pytest.mark.root
@pytest.mark.parametrize("tamper", ["payload byte", "wrong key"])
def test_install_verified_refuses_a_tampered_release(
    keys: Keys, release: Path, tmp_path: Path, tamper: str
) -> None:
    rel = copy_release(release, tmp_path)
    if tamper == "payload byte":
        flip_byte(rel / DEB, 0.8)
    else:
        build_deb(rel, EVIL)
        build_rpm(rel, EVIL)
        sign(rel, keys.intruder)
    root = dpkg_root(tmp_path)
    proc = install(keys.release.pubkey, rel, tmp_path, root)
    assert_refused(proc)
    assert not (root / "opt/rustronaut-probe").exists()
    assert list((tmp_path / "staging").iterdir()) == []


@pytest.mark.root
def test_install_verified_refuses_an_unsafe_staging_parent(
    keys: Keys, release: Path, tmp_path: Path
) -> None:
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging").chmod(0o777)
    proc = install(keys.release.pubkey, release, tmp_path, dpkg_root(tmp_path))
    assert proc.returncode == 2
    assert "staging" in proc.stderr


@pytest.mark.root
def test_install_verified_needs_root(keys: Keys, release: Path, tmp_path: Path) -> None:
    need("setpriv")
    # A copy the other account can read: the checkout may sit in a root-only directory
    # (CI clones into mktemp -d), and then bash would fail to open the script instead.
    shared = Path(tempfile.mkdtemp(prefix="rtiv"))
    try:
        shared.chmod(0o755)
        script = shared / INSTALL.name
        shutil.copy2(INSTALL, script)
        script.chmod(0o755)
        proc = run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "bash",
                str(script),
                str(keys.release.pubkey),
                str(release),
            ],
            check=False,
        )
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    assert proc.returncode == 2, proc.stderr
    assert "must run as root" in proc.stderr
