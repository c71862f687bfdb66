"""The signed policy bundle: one definition shared by the controller (signs) and the client.

A bundle is a JSON document signed as an Ed25519 JWS with ``typ`` ``rustronaut-policy+jws``
(:data:`BUNDLE_TYP`). It is bound to one device (``device_id``), valid in a time window
(``issued_at`` .. ``expires_at``, unix seconds) and carries a ``version`` that only ever
grows, so the client can refuse a replayed older bundle. It holds the user it was issued
for, the resources (hosts, ``*.`` wildcard domains, CIDRs, ports, protocols), the rules
(priority, allow/deny, resources, apps, conditions on facts, maximum risk, remediation
texts), the risk settings and the WireGuard tunnel spec.

Shape of a condition (a tree, at most :data:`MAX_DEPTH` deep)::

    {"kind": "fact", "fact": "posture.disk.encrypted", "op": "eq", "value": true}
    {"kind": "all", "of": [<condition>, ...]}
    {"kind": "any", "of": [<condition>, ...]}
    {"kind": "not", "of": <condition>}
    {"kind": "ref", "profile": "managed-laptop"}     (a named condition in ``profiles``)

Operators (``op``) and the value each takes:

===============================================  ==========================================
``eq`` ``ne``                                     a scalar (on a list fact: contains / not)
``in`` ``not_in``                                 a list of scalars (list fact: any overlap)
``gt`` ``gte`` ``lt`` ``lte``                     a number
``version_eq`` ``version_ne`` ``version_gt``      a dotted version string ("14.2.1")
``version_gte`` ``version_lt`` ``version_lte``
``glob``                                          a shell pattern (``fnmatchcase``)
``regex``                                         an anchored (full-match) bounded regex
``cidr``                                          a network; the fact is an IP address
``exists``                                        nothing (or ``true``)
``not_empty``                                     nothing (or ``true``)
===============================================  ==========================================

Everything is size-capped: the token (:data:`MAX_BUNDLE_BYTES`), every list and every
string. :func:`decode_bundle` checks the schema and the cross-references (rules name
known resources, ids unique, CIDRs and host patterns parse, regexes are safe) so a bundle
that decodes is one the engine can compile.

Errors::

    BundleFormatError (ValueError)   the payload is not a valid bundle; message names
                                     the field (``$.rules[3].conditions.op``) and why
"""

from __future__ import annotations

import gc
import ipaddress
import re
import socket
import threading
from typing import Annotated, Any, Final, Literal

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from msgspec import Meta

from core.wire.canonical import CanonicalJsonError, check_canonical, check_depth
from core.wire.signing import sign
from wg_backends.spec import TunnelSpec

__all__ = [
    "BUNDLE_TYP",
    "MAX_BUNDLE_BYTES",
    "MAX_DEPTH",
    "OPERATORS",
    "AllOf",
    "AnyOf",
    "AppMatch",
    "BundleFormatError",
    "Condition",
    "FactCondition",
    "NotOf",
    "PolicyBundle",
    "PortRange",
    "RefOf",
    "Resource",
    "RiskSettings",
    "Rule",
    "UserInfo",
    "check_regex",
    "condition_depth",
    "decode_bundle",
    "encode_bundle",
    "sign_bundle",
]

BUNDLE_TYP: Final = "rustronaut-policy+jws"
"""JWS ``typ`` of a policy bundle: a token of another kind is never taken for a bundle."""

MAX_BUNDLE_BYTES: Final = 32 * 1024 * 1024
"""Upper bound for a signed bundle (a 10,000-rule bundle is about 3 MB)."""


MAX_DEPTH: Final = 12
"""Deepest condition tree accepted (``all``/``any``/``not`` nesting)."""

MAX_REGEX: Final = 256
"""Longest regex or glob pattern accepted in a condition."""

_MAX_RULES = 50_000
_MAX_RESOURCES = 50_000
_MAX_LIST = 1024
_MAX_STR = 1024

# Ids are checked for their characters in one regex pass over all of them (see
# _check_ids): a per-string ``pattern`` costs more than the rest of decoding.
Id = Annotated[str, Meta(min_length=1, max_length=128)]
ResourceRef = Annotated[str, Meta(min_length=1, max_length=128)]  # a resource id or "*"
Text = Annotated[str, Meta(max_length=_MAX_STR)]
LongText = Annotated[str, Meta(max_length=4096)]
# Posture process/file checks carry paths and process names: any printable text.
FactName = Annotated[str, Meta(min_length=1, max_length=512)]  # printable: checked in hooks
Port = Annotated[int, Meta(ge=0, le=65535)]
Scalar = str | int | float | bool
Timestamp = Annotated[int, Meta(ge=0, le=2**40)]

