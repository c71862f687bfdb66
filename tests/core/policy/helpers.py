"""Builders shared by the policy tests: keys, bundles, requests."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.policy.api import AccessRequest, AppIdentity
from core.wire.policy import (
    Condition,
    FactCondition,
    PolicyBundle,
    Resource,
    Rule,
    UserInfo,
    sign_bundle,
)

NOW = 1_800_000_000.0
DEVICE = "dev-1"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KID = "ctl-1"
KEYS = {KID: KEY.public_key()}

GIT = Resource(
    id="git",
    name="Git",
    hosts=("git.corp.example", "*.git.corp.example"),
    ports=(22, 443),
)
DB = Resource(id="db", name="Database", cidrs=("10.20.0.0/16", "fd00:20::/32"), ports=(5432,))
WIKI = Resource(id="wiki", name="Wiki", hosts=("wiki.corp.example",), protocols=("tcp", "udp"))


def fact(name: str, op: str, value: object = None, **kw: Any) -> FactCondition:
    return FactCondition(fact=name, op=op, value=value, **kw)  # type: ignore[arg-type]


def rule(
    rid: str,
    effect: str = "allow",
    resources: tuple[str, ...] = ("git",),
    priority: int = 0,
    conditions: Condition | None = None,
    **kw: Any,
) -> Rule:
    return Rule(
        id=rid,
        effect=effect,  # type: ignore[arg-type]
        resources=resources,
        priority=priority,
        conditions=conditions,
        **kw,
    )


def bundle(*rules: Rule, version: int = 1, **kw: Any) -> PolicyBundle:
    base: dict[str, Any] = dict(
        version=version,
        device_id=DEVICE,
        issued_at=int(NOW) - 60,
        expires_at=int(NOW) + 3600,
        user=UserInfo(subject="alice", email="alice@corp.example", groups=("eng", "staff")),
        resources=(GIT, DB, WIKI),
        rules=rules,
    )
    base.update(kw)
    return PolicyBundle(**base)


def token(b: PolicyBundle, key: Ed25519PrivateKey = KEY, kid: str = KID) -> str:
    return sign_bundle(b, key, kid)


APP = AppIdentity(pid=42, uid=1000, exe="/usr/bin/git", name="git", sha256="ab" * 32)
CURL = AppIdentity(pid=43, uid=1000, exe="/usr/bin/curl", name="curl")


def req(
    host: str = "git.corp.example",
    port: int = 443,
    app: AppIdentity = APP,
    protocol: str = "tcp",
    addresses: tuple[str, ...] = (),
) -> AccessRequest:
    return AccessRequest(app=app, host=host, port=port, protocol=protocol, addresses=addresses)
