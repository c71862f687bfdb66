"""``rustronaut policy show`` and ``rustronaut policy explain``: the cached policy, offline.

Both read the last valid bundle the client cached (``core.policy.store.default_cache_path``,
on Linux ``$XDG_DATA_HOME/rustronaut/policy-bundle.json``; ``--cache`` overrides). The
token's signature is re-checked against the controller key cached with it (integrity of
the file; the running engine checks against the controller's live keys). ``explain``
runs the real policy engine on the bundle and prints the decision, the rule, the reason,
what to fix and which facts it used.

The facts ``explain`` uses (``--facts``):

- ``live`` (the default): the posture of the running Rustronaut, read through the local
  API (``core.engine.localapi``), with its risk score, so the answer is the one the proxy
  gives; when none runs (or it has no posture yet), this device's posture collected now;
- ``none``: no posture at all (every requirement on the device is unknown);
- ``FILE.json`` (``-`` for stdin): a JSON object of facts, ``{"posture.NAME": VALUE}``.

``--fact NAME=VALUE`` then sets one fact on top (repeatable). Every name must be a
posture fact (``posture.disk.encrypted``; ``disk.encrypted`` is read the same) and every
value JSON of the fact's kind (``true``, ``300``, ``"linux"``, ``["clamd"]``); anything
else is refused with exit code 2 before the policy is read.

Exit codes: 0 shown / allowed, 1 denied, 2 usage error (a bad target, fact name or
value), 3 no usable cached policy. Errors go to stderr.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import ipaddress
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from core.engine.state import PostureItem
from core.policy.api import AccessRequest, AppIdentity, Decision
from core.policy.engine import PolicyEngine
from core.policy.errors import PolicyCacheError
from core.policy.risk import RiskTracker
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
from core.wire.posture import CLIENT_FACTS, FACTS, Fact, fact_spec, facts_for_policy
from core.wire.signing import SignatureError, public_key_from_jwk, verify

__all__ = [
    "FactError",
    "FactSet",
    "check_fact",
    "facts_from_items",
    "live_facts",
    "load_cached_bundle",
    "parse_fact",
    "parse_target",
    "read_facts_file",
    "register",
    "render_condition",
]

_USAGE = 2
_NO_POLICY = 3
_MAX_HASH_BYTES = 512 * 1024 * 1024
_MAX_FACTS_BYTES = 1024 * 1024
_PREFIX = "posture."
#: What a value of each fact kind is written as (in the refusal of a wrong one).
_KIND_WORDS = {
    "bool": "true or false",
    "int": "a whole number, e.g. 300",
    "str": 'a string in double quotes, e.g. "linux"',
    "list": 'a list of strings, e.g. ["clamd"]',
}
#: Facts the policy engine computes itself (``core.policy.engine.base_facts``).
_ENGINE_FACTS = ("user.", "time.", "risk")


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


class FactError(ValueError):
    """A fact name or value ``explain`` cannot use; the message says what to write."""


def check_fact(name: str, value: object) -> tuple[str, object]:
    """``(policy name, value)`` for an assumed fact; raises :class:`FactError` when the
    name is not a posture fact or the value not of its kind. Pure.

    ``disk.encrypted`` and ``posture.disk.encrypted`` name the same fact; user, time and
    risk facts are refused (the policy engine computes them, an assumption would be
    silently overwritten).
    """
    if name.startswith(_ENGINE_FACTS) and not name.startswith(_PREFIX):
        raise FactError(
            f"'{name}' cannot be assumed: the policy engine takes it from the signed-in "
            "user, the clock or the risk score. Only posture facts can be set."
        )
    bare = name.removeprefix(_PREFIX)
    spec = fact_spec(bare)
    if spec is None:
        close = difflib.get_close_matches(bare, [*FACTS, *CLIENT_FACTS], n=1)
        hint = f" Did you mean '{_PREFIX}{close[0]}'?" if close else ""
        raise FactError(
            f"'{name}' is not a posture fact.{hint} 'rustronaut posture' lists this device's facts."
        )
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "list": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[spec.kind]
    if not ok:
        raise FactError(
            f"'{_PREFIX}{bare}' takes {_KIND_WORDS[spec.kind]}, not {json.dumps(value)}."
        )
    return _PREFIX + bare, value


def parse_fact(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` (``--fact``) → a checked fact; the value must be JSON.

    Raises :class:`FactError`. A bare word is refused rather than taken as a string, so a
    typo (``=ture``) never turns silently into an unmet requirement.
    """
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise FactError(f"--fact takes NAME=VALUE, e.g. posture.disk.encrypted=true; not {text!r}.")
    try:
        value: object = json.loads(raw)
    except ValueError:
        raise FactError(
            f"the value of '{name}' is not JSON: {raw!r}. Write true or false, a number, "
            f"or a string in double quotes: --fact '{name}=\"{raw}\"'."
        ) from None
    return check_fact(name, value)


