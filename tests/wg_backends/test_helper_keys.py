"""The helper's per-account WireGuard device keys: made on first use, 0600 in the helper's
own directory, never followed through a symlink, never replaced silently, never returned to
a caller (issue 16, Deliver 2)."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from tests.wg_backends.bundlekit import spec
from wg_backends.errors import SpecError
from wg_backends.helper.keys import (
    KEYS_DIR_NAME,
    DeviceKeyError,
    DeviceKeys,
    generate_private_key,
)

pytestmark = pytest.mark.unit


def _key_file(state: Path, uid: int) -> Path:
    return state / KEYS_DIR_NAME / f"uid-{uid}.key"


def test_a_key_is_made_once_per_account_and_kept(tmp_path: Path) -> None:
    keys = DeviceKeys(tmp_path)
    first = keys.public_key(1000)
    assert keys.public_key(1000) == first
    assert DeviceKeys(tmp_path).public_key(1000) == first  # survives a restart
    assert keys.public_key(1001) != first
    assert len(first) == 44
    assert first.endswith("=")


def test_the_file_is_private_and_in_wg_format(tmp_path: Path) -> None:
    pub = DeviceKeys(tmp_path).public_key(1000)
    path = _key_file(tmp_path, 1000)
    st = os.stat(path)
    assert st.st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    text = path.read_text()
    assert text.endswith("\n")
    assert len(text) == 45
    # The public key agrees with WireGuard's own tools.
    wg = subprocess.run(["wg", "pubkey"], input=text, capture_output=True, text=True, check=True)
    assert wg.stdout.strip() == pub
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_generated_keys_are_clamped_like_wg_genkey() -> None:
    import base64

    for _ in range(50):
        raw = base64.b64decode(generate_private_key())
        assert raw[0] & 7 == 0
        assert raw[31] & 128 == 0
        assert raw[31] & 64


def test_attach_adds_the_key_and_refuses_a_callers_key(tmp_path: Path) -> None:
    keys = DeviceKeys(tmp_path)
    attached = keys.attach(1000, spec())
    assert attached.private_key == _key_file(tmp_path, 1000).read_text().strip()
    with pytest.raises(SpecError, match="helper adds the device key"):
        keys.attach(1000, attached)


def test_the_private_key_is_never_a_public_answer(tmp_path: Path) -> None:
    keys = DeviceKeys(tmp_path)
    pub = keys.public_key(1000)
    private = _key_file(tmp_path, 1000).read_text().strip()
    assert pub != private
    public_api = [n for n in dir(keys) if not n.startswith("_")]
    assert sorted(public_api) == [
        "attach", "dir", "public_key", "relay_public_key", "store_relay_cert"
    ]  # fmt: skip


def test_concurrent_first_uses_agree_on_one_key(tmp_path: Path) -> None:
    results: list[str] = []
    stores = [DeviceKeys(tmp_path) for _ in range(8)]  # separate locks: the file system decides
    barrier = threading.Barrier(len(stores))

    def use(store: DeviceKeys) -> None:
        barrier.wait()
        results.append(store.public_key(4242))

    threads = [threading.Thread(target=use, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert len(results) == len(stores)


@pytest.mark.parametrize("owner", [-1, 2**32 - 1, True, 1.5, "", "alice", "S-1", "../uid-0"])
def test_bad_caller_identities(tmp_path: Path, owner: object) -> None:
    with pytest.raises(DeviceKeyError):
        DeviceKeys(tmp_path).public_key(owner)  # type: ignore[arg-type]


def test_a_windows_sid_has_its_own_key(tmp_path: Path) -> None:
    keys = DeviceKeys(tmp_path)
    sid = "S-1-5-21-1004336348-1177238915-682003330-1001"
    assert keys.public_key(sid) != keys.public_key(1001)
    assert (tmp_path / KEYS_DIR_NAME / f"sid-{sid}.key").exists()


def test_a_symlink_in_place_of_a_key_is_refused(tmp_path: Path) -> None:
    keys = DeviceKeys(tmp_path)
    keys.public_key(1)  # makes the directory
    target = tmp_path / "victim"
    target.write_text("x")
    _key_file(tmp_path, 1000).symlink_to(target)
    with pytest.raises(DeviceKeyError):
        keys.public_key(1000)
    assert target.read_text() == "x"


@pytest.mark.parametrize(
    ("content", "mode"),
    [
        (b"not a key\n", 0o600),
        (b"", 0o600),
        (b"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=", 0o600),  # no newline
        (b"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n", 0o644),  # readable by others
    ],
)
def test_a_damaged_key_is_refused_and_kept(tmp_path: Path, content: bytes, mode: int) -> None:
    keys = DeviceKeys(tmp_path)
    keys.public_key(1)
    path = _key_file(tmp_path, 1000)
    path.write_bytes(content)
    os.chmod(path, mode)
    with pytest.raises(DeviceKeyError):
        keys.public_key(1000)
    assert path.read_bytes() == content  # never replaced silently: the enrolled key


@pytest.mark.root
def test_a_key_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    keys = DeviceKeys(tmp_path)
    keys.public_key(1000)
    os.chown(_key_file(tmp_path, 1000), 1000, 1000)
    with pytest.raises(DeviceKeyError, match="owned by uid 1000"):
        keys.public_key(1000)


def test_a_group_writable_key_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEYS_DIR_NAME).mkdir(mode=0o700)
    os.chmod(tmp_path / KEYS_DIR_NAME, 0o770)
    with pytest.raises(DeviceKeyError, match="writable"):
        DeviceKeys(tmp_path).public_key(1000)


# ----- the relay key (issue 21) ---------------------------------------------------------


def _relay_cert(public_raw: bytes, *, ca_key: object | None = None) -> str:
    """A client certificate for ``public_raw`` signed by a throwaway CA (the real relay CA
    lives in the controller; the helper only checks the key binding)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.x509.oid import NameOID

    signer = ca_key if isinstance(ca_key, Ed25519PrivateKey) else Ed25519PrivateKey.generate()
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev-1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(Ed25519PublicKey.from_public_bytes(public_raw))
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .sign(signer, None)
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _raw(b64url: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(b64url + "=")


def test_a_relay_key_is_made_once_per_account_pem_0600_and_b64url(tmp_path: Path) -> None:
    import re

    keys = DeviceKeys(tmp_path)
    first = keys.relay_public_key(1000)
    assert re.fullmatch(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]", first)  # the enrolment pattern
    assert keys.relay_public_key(1000) == first
    assert DeviceKeys(tmp_path).relay_public_key(1000) == first  # survives a restart
    assert keys.relay_public_key(1001) != first
    path = tmp_path / KEYS_DIR_NAME / "uid-1000.relay"
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert os.stat(path).st_mode & 0o777 == 0o600
    # The WireGuard key is a different key in a different file.
    assert keys.public_key(1000) != first
    sid = "S-1-5-21-1-2-3-1001"
    keys.relay_public_key(sid)
    assert (tmp_path / KEYS_DIR_NAME / f"sid-{sid}.relay").exists()


def test_a_relay_key_behind_a_symlink_or_readable_by_others_is_refused(tmp_path: Path) -> None:
    keys = DeviceKeys(tmp_path)
    keys.relay_public_key(1000)
    path = tmp_path / KEYS_DIR_NAME / "uid-1000.relay"
    os.chmod(path, 0o644)
    with pytest.raises(DeviceKeyError, match="readable by others"):
        keys.relay_public_key(1000)
    os.chmod(path, 0o600)
    target = tmp_path / "elsewhere"
    target.write_bytes(path.read_bytes())
    os.chmod(target, 0o600)
    path.unlink()
    path.symlink_to(target)
    with pytest.raises(DeviceKeyError):
        keys.relay_public_key(1000)
    path.unlink()
    path.write_text("garbage\n")
    os.chmod(path, 0o600)
    with pytest.raises(DeviceKeyError, match="does not hold a key"):
        keys.relay_public_key(1000)  # never replaced silently: the enrolled key would change


def test_the_relay_certificate_must_be_for_the_callers_relay_key(tmp_path: Path) -> None:
    keys = DeviceKeys(tmp_path)
    mine = _raw(keys.relay_public_key(1000))
    other = _raw(keys.relay_public_key(1001))
    creds = keys.store_relay_cert(1000, _relay_cert(mine))
    assert creds.cert_file == tmp_path / KEYS_DIR_NAME / "uid-1000.relay.crt"
    assert creds.key_file == tmp_path / KEYS_DIR_NAME / "uid-1000.relay"
    assert os.stat(creds.cert_file).st_mode & 0o777 == 0o600
    with pytest.raises(DeviceKeyError, match="not for this account"):
        keys.store_relay_cert(1000, _relay_cert(other))  # another account's certificate
    with pytest.raises(DeviceKeyError, match="not a PEM"):
        keys.store_relay_cert(
            1000, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        )
    with pytest.raises(DeviceKeyError, match="too large"):
        keys.store_relay_cert(1000, "A" * 9000)
    with pytest.raises(DeviceKeyError, match="exactly one"):
        keys.store_relay_cert(1000, _relay_cert(mine) + _relay_cert(mine))
