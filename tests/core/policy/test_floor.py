"""The anti-rollback floor survives restarts where the user cannot lower it quietly.

Real parts: the real OS keyring (run under ``scripts/with-keyring.sh``: a real Secret
Service) holds the floor's MAC key through ``SecretStore`` and the engine's
``KeyringFloorKey``; real files in a temporary data dir; the real ``PolicyStore`` with
its cache. Before issue 16 the floor was only the cached bundle, a user-writable file:
replacing it with an older, validly signed bundle rolled the policy back.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.auth import SecretStore
from core.engine.adapters import KeyringFloorKey
from core.policy.errors import RollbackError, RollbackFloorError
from core.policy.floor import FLOOR_FILE_NAME, FLOOR_KEY_NAME, RollbackFloor
from core.policy.store import PolicyStore
from core.wire.signing import key_id
from tests.core.policy.hostile import DEVICE, bundle_token

pytestmark = [pytest.mark.integration, pytest.mark.hostile_local_user]

KEY = Ed25519PrivateKey.generate()
KEYS = {key_id(KEY.public_key()): KEY.public_key()}


def _secret_service_problem() -> str | None:
    import keyring
    from keyring.backends import SecretService

    backend = keyring.get_keyring()
    chain = getattr(backend, "backends", [backend])
    if not any(isinstance(b, SecretService.Keyring) for b in chain):
        return "needs a real Secret Service (run under scripts/with-keyring.sh)"
    return None


@pytest.fixture
def secrets() -> Iterator[SecretStore]:
    problem = _secret_service_problem()
    if problem is not None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    store = SecretStore(service=f"rustronaut-test-{uuid.uuid4().hex}")
    yield store
    store.delete(FLOOR_KEY_NAME)


def floor(tmp: Path, secrets: SecretStore) -> RollbackFloor:
    return RollbackFloor(tmp / FLOOR_FILE_NAME, KeyringFloorKey(secrets))


def store(tmp: Path, secrets: SecretStore) -> PolicyStore:
    return PolicyStore(
        device_id=DEVICE,
        keys=KEYS,
        cache_path=tmp / "policy-bundle.json",
        floor=floor(tmp, secrets),
    )


def test_floor_round_trip_through_the_keyring(tmp_path: Path, secrets: SecretStore) -> None:
    assert floor(tmp_path, secrets).read(DEVICE) is None
    floor(tmp_path, secrets).advance(DEVICE, 7)
    assert secrets.get(FLOOR_KEY_NAME) is not None  # the key is in the real keyring
    assert floor(tmp_path, secrets).read(DEVICE) == 7
    assert (tmp_path / FLOOR_FILE_NAME).stat().st_mode & 0o777 == 0o600
    assert floor(tmp_path, secrets).read("another-device") is None


def test_an_older_cached_bundle_is_refused_after_restart(
    tmp_path: Path, secrets: SecretStore
) -> None:
    """The finding: the user swaps the cache for an older, validly signed bundle."""
    old = bundle_token(KEY, 3)
    first = store(tmp_path, secrets)
    first.update(old)
    saved_cache = (tmp_path / "policy-bundle.json").read_bytes()
    first.update(bundle_token(KEY, 5))

    (tmp_path / "policy-bundle.json").write_bytes(saved_cache)  # the rollback attempt
    restarted = store(tmp_path, secrets)
    with pytest.raises(RollbackError, match="older than the held version 5"):
        restarted.load_cache()
    with pytest.raises(RollbackError, match="older than the held version 5"):
        restarted.update(old)
    assert restarted.held is None


def test_a_lowered_floor_file_fails_its_mac(tmp_path: Path, secrets: SecretStore) -> None:
    store(tmp_path, secrets).update(bundle_token(KEY, 5))
    path = tmp_path / FLOOR_FILE_NAME
    record = json.loads(path.read_text())
    record["version"] = 1
    path.write_text(json.dumps(record))
    restarted = store(tmp_path, secrets)
    with pytest.raises(RollbackFloorError, match="integrity check"):
        restarted.update(bundle_token(KEY, 2))
    assert restarted.held is None
    assert json.loads(path.read_text())["version"] == 1  # never silently reset


def test_a_deleted_floor_file_is_refused_not_reset(tmp_path: Path, secrets: SecretStore) -> None:
    store(tmp_path, secrets).update(bundle_token(KEY, 5))
    (tmp_path / FLOOR_FILE_NAME).unlink()
    with pytest.raises(RollbackFloorError, match="missing"):
        store(tmp_path, secrets).update(bundle_token(KEY, 2))
    assert not (tmp_path / FLOOR_FILE_NAME).exists()


def test_a_floor_file_without_its_keyring_key_is_refused(
    tmp_path: Path, secrets: SecretStore
) -> None:
    store(tmp_path, secrets).update(bundle_token(KEY, 5))
    secrets.delete(FLOOR_KEY_NAME)
    with pytest.raises(RollbackFloorError, match="no key in the keyring"):
        store(tmp_path, secrets).update(bundle_token(KEY, 6))


def test_the_floor_never_goes_down(tmp_path: Path, secrets: SecretStore) -> None:
    f = floor(tmp_path, secrets)
    f.advance(DEVICE, 9)
    with pytest.raises(RollbackFloorError, match="refusing to lower"):
        f.advance(DEVICE, 8)
    assert floor(tmp_path, secrets).read(DEVICE) == 9


def test_a_floor_signed_under_another_key_is_refused(tmp_path: Path, secrets: SecretStore) -> None:
    """A record forged with a key the attacker chose does not verify under ours."""
    other = SecretStore(service=f"rustronaut-test-{uuid.uuid4().hex}")
    try:
        floor(tmp_path, other).advance(DEVICE, 1)
        secrets.set(FLOOR_KEY_NAME, "A" * 43)
        with pytest.raises(RollbackFloorError, match="integrity check"):
            floor(tmp_path, secrets).read(DEVICE)
    finally:
        other.delete(FLOOR_KEY_NAME)
