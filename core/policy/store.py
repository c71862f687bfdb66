"""The held policy bundle: verified updates with anti-rollback, and its on-disk cache.

``PolicyStore`` holds the last valid bundle for this device. ``update`` verifies a new
token (``verify_bundle``) against the version held and, only if it passes, swaps it in,
writes the cache atomically (mode 0600) and tells the subscribers. Any refusal leaves
the held bundle, the cache and the subscribers untouched. ``load_cache`` restores the
last valid bundle at start-up (offline use) through the same checks, so an expired,
foreign or tampered cache is never used. Not thread-safe: one thread (the engine's loop).

Expiry is judged against trusted time (``core.clock.TrustedTime``): the controller's time
as last verified plus the time elapsed since on a clock that counts suspend — never the
local wall clock alone. Setting the clock back does not extend access; setting it
forward does not withdraw it early once the controller's time is known. Each verified
bundle's issue time is recorded there too (a lower bound of the controller's time), so
even before any controller answer a bundle lasts no longer than its own lifetime after
it was issued, as the clock that nobody can set measures it.

Cache file (JSON, 0600): ``{"v": 1, "token": "<JWS>", "keys": {kid: JWK}}``. The token
is re-verified on load with the keys the caller trusts; the ``keys`` copy is only for
``rustronaut policy show`` to check integrity offline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.clock import TrustedTime, shared
from core.policy.errors import PolicyCacheError, RollbackError
from core.policy.floor import RollbackFloor
from core.policy.verify import DEFAULT_SKEW_S, verify_bundle
from core.wire.policy import MAX_BUNDLE_BYTES, PolicyBundle
from core.wire.signing import jwk_from_public_key

__all__ = ["CACHE_FILE_NAME", "CachedToken", "PolicyStore", "default_cache_path", "read_cache"]

_log = logging.getLogger(__name__)

CACHE_FILE_NAME = "policy-bundle.json"

Listener = Callable[[PolicyBundle | None], None]


def default_cache_path() -> Path:
    """``<data dir>/policy-bundle.json`` (``core.paths.data_dir``; on Linux
    ``$XDG_DATA_HOME/rustronaut``). Not created."""
    from core import paths

    return paths.data_dir() / CACHE_FILE_NAME


class CachedToken(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The cache file's content."""

    token: str
    keys: dict[str, dict[str, str]] = {}
    v: int = 1


