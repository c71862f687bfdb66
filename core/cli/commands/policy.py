"""``rustronaut policy show`` and ``rustronaut policy explain``: the cached policy, offline.

Both read the last valid bundle the client cached (``core.policy.store.default_cache_path``,
on Linux ``$XDG_DATA_HOME/rustronaut/policy-bundle.json``; ``--cache`` overrides). The
token's signature is re-checked against the controller key cached with it (integrity of
the file; the running engine checks against the controller's live keys). ``explain``
runs the real engine on the bundle with the facts given by ``--fact`` (posture facts not
given are unknown) and prints the decision, the rule, the reason and what to fix.

Exit codes: 0 shown / allowed, 1 denied, 3 no usable cached policy, 2 usage error.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import time
from pathlib import Path
from typing import Any

import msgspec

from core.policy.api import AccessRequest, AppIdentity, Decision
from core.policy.engine import PolicyEngine
from core.policy.errors import PolicyCacheError
from core.policy.store import default_cache_path, read_cache
from core.text import safe_json, safe_line
from core.wire.policy import (
    BUNDLE_TYP,
    MAX_BUNDLE_BYTES,
    AllOf,
    AnyOf,
    BundleFormatError,
    Condition,
    FactCondition,
    NotOf,
    PolicyBundle,
    PortRange,
    RefOf,
    Resource,
    decode_bundle,
)
from core.wire.signing import SignatureError, public_key_from_jwk, verify

__all__ = ["load_cached_bundle", "parse_target", "register", "render_condition"]

_NO_POLICY = 3
_MAX_HASH_BYTES = 512 * 1024 * 1024


class _CliError(Exception):
    pass


def load_cached_bundle(path: Path) -> tuple[PolicyBundle, str]:
    """The cached bundle and the kid that signed it. Raises ``_CliError`` with a message."""
    try:
        cached = read_cache(path)
    except PolicyCacheError as exc:
        raise _CliError(str(exc)) from exc
    if cached is None:
        raise _CliError(f"no cached policy at {path}: connect once to fetch one")
    try:
        keys = {kid: public_key_from_jwk(jwk) for kid, jwk in cached.keys.items()}
        doc = verify(cached.token, keys, typ=BUNDLE_TYP, max_size=MAX_BUNDLE_BYTES)
        return decode_bundle(doc.payload), doc.kid
    except (SignatureError, BundleFormatError) as exc:
        raise _CliError(f"cached policy at {path} is not valid: {exc}") from exc


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[v6]:PORT`` → (normalised host, port). Raises ``ValueError``."""
    if text.startswith("["):
        host, sep, port_s = text[1:].partition("]:")
        if not sep:
            raise ValueError("an IPv6 target is written [address]:port")
    else:
        host, sep, port_s = text.rpartition(":")
        if not sep or not host:
            raise ValueError("the target is written HOST:PORT")
    if not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ValueError(f"port {port_s!r} is not a number in 1-65535")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            host = host.rstrip(".").encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise ValueError(f"host {host!r} is not a valid name") from exc
    return host, int(port_s)


