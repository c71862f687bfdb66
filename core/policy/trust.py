"""Which keys may sign policy: the organisation's anchors, never the network's word.

The organisation's policy **root** keys (trust anchors) come from the installer or MDM
(setting ``policy_trust_anchors``: raw Ed25519 public keys, base64url). The controller's
discovery answer is unsigned, so what it lists counts only through signatures that chain
to an anchor (``core.wire.endorsement``):

- a listed signing key is used if it *is* an anchor, or a current anchor (or a root an
  anchor endorsed, ``role: "root"``, up to :data:`MAX_ROOT_HOPS` hops) signed an
  endorsement of it (``role: "signing"``) that is valid now;
- every other listed key is ignored (logged); when none is left, ``UntrustedKeysError``.

**Trust on first use** (an unmanaged development setup only: no anchors configured). The
first discovery whose listed roots endorse at least one of its signing keys has those
roots pinned to a 0600 file in the data dir, with a WARNING log line and a notice for the
user (:attr:`PolicyTrust.notice`); from then on the pinned roots are the anchors and a
discovery naming another root is refused (``PinnedRootMismatchError``). Configuring
anchors makes the pin file irrelevant (it is neither read nor written).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.i18n import translate
from core.policy.errors import PinnedRootMismatchError, UntrustedKeysError
from core.wire.endorsement import EndorsementError, verify_endorsement
from core.wire.signing import SignatureError, b64url, key_id
from wg_backends.signed.anchors import parse_anchor  # the helper reads anchors alike

__all__ = [
    "MAX_ROOT_HOPS",
    "PIN_FILE_NAME",
    "DiscoveredKeys",
    "PolicyTrust",
    "parse_anchor",
]

_log = logging.getLogger(__name__)

PIN_FILE_NAME: Final = "policy-root-pin.json"
MAX_ROOT_HOPS: Final = 4
"""Root rotations followed in one discovery (old root → new root → ...)."""
_MAX_ENDORSEMENTS = 16


@dataclass(frozen=True, slots=True)
class DiscoveredKeys:
    """What an (unsigned) discovery answer claims: signing keys by kid, the roots it says
    endorse them, and the signed endorsements. Nothing here is trusted by itself."""

    signing: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    roots: tuple[Ed25519PublicKey, ...] = ()
    endorsements: tuple[str, ...] = ()


class _Pin(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    roots: list[str]
    pinned_at: int
    v: int = 1


def _raw(key: Ed25519PublicKey) -> str:
    return b64url(key.public_bytes_raw())


class PolicyTrust:
    """Turns a discovery's claims into the signing keys a ``PolicyStore`` may trust.

    ``anchors``: the configured roots (base64url, see :func:`parse_anchor`; validated by
    the settings, re-checked here). ``pin_path``: where the first-use pin lives when no
    anchors are configured (None: no trust on first use — nothing is trusted without
    anchors). Not thread-safe: one thread (the engine's loop).
    """

    def __init__(self, anchors: Sequence[str], *, pin_path: Path | None = None) -> None:
        self._anchors = {key_id(k): k for k in (parse_anchor(a) for a in anchors)}
        self._pin_path = pin_path
        self.notice: str | None = None
        """A message for the user when trust rests on a first-use pin (None otherwise)."""

    @property
    def managed(self) -> bool:
        """True when anchors are configured (no trust on first use)."""
        return bool(self._anchors)

    def signing_keys(
        self, found: DiscoveredKeys, *, now: float | None = None
    ) -> dict[str, Ed25519PublicKey]:
        """The listed signing keys that chain to an anchor, by kid.

        Raises ``UntrustedKeysError`` when none does, ``PinnedRootMismatchError`` when
        trust rests on a pin and discovery names another root. May write the pin file
        (first use only).
        """
        now = time.time() if now is None else now
        roots = self._roots_for(found, now)
        return self._chain(found, roots, now)

    # -- internals ---------------------------------------------------------------------

    def _roots_for(self, found: DiscoveredKeys, now: float) -> dict[str, Ed25519PublicKey]:
        if self._anchors:
            return dict(self._anchors)
        if self._pin_path is None:
            raise UntrustedKeysError(
                "no policy trust anchors are configured (setting policy_trust_anchors)"
            )
        pinned = self._read_pin()
        if pinned is not None:
            self._set_notice(pinned, first=False)
            listed = {key_id(k) for k in found.roots}
            if listed and not listed & set(pinned):
                # A rotation signed by the pinned root is still followed in _chain; a
                # discovery that names only roots unknown to the pin is a different
                # controller (or an attacker), and is refused as such.
                endorsed = self._follow_roots(found, dict(pinned), now)
                if not listed & set(endorsed):
                    raise PinnedRootMismatchError(
                        f"the controller's policy root key {sorted(listed)} is not the "
                        f"one pinned on first use {sorted(pinned)} ({self._pin_path})"
                    )
            return dict(pinned)
        # First use: pin the roots that discovery lists, but only if they do endorse one
        # of its signing keys (a discovery that cannot verify itself pins nothing).
        candidates = {key_id(k): k for k in found.roots}
        self._chain(found, candidates, now)  # raises UntrustedKeysError
        self._write_pin(candidates, now)
        self._set_notice(candidates, first=True)
        return candidates

    def _follow_roots(
        self, found: DiscoveredKeys, roots: dict[str, Ed25519PublicKey], now: float
    ) -> dict[str, Ed25519PublicKey]:
        """``roots`` plus the roots they endorse (``role: "root"``), hop by hop."""
        roots = dict(roots)
        for _ in range(MAX_ROOT_HOPS):
            added = False
            for token in found.endorsements[:_MAX_ENDORSEMENTS]:
                try:
                    statement = verify_endorsement(token, roots, now=now)
                except (SignatureError, EndorsementError):
                    continue
                if statement.role == "root" and statement.kid not in roots:
                    roots[statement.kid] = statement.public_key()
                    added = True
            if not added:
                break
        return roots

    def _chain(
        self, found: DiscoveredKeys, roots: dict[str, Ed25519PublicKey], now: float
    ) -> dict[str, Ed25519PublicKey]:
        roots = self._follow_roots(found, roots, now)
        endorsed: dict[str, Ed25519PublicKey] = {}
        problems: list[str] = []
        for token in found.endorsements[:_MAX_ENDORSEMENTS]:
            try:
                statement = verify_endorsement(token, roots, now=now)
            except (SignatureError, EndorsementError) as exc:
                problems.append(str(exc))
                continue
            if statement.role == "signing":
                endorsed[statement.kid] = statement.public_key()
        trusted: dict[str, Ed25519PublicKey] = {}
        for kid, key in found.signing.items():
            if kid != key_id(key):
                _log.warning("discovery lists policy key %r under another kid; ignored", kid)
                continue
            raw = _raw(key)
            if any(k is not None and _raw(k) == raw for k in (roots.get(kid), endorsed.get(kid))):
                trusted[kid] = key
            else:
                _log.warning(
                    "policy signing key %r from discovery is neither a trust anchor nor "
                    "endorsed by one; ignored",
                    kid,
                )
        if not trusted:
            why = f" ({'; '.join(problems[:3])})" if problems else ""
            raise UntrustedKeysError(
                f"none of the controller's policy signing keys {sorted(found.signing)} is a "
                f"trust anchor or endorsed by one {sorted(roots)}{why}"
            )
        return trusted

    def _set_notice(self, roots: Mapping[str, Ed25519PublicKey], *, first: bool) -> None:
        self.notice = translate(
            "core.policy.trust",
            "No policy trust anchors are configured: this device trusts the policy root key "
            "{keys} because it was the first one seen (pinned in {path}). Fine for "
            "a development setup; a managed device needs policy_trust_anchors.",
        ).format(keys=", ".join(sorted(roots)), path=self._pin_path)
        if first:
            _log.warning(
                "TRUST ON FIRST USE: no policy_trust_anchors configured; pinned the "
                "controller's policy root key %s to %s",
                ", ".join(sorted(roots)),
                self._pin_path,
            )

    def _read_pin(self) -> dict[str, Ed25519PublicKey] | None:
        assert self._pin_path is not None
        try:
            data = self._pin_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UntrustedKeysError(
                f"cannot read the pinned policy root {self._pin_path}: {exc}"
            ) from None
        try:
            pin = msgspec.json.decode(data[:65536], type=_Pin)
            keys = [parse_anchor(r) for r in pin.roots]
        except (msgspec.DecodeError, ValueError) as exc:
            raise UntrustedKeysError(
                f"the pinned policy root {self._pin_path} is unreadable ({exc}); it is not "
                "replaced silently"
            ) from None
        if not keys:
            raise UntrustedKeysError(f"the pinned policy root {self._pin_path} holds no key")
        return {key_id(k): k for k in keys}

    def _write_pin(self, roots: Mapping[str, Ed25519PublicKey], now: float) -> None:
        assert self._pin_path is not None
        pin = _Pin(roots=[_raw(k) for k in roots.values()], pinned_at=int(now))
        path = self._pin_path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".pin-", dir=path.parent)  # 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(msgspec.json.encode(pin))
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