def read_cache(path: Path) -> CachedToken | None:
    """Read the cache file; None when absent. Raises ``PolicyCacheError`` when unreadable
    or malformed (the caller then starts without a bundle)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PolicyCacheError(f"cannot read policy cache {path}: {exc}") from exc
    if len(data) > MAX_BUNDLE_BYTES + 65536:
        raise PolicyCacheError(f"policy cache {path} is too large")
    try:
        return msgspec.json.decode(data, type=CachedToken)
    except msgspec.DecodeError as exc:
        raise PolicyCacheError(f"policy cache {path} is malformed: {exc}") from exc


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (0600) so a reader sees the old or the new file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".policy-", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class PolicyStore:
    """Holds the current bundle for ``device_id``; see the module docstring.

    ``keys`` are the controller's trusted signing keys by ``kid``; ``cache_path`` None
    disables the disk cache (tests, the controller). ``trusted`` is the time expiry is
    judged by (``core.clock.shared()``, fed by the control-plane client, by default);
    ``clock`` (unix seconds) instead makes a private ``TrustedTime`` over that wall clock.
    ``floor`` keeps the anti-rollback floor across restarts where it cannot be lowered
    quietly (``core.policy.floor``); without it the floor is the held bundle's version.
    """

    def __init__(
        self,
        *,
        device_id: str,
        keys: Mapping[str, Ed25519PublicKey],
        cache_path: Path | None = None,
        clock: Callable[[], float] | None = None,
        trusted: TrustedTime | None = None,
        skew: float = DEFAULT_SKEW_S,
        max_size: int = MAX_BUNDLE_BYTES,
        floor: RollbackFloor | None = None,
    ) -> None:
        self.device_id = device_id
        self.floor = floor
        self._keys = dict(keys)
        self.cache_path = cache_path
        if trusted is None:
            trusted = shared() if clock is None else TrustedTime(wall=clock)
        self.trusted = trusted
        self._skew = skew
        self._max_size = max_size
        self._bundle: PolicyBundle | None = None
        self._token: str | None = None
        self._listeners: list[Listener] = []

    # -- reading -----------------------------------------------------------------------

    @property
    def held(self) -> PolicyBundle | None:
        """The bundle held, even if it has expired since (for display)."""
        return self._bundle

    @property
    def token(self) -> str | None:
        """The held bundle as the controller signed it (the JWS compact string): what
        the privileged helper verifies itself before it brings a tunnel up."""
        return self._token

    def current(self, now: float | None = None) -> PolicyBundle | None:
        """The bundle in force: the held one unless it has expired (then None).

        ``now`` defaults to trusted time (see the module docstring)."""
        now = self.trusted.now() if now is None else now
        b = self._bundle
        return b if b is not None and now < b.expires_at else None

    @property
    def version(self) -> int | None:
        """Version of the held bundle (the anti-rollback floor), None when none."""
        return self._bundle.version if self._bundle is not None else None

    # -- changing ----------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(bundle)`` after each change (None after ``clear``); returns an
        unsubscribe function. Listeners run synchronously in the caller's thread."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def set_keys(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        """Replace the trusted keys (JWKS rotation). The held bundle stays.

        ``keys`` must already be trusted: resolved by ``core.policy.trust.PolicyTrust``
        from the configured anchors, never taken from a discovery answer as they are."""
        self._keys = dict(keys)

    def _floor_version(self) -> int | None:
        """The anti-rollback floor: the held version or the persisted floor, whichever
        is higher. Raises ``RollbackFloorError`` when the floor cannot be trusted."""
        held = self.version
        if self.floor is None:
            return held
        stored = self.floor.read(self.device_id)
        if stored is None:
            return held
        return stored if held is None else max(held, stored)

    def update(self, token: str | bytes) -> bool:
        """Verify ``token`` and make it current; True if the bundle changed.

        The same token again is a no-op (False). A bundle of the held version with other
        content is refused (``RollbackError``). Raises any ``BundleRejected`` or
        ``RollbackFloorError``; then nothing changed. A cache write failure is logged, not
        raised: the bundle is in force.
        """
        text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
        if self._token is not None and text == self._token:
            return False
        bundle = verify_bundle(
            text,
            self._keys,
            device_id=self.device_id,
            now=self.trusted.now(),
            held_version=self._floor_version(),
            max_size=self._max_size,
            skew=self._skew,
        )
        if self._bundle is not None and bundle.version == self._bundle.version:
            raise RollbackError(
                f"policy bundle version {bundle.version} differs from the held bundle of "
                "the same version (a new policy must have a higher version)"
            )
        if self.floor is not None:
            self.floor.advance(self.device_id, bundle.version)  # before use: fail closed
        self._set(bundle, text)
        if self.cache_path is not None:
            try:
                self._write_cache(text)
            except OSError as exc:
                _log.warning("cannot write policy cache %s: %s", self.cache_path, exc)
        return True

    def load_cache(self) -> PolicyBundle | None:
        """Adopt the cached bundle if it verifies now (offline start). Returns it, or None
        when there is no cache or it is not newer than the bundle held.

        Raises ``PolicyCacheError`` (unreadable) or ``BundleRejected`` (expired, other
        device, bad signature...); the held bundle is then unchanged.
        """
        if self.cache_path is None:
            return None
        cached = read_cache(self.cache_path)
        if cached is None or cached.token == self._token:
            return None
        bundle = verify_bundle(
            cached.token,
            self._keys,
            device_id=self.device_id,
            now=self.trusted.now(),
            held_version=self._floor_version(),
            max_size=self._max_size,
            skew=self._skew,
        )
        if self._bundle is not None and bundle.version <= self._bundle.version:
            return None
        self._set(bundle, cached.token)
        return bundle

    def clear(self, *, delete_cache: bool = True) -> None:
        """Forget the bundle (sign-out, device revoked); deny everything from now on.
        Idempotent."""
        if delete_cache and self.cache_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.cache_path.unlink()
        if self._bundle is not None:
            self._bundle = None
            self._token = None
            self._notify(None)

    def _set(self, bundle: PolicyBundle, token: str) -> None:
        # Signed by the controller: its clock had reached the issue time. Recorded before
        # anything reads the bundle, so a clock set back later cannot revive it.
        self.trusted.at_least(float(bundle.issued_at))
        self._bundle = bundle
        self._token = token
        self._notify(bundle)

    def _notify(self, bundle: PolicyBundle | None) -> None:
        for listener in list(self._listeners):
            try:
                listener(bundle)
            except Exception:  # a broken listener must not undo a verified update
                _log.exception("policy store listener failed")

    def _write_cache(self, token: str) -> None:
        assert self.cache_path is not None
        keys = {kid: jwk_from_public_key(k, kid) for kid, k in self._keys.items()}
        _write_atomic(self.cache_path, msgspec.json.encode(CachedToken(token=token, keys=keys)))
