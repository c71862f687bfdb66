"""The device's WireGuard private keys, kept by the helper and never handed to a caller.

When the helper builds a tunnel from a signed bundle (issue 16) the caller supplies no
key: the helper adds its own, one per caller account, so a user cannot bring up a tunnel
with a key of his choosing and no process of the user ever holds the key. The engine
enrolls the device with the **public** key (``hello`` answers it).

Layout: ``<state_dir>/keys/`` (0700, owned by the helper's user, no symlink), one file a
caller, ``uid-<n>.key`` (Unix) or ``sid-<S-1-...>.key`` (Windows), holding the key as
``wg genkey`` writes it (base64 of 32 clamped bytes and a newline), mode 0600.

Issue 21: a second key per caller, the **relay key** (Ed25519), ``uid-<n>.relay`` /
``sid-<...>.relay`` (PKCS8 PEM, 0600, same rules), whose public half the engine registers
with the controller (:meth:`DeviceKeys.relay_public_key`, b64url of the 32 raw bytes).
The client certificate the controller issues for it is stored next to it
(``uid-<n>.relay.crt``, 0600) by :meth:`DeviceKeys.store_relay_cert`, because
``ssl.SSLContext.load_cert_chain`` only reads files.

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
from collections.abc import Callable
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from wg_backends.errors import SpecError, WgError
from wg_backends.render import check_private_dir, write_private_file
from wg_backends.spec import TunnelSpec, validate_key

__all__ = [
    "KEYS_DIR_NAME",
    "MAX_RELAY_CERT",
    "DeviceKeyError",
    "DeviceKeys",
    "Owner",
    "RelayCredentials",
    "generate_private_key",
]

KEYS_DIR_NAME: Final = "keys"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_MAX_UID = 2**32 - 2  # (uid_t)-1 means "no user"
_SID = re.compile(r"S-1(-[0-9]{1,10}){1,15}")
_KEY_FILE_SIZE = 45  # 44 characters of base64 and a newline
_RELAY_FILE_MAX = 512  # an Ed25519 PKCS8 PEM is 119 bytes
#: Largest relay client certificate (PEM) the helper takes.
MAX_RELAY_CERT: Final = 8192

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


def _file_name(owner: Owner, suffix: str = ".key") -> str:
    if isinstance(owner, bool) or not isinstance(owner, int | str):
        raise DeviceKeyError(f"not a caller identity: {owner!r}")
    if isinstance(owner, int):
        if not 0 <= owner <= _MAX_UID:
            raise DeviceKeyError(f"not a uid: {owner}")
        return f"uid-{owner}{suffix}"
    if not _SID.fullmatch(owner):
        raise DeviceKeyError("not a Windows SID")
    return f"sid-{owner}{suffix}"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _parse_wg_key(data: bytes) -> str:
    text = data.decode("ascii")
    if not text.endswith("\n") or len(text) != _KEY_FILE_SIZE:
        raise ValueError("not a key file")
    return validate_key("private_key", text[:-1])


def _parse_relay_key(data: bytes) -> str:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 key")
    return data.decode("ascii")


def _new_relay_key() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode("ascii")
    )


class RelayCredentials:
    """Paths of a caller's relay key and certificate, for ``SSLContext.load_cert_chain``.

    Both are 0600 files in the helper's private key directory; nothing here holds the
    key's bytes.
    """

    __slots__ = ("cert_file", "key_file")

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file = cert_file
        self.key_file = key_file

    def __repr__(self) -> str:
        return f"RelayCredentials({self.cert_file.name})"


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

    def relay_public_key(self, owner: Owner) -> str:
        """The caller's relay (Ed25519) public key, b64url of the 32 raw bytes (no
        padding), the key made on first use. Raises :class:`DeviceKeyError`."""
        return _b64url(self._relay_public_raw(owner))

    def store_relay_cert(self, owner: Owner, pem: str) -> RelayCredentials:
        """Check that ``pem`` (the controller's client certificate) is one certificate
        whose public key is the caller's relay key, store it 0600 next to the key and
        return the paths for ``ssl``. Raises :class:`DeviceKeyError` for a certificate
        that is not for this caller's key (or unusable), and on I/O errors."""
        if not isinstance(pem, str) or len(pem) > MAX_RELAY_CERT:
            raise DeviceKeyError("relay certificate: too large")
        try:
            data = pem.encode("ascii")
            certs = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise DeviceKeyError("relay certificate: not a PEM certificate") from None
        if len(certs) != 1:
            raise DeviceKeyError("relay certificate: expected exactly one certificate")
        public = certs[0].public_key()
        ours = self._relay_public_raw(owner)
        if (
            not isinstance(public, Ed25519PublicKey)
            or public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            != ours
        ):
            raise DeviceKeyError("relay certificate: not for this account's relay key")
        clean = certs[0].public_bytes(serialization.Encoding.PEM).decode("ascii")
        name = _file_name(owner, ".relay.crt")
        with self._lock:
            try:
                check_private_dir(self.dir)
                path = write_private_file(self.dir, name, clean)
            except (OSError, ValueError) as exc:
                raise DeviceKeyError(f"relay certificate {name}: {exc}") from None
        return RelayCredentials(path, self.dir / _file_name(owner, ".relay"))

    # -- internals ---------------------------------------------------------------------

    def _relay_public_raw(self, owner: Owner) -> bytes:
        pem = self._load(owner, ".relay", _parse_relay_key, _new_relay_key, _RELAY_FILE_MAX)
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        assert isinstance(key, Ed25519PrivateKey)  # _parse_relay_key checked it
        return key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def _private(self, owner: Owner) -> str:
        return self._load(
            owner, ".key", _parse_wg_key, lambda: f"{generate_private_key()}\n", _KEY_FILE_SIZE
        ).rstrip("\n")

    def _load(
        self,
        owner: Owner,
        suffix: str,
        parse: Callable[[bytes], str],
        make: Callable[[], str],
        size: int,
    ) -> str:
        name = _file_name(owner, suffix)
        with self._lock:
            try:
                check_private_dir(self.dir)
            except OSError as exc:
                raise DeviceKeyError(f"key directory {self.dir}: {exc}") from None
            path = self.dir / name
            key = self._read(path, parse, size)
            if key is None:
                key = self._create(path, make(), parse, size)
            return key

    def _read(self, path: Path, parse: Callable[[bytes], str], size: int) -> str | None:
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
            data = fh.read(size + 1)
        try:
            if len(data) > size:
                raise ValueError("too large")
            return parse(data)
        except (ValueError, SpecError, TypeError, UnicodeDecodeError):
            raise DeviceKeyError(f"device key {path.name} does not hold a key") from None

    def _create(self, path: Path, key: str, parse: Callable[[bytes], str], size: int) -> str:
        fd, tmp = tempfile.mkstemp(prefix=".key-", dir=self.dir)  # 0600, O_EXCL
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(key.encode("ascii"))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # fails if the name exists: one key wins a race
            except FileExistsError:
                existing = self._read(path, parse, size)
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
