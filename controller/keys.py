"""Policy-bundle signing keys with rotation by ``kid``.

The key ring lives in one root-only JSON file (``signing-keys.json`` in the keys
directory): the current Ed25519 key and up to ``KEEP_PREVIOUS`` previous ones. Bundles are
signed with the current key; discovery publishes all of them, so clients holding a
bundle signed just before a rotation still verify it. ``rotate()`` is atomic on disk, and
every instance sharing the keys directory picks a rotation up (the file is re-read when
its modification time changes), so several instances behind a load balancer agree.

**Policy root.** Clients trust no key from discovery by itself: their trust anchor is the
organisation's policy *root* key (setting ``policy_trust_anchors``). The reference
controller keeps an offline-style root in ``policy-root.json`` (0600) beside the ring —
in production it would live offline and only its endorsements would be copied here —
and publishes, for each signing key, an endorsement signed by the root
(``core.wire.endorsement``; valid :data:`ENDORSEMENT_DAYS` days, renewed 30 days before
the end). Rotating the signing key therefore needs no client change. Rotating the root
is an endorsement of the new root (``role: "root"``) signed by the old one, published
beside the others (:meth:`SigningKeyRing.add_endorsement`); ``rustronaut-controller``
does not automate it yet.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.controlplane.models import Jwk, Jwks
from core.wire.endorsement import endorse
from core.wire.signing import b64url, b64url_decode, jwk_from_public_key, key_id

__all__ = ["ENDORSEMENT_DAYS", "KEEP_PREVIOUS", "ROOT_FILE", "SigningKeyRing"]

KEEP_PREVIOUS = 2
ENDORSEMENT_DAYS = 400
_FILE = "signing-keys.json"
ROOT_FILE = "policy-root.json"
_RENEW_S = 30 * 86400


def _raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


class SigningKeyRing:
    """The current signing key plus previous ones. Thread-safe."""

    def __init__(
        self,
        keys: list[Ed25519PrivateKey],
        path: Path | None = None,
        *,
        root: Ed25519PrivateKey | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._keys = list(keys)
        self._path = path
        self.root = root or Ed25519PrivateKey.generate()
        self._clock = clock
        self._endorsed: dict[str, tuple[int, str]] = {}  # kid -> (not_after, token)
        self._extra: list[str] = []
        self._lock = threading.Lock()
        self._mtime = self._stat()

    def _stat(self) -> int | None:
        try:
            return None if self._path is None else self._path.stat().st_mtime_ns
        except OSError:
            return None

    def _refresh(self) -> None:
        """Re-read the file if another instance rotated the keys."""
        mtime = self._stat()
        if mtime is None or mtime == self._mtime or self._path is None:
            return
        try:
            self._keys = _read(self._path)
            self._mtime = mtime
        except (OSError, ValueError, KeyError):
            return  # keep the keys we have; a half-written file is never used

    @classmethod
    def load_or_create(cls, keys_dir: Path) -> SigningKeyRing:
        """Load the ring from ``keys_dir``, creating a first key if none exists."""
        path = keys_dir / _FILE
        root = _load_or_create_root(keys_dir / ROOT_FILE)
        if path.exists():
            return cls(_read(path), path, root=root)
        ring = cls([Ed25519PrivateKey.generate()], path, root=root)
        ring._save()
        return ring

    @classmethod
    def ephemeral(cls) -> SigningKeyRing:
        """An in-memory ring with a fresh key (tests)."""
        return cls([Ed25519PrivateKey.generate()])

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"keys": [b64url(_raw_private(k)) for k in self._keys]}, fh)
        tmp.replace(self._path)
        self._mtime = self._stat()

    @property
    def current(self) -> tuple[str, Ed25519PrivateKey]:
        """``(kid, key)`` of the key that signs new bundles."""
        with self._lock:
            self._refresh()
            key = self._keys[0]
        return key_id(key.public_key()), key

    def rotate(self) -> str:
        """Make a fresh key current, keep ``KEEP_PREVIOUS`` old ones; returns the new kid."""
        with self._lock:
            self._refresh()
            self._keys = [Ed25519PrivateKey.generate(), *self._keys][: KEEP_PREVIOUS + 1]
            self._save()
            return key_id(self._keys[0].public_key())

    def root_public(self) -> str:
        """The root's public key as clients configure it (``policy_trust_anchors``):
        base64url of the raw 32 bytes."""
        return b64url(self.root.public_key().public_bytes_raw())

    def root_jwks(self) -> list[Jwk]:
        """The root as the discovery document's ``policy_roots`` (first-use pins only)."""
        return [Jwk(**jwk_from_public_key(self.root.public_key()))]  # type: ignore[arg-type]

    def add_endorsement(self, token: str) -> None:
        """Publish an extra endorsement (a root rotation signed by the previous root)."""
        with self._lock:
            self._extra.append(token)

    def endorsements(self) -> list[str]:
        """The root's endorsement of each signing key (current first), then any extra
        ones; made on first need and renewed :data:`_RENEW_S` before they end."""
        with self._lock:
            self._refresh()
            keys = list(self._keys)
            now = int(self._clock())
            out: list[str] = []
            for key in keys:
                pub = key.public_key()
                kid = key_id(pub)
                held = self._endorsed.get(kid)
                if held is None or held[0] - now < _RENEW_S:
                    not_after = now + ENDORSEMENT_DAYS * 86400
                    token = endorse(pub, self.root, not_before=now - 86400, not_after=not_after)
                    held = self._endorsed[kid] = (not_after, token)
                out.append(held[1])
            return out + self._extra

    def jwks(self) -> Jwks:
        """Public keys, current first, as the discovery document's ``policy_keys``."""
        with self._lock:
            self._refresh()
            keys = list(self._keys)
        return Jwks(keys=[Jwk(**jwk_from_public_key(k.public_key())) for k in keys])  # type: ignore[arg-type]


def _load_or_create_root(path: Path) -> Ed25519PrivateKey:
    """The policy root in ``path`` (0600), made on first start."""
    if path.exists():
        data = json.loads(path.read_text())
        return Ed25519PrivateKey.from_private_bytes(b64url_decode(data["root"]))
    root = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"root": b64url(_raw_private(root))}, fh)
    tmp.replace(path)
    return root


def _read(path: Path) -> list[Ed25519PrivateKey]:
    data = json.loads(path.read_text())
    keys = [Ed25519PrivateKey.from_private_bytes(b64url_decode(k)) for k in data["keys"]]
    if not keys:
        raise ValueError(f"{path} holds no keys")
    return keys