OPERATORS: Final = (
    "eq",
    "ne",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "version_eq",
    "version_ne",
    "version_gt",
    "version_gte",
    "version_lt",
    "version_lte",
    "glob",
    "regex",
    "cidr",
    "exists",
    "not_empty",
)
Operator = Literal[
    "eq",
    "ne",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "version_eq",
    "version_ne",
    "version_gt",
    "version_gte",
    "version_lt",
    "version_lte",
    "glob",
    "regex",
    "cidr",
    "exists",
    "not_empty",
]

# Labels of 1-63 [a-z0-9_-]; the "no hyphen at a label's edge" rule is checked with
# string operations (see _is_host_pattern): a regex doing both backtracks and is 3x slower.
_HOST_RE = re.compile(r"(?:\*\.)?[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")
_VERSION_RE = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,9}){0,5}$")


class BundleFormatError(ValueError):
    """The payload is not a valid policy bundle; the message names the field and why."""


# --- conditions -----------------------------------------------------------------------


class FactCondition(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    gc=False,
    tag_field="kind",
    tag="fact",
):
    """A test of one fact (``posture.*``, ``user.groups``, ``user.email``, ``time.hour``,
    ``time.weekday``, ``risk``) against ``value`` with ``op``.

    A fact that is unknown (absent or marked unknown) never satisfies a condition, not
    even ``ne`` or ``not_in``: unknown is not false. ``remediation`` is the text shown
    when this condition is unmet (else the rule's, else a default per fact).
    """

    fact: FactName
    op: Operator
    value: (
        Annotated[str, Meta(max_length=_MAX_STR)]
        | int
        | float
        | bool
        | Annotated[list[Scalar], Meta(max_length=_MAX_LIST)]
        | None
    ) = None
    remediation: Text = ""

    def __post_init__(self) -> None:
        if not self.fact.isprintable():
            raise ValueError(f"fact name {self.fact!r} has control characters")
        # The two commonest shapes are accepted inline (runs once per condition of every
        # bundle received); everything else, and every refusal, via the full check.
        op = self.op
        if op == "eq" and self.value is not None and not isinstance(self.value, list):
            return
        if op == "in" and isinstance(self.value, list):
            return
        _check_condition_value(op, self.value)


class AllOf(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    gc=False,
    tag_field="kind",
    tag="all",
):
    """True when every member is true (true when empty)."""

    of: Annotated[tuple[Condition, ...], Meta(max_length=256)]


class AnyOf(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    gc=False,
    tag_field="kind",
    tag="any",
):
    """True when at least one member is true (false when empty)."""

    of: Annotated[tuple[Condition, ...], Meta(max_length=256)]


class NotOf(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    gc=False,
    tag_field="kind",
    tag="not",
):
    """True when the member is false. An unknown fact inside stays unmet (not negated)."""

    of: Condition


class RefOf(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    gc=False,
    tag_field="kind",
    tag="ref",
):
    """The bundle's named condition ``profile`` (``profiles``), e.g. a posture profile
    "managed-laptop" shared by many rules: written once, compiled once."""

    profile: Id


Condition = FactCondition | AllOf | AnyOf | NotOf | RefOf


def _check_condition_value(op: str, value: object) -> None:
    """Raise ``ValueError`` (msgspec turns it into a located ``ValidationError``)."""
    if op in ("eq", "ne"):
        if value is None or isinstance(value, list):
            raise ValueError(f"operator {op!r} needs a single value (string, number, bool)")
    elif op in ("in", "not_in"):
        if not isinstance(value, list):
            raise ValueError(f"operator {op!r} needs a list value")
    elif op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"operator {op!r} needs a number")
    elif op.startswith("version_"):
        if not isinstance(value, str) or not _VERSION_RE.match(value):
            raise ValueError(f"operator {op!r} needs a dotted version like '14.2.1'")
    elif op == "glob":
        if not isinstance(value, str) or len(value) > MAX_REGEX:
            raise ValueError(f"operator 'glob' needs a pattern of at most {MAX_REGEX} chars")
    elif op == "regex":
        if not isinstance(value, str):
            raise ValueError("operator 'regex' needs a string pattern")
        check_regex(value)
    elif op == "cidr":
        if not isinstance(value, str):
            raise ValueError("operator 'cidr' needs a network like '10.0.0.0/8'")
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"operator 'cidr': {exc}") from None
    elif op in ("exists", "not_empty") and value not in (None, True):
        raise ValueError(f"operator {op!r} takes no value (or true)")