def _app_identity(path: str) -> AppIdentity:
    exe = os.path.abspath(path) if path else ""
    sha: str | None = None
    try:
        if os.path.isfile(exe) and os.path.getsize(exe) <= _MAX_HASH_BYTES:
            digest = hashlib.sha256()
            with open(exe, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            sha = digest.hexdigest()
    except OSError:
        sha = None
    return AppIdentity(
        pid=None,
        uid=os.getuid() if hasattr(os, "getuid") else None,
        exe=exe,
        name=os.path.basename(exe),
        sha256=sha,
    )


def _parse_fact(text: str) -> tuple[str, object]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--fact wants NAME=VALUE, got {text!r}")
    try:
        value: object = json.loads(raw)
    except ValueError:
        value = raw  # a bare word is a string: --fact posture.os.name=linux
    return name, value


def render_condition(cond: Condition | None) -> str:
    """A condition tree as one line: ``all(posture.disk.encrypted eq true, not(...))``."""
    if cond is None:
        return "always"
    if isinstance(cond, FactCondition):
        value = "" if cond.value is None else " " + safe_json(json.dumps(cond.value))
        return f"{safe_line(cond.fact)} {safe_line(cond.op)}{value}"
    if isinstance(cond, NotOf):
        return f"not({render_condition(cond.of)})"
    if isinstance(cond, RefOf):
        return f"profile:{safe_line(cond.profile)}"
    name = "all" if isinstance(cond, AllOf) else "any"
    assert isinstance(cond, AllOf | AnyOf)
    return f"{name}({', '.join(render_condition(c) for c in cond.of)})"


def _ports(res: Resource) -> str:
    if not res.ports:
        return "any"
    return ",".join(
        str(p) if isinstance(p, int) else f"{p.first}-{p.last}"
        for p in res.ports
        if isinstance(p, int | PortRange)
    )


def _when(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _show(args: argparse.Namespace) -> int:
    path = Path(args.cache) if args.cache else default_cache_path()
    try:
        bundle, kid = load_cached_bundle(path)
    except _CliError as exc:
        print(f"error: {safe_line(exc)}")
        return _NO_POLICY
    now = time.time()
    expired = now >= bundle.expires_at
    if args.json:
        data: dict[str, Any] = msgspec.to_builtins(bundle)
        data["signed_by"] = kid
        data["expired"] = expired
        data["cache"] = str(path)
        print(safe_json(json.dumps(data, indent=2)))
        return 0
    # Every name, id and address below is the controller's: shown as text (safe_line).
    user = bundle.user
    print(f"Policy version {bundle.version} for device {safe_line(bundle.device_id)}")
    groups = ", ".join(safe_line(g) for g in user.groups) or "none"
    print(f"User:     {safe_line(user.email or user.subject)} (groups: {groups})")
    print(f"Issued:   {_when(bundle.issued_at)}")
    left = int(bundle.expires_at - now)
    state = "EXPIRED" if expired else f"in {left // 3600}h {left % 3600 // 60}m"
    print(f"Expires:  {_when(bundle.expires_at)} ({state})")
    print(f"Signed:   key {safe_line(kid)} (cached at {safe_line(path)})")
    print(f"\nResources ({len(bundle.resources)}):")
    for res in bundle.resources:
        where = ", ".join(safe_line(x) for x in (*res.hosts, *res.cidrs))
        protocols = safe_line("/".join(res.protocols))
        print(
            f"  {safe_line(res.id):<20} {safe_line(res.name)}  [{where}] ports {_ports(res)}"
            f" {protocols}"
        )
    print(f"\nRules ({len(bundle.rules)}), highest priority first, deny before allow:")
    order = sorted(bundle.rules, key=lambda r: (-r.priority, r.effect != "deny"))
    for rule in order:
        apps = (
            ", ".join(safe_line(a.exe or a.name or (a.sha256 or "")[:12]) for a in rule.apps)
            or "any app"
        )
        risk = f" max_risk {rule.max_risk}" if rule.max_risk is not None else ""
        targets = ", ".join(safe_line(r) for r in rule.resources)
        print(
            f"  {rule.priority:>6} {safe_line(rule.effect):<5} {safe_line(rule.id):<20}"
            f" -> {targets} ({apps}) if {render_condition(rule.conditions)}{risk}"
        )
    return 0


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "effect": decision.effect.value,
        "allowed": decision.allowed,
        "rule_id": decision.rule_id,
        "resource": decision.resource,
        "reason": decision.reason,
        "risk": decision.risk,
        "confidence": decision.confidence,
        "signals": list(decision.signals),
        "unmet": [
            {"fact": u.fact, "requirement": u.requirement, "remediation": u.remediation}
            for u in decision.unmet
        ],
    }


def _explain(args: argparse.Namespace) -> int:
    try:
        host, port = parse_target(args.to)
        addresses = tuple(str(ipaddress.ip_address(a)) for a in args.address)
    except ValueError as exc:
        print(f"error: {safe_line(exc)}")
        return 2
    path = Path(args.cache) if args.cache else default_cache_path()
    try:
        bundle, _kid = load_cached_bundle(path)
    except _CliError as exc:
        print(f"error: {safe_line(exc)}")
        return _NO_POLICY
    engine = PolicyEngine(record=False)
    engine.load(bundle)
    engine.set_facts(dict(args.fact))
    request = AccessRequest(
        app=_app_identity(args.app),
        host=host,
        port=port,
        protocol="udp" if args.udp else "tcp",
        addresses=addresses,
    )
    decision = engine.explain(request)
    if args.json:
        print(safe_json(json.dumps(_decision_json(decision), indent=2)))
    else:
        # Rule ids, resources, reasons and fixes are the controller's words: as text.
        print(f"Decision:   {decision.effect.value.upper()}")
        print(f"Rule:       {safe_line(decision.rule_id or 'none (default deny)')}")
        print(f"Resource:   {safe_line(decision.resource or '-')}")
        print(f"Reason:     {safe_line(decision.reason)}")
        print(f"Risk:       {decision.risk}/100    confidence {decision.confidence:.2f}")
        if decision.unmet:
            print("To get access:")
            for u in decision.unmet:
                print(f"  - {safe_line(u.requirement)}\n    fix: {safe_line(u.remediation)}")
    return 0 if decision.allowed else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``policy show`` and ``policy explain``."""
    p = sub.add_parser("policy", help="show the policy in force, explain a decision")
    psub = p.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)
    show = psub.add_parser("show", help="resources and rules in force, version, expiry")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--cache", help="cached bundle file (default: the client's cache)")
    show.set_defaults(func=_show)
    ex = psub.add_parser("explain", help="would APP reach HOST:PORT, and why (not)")
    ex.add_argument("--app", required=True, help="path of the program making the connection")
    ex.add_argument("--to", required=True, metavar="HOST:PORT", help="destination")
    ex.add_argument("--udp", action="store_true", help="UDP instead of TCP")
    ex.add_argument(
        "--address",
        action="append",
        default=[],
        metavar="IP",
        help="an address HOST resolves to (repeatable; for CIDR resources)",
    )
    ex.add_argument(
        "--fact",
        action="append",
        default=[],
        type=_parse_fact,
        metavar="NAME=VALUE",
        help="a fact to assume, JSON value (e.g. posture.disk.encrypted=true); repeatable",
    )
    ex.add_argument("--json", action="store_true", help="machine-readable output")
    ex.add_argument("--cache", help="cached bundle file (default: the client's cache)")
    ex.set_defaults(func=_explain)
