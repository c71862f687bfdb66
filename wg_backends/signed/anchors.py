"""From the organisation's trust anchors to the keys that may sign policy, with nothing else.

The anchors (``policy_trust_anchors``: raw Ed25519 public keys, base64url, from the
installer or MDM) never sign bundles themselves in practice; they sign endorsements
(:mod:`wg_backends.signed.endorsement`). Given the anchors and a list of endorsement
statements — relayed by anyone: the engine, the controller's discovery answer — the keys
trusted to sign a policy bundle are:

- the anchors themselves, and roots an anchor endorsed (``role: "root"``), hop by hop up
  to :data:`MAX_ROOT_HOPS` (a root rotation);
- every key one of those roots endorsed with ``role: "signing"``, valid now.

A statement that does not verify, is outside its window or names an unknown root is
skipped: relayed noise cannot add a key, and cannot remove one either. No trust on first
use here — that is a development convenience of the client (``core.policy.trust``), never
of the privileged helper. Pure; any thread.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from wg_backends.signed.endorsement import EndorsementError, verify_endorsement
from wg_backends.signed.jws import SignatureError, b64url, key_id

__all__ = [
    "MAX_ANCHORS",
    "MAX_ENDORSEMENTS",
    "MAX_ROOT_HOPS",
    "anchor_keys",
    "parse_anchor",
    "trusted_signing_keys",
]

MAX_ROOT_HOPS: Final = 4
"""Root rotations followed (old root → new root → ...), as the client follows them."""
MAX_ENDORSEMENTS: Final = 16
"""Statements looked at; more are ignored (each costs a signature check)."""
MAX_ANCHORS: Final = 16
"""Most anchors a managed payload may list."""


def parse_anchor(text: str) -> Ed25519PublicKey:
    """A trust anchor: unpadded base64url of a raw 32-byte Ed25519 public key (the ``x``
    of its JWK). Strict: any other alphabet, padding, whitespace or length is refused with
    ``ValueError``, and so is a second spelling of the same key. Pure."""
    if not isinstance(text, str) or len(text) != 43 or not text.isascii():
        raise ValueError("a policy trust anchor is 43 characters of base64url (32 bytes)")
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a policy trust anchor must be base64url (A-Z a-z 0-9 - _)") from None
    if b64url(raw) != text:  # non-zero trailing bits: another spelling of the same key
        raise ValueError("a policy trust anchor is not in canonical base64url")
    return Ed25519PublicKey.from_public_bytes(raw)


def anchor_keys(anchors: Iterable[str]) -> dict[str, Ed25519PublicKey]:
    """The anchors by key id (see :func:`parse_anchor`; ``ValueError`` on a bad one)."""
    keys = [parse_anchor(a) for a in anchors]
    return {key_id(k): k for k in keys}


def _verified(
    tokens: Sequence[object], roots: Mapping[str, Ed25519PublicKey], now: float
) -> Iterable[tuple[str, str, Ed25519PublicKey]]:
    for token in tokens[:MAX_ENDORSEMENTS]:
        if not isinstance(token, str):  # a relay may send anything
            continue
        try:
            statement = verify_endorsement(token, roots, now=now)
        except (SignatureError, EndorsementError):
            continue  # relayed noise: neither adds nor removes a key
        yield statement.role, statement.kid, statement.public_key()


def trusted_signing_keys(
    anchors: Mapping[str, Ed25519PublicKey], endorsements: Sequence[str], *, now: float
) -> dict[str, Ed25519PublicKey]:
    """The keys that may sign policy now, by kid: the anchors, the roots they endorsed
    (hop by hop) and the signing keys those roots endorsed, valid at ``now``.

    Empty ``anchors`` yield an empty map (nothing is trusted without anchors). Never
    raises for a bad statement (it is skipped). Pure; any thread.
    """
    roots = dict(anchors)
    for _ in range(MAX_ROOT_HOPS):
        added = {
            kid: key
            for role, kid, key in _verified(endorsements, roots, now)
            if role == "root" and kid not in roots
        }
        if not added:
            break
        roots.update(added)
    trusted = dict(roots)
    for role, kid, key in _verified(endorsements, roots, now):
        if role == "signing":
            trusted.setdefault(kid, key)
    return trusted