def read_facts_file(data: bytes, where: str) -> dict[str, object]:
    """A ``--facts`` file: a JSON object of fact names to values, each checked.

    Raises :class:`FactError` naming ``where`` (the file) for anything else.
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FactError(f"{where} is not JSON ({exc}).") from None
    if not isinstance(doc, dict):
        raise FactError(f'{where} must hold a JSON object: {{"posture.NAME": VALUE, ...}}.')
    facts: dict[str, object] = {}
    for name, value in doc.items():
        try:
            key, checked = check_fact(name, value)
        except FactError as exc:
            raise FactError(f"{where}: {exc}") from None
        facts[key] = checked
    return facts


def _shown_value(item: PostureItem, kind: str) -> object:
    """The typed value of a posture item the engine shows (its value is display text);
    ``None`` when it cannot be read back. For yes/no facts the words the window uses are
    read, else its pass/fail."""
    text = item.value.strip()
    if kind == "bool":
        words = text.lower()
        if words in ("yes", "true"):
            return True
        if words in ("no", "false"):
            return False
        return {"pass": True, "fail": False}.get(item.status)
    if kind == "int":
        return int(text) if text.lstrip("-").isdigit() else None
    if kind == "list":
        return [] if text.lower() in ("", "none", "(none)") else text.split(", ")
    return text


def facts_from_items(items: Iterable[PostureItem]) -> dict[str, object]:
    """The policy facts (``posture.NAME``) of the running engine's posture items.

    Unknown facts are left out, as ``facts_for_policy`` leaves them out in the engine;
    so are names that are no posture fact and values that cannot be read back. Pure.
    """
    facts: dict[str, object] = {}
    for item in items:
        spec = fact_spec(item.name)
        if item.status == "unknown" or spec is None:
            continue
        value = _shown_value(item, spec.kind)
        if value is not None:
            facts[_PREFIX + item.name] = value
    return facts


@dataclass(frozen=True, slots=True)
class FactSet:
    """The facts a decision is explained with, and where they came from.

    ``source``: ``engine`` (the running Rustronaut), ``collected`` (this device, now),
    ``file``, ``none``. ``risk``: the running engine's risk score, when it was asked.
    ``note``: why the live posture could not come from the engine (else empty).
    ``given``: the names assumed with ``--fact``; ``known``: how many facts the source
    itself gave.
    """

    facts: dict[str, object]
    source: str
    where: str = ""
    risk: int | None = None
    note: str = ""
    given: tuple[str, ...] = field(default=())
    known: int = 0

    def describe(self) -> str:
        """One line: where the facts come from (for the output)."""
        count = f"{self.known} fact{'' if self.known == 1 else 's'}"
        words = {
            "engine": f"the running Rustronaut's posture ({count} known)",
            "collected": f"this device's posture, collected now ({count} known)",
            "file": f"{self.where} ({count})",
            "none": "none (--facts none): every posture fact not assumed is unknown",
        }[self.source]
        if self.note:
            words += f"; {self.note}"
        if self.given:
            words += f"; assumed with --fact: {', '.join(self.given)}"
        return words


async def _engine_posture() -> tuple[tuple[PostureItem, ...], int] | None:
    """The running engine's posture items and risk score (local API); None when none
    runs or it cannot be asked."""
    from core.engine.localapi.client import RemoteEngine
    from core.engine.localapi.errors import LocalApiError

    try:
        engine = await RemoteEngine.attach(client="cli")
    except LocalApiError:
        return None
    try:
        snap = engine.snapshot
        return snap.posture, snap.risk
    finally:
        await engine.stop()


async def _collect_now() -> Mapping[str, Fact]:
    """This device's posture, collected now with the engine's configuration."""
    from core import __version__, settings
    from core.posture import CollectContext, PostureConfig, SubprocessRunner, collect
    from core.posture.factory import collectors_for, current_os

    try:
        current = settings.load()
        config = PostureConfig.create(
            processes=current.posture_required_processes,
            files=current.posture_required_files,
            client_version=__version__,
        )
    except Exception:  # unreadable settings: the built-in checks still say something
        config = PostureConfig.create(client_version=__version__)
    ctx = CollectContext(runner=SubprocessRunner(), config=config, timeout_s=5.0)
    return await collect(collectors_for(current_os()), ctx)


async def live_facts() -> FactSet:
    """The facts the proxy decides with now: the running engine's, else collected now."""
    found = await _engine_posture()
    if found is not None and found[0]:
        items, risk = found
        facts = facts_from_items(items)
        return FactSet(facts, "engine", risk=risk, known=len(facts))
    note = "Rustronaut is not running" if found is None else "Rustronaut has no posture yet"
    facts = facts_for_policy(await _collect_now())
    return FactSet(facts, "collected", note=note, known=len(facts))