_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def check_regex(pattern: str) -> re.Pattern[str]:
    """Check that ``pattern`` is a safe condition regex and return it compiled.

    Safe means: at most :data:`MAX_REGEX` characters, no back-references, no look-around,
    and no unbounded repeat around another repeat or an alternation — the shapes behind
    catastrophic backtracking (``(a+)+``, ``(a|a)*``). Raises ``ValueError`` naming the
    problem. Pure; any thread.
    """
    if len(pattern) > MAX_REGEX:
        raise ValueError(f"regex is {len(pattern)} chars, over the {MAX_REGEX} limit")
    try:
        from re import _parser  # type: ignore[attr-defined]  # stdlib parser, stable in 3.11+

        tree = _parser.parse(pattern)
        compiled = re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"regex does not compile: {exc}") from None
    _walk_regex(tree, inside_repeat=False)
    return compiled


def _walk_regex(items: Any, *, inside_repeat: bool) -> None:
    for op, arg in items:
        name = str(op)
        if name in ("GROUPREF", "GROUPREF_EXISTS"):
            raise ValueError("regex back-references are not allowed")
        if name in ("ASSERT", "ASSERT_NOT"):
            raise ValueError("regex look-around is not allowed")
        if name in _REPEATS:
            _low, high, sub = arg
            unbounded = high > 100
            if inside_repeat and unbounded:
                raise ValueError("regex has a nested unbounded repeat (catastrophic backtracking)")
            _walk_regex(sub, inside_repeat=inside_repeat or unbounded)
        elif name == "SUBPATTERN":
            _walk_regex(arg[-1], inside_repeat=inside_repeat)
        elif name == "ATOMIC_GROUP":
            _walk_regex(arg, inside_repeat=inside_repeat)
        elif name == "BRANCH":
            if inside_repeat:
                raise ValueError("regex has an alternation inside an unbounded repeat")
            for branch in arg[1]:
                _walk_regex(branch, inside_repeat=inside_repeat)


def condition_depth(cond: Condition, refs: set[str] | None = None) -> int:
    """Depth of a condition tree (a single test is 1), counted no further than
    ``MAX_DEPTH + 1`` (so it never recurses deeper than that). Profile names it refers
    to are added to ``refs`` when given."""
    return _depth(cond, 1, refs if refs is not None else set())


def _depth(cond: Condition, depth: int, refs: set[str]) -> int:
    # type() identity instead of isinstance and leaves handled inline: this walk runs
    # over every rule of every bundle received.
    kind = type(cond)
    if kind is FactCondition or depth > MAX_DEPTH:
        return depth
    if kind is RefOf:
        refs.add(cond.profile)  # type: ignore[union-attr]
        return depth
    if kind is NotOf:
        return _depth(cond.of, depth + 1, refs)  # type: ignore[union-attr, arg-type]
    deepest = depth
    for child in cond.of:  # type: ignore[union-attr]
        child_kind = type(child)
        if child_kind is FactCondition:
            d = depth + 1
        elif child_kind is RefOf:
            refs.add(child.profile)  # type: ignore[union-attr]
            d = depth + 1
        else:
            d = _depth(child, depth + 1, refs)
        if d > deepest:
            deepest = d
            if deepest > MAX_DEPTH:
                break
    return deepest


# --- resources, apps, rules -----------------------------------------------------------


class PortRange(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, gc=False
):
    """Ports ``first``..``last`` inclusive."""

    first: Port
    last: Port

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise ValueError(f"port range {self.first}-{self.last} is reversed")


