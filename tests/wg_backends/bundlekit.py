"""Builders for the helper's signed-bundle tests: an organisation (root, signing key,
endorsement), real signed bundles made with the controller's own code, and tokens signed
over arbitrary (hostile) payload bytes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.wire.policy import PolicyBundle, Resource, Rule, UserInfo, sign_bundle
from wg_backends.helper.bundles import HelperFloors, VerifiedSpec, verified_spec
from wg_backends.signed.anchors import anchor_keys
from wg_backends.signed.endorsement import endorse
from wg_backends.signed.jws import b64url, key_id
from wg_backends.spec import PeerSpec, TunnelSpec

NOW = 1_800_000_000
DEVICE = "dev-1"
GW_KEY = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
GW2_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
OWNER = 1000


def raw_key(key: Ed25519PrivateKey) -> str:
    """The anchor spelling of ``key``'s public half (base64url of the raw 32 bytes)."""
    return b64url(key.public_key().public_bytes_raw())


def spec(*routes: str, interface: str = "rst0", gw: str = GW_KEY, **kw: Any) -> TunnelSpec:
    peer = PeerSpec(
        public_key=gw, endpoint="192.0.2.1:51820", allowed_ips=routes or ("10.20.0.0/16",)
    )
    return TunnelSpec(interface=interface, addresses=("100.64.0.2/32",), peers=(peer,), **kw)


@dataclass
class Org:
    """An organisation: a root (the anchor) and a signing key it endorsed."""

    root: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    signer: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def anchors(self) -> dict[str, Any]:
        return anchor_keys([raw_key(self.root)])

    def endorsement(self, **kw: Any) -> str:
        kw.setdefault("not_before", NOW - 3600)
        kw.setdefault("not_after", NOW + 86400)
        return endorse(self.signer.public_key(), self.root, **kw)

    def bundle(self, version: int = 1, *, key: Ed25519PrivateKey | None = None, **kw: Any) -> str:
        base: dict[str, Any] = dict(
            version=version,
            device_id=DEVICE,
            issued_at=NOW - 60,
            expires_at=NOW + 3600,
            user=UserInfo(subject="alice", email="alice@corp.example", groups=("eng",)),
            resources=(Resource(id="git", name="Git", hosts=("git.corp.example",)),),
            rules=(Rule(id="r1", effect="allow", resources=("git",)),),
            tunnel=spec(),
        )
        base.update(kw)
        signer = key or self.signer
        return sign_bundle(PolicyBundle(**base), signer, key_id(signer.public_key()))

    def raw_token(self, payload: bytes, *, key: Ed25519PrivateKey | None = None) -> str:
        """A JWS whose signature is valid over exactly ``payload`` (schema or not)."""
        from wg_backends.signed.jws import sign

        return sign(payload, key or self.signer, typ="rustronaut-policy+jws")


def check(
    org: Org,
    token: str,
    state: Path,
    *,
    profile: str = "tunnel",
    endorsements: list[str] | None = None,
    owner: int | str = OWNER,
    now: float = NOW,
    **kw: Any,
) -> VerifiedSpec:
    """``verified_spec`` as the helper calls it, with the org's anchors."""
    return verified_spec(
        token,
        profile,
        anchors=kw.pop("anchors", org.anchors),
        endorsements=[org.endorsement()] if endorsements is None else endorsements,
        floors=HelperFloors(state),
        owner=owner,
        now=now,
        **kw,
    )


def payload_of(token: str) -> bytes:
    from wg_backends.signed.jws import b64url_decode

    return b64url_decode(token.split(".")[1])


def as_builtins(token: str) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.json.decode(payload_of(token))
    return out


def now() -> int:
    return int(time.time())
