"""PolicyStore: anti-rollback, held bundle untouched on refusal, 0600 cache, offline load."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import msgspec
import pytest

from core.policy.errors import (
    BundleExpiredError,
    BundleSignatureError,
    PolicyCacheError,
    RollbackError,
    WrongDeviceError,
)
from core.policy.store import PolicyStore, read_cache
from core.wire.policy import PolicyBundle
from tests.core.policy.helpers import DEVICE, KEYS, NOW, bundle, rule, token

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(tmp_path: Path, clock: Clock | None = None, cache: bool = True) -> PolicyStore:
    return PolicyStore(
        device_id=DEVICE,
        keys=KEYS,
        cache_path=tmp_path / "p" / "policy-bundle.json" if cache else None,
        clock=clock or Clock(),
    )


def test_update_holds_the_bundle_and_notifies(tmp_path: Path) -> None:
    store = make(tmp_path)
    seen: list[PolicyBundle | None] = []
    store.subscribe(seen.append)
    b = bundle(rule("r"), version=2)
    assert store.update(token(b)) is True
    assert store.current() == b
    assert store.version == 2
    assert seen == [b]
    assert store.update(token(b)) is False  # same token: idempotent, no event
    assert seen == [b]


def test_newer_replaces_older_is_refused_and_held_stays(tmp_path: Path) -> None:
    store = make(tmp_path)
    b3 = bundle(rule("r3"), version=3)
    store.update(token(b3))
    with pytest.raises(RollbackError):
        store.update(token(bundle(rule("r2"), version=2)))
    assert store.current() == b3
    b4 = bundle(rule("r4"), version=4)
    store.update(token(b4))
    assert store.current() == b4


def test_same_version_different_content_is_refused(tmp_path: Path) -> None:
    store = make(tmp_path)
    store.update(token(bundle(rule("a"), version=3)))
    with pytest.raises(RollbackError, match="same version"):
        store.update(token(bundle(rule("b"), version=3)))
    assert store.current().rules[0].id == "a"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("tok_fn", "error"),
    [
        (lambda: token(bundle(device_id="dev-9")), WrongDeviceError),
        (
            lambda: token(bundle(expires_at=int(NOW) - 1, issued_at=int(NOW) - 100)),
            BundleExpiredError,
        ),
        (lambda: "not.a.token", BundleSignatureError),
        (lambda: token(bundle(version=9))[:-4] + "AAAA", BundleSignatureError),
    ],
)
def test_refusal_leaves_everything_untouched(tmp_path: Path, tok_fn: object, error: type) -> None:
    store = make(tmp_path)
    good = bundle(rule("good"), version=5)
    store.update(token(good))
    before = store.cache_path.read_bytes()  # type: ignore[union-attr]
    seen: list[object] = []
    store.subscribe(seen.append)
    with pytest.raises(error):
        store.update(tok_fn())  # type: ignore[operator]
    assert store.current() == good
    assert store.cache_path.read_bytes() == before  # type: ignore[union-attr]
    assert seen == []


def test_cache_is_private_and_holds_the_token(tmp_path: Path) -> None:
    store = make(tmp_path)
    tok = token(bundle(version=2))
    store.update(tok)
    path = store.cache_path
    assert path is not None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    cached = read_cache(path)
    assert cached is not None
    assert cached.token == tok
    assert set(cached.keys) == set(KEYS)
    assert [p.name for p in path.parent.iterdir()] == ["policy-bundle.json"]  # no temp left


def test_offline_start_uses_cache_until_expiry(tmp_path: Path) -> None:
    clock = Clock()
    b = bundle(rule("r"), version=6)
    make(tmp_path, clock).update(token(b))
    offline = make(tmp_path, clock)
    assert offline.current() is None
    assert offline.load_cache() == b
    assert offline.current() == b
    clock.t = b.expires_at
    assert offline.current() is None  # expired: deny by default
    assert offline.held == b
    with pytest.raises(BundleExpiredError):
        make(tmp_path, clock).load_cache()  # an expired cache is never adopted


def test_tampered_cache_is_refused(tmp_path: Path) -> None:
    store = make(tmp_path)
    store.update(token(bundle(version=2)))
    path = store.cache_path
    assert path is not None
    data = msgspec.json.decode(path.read_bytes())
    head, _payload, sig = data["token"].split(".")
    other = token(bundle(rule("all", resources=("*",)), version=2)).split(".")[1]
    data["token"] = f"{head}.{other}.{sig}"
    path.write_bytes(msgspec.json.encode(data))
    with pytest.raises(BundleSignatureError):
        make(tmp_path).load_cache()


def test_garbage_cache_is_a_cache_error(tmp_path: Path) -> None:
    store = make(tmp_path)
    assert store.cache_path is not None
    store.cache_path.parent.mkdir(parents=True)
    store.cache_path.write_text("{nope")
    with pytest.raises(PolicyCacheError, match="malformed"):
        store.load_cache()
    assert store.current() is None


def test_missing_cache_is_none(tmp_path: Path) -> None:
    assert make(tmp_path).load_cache() is None
    assert make(tmp_path, cache=False).load_cache() is None


def test_cache_older_than_held_is_ignored(tmp_path: Path) -> None:
    store = make(tmp_path)
    store.update(token(bundle(version=2)))
    other = make(tmp_path / "other")
    other.update(token(bundle(rule("x"), version=8)))
    assert store.cache_path is not None
    assert other.cache_path is not None
    other.cache_path.write_bytes(store.cache_path.read_bytes())
    with pytest.raises(RollbackError):
        other.load_cache()
    assert other.version == 8


def test_clear_forgets_and_deletes_cache(tmp_path: Path) -> None:
    store = make(tmp_path)
    seen: list[object] = []
    store.subscribe(seen.append)
    store.update(token(bundle()))
    store.clear()
    store.clear()  # idempotent
    assert store.current() is None
    assert seen[-1] is None
    assert len(seen) == 2
    assert store.cache_path is not None
    assert not store.cache_path.exists()


def test_unwritable_cache_does_not_undo_a_valid_update(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = PolicyStore(
        device_id=DEVICE, keys=KEYS, cache_path=blocker / "sub" / "c.json", clock=Clock()
    )
    b = bundle(version=3)
    assert store.update(token(b)) is True
    assert store.current() == b


def test_broken_listener_does_not_break_update(tmp_path: Path) -> None:
    store = make(tmp_path)

    def boom(_: object) -> None:
        raise RuntimeError("listener bug")

    store.subscribe(boom)
    b = bundle(version=2)
    store.update(token(b))
    assert store.current() == b