class Resource(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, gc=False
):
    """Something the user may reach: names and/or networks, on some ports and protocols.

    ``hosts``: exact lower-case names or IP literals (``db.corp.example``), wildcard
    domains (``*.corp.example`` matches any name strictly under it) or ``*`` (any name).
    ``cidrs``: IPv4/IPv6 networks (host bits clear). ``ports``: single ports or ranges;
    empty means every port. ``protocols``: ``tcp`` and/or ``udp``.
    """

    id: Id
    name: Text
    hosts: Annotated[
        tuple[Annotated[str, Meta(max_length=253)], ...], Meta(max_length=_MAX_LIST)
    ] = ()
    cidrs: Annotated[
        tuple[Annotated[str, Meta(max_length=64)], ...], Meta(max_length=_MAX_LIST)
    ] = ()
    ports: Annotated[tuple[Port | PortRange, ...], Meta(max_length=_MAX_LIST)] = ()
    protocols: Annotated[tuple[Literal["tcp", "udp"], ...], Meta(min_length=1, max_length=2)] = (
        "tcp",
    )
    description: LongText = ""

    def __post_init__(self) -> None:
        if not self.hosts and not self.cidrs:
            raise ValueError(f"resource {self.id!r} has neither hosts nor cidrs")
        if getattr(_BATCH, "deferred", False):
            return  # decode_bundle checks every name and network after decoding, in bulk
        problem = _resource_problem(self)
        if problem is not None:
            raise ValueError(problem)


# While decode_bundle's decoder runs on this thread, Resource.__post_init__ leaves the
# host and CIDR checks to _check_resources, which does them for all resources in a few
# C-speed passes (per-resource Python checks were a third of decoding a large bundle).
_BATCH = threading.local()


def _resource_problem(res: Resource) -> str | None:
    """Why ``res`` has a bad host or CIDR, or None when they are all good."""
    for host in res.hosts:
        if not _is_host_pattern(host):
            return (
                f"resource {res.id!r}: {host!r} is not a lower-case host name, "
                "IP address, '*.domain' wildcard or '*'"
            )
    for cidr in res.cidrs:
        if not _fast_cidr_ok(cidr):
            try:
                ipaddress.ip_network(cidr, strict=True)
            except ValueError as exc:
                return f"resource {res.id!r}: bad CIDR: {exc}"
    return None


# Bulk forms of the checks, over all names (networks) joined by newlines. A match of
# these implies the per-item check passes; anything else takes the per-item path, so
# they decide nothing on their own. Strict IPv4 networks on octet boundaries (/8, /16,
# /24, /32, 0/0) are the common case; other prefix lengths and IPv6 go per item.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_NET4 = (
    rf"(?:{_OCTET}\.{_OCTET}\.{_OCTET}\.0/24|{_OCTET}\.{_OCTET}\.0\.0/16"
    rf"|{_OCTET}\.0\.0\.0/8|{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}/32|0\.0\.0\.0/0)"
)
_NETS_RE = re.compile(rf"(?:{_NET4}\n)*{_NET4}")
_HOST_CHARS = b"abcdefghijklmnopqrstuvwxyz0123456789_-.*\n"
_SEPARATORS_TO_DOT = bytes.maketrans(b"\n-", b"..")
_NEWLINE_TO_DOT = bytes.maketrans(b"\n", b".")
_BAD_STAR = re.compile(rb"\*[^.\n]")


def _bulk_nets_ok(cidrs: list[str]) -> bool:
    if not cidrs:
        return True
    joined = "\n".join(cidrs)
    # the count check stops an item that itself holds the separator from slipping through
    return joined.count("\n") == len(cidrs) - 1 and _NETS_RE.fullmatch(joined) is not None


def _bulk_hosts_ok(hosts: list[str]) -> bool:
    """What ``_is_host_pattern`` accepts by its name branch, for all ``hosts`` at once
    with byte-string scans (a regex over them all was the slowest check of a bundle)."""
    if not hosts:
        return True
    joined = "\n".join(hosts)
    if not joined.isascii():
        return False
    framed = b"\n" + joined.encode("ascii") + b"\n"
    if framed.translate(None, _HOST_CHARS) or framed.count(b"\n") != len(hosts) + 1:
        return False  # a character outside [a-z0-9_-.*], or a name holding a newline
    # An empty name or label, or a hyphen at a label's edge, is a pair of separators
    # once newlines are dots: first one search with hyphens as dots too, and only if
    # that finds something ("xn--" names) the three exact searches.
    if b".." in framed.translate(_SEPARATORS_TO_DOT):
        dotted = framed.translate(_NEWLINE_TO_DOT)
        if b".." in dotted or b".-" in dotted or b"-." in dotted:
            return False
    stars = framed.count(b"*")
    if stars and (framed.count(b"\n*") != stars or _BAD_STAR.search(framed)):
        return False  # a "*" that is neither a whole name nor a leading "*."
    if max(map(len, hosts)) > 63:  # only then can a label be longer than 63
        for host in hosts:
            if len(host) > 63 and max(map(len, host.split("."))) > 63:
                return False
    return True


