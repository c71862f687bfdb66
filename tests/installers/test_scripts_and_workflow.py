"""What can be checked here of the parts that run elsewhere: the macOS pkg scripts
(``bash -n``), the launchd plists (valid, pointing at the bundled helper), the
productbuild distribution and entitlements, and the release workflow (parses, builds
every target, names its signing secrets, each documented in docs/deployment.md).
"""

from __future__ import annotations

import importlib.util
import plistlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.fakes.installers import ROOT, run

pytestmark = pytest.mark.unit

MAC = ROOT / "installers" / "macos"
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
SHELL_SCRIPTS = [
    *sorted((ROOT / "installers").rglob("*.sh")),
    MAC / "scripts" / "preinstall",
    MAC / "scripts" / "postinstall",
    ROOT / "scripts" / "build-installers.sh",
]
SECRETS = {
    "RUSTRONAUT_GPG_PRIVATE_KEY",
    "RUSTRONAUT_GPG_PASSPHRASE",
    "RUSTRONAUT_GPG_KEY_ID",
    "WINDOWS_CERT_P12_BASE64",
    "WINDOWS_CERT_PASSWORD",
    "WINDOWS_TIMESTAMP_URL",
    "MACOS_APP_CERT_P12_BASE64",
    "MACOS_INSTALLER_CERT_P12_BASE64",
    "MACOS_CERT_PASSWORD",
    "MACOS_APP_IDENTITY",
    "MACOS_INSTALLER_IDENTITY",
    "APPLE_ID",
    "APPLE_TEAM_ID",
    "APPLE_NOTARY_PASSWORD",
}


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_scripts_parse(script: Path) -> None:
    assert script.stat().st_mode & 0o111, f"{script} is not executable"
    first = script.read_text().splitlines()[0]
    shell = "bash" if "bash" in first or script.suffix == ".sh" else "sh"
    run([shell, "-n", str(script)])


def test_bash_n_catches_a_broken_script(tmp_path: Path) -> None:
    """The check above can fail."""
    broken = tmp_path / "broken.sh"
    broken.write_text("if true; then\n  echo no fi\n")
    assert run(["bash", "-n", str(broken)], check=False).returncode != 0


def test_packaged_launchd_plist(tmp_path: Path) -> None:
    out = tmp_path / "com.rustronaut.helper.plist"
    run([sys.executable, str(MAC / "helper_plist.py"), str(out)])
    packaged = plistlib.loads(out.read_bytes())
    resource = plistlib.loads((ROOT / "resources/helper/com.rustronaut.helper.plist").read_bytes())
    assert packaged["Label"] == "com.rustronaut.helper"
    argv = packaged["ProgramArguments"]
    assert argv[0] == "/Applications/Rustronaut.app/Contents/MacOS/rustronaut-helper"
    assert argv[1:] == resource["ProgramArguments"][4:]
    assert "--group" in argv
    assert {k: v for k, v in packaged.items() if k != "ProgramArguments"} == {
        k: v for k, v in resource.items() if k != "ProgramArguments"
    }
    assert packaged["UserName"] == "root"
    assert packaged["KeepAlive"] is True


def test_launchd_plist_generator_refuses_an_unexpected_resource(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("helper_plist", MAC / "helper_plist.py")
    assert spec is not None
    assert spec.loader is not None
    helper_plist = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper_plist)  # a script of the installer, not a package
    odd = plistlib.dumps({"Label": "x", "ProgramArguments": ["/bin/false"]})
    with pytest.raises(ValueError, match="unexpected ProgramArguments"):
        helper_plist.packaged(odd)
    usage = subprocess.run(
        [sys.executable, str(MAC / "helper_plist.py")], capture_output=True, text=True
    )
    assert usage.returncode == 2


def test_entitlements_and_distribution() -> None:
    ents = plistlib.loads((MAC / "entitlements.plist").read_bytes())
    assert ents == {"com.apple.security.cs.allow-unsigned-executable-memory": True}
    dist = ET.parse(MAC / "distribution.xml").getroot()
    assert dist.tag == "installer-gui-script"
    refs = {e.get("id") for e in dist.iter("pkg-ref")}
    assert refs == {"com.rustronaut.client.pkg"}
    options = dist.find("options")
    assert options is not None
    assert options.get("hostArchitectures") == "x86_64,arm64"
    build = (MAC / "build-pkg.sh").read_text()
    assert "--identifier com.rustronaut.client.pkg" in build
    assert "rustronaut-component.pkg" in build
    for step in (
        "codesign",
        "--options runtime",
        "productbuild",
        "notarytool submit",
        "stapler staple",
    ):
        assert step in build, step


def test_bundle_id_is_the_managed_preferences_domain() -> None:
    from core.settings.managed.macos import DOMAIN

    assert f'bundle_identifier="{DOMAIN}"' in (ROOT / "build.spec").read_text()


def test_release_workflow_builds_every_target_and_signs() -> None:
    wf = yaml.safe_load(WORKFLOW.read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key "on" as True
    assert on["push"]["tags"] == ["v*"]
    jobs = wf["jobs"]
    linux = {e["arch"] for e in jobs["linux"]["strategy"]["matrix"]["include"]}
    macos = {e["arch"] for e in jobs["macos"]["strategy"]["matrix"]["include"]}
    assert linux == {"x86_64", "aarch64"}
    assert macos == {"x86_64", "arm64"}
    assert jobs["windows-bundle"]["runs-on"].startswith("windows")
    assert set(jobs["publish"]["needs"]) == {"linux", "repositories", "windows-installer", "macos"}
    # The signed apt and dnf repositories are built from the Linux packages (issue 19).
    repos = str(jobs["repositories"]["steps"])
    assert "installers/linux/repo-apt.sh" in repos
    assert "installers/linux/repo-yum.sh" in repos
    text = WORKFLOW.read_text()
    used = set(re.findall(r"secrets\.([A-Z0-9_]+)", text))
    assert used == SECRETS
    for step in (
        "installers/linux/sign.sh",
        "installers/linux/verify.sh",
        "installers/windows/build-installer.sh",
        "installers/macos/build-pkg.sh",
        "sha256sum",
        "SHA256SUMS.asc",
    ):
        assert step in text, step
    # Every artifact is uploaded, and the throwaway keychain/GnuPG home are cleaned up.
    uploads = [
        s for job in jobs.values() for s in job["steps"] if "upload-artifact" in str(s.get("uses"))
    ]
    assert len(uploads) == 5  # linux, repositories, windows bundle, windows installer, macos
    assert "gpgconf --kill gpg-agent" in text
    assert "security delete-keychain" in text


def test_every_secret_is_documented() -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for name in SECRETS:
        assert f"`{name}`" in guide, name
