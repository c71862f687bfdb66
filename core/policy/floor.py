"""The anti-rollback floor: the highest bundle version accepted, kept where it cannot be
lowered quietly.

The floor lives in a small file in the data dir (``policy-floor.json``, 0600) and is
authenticated with HMAC-SHA256 under a random 32-byte key kept in the OS keyring (item
:data:`FLOOR_KEY_NAME`; the caller supplies access to it, see :class:`KeyAccess`). The
key is created with the first floor written, so:

============================  ==========================================================
key absent, file absent        no floor yet (a new device)
key absent, file present       refused: the file cannot be authenticated
key present, file absent       refused: the floor was written before and is gone
key present, file present      the MAC must verify and name this device
============================  ==========================================================

Every refusal is ``RollbackFloorError`` with the reason; nothing resets the floor
silently (an administrator removes both the file and the keyring item to start over).
The floor only rises: ``advance`` to a lower version is refused. What the MAC cannot
stop is the replay of an older copy of the file made by the same user, who can read the
keyring anyway; the floor is a guard against files altered without the keyring, not
against the account's owner.

File: ``{"v": 1, "device_id": "...", "version": N, "mac": "<base64url>"}`` with the MAC
over ``rustronaut-policy-floor-v1\\0`` + the canonical JSON of ``{"v", "device_id",
"version"}``. Not thread-safe: one thread (the engine's loop).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import tempfile
from pathlib import Path
from typing import Annotated, Final, Protocol

import msgspec
from msgspec import Meta

from core.policy.errors import RollbackFloorError
from core.wire.signing import b64url, b64url_decode

__all__ = ["FLOOR_FILE_NAME", "FLOOR_KEY_NAME", "KeyAccess", "RollbackFloor"]

FLOOR_FILE_NAME: Final = "policy-floor.json"
FLOOR_KEY_NAME: Final = "policy-floor-key"
"""Name of the keyring item holding the floor's MAC key (base64url of 32 bytes)."""
_DOMAIN = b"rustronaut-policy-floor-v1\0"


class KeyAccess(Protocol):
    """Reads and creates the floor's MAC key (the engine backs it with the keyring).

    ``get`` returns the key or None when absent; ``create`` stores a new one. Both raise
    on a keyring failure (locked, none), which the floor reports as
    ``RollbackFloorError``.
    """

    def get(self) -> bytes | None: ...

    def create(self, key: bytes) -> None: ...


class _Signed(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    device_id: Annotated[str, Meta(min_length=1, max_length=64)]
    version: Annotated[int, Meta(ge=1, le=2**53)]
    v: int = 1


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    device_id: Annotated[str, Meta(min_length=1, max_length=64)]
    version: Annotated[int, Meta(ge=1, le=2**53)]
    mac: Annotated[str, Meta(min_length=43, max_length=43)]
    v: int = 1


def _mac(key: bytes, device_id: str, version: int) -> bytes:
    body = msgspec.json.encode(_Signed(device_id=device_id, version=version))
    return hmac.new(key, _DOMAIN + body, hashlib.sha256).digest()


class RollbackFloor:
    """The floor for one device at ``path``, authenticated with ``keys``."""

    def __init__(self, path: Path, keys: KeyAccess) -> None:
        self.path = path
        self._keys = keys
        self._key: bytes | None = None
        self._cached: tuple[str, int] | None = None

    def _get_key(self) -> bytes | None:
        if self._key is None:
            try:
                self._key = self._keys.get()
            except Exception as exc:
                raise RollbackFloorError(
                    f"the keyring holding the policy version key is unavailable: {exc}"
                ) from None
        return self._key

    def read(self, device_id: str) -> int | None:
        """The floor for ``device_id`` (None: no floor yet). Raises ``RollbackFloorError``
        when the record cannot be trusted (see the module docstring)."""
        if self._cached is not None and self._cached[0] == device_id:
            return self._cached[1]
        key = self._get_key()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            if key is None:
                return None
            raise RollbackFloorError(
                f"the policy version record {self.path} is missing although one was written "
                "on this device (refused rather than starting over)"
            ) from None
        except OSError as exc:
            raise RollbackFloorError(
                f"cannot read the policy version record {self.path}: {exc}"
            ) from None
        if key is None:
            raise RollbackFloorError(
                f"the policy version record {self.path} has no key in the keyring to verify it with"
            )
        try:
            record = msgspec.json.decode(data[:4096], type=_File)
            mac = b64url_decode(record.mac)
        except (msgspec.DecodeError, ValueError):
            raise RollbackFloorError(
                f"the policy version record {self.path} is malformed"
            ) from None
        if not hmac.compare_digest(mac, _mac(key, record.device_id, record.version)):
            raise RollbackFloorError(
                f"the policy version record {self.path} fails its integrity check (it was "
                "changed outside Rustronaut)"
            )
        if record.device_id != device_id:
            return None  # a record of a previous enrollment: no floor for this device
        self._cached = (device_id, record.version)
        return record.version

    def advance(self, device_id: str, version: int) -> None:
        """Raise the floor to ``version``; a no-op if it is already there. Raises
        ``RollbackFloorError`` if the floor is higher (it never goes down) or cannot be
        stored. Writes atomically (0600)."""
        current = self.read(device_id)
        if current is not None and version < current:
            raise RollbackFloorError(
                f"refusing to lower the policy version floor from {current} to {version}"
            )
        if current == version:
            return
        key = self._get_key()
        if key is None:
            key = os.urandom(32)
            try:
                self._keys.create(key)
            except Exception as exc:
                raise RollbackFloorError(
                    f"cannot store the policy version key in the keyring: {exc}"
                ) from None
            self._key = key
        record = _File(
            device_id=device_id, version=version, mac=b64url(_mac(key, device_id, version))
        )
        _write_atomic(self.path, msgspec.json.encode(record))
        self._cached = (device_id, version)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".floor-", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
