"""The device's WireGuard private keys, kept by the helper and never handed to a caller.

When the helper builds a tunnel from a signed bundle (issue 16) the caller supplies no
key: the helper adds its own, one per caller account, so a user cannot bring up a tunnel
with a key of his choosing and no process of the user ever holds the key. The engine
enrolls the device with the **public** key (``hello`` answers it).

Layout: ``<state_dir>/keys/`` (0700, owned by the helper's user, no symlink), one file a
caller, ``uid-<n>.key`` (Unix) or ``sid-<S-1-...>.key`` (Windows), holding the key as
``wg genkey`` writes it (base64 of 32 clamped bytes and a newline), mode 0600.

- Made on first use with ``os.urandom`` and X25519 clamping (what ``wg genkey`` does),
  written to a unique temporary file, fsynced, then *linked* to its name: exactly one
  key wins when two requests race, and a half-written key is never seen.
- Read without following symlinks; a file that is not a regular file, is not owned by
  the helper's user, is readable by anyone else or does not hold a valid key is refused
  with :class:`DeviceKeyError` (never replaced silently: the enrolled key would change).

Thread-safe (a lock per store; the file system arbitrates between processes).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import stat
import tempfile
import threading
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from wg_backends.errors import SpecError, WgError
from wg_backends.render import check_private_dir
from wg_backends.spec import TunnelSpec, validate_key

__all__ = ["KEYS_DIR_NAME", "DeviceKeyError", "DeviceKeys", "Owner", "generate_private_key"]

KEYS_DIR_NAME: Final = "keys"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_MAX_UID = 2**32 - 2  # (uid_t)-1 means "no user"
_SID = re.compile(r"S-1(-[0-9]{1,10}){1,15}")
_KEY_FILE_SIZE = 45  # 44 characters of base64 and a newline

Owner = int | str
"""Whose key: a Unix uid, or a Windows SID string."""


class DeviceKeyError(WgError):
    """The stored device key cannot be used (wrong owner or mode, not a key, I/O)."""

    title = "The Rustronaut helper's device key cannot be used"
    next_step = "Contact IT: the helper's state directory needs attention."
    code = "internal"  # the helper's own state is broken: answered as an internal error


def generate_private_key() -> str:
    """A new WireGuard private key, as ``wg genkey`` prints it (base64, 44 characters)."""
    raw = bytearray(os.urandom(32))
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return base64.b64encode(bytes(raw)).decode("ascii")


def _public_of(private: str) -> str:
    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def _file_name(owner: Owner) -> str:
    if isinstance(owner, bool) or not isinstance(owner, int | str):
        raise DeviceKeyError(f"not a caller identity: {owner!r}")
    if isinstance(owner, int):
        if not 0 <= owner <= _MAX_UID:
            raise DeviceKeyError(f"not a uid: {owner}")
        return f"uid-{owner}.key"
    if not _SID.fullmatch(owner):
        raise DeviceKeyError("not a Windows SID")
    return f"sid-{owner}.key"


class DeviceKeys:
    """The helper's per-caller WireGuard keys under ``<state_dir>/keys``.

    :meth:`public_key` is what a caller may learn; :meth:`attach` returns a spec carrying
    the caller's private key for the backend. No method returns the private key itself.
    """

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / KEYS_DIR_NAME
        self._lock = threading.Lock()

    def public_key(self, owner: Owner) -> str:
        """The caller's WireGuard public key (base64), its key made on first use.

        Raises :class:`DeviceKeyError`.
        """
        return _public_of(self._private(owner))

    def attach(self, owner: Owner, spec: TunnelSpec) -> TunnelSpec:
        """``spec`` with the caller's private key (made on first use). A spec that
        already carries a key is refused (``SpecError``): a bundle never carries one, and
        the caller's own key is not taken. Raises :class:`DeviceKeyError` too."""
        if spec.private_key is not None:
            raise SpecError("private_key: the helper adds the device key; the spec must not")
        return spec.with_private_key(self._private(owner))

    # -- internals ---------------------------------------------------------------------

    def _private(self, owner: Owner) -> str:
        name = _file_name(owner)
        with self._lock:
            try:
                check_private_dir(self.dir)
            except OSError as exc:
                raise DeviceKeyError(f"key directory {self.dir}: {exc}") from None
            path = self.dir / name
            key = self._read(path)
            if key is None:
                key = self._create(path)
            return key

    def _read(self, path: Path) -> str | None:
        try:
            fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:  # ELOOP: a symlink put in its place
            raise DeviceKeyError(f"device key {path.name}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise DeviceKeyError(f"device key {path.name} is not a regular file")
            if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
                raise DeviceKeyError(f"device key {path.name} is owned by uid {st.st_uid}")
            if os.name == "posix" and st.st_mode & 0o077:
                raise DeviceKeyError(f"device key {path.name} is readable by others")
            data = fh.read(_KEY_FILE_SIZE + 1)
        try:
            text = data.decode("ascii")
            if not text.endswith("\n") or len(text) != _KEY_FILE_SIZE:
                raise ValueError
            return validate_key("private_key", text[:-1])
        except (ValueError, SpecError):
            raise DeviceKeyError(f"device key {path.name} does not hold a key") from None

    def _create(self, path: Path) -> str:
        key = generate_private_key()
        fd, tmp = tempfile.mkstemp(prefix=".key-", dir=self.dir)  # 0600, O_EXCL
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(f"{key}\n".encode("ascii"))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # fails if the name exists: one key wins a race
            except FileExistsError:
                existing = self._read(path)
                if existing is None:  # pragma: no cover - removed between link and read
                    raise DeviceKeyError(f"device key {path.name} vanished") from None
                return existing
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        with contextlib.suppress(OSError):  # the link is durable once the directory is
            dir_fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return key