def _check_resources(resources: tuple[Resource, ...]) -> None:
    """The host and CIDR checks of ``Resource.__post_init__`` for every resource.

    Raises ``BundleFormatError`` naming the first bad resource, in the same words.
    """
    hosts = [h for r in resources for h in r.hosts]
    cidrs = [c for r in resources for c in r.cidrs]
    if _bulk_hosts_ok(hosts) and _bulk_nets_ok(cidrs):
        return
    for i, res in enumerate(resources):
        problem = _resource_problem(res)
        if problem is not None:
            raise BundleFormatError(f"invalid bundle: {problem} - at `$.resources[{i}]`")


def _fast_cidr_ok(cidr: str) -> bool:
    """A strict network in ``a.b.c.d/n`` / ``v6/n`` form, checked without ``ipaddress``
    (40x faster; bundles carry thousands). False means "let ipaddress explain"."""
    addr, sep, plen_s = cidr.partition("/")
    if not sep or not plen_s.isdigit() or len(plen_s) > 3:
        return False
    family, bits = (socket.AF_INET6, 128) if ":" in addr else (socket.AF_INET, 32)
    try:
        value = int.from_bytes(socket.inet_pton(family, addr), "big")
    except (OSError, ValueError):
        return False
    plen = int(plen_s)
    return plen <= bits and not value & ((1 << (bits - plen)) - 1)


def _is_host_pattern(host: str) -> bool:
    if host == "*":
        return True
    if (
        _HOST_RE.fullmatch(host)
        and len(host) <= 253
        and host[0] != "-"
        and host[-1] != "-"
        and ".-" not in host
        and "-." not in host
    ):
        return True
    try:
        return str(ipaddress.ip_address(host)) == host
    except ValueError:
        return False


class AppMatch(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, gc=False
):
    """Which local programs a rule covers; every field given must match, none given = any.

    ``exe`` is an absolute path (exact), ``name`` a basename (exact, case-sensitive),
    ``sha256`` the lower-case hex digest of the executable.
    """

    exe: Annotated[str, Meta(max_length=4096)] | None = None
    name: Annotated[str, Meta(max_length=255)] | None = None
    sha256: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")] | None = None


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """One rule. Higher ``priority`` is considered first; at equal priority deny wins.

    ``resources`` are resource ids, or ``["*"]`` for every resource. ``apps`` empty
    means any app. ``conditions`` absent means always. ``max_risk`` (allow rules): the
    rule does not apply while the risk score is above it. ``remediation`` maps a fact
    name to the fix shown when a condition on it is unmet.
    """

    id: Id
    effect: Literal["allow", "deny"]
    resources: Annotated[tuple[ResourceRef, ...], Meta(min_length=1, max_length=_MAX_LIST)]
    priority: Annotated[int, Meta(ge=-1_000_000, le=1_000_000)] = 0
    apps: Annotated[tuple[AppMatch, ...], Meta(max_length=256)] = ()
    conditions: Condition | None = None
    max_risk: Annotated[int, Meta(ge=0, le=100)] | None = None
    remediation: Annotated[dict[FactName, Text], Meta(max_length=64)] = {}
    description: LongText = ""


class UserInfo(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, gc=False
):
    """The user the bundle was issued for (from the controller's view of the token)."""

    subject: Annotated[str, Meta(min_length=1, max_length=255)]
    email: Annotated[str, Meta(max_length=320)] = ""
    groups: Annotated[
        tuple[Annotated[str, Meta(max_length=255)], ...], Meta(max_length=_MAX_LIST)
    ] = ()


class RiskSettings(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, gc=False
):
    """How risk is scored. ``weights`` override the default signal weights by name
    (see ``core.policy.risk.DEFAULT_WEIGHTS``); ``posture_weights`` give the risk a
    failing (false) posture fact adds; ``half_life_s`` is the decay of behavioural signals.
    """

    weights: Annotated[
        dict[FactName, Annotated[float, Meta(ge=0, le=100)]], Meta(max_length=64)
    ] = {}
    posture_weights: Annotated[
        dict[FactName, Annotated[float, Meta(ge=0, le=100)]], Meta(max_length=256)
    ] = {}
    half_life_s: Annotated[float, Meta(gt=0, le=30 * 86400)] = 900.0


