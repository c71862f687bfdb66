"""``SecretStore``: the client's secrets in the OS keyring, never in plain files.

Holds the sign-in tokens and the device's private keys (WireGuard X25519 and Ed25519
signing key, written by the enrollment code) under the service name ``rustronaut``. Only a
real secure backend is accepted (Secret Service, macOS Keychain, Windows Credential
Locker, KWallet). When there is none — keyring's ``fail``/``null`` backend, or a
``keyrings.alt`` file backend that would write secrets to disk in plain text — every call
raises ``NoSecretStoreError`` with a plain explanation; there is no fallback.

All methods block (D-Bus or OS calls): from the event loop, call them through
``asyncio.to_thread``. Thread-safe as far as the backend is; values never reach logs or
error messages.
"""

from __future__ import annotations

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from core.auth.errors import NoSecretStoreError, SecretStoreError

__all__ = [
    "DEVICE_SIGNING_KEY",
    "SERVICE",
    "TOKENS",
    "WIREGUARD_PRIVATE_KEY",
    "SecretStore",
    "backend_problem",
]

SERVICE = "rustronaut"
#: Well-known secret names.
TOKENS = "oidc-tokens"
WIREGUARD_PRIVATE_KEY = "wireguard-private-key"
DEVICE_SIGNING_KEY = "device-signing-key"

_MAX_NAME = 128
_MAX_VALUE = 64 * 1024


def _describe(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def backend_problem(backend: KeyringBackend) -> str | None:
    """Why ``backend`` must not hold our secrets, or ``None`` if it is acceptable. Pure."""
    module = type(backend).__module__
    if module.startswith("keyring.backends.fail") or module.startswith("keyring.backends.null"):
        return "no keyring service is available (no Secret Service / D-Bus session)"
    if module.startswith("keyrings.alt"):
        return (
            f"the only keyring found ({_describe(backend)}) stores secrets in a file, "
            "which Rustronaut refuses"
        )
    chained = getattr(backend, "backends", None)
    if module.startswith("keyring.backends.chainer"):
        if not chained:
            return "no keyring service is available"
        # A write that fails in a secure backend may fall through to the next one: every
        # backend of the chain must be acceptable.
        for inner in chained:
            problem = backend_problem(inner)
            if problem is not None:
                return problem
    return None


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME or not name.isprintable():
        raise ValueError(f"invalid secret name {name!r}")


class SecretStore:
    """Named secrets in the OS keyring under one service name.

    ``backend`` is the test seam (default: keyring's configured backend, checked at each
    call so a keyring that appears or disappears later is noticed).
    """

    def __init__(self, *, service: str = SERVICE, backend: KeyringBackend | None = None) -> None:
        self.service = service
        self._backend = backend

    def backend(self) -> KeyringBackend:
        """The backend to use, or ``NoSecretStoreError`` if it is not a secure store."""
        backend = self._backend if self._backend is not None else keyring.get_keyring()
        problem = backend_problem(backend)
        if problem is not None:
            raise NoSecretStoreError(
                f"Cannot store secrets safely: {problem}. Secrets are never written to "
                "plain files instead."
            )
        return backend

    def check_usable(self) -> None:
        """Raise unless secrets can be read now: a secure backend that is not locked.

        Reads one item, which makes a locked keyring ask to be unlocked (or refuse), so a
        sign-in can fail here, before the browser opens, rather than after the user has
        finished it. Raises ``NoSecretStoreError`` or ``SecretStoreError`` (locked, D-Bus).
        """
        self.get(TOKENS)

    def available(self) -> bool:
        """True if a secure backend exists (it may still be locked). Never raises."""
        try:
            self.backend()
        except NoSecretStoreError:
            return False
        return True

    def get(self, name: str) -> str | None:
        """The secret ``name``, or ``None`` if absent. Raises ``SecretStoreError``."""
        _check_name(name)
        backend = self.backend()
        try:
            value = backend.get_password(self.service, name)
        except Exception as exc:
            raise _mapped(exc, "read") from None
        return value if isinstance(value, str) else None

    def set(self, name: str, value: str) -> None:
        """Store (or atomically replace) ``name``. Raises ``SecretStoreError``."""
        _check_name(name)
        if not isinstance(value, str) or len(value) > _MAX_VALUE:
            raise ValueError(f"secret {name!r} must be a string of at most {_MAX_VALUE} chars")
        backend = self.backend()
        try:
            backend.set_password(self.service, name, value)
        except Exception as exc:
            raise _mapped(exc, "store") from None

    def delete(self, name: str) -> None:
        """Remove ``name``. Idempotent: an absent secret is not an error."""
        _check_name(name)
        backend = self.backend()
        try:
            backend.delete_password(self.service, name)
        except keyring.errors.PasswordDeleteError:
            return
        except Exception as exc:
            raise _mapped(exc, "delete") from None


def _mapped(exc: Exception, verb: str) -> SecretStoreError:
    # Never include the exception's args verbatim beyond its type and message: backends
    # do not put secrets there, but stay terse anyway.
    if isinstance(exc, keyring.errors.NoKeyringError):
        return NoSecretStoreError(f"Cannot {verb} secrets: no keyring service is available.")
    if isinstance(exc, keyring.errors.KeyringLocked):
        return SecretStoreError(f"Cannot {verb} secrets: the keyring is locked.")
    return SecretStoreError(f"Cannot {verb} secrets in the keyring ({type(exc).__name__}: {exc}).")
