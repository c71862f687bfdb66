"""The Windows installer: built with makensis from Linux, Authenticode-signed with
osslsigncode by a test CA made here, verified against that CA; a copy with one flipped
byte, or a check against another CA, fails.

No Windows build of the bundle exists on this machine, so the payload is a placeholder
tree made from the Linux bundle (its three executables renamed ``*.exe`` and its
``_internal``): what is tested is the installer's logic and signing, not Windows
binaries. The installer is built uncompressed here (seconds instead of ~1 min);
release.yml builds it with LZMA from the real Windows bundle. Its content is read back
with 7-Zip, which understands NSIS archives.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from core import __version__
from core.settings.managed.windows import POLICY_KEY
from tests.fakes.installers import ROOT, CodeSigning, make_ca, need, run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

WIN = ROOT / "installers" / "windows"
NSI = WIN / "rustronaut.nsi"


@pytest.fixture(scope="module")
def payload(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("winpayload")
    shutil.copytree(bundle_dir / "_internal", out / "_internal", symlinks=True)
    for exe in ("rustronaut", "rustronaut-tray", "rustronaut-helper"):
        shutil.copy(bundle_dir / exe, out / f"{exe}.exe")
    return out


@pytest.fixture(scope="module")
def signed_installer(
    payload: Path, code_signing: CodeSigning, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    need("makensis", "osslsigncode")
    out = tmp_path_factory.mktemp("win")
    env = {**code_signing.env(), "RUSTRONAUT_NSIS_COMPRESSION": "none"}
    proc = run(["bash", str(WIN / "build-installer.sh"), str(payload), str(out)], env=env)
    return Path(proc.stdout.strip().splitlines()[-1]), proc.stderr


def osslverify(exe: Path, ca: Path) -> tuple[int, str]:
    proc = run(["osslsigncode", "verify", "-CAfile", str(ca), "-in", str(exe)], check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_installer_is_built_and_signed(
    signed_installer: tuple[Path, str], code_signing: CodeSigning
) -> None:
    exe, log = signed_installer
    assert exe.name == f"rustronaut-{__version__}-windows-x86_64-setup.exe"
    assert exe.read_bytes()[:2] == b"MZ"
    code, out = osslverify(exe, code_signing.ca_pem)
    assert code == 0, out
    assert "Signature verification: ok" in out
    # The uninstaller was signed while being embedded (!uninstfinalize), then the installer.
    assert log.count("sign.sh: signed and verified") == 2, log


def test_one_flipped_byte_fails(
    signed_installer: tuple[Path, str], code_signing: CodeSigning, tmp_path: Path
) -> None:
    exe, _ = signed_installer
    bad = tmp_path / exe.name
    data = bytearray(exe.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    code, out = osslverify(bad, code_signing.ca_pem)
    assert code != 0
    assert "MISMATCH" in out or "failed" in out.lower()


def test_another_ca_does_not_verify(signed_installer: tuple[Path, str], tmp_path: Path) -> None:
    other = make_ca(tmp_path / "other", "Somebody Else")
    code, _ = osslverify(signed_installer[0], other.ca_pem)
    assert code != 0


def test_payload_and_uninstaller_inside(signed_installer: tuple[Path, str]) -> None:
    need("7zz")
    listing = run(["7zz", "l", str(signed_installer[0])]).stdout
    assert "SubType = NSIS-3 Unicode 64-bit" in listing
    for name in ("rustronaut-tray.exe", "rustronaut.exe", "rustronaut-helper.exe", "uninstall.exe"):
        assert re.search(rf"\s{re.escape(name)}$", listing, re.M), name
    assert "_internal/" in listing
    assert "$PLUGINSDIR/nsExec.dll" in listing


def test_unsigned_build_without_certificate(payload: Path, tmp_path: Path) -> None:
    need("makensis", "osslsigncode")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUSTRONAUT_WIN_")}
    env["RUSTRONAUT_NSIS_COMPRESSION"] = "none"
    proc = run(["bash", str(WIN / "build-installer.sh"), str(payload), str(tmp_path)], env=env)
    exe = Path(proc.stdout.strip().splitlines()[-1])
    extract = run(
        ["osslsigncode", "extract-signature", "-in", str(exe), "-out", str(tmp_path / "s")],
        check=False,
    )
    assert extract.returncode != 0  # no signature at all


def test_bad_payload_is_refused(tmp_path: Path) -> None:
    need("makensis")
    (tmp_path / "payload").mkdir()
    proc = run(
        ["bash", str(WIN / "build-installer.sh"), str(tmp_path / "payload"), str(tmp_path / "o")],
        check=False,
    )
    assert proc.returncode == 2
    assert "rustronaut-tray.exe" in proc.stderr
    no_defines = run(["makensis", "-V1", str(NSI)], check=False)
    assert no_defines.returncode != 0
    assert "define VERSION" in no_defines.stdout + no_defines.stderr


def test_sign_script_refuses_missing_certificate(tmp_path: Path) -> None:
    target = tmp_path / "x.exe"
    target.write_bytes(b"MZ")
    env = {**os.environ, "RUSTRONAUT_WIN_CERT_P12": str(tmp_path / "none.p12")}
    proc = run(["bash", str(WIN / "sign.sh"), str(target)], env=env, check=False)
    assert proc.returncode == 2
    assert target.read_bytes() == b"MZ"


# --- the script's contract (static; the installer cannot run on Linux) -------------


def test_script_installs_service_policy_key_and_silent_uninstall() -> None:
    text = NSI.read_text()
    # The policy key is the one the client's Windows settings reader uses.
    assert f'!define POLICY_KEY "{POLICY_KEY}"' in text
    assert 'WriteRegStr HKLM "${POLICY_KEY}" "" ""' in text
    # The helper service as resources/helper/windows-service.md describes it.
    assert '!define SERVICE "RustronautHelper"' in text
    assert "RustronautHelper" in (ROOT / "resources/helper/windows-service.md").read_text()
    assert 'sc.exe" create ${SERVICE}' in text
    assert "start= auto" in text
    assert 'sc.exe" delete ${SERVICE}' in text
    assert "!insertmacro StopHelper" in text.split('Section "Uninstall"')[1]
    # Upgrade: the helper is stopped before the first File command.
    main = text.split('Section "${APP}" SecMain')[1]
    assert main.index("!insertmacro StopHelper") < main.index("File /r")
    # Silent switches for Intune, documented in the script and the deployment guide.
    assert "QuietUninstallString" in text
    assert '"$INSTDIR\\uninstall.exe" /S' in text
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for switch in ("/S", "/D=", "/PURGE", "QuietUninstallString"):
        assert switch in guide, switch
    # The policy values are never deleted by the uninstaller.
    assert 'DeleteRegKey HKLM "${POLICY_KEY}"' not in text