class PolicyBundle(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, gc=False
):
    """The whole signed document. ``tunnel`` is the WireGuard tunnel spec for this device
    without its private key (the device fills it); ``gateways`` optional failover specs.
    """

    version: Annotated[int, Meta(ge=1, le=2**53)]
    device_id: Id
    issued_at: Timestamp
    expires_at: Timestamp
    user: UserInfo
    resources: Annotated[tuple[Resource, ...], Meta(max_length=_MAX_RESOURCES)] = ()
    rules: Annotated[tuple[Rule, ...], Meta(max_length=_MAX_RULES)] = ()
    profiles: Annotated[dict[Id, Condition], Meta(max_length=256)] = {}
    risk: RiskSettings = RiskSettings()
    tunnel: TunnelSpec | None = None
    gateways: Annotated[tuple[TunnelSpec, ...], Meta(max_length=16)] = ()
    schema: Literal[1] = 1

    def __post_init__(self) -> None:
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at is not after issued_at")
        for spec in (self.tunnel, *self.gateways):
            if spec is not None and spec.private_key is not None:
                raise ValueError("a tunnel spec in a bundle must not carry a private key")


# --- encode / decode / sign -----------------------------------------------------------

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(PolicyBundle)


def encode_bundle(bundle: PolicyBundle) -> bytes:
    """The bundle as compact JSON bytes (the JWS payload). Pure; any thread."""
    return _ENCODER.encode(bundle)


def sign_bundle(bundle: PolicyBundle, key: Ed25519PrivateKey, kid: str | None = None) -> str:
    """Validate ``bundle`` (as the client will) and sign it: a JWS compact string.

    Raises ``BundleFormatError`` if the bundle would be refused by a client, so the
    controller never signs a broken document. Pure; any thread.
    """
    payload = encode_bundle(bundle)
    decode_bundle(payload)
    return sign(payload, key, typ=BUNDLE_TYP, kid=kid)


def decode_bundle(payload: bytes) -> PolicyBundle:
    """Parse and fully validate a bundle payload (already signature-checked or trusted).

    Raises ``BundleFormatError`` naming the field and the problem: nesting deeper than
    ``core.wire.canonical.MAX_JSON_DEPTH``, schema (types, unknown fields, sizes), not the
    canonical encoding (a key given twice, ``1.0`` or ``1e2`` or ``-0``, spacing: see
    ``core.wire.canonical``), condition depth, duplicate ids, rules naming unknown
    resources.
    """
    if len(payload) > MAX_BUNDLE_BYTES:
        raise BundleFormatError(f"bundle is {len(payload)} bytes, over {MAX_BUNDLE_BYTES}")
    try:
        check_depth(payload, what="bundle")
    except CanonicalJsonError as exc:
        raise BundleFormatError(str(exc)) from None
    # Decoding builds ~10 objects per rule; with the cyclic GC on, its collections rescan
    # the growing heap and dominate the time (the structs are gc=False trees, no cycles).
    # The checks after it allocate sets and lists over the whole bundle: paused as well.
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        bundle = _decode(payload)
        _check_resources(bundle.resources)
        _check_references(bundle)
        try:
            # One byte string per meaning: a key given twice, 1.0 for 1, 1e2 or -0 would
            # let two readers of the same signed bytes see different policies.
            check_canonical(payload, bundle, _ENCODER.encode, what="bundle")
        except CanonicalJsonError as exc:
            raise BundleFormatError(str(exc)) from None
    finally:
        if gc_was_on:
            gc.enable()
    return bundle


