"""SecretStore against a real Secret Service, and the refusals when none is usable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from core.auth import (
    DEVICE_SIGNING_KEY,
    TOKENS,
    WIREGUARD_PRIVATE_KEY,
    IdTokenClaims,
    NoSecretStoreError,
    OidcClient,
    OidcConfig,
    SecretStore,
    SecretStoreError,
    Session,
    TokenSet,
)
from tests.core.auth.conftest import ROOT, MemoryKeyring, NotViable

pytestmark = pytest.mark.integration

SERVICE = "rustronaut-test"  # never touch a real "rustronaut" entry of the user


@pytest.fixture
def real_store(secret_service: None) -> SecretStore:
    store = SecretStore(service=SERVICE)
    yield store
    for name in ("a", TOKENS, WIREGUARD_PRIVATE_KEY, DEVICE_SIGNING_KEY):
        store.delete(name)


def _read_from_another_process(service: str, name: str) -> str:
    code = "import keyring,sys; print(keyring.get_password(sys.argv[1], sys.argv[2]))"
    out = subprocess.run(
        [sys.executable, "-c", code, service, name], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_real_secret_service_roundtrip(real_store: SecretStore) -> None:
    assert real_store.available()
    assert real_store.get("a") is None
    real_store.set("a", "first")
    real_store.set("a", "second ✓ with\nnewline")  # replace, any text
    assert real_store.get("a") == "second ✓ with\nnewline"
    assert _read_from_another_process(SERVICE, "a") == "second ✓ with\nnewline"
    real_store.delete("a")
    real_store.delete("a")  # idempotent
    assert real_store.get("a") is None
    assert _read_from_another_process(SERVICE, "a") == "None"


def test_real_secret_service_holds_device_keys(real_store: SecretStore) -> None:
    """The enrollment code keeps the WireGuard and Ed25519 private keys here."""
    import base64

    wg = base64.b64encode(os.urandom(32)).decode()
    ed = base64.b64encode(os.urandom(32)).decode()
    real_store.set(WIREGUARD_PRIVATE_KEY, wg)
    real_store.set(DEVICE_SIGNING_KEY, ed)
    assert real_store.get(WIREGUARD_PRIVATE_KEY) == wg
    assert real_store.get(DEVICE_SIGNING_KEY) == ed


async def test_session_tokens_survive_in_the_real_keyring(real_store: SecretStore) -> None:
    tokens = TokenSet(
        issuer="http://127.0.0.1:9",
        client_id="c",
        access_token="at",
        token_type="Bearer",
        expires_at=4_000_000_000,
        identity=IdTokenClaims(sub="alice", iss="http://127.0.0.1:9", aud=("c",), exp=1, iat=1),
        refresh_token="rt",
    )
    real_store.set(TOKENS, tokens.to_json().decode())
    client = OidcClient(OidcConfig(issuer="http://127.0.0.1:9", client_id="c"))
    try:
        session = Session(client, real_store)
        assert await session.load() == tokens
        assert session.identity is not None
        assert session.identity.sub == "alice"
        # Logout against an unreachable provider still clears the keyring.
        assert await session.logout() is False
        assert real_store.get(TOKENS) is None
    finally:
        await client.aclose()


def test_no_dbus_session_means_no_secret_store_and_no_file(tmp_path: Path) -> None:
    """Without any keyring service the store refuses plainly and writes no file."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
    }
    (tmp_path / "run").mkdir(mode=0o700)
    code = (
        "from core.auth import SecretStore, NoSecretStoreError\n"
        "s = SecretStore()\n"
        "print(s.available())\n"
        "try:\n"
        "    s.set('wireguard-private-key', 'SECRET-VALUE')\n"
        "except NoSecretStoreError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "False"
    assert "Cannot store secrets safely" in lines[1]
    assert "never written to plain files" in lines[1]
    assert "Secret Service" in lines[1]  # the next step names what to install
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(b"SECRET-VALUE" in p.read_bytes() for p in files)


class PlaintextKeyring(KeyringBackend):
    """Stands in for keyrings.alt.file.PlaintextKeyring (not installed here)."""

    priority = NotViable()  # type: ignore[assignment]
    calls = 0

    def get_password(self, service: str, username: str) -> str | None:
        type(self).calls += 1
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        type(self).calls += 1

    def delete_password(self, service: str, username: str) -> None:
        type(self).calls += 1


PlaintextKeyring.__module__ = "keyrings.alt.file"


@pytest.mark.parametrize(
    "backend",
    [
        fail.Keyring(),
        null.Keyring(),
        PlaintextKeyring(),
    ],
    ids=["fail", "null", "keyrings.alt-plaintext"],
)
def test_insecure_or_missing_backends_are_refused(backend: KeyringBackend) -> None:
    store = SecretStore(backend=backend)
    assert not store.available()
    for call in (lambda: store.get("x"), lambda: store.set("x", "v"), lambda: store.delete("x")):
        with pytest.raises(NoSecretStoreError) as err:
            call()
        assert "plain files" in err.value.message
    assert PlaintextKeyring.calls == 0


def test_empty_chain_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chainer.ChainerBackend, "backends", property(lambda self: []))
    store = SecretStore(backend=chainer.ChainerBackend())
    assert not store.available()
    with pytest.raises(NoSecretStoreError):
        store.set("x", "v")


def test_chain_with_a_plaintext_fallback_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = chainer.ChainerBackend()
    monkeypatch.setattr(
        chainer.ChainerBackend,
        "backends",
        property(lambda self: [MemoryKeyring(), PlaintextKeyring()]),
    )
    with pytest.raises(NoSecretStoreError) as err:
        SecretStore(backend=chain).set("x", "v")
    assert "file" in err.value.message


class LockedKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("locked")


def test_locked_keyring_is_a_clear_error() -> None:
    store = SecretStore(backend=LockedKeyring())
    with pytest.raises(SecretStoreError) as err:
        store.set("x", "secret-value")
    assert "locked" in err.value.message
    assert "secret-value" not in str(err.value)
    assert "Unlock" in err.value.next_step


@pytest.mark.parametrize("name", ["", "a\nb", "x" * 200])
def test_bad_secret_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid secret name"):
        SecretStore(backend=MemoryKeyring()).set(name, "v")


async def test_login_refuses_before_the_browser_when_no_store() -> None:
    opened: list[str] = []
    client = OidcClient(
        OidcConfig(issuer="http://127.0.0.1:9", client_id="c"), open_url=opened.append
    )
    try:
        session = Session(client, SecretStore(backend=fail.Keyring()))
        with pytest.raises(NoSecretStoreError):
            await session.login_browser()
        with pytest.raises(NoSecretStoreError):
            await session.login_device(lambda *a: None)
    finally:
        await client.aclose()
    assert opened == []