def _read_source(source: str) -> bytes:
    """The bytes of a ``--facts`` file (``-``: stdin), at most 1 MiB. Raises FactError."""
    where = "standard input" if source == "-" else source
    try:
        if source == "-":
            data = sys.stdin.buffer.read(_MAX_FACTS_BYTES + 1)
        else:
            with open(source, "rb") as fh:
                data = fh.read(_MAX_FACTS_BYTES + 1)
    except OSError as exc:
        raise FactError(f"cannot read {source}: {exc.strerror or exc}.") from None
    if len(data) > _MAX_FACTS_BYTES:
        raise FactError(f"{where} is larger than 1 MiB: not a facts file.")
    return data


async def _facts(args: argparse.Namespace) -> FactSet:
    """The facts of ``--facts`` with ``--fact`` on top. Raises :class:`FactError`."""
    given = dict(parse_fact(text) for text in args.fact)  # checked before any I/O
    source = args.facts
    if source == "live":
        base = await live_facts()
    elif source == "none":
        base = FactSet({}, "none")
    else:
        where = "standard input" if source == "-" else source
        base = FactSet(read_facts_file(_read_source(source), where), "file", where=where)
    return FactSet(
        {**base.facts, **given},
        base.source,
        where=base.where,
        risk=base.risk,
        note=base.note,
        given=tuple(given),
        known=len(base.facts),
    )


class _FixedRisk(RiskTracker):
    """A risk tracker that reads the running engine's score (its signals live there)."""

    def __init__(self, score: int) -> None:
        super().__init__()
        self._fixed = float(score)

    def score(self, now: float | None = None) -> float:
        """The running engine's score, whatever the time."""
        return self._fixed


def _error(text: object) -> None:
    print(f"rustronaut policy: error: {safe_line(text)}", file=sys.stderr)


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
        _error(exc)
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


def _decision_json(decision: Decision, facts: FactSet) -> dict[str, Any]:
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
        "facts": {
            "source": facts.source,
            "note": facts.note,
            "assumed": list(facts.given),
            "values": facts.facts,
        },
    }


async def _explain(args: argparse.Namespace) -> int:
    try:
        host, port = parse_target(args.to)
        addresses = tuple(str(ipaddress.ip_address(a)) for a in args.address)
        for text in args.fact:  # refused before the policy is read or posture collected
            parse_fact(text)
    except ValueError as exc:  # FactError is one
        _error(exc)
        return _USAGE
    path = Path(args.cache) if args.cache else default_cache_path()
    try:
        bundle, _kid = load_cached_bundle(path)
    except _CliError as exc:
        _error(exc)
        return _NO_POLICY
    try:
        facts = await _facts(args)
    except FactError as exc:
        _error(exc)
        return _USAGE
    # The running engine's risk when it was asked; else the risk the posture alone
    # carries (behavioural signals live only in the running engine).
    engine = PolicyEngine(
        record=False, tracker=None if facts.risk is None else _FixedRisk(facts.risk)
    )
    engine.load(bundle)
    engine.set_facts(facts.facts)
    if facts.risk is None:
        engine.tracker.set_posture(facts.facts)
    request = AccessRequest(
        app=_app_identity(args.app),
        host=host,
        port=port,
        protocol="udp" if args.udp else "tcp",
        addresses=addresses,
    )
    decision = engine.explain(request)
    if args.json:
        print(safe_json(json.dumps(_decision_json(decision, facts), indent=2)))
    else:
        # Rule ids, resources, reasons and fixes are the controller's words: as text.
        print(f"Decision:   {decision.effect.value.upper()}")
        print(f"Rule:       {safe_line(decision.rule_id or 'none (default deny)')}")
        print(f"Resource:   {safe_line(decision.resource or '-')}")
        print(f"Reason:     {safe_line(decision.reason)}")
        print(f"Risk:       {decision.risk}/100    confidence {decision.confidence:.2f}")
        print(f"Facts:      {safe_line(facts.describe())}")
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
        "--facts",
        default="live",
        metavar="live|none|FILE",
        help="the posture to decide with: live (default: the running Rustronaut's, else "
        "collected now), none, or a JSON file of facts ('-' for stdin)",
    )
    ex.add_argument(
        "--fact",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="assume one posture fact, on top of --facts; VALUE is JSON "
        "(e.g. posture.disk.encrypted=true); repeatable",
    )
    ex.add_argument("--json", action="store_true", help="machine-readable output")
    ex.add_argument("--cache", help="cached bundle file (default: the client's cache)")
    ex.set_defaults(func=_explain)