def _decode(payload: bytes) -> PolicyBundle:
    _BATCH.deferred = True
    try:
        return _DECODER.decode(payload)
    except msgspec.ValidationError as exc:
        raise BundleFormatError(f"invalid bundle: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BundleFormatError(f"bundle is not JSON: {exc}") from None
    except UnicodeDecodeError:
        raise BundleFormatError("bundle is not UTF-8 text") from None
    except RecursionError:
        raise BundleFormatError(f"bundle nests deeper than {MAX_DEPTH} levels") from None
    finally:
        _BATCH.deferred = False


_ID_CHARS = r"[A-Za-z0-9._:@/+-]+"
_ID_RE = re.compile(_ID_CHARS)
_ID_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@/+-"


def _check_ids(label: str, ids: list[str]) -> None:
    """All ``ids`` are non-empty and made of ``A-Za-z0-9._:@/+-``: a few C-speed byte
    scans over all of them, then a search for the culprit only when something is wrong."""
    joined = "\n".join(ids)
    if joined.isascii():
        framed = b"\n" + joined.encode("ascii") + b"\n"
        # the count check stops an id that itself holds the separator from slipping through
        if (
            not framed.translate(None, _ID_BYTES + b"\n")
            and framed.count(b"\n") == len(ids) + 1
            and b"\n\n" not in framed
        ):
            return
    for i, value in enumerate(ids):
        if not _ID_RE.fullmatch(value):
            raise BundleFormatError(
                f"{label}[{i}]: id {value!r} may only use letters, digits and ._:@/+-"
            )


def _check_references(bundle: PolicyBundle) -> None:
    res_ids = [r.id for r in bundle.resources]
    rule_ids = [r.id for r in bundle.rules]
    _check_ids("$.device_id", [bundle.device_id])
    _check_ids("$.resources", res_ids)
    _check_ids("$.rules", rule_ids)
    _check_ids("$.profiles", list(bundle.profiles))
    for name, cond in bundle.profiles.items():
        inner: set[str] = set()
        if condition_depth(cond, inner) > MAX_DEPTH:
            raise BundleFormatError(
                f"$.profiles.{name}: conditions nest deeper than {MAX_DEPTH} levels"
            )
        if inner:
            raise BundleFormatError(
                f"$.profiles.{name}: a profile may not refer to profiles ({sorted(inner)})"
            )
    # Fast path: every check at once over whole-bundle sets; only when one fails does
    # _find_bad_reference walk the rules in order to name the first culprit.
    ids = set(res_ids)
    named = {rid for rule in bundle.rules for rid in rule.resources}
    named.discard("*")
    refs: set[str] = set()
    depth_ok = True
    for rule in bundle.rules:
        top = rule.conditions
        kind = type(top)
        if kind is AllOf or kind is AnyOf:
            # the usual shape, all(fact, ref, ...), handled inline: one call less per rule
            for child in top.of:  # type: ignore[union-attr]
                child_kind = type(child)
                if child_kind is RefOf:
                    refs.add(child.profile)  # type: ignore[union-attr]
                elif child_kind is not FactCondition and _depth(child, 2, refs) > MAX_DEPTH:
                    depth_ok = False
                    break
        elif top is not None and kind is not FactCondition:
            depth_ok = _depth(top, 1, refs) <= MAX_DEPTH
        if not depth_ok:
            break
    if (
        depth_ok
        and len(ids) == len(res_ids)
        and len(set(rule_ids)) == len(rule_ids)
        and named <= ids
        and refs <= bundle.profiles.keys()
    ):
        return
    _find_bad_reference(bundle)


def _find_bad_reference(bundle: PolicyBundle) -> None:
    """Raise ``BundleFormatError`` for the first duplicate id, unknown resource or
    profile, or over-deep condition, in bundle order."""
    ids: set[str] = set()
    for i, res in enumerate(bundle.resources):
        if res.id in ids:
            raise BundleFormatError(f"$.resources[{i}]: duplicate resource id {res.id!r}")
        ids.add(res.id)
    rule_ids: set[str] = set()
    for i, rule in enumerate(bundle.rules):
        if rule.id in rule_ids:
            raise BundleFormatError(f"$.rules[{i}]: duplicate rule id {rule.id!r}")
        rule_ids.add(rule.id)
        for rid in rule.resources:
            if rid != "*" and rid not in ids:
                raise BundleFormatError(f"$.rules[{i}] ({rule.id}): unknown resource {rid!r}")
        if rule.conditions is not None:
            refs: set[str] = set()
            if condition_depth(rule.conditions, refs) > MAX_DEPTH:
                raise BundleFormatError(
                    f"$.rules[{i}] ({rule.id}): conditions nest deeper than {MAX_DEPTH} levels"
                )
            for name in refs:
                if name not in bundle.profiles:
                    raise BundleFormatError(
                        f"$.rules[{i}] ({rule.id}): unknown condition profile {name!r}"
                    )
