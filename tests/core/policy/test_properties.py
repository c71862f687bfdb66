"""Property-based: mutations never verify, evaluation never raises, Cedar agrees.

Cedar (cedarpy) is the oracle for single-priority rule sets: permit/forbid with
forbid-overrides and default deny is exactly our semantics when all rules share one
priority. Facts in the differential test are all known and well-typed (Cedar's
left-to-right error short-circuit differs from our three-valued logic only on unknowns,
which the unit tests pin down separately).
"""

from __future__ import annotations

import contextlib
import math

import cedarpy
import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.policy.api import AccessRequest, AppIdentity, Effect
from core.policy.engine import PolicyEngine
from core.policy.errors import BundleRejected, BundleSignatureError
from core.policy.verify import verify_bundle
from core.wire.policy import (
    AllOf,
    AnyOf,
    AppMatch,
    BundleFormatError,
    Condition,
    FactCondition,
    NotOf,
    PolicyBundle,
    RefOf,
    Rule,
    UserInfo,
    decode_bundle,
    encode_bundle,
)
from core.wire.signing import b64url, b64url_decode
from tests.core.policy import cedar
from tests.core.policy.helpers import DEVICE, KEYS, NOW, bundle, fact, rule, token

pytestmark = pytest.mark.unit

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- signatures -----------------------------------------------------------------------

RICH = bundle(
    rule("a", priority=3, conditions=fact("posture.disk.encrypted", "eq", True)),
    rule("b", "deny", resources=("*",), conditions=fact("risk", "gt", 50)),
    rule("c", resources=("db", "wiki"), apps=(AppMatch(name="psql"),)),
    version=5,
)
RICH_TOKEN = token(RICH)


def _verify(tok: str) -> PolicyBundle:
    return verify_bundle(tok, KEYS, device_id=DEVICE, now=NOW)


@SETTINGS
@given(st.data())
def test_mutated_payload_never_verifies(data: st.DataObject) -> None:
    head, payload, sig = RICH_TOKEN.split(".")
    raw = bytearray(b64url_decode(payload))
    i = data.draw(st.integers(0, len(raw) - 1), label="index")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[i]), label="byte")
    raw[i] = new
    with pytest.raises(BundleRejected):
        _verify(f"{head}.{b64url(bytes(raw))}.{sig}")


@SETTINGS
@given(st.data())
def test_structurally_mutated_bundle_never_verifies(data: st.DataObject) -> None:
    head, _payload, sig = RICH_TOKEN.split(".")
    doc = msgspec.json.decode(encode_bundle(RICH))
    field = data.draw(st.sampled_from(["version", "device_id", "expires_at", "rules", "user"]))
    if field == "rules":
        doc["rules"].append({"id": "evil", "effect": "allow", "resources": ["*"]})
    elif field == "user":
        doc["user"]["groups"].append("admins")
    elif field == "device_id":
        doc["device_id"] = data.draw(st.sampled_from(["dev-2", "DEV-1", "dev-1 "]))
    else:
        doc[field] = doc[field] + data.draw(st.integers(1, 10**6))
    with pytest.raises(BundleSignatureError):
        _verify(f"{head}.{b64url(msgspec.json.encode(doc))}.{sig}")


@SETTINGS
@given(st.integers(0, len(RICH_TOKEN) - 1), st.characters(codec="ascii"))
def test_any_character_change_is_refused_or_changes_nothing(i: int, ch: str) -> None:
    assume(RICH_TOKEN[i] != ch)
    mutated = RICH_TOKEN[:i] + ch + RICH_TOKEN[i + 1 :]
    try:
        got = _verify(mutated)
    except BundleRejected:
        return
    # base64url's last character carries spare bits: a change there may decode to the
    # very same bytes. Accepted only if nothing signed changed.
    assert got == RICH


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@SETTINGS
@given(st.data())
def test_random_payloads_decode_or_fail_cleanly(data: st.DataObject) -> None:
    doc = msgspec.json.decode(encode_bundle(RICH))
    path_choice = data.draw(
        st.sampled_from(["top", "rule", "resource", "condition", "user", "tunnel"])
    )
    junk = data.draw(json_values)
    key = data.draw(st.sampled_from(["id", "op", "value", "kind", "of", "hosts", "x", "ports"]))
    target = {
        "top": doc,
        "rule": doc["rules"][0],
        "resource": doc["resources"][0],
        "condition": doc["rules"][0]["conditions"],
        "user": doc["user"],
        "tunnel": doc,
    }[path_choice]
    target[key] = junk
    with contextlib.suppress(BundleFormatError):
        decode_bundle(msgspec.json.encode(doc))


# --- evaluation never raises ------------------------------------------------------------

ANY_FACT = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.lists(st.text(max_size=5) | st.integers(), max_size=4)
    | st.just(math.nan)
    | st.just("x" * 5000)
)
FACT_NAMES = [
    "posture.disk.encrypted",
    "posture.os.version",
    "posture.screen_lock.timeout_s",
    "posture.av.products",
    "posture.ip",
    "user.groups",
    "risk",
]

ALL_OPS = AllOf(
    of=(
        AnyOf(
            of=(
                fact("posture.disk.encrypted", "eq", True),
                fact("posture.os.version", "version_gte", "14.2"),
                fact("posture.os.version", "regex", "[0-9]{1,4}(\\.[0-9]{1,4}){0,5}"),
                fact("posture.av.products", "glob", "Crowd*"),
                fact("posture.ip", "cidr", "10.0.0.0/8"),
            )
        ),
        NotOf(of=fact("posture.screen_lock.timeout_s", "gt", 600)),
        fact("user.groups", "not_in", ["contractors"]),
        AnyOf(of=(fact("posture.av.products", "not_empty"), fact("risk", "lte", 30))),
        fact("posture.disk.encrypted", "exists"),
        fact("posture.os.version", "ne", "13"),
        fact("posture.screen_lock.timeout_s", "in", [60, 300]),
    )
)
EVAL_BUNDLE = bundle(
    rule("all", priority=1, resources=("*",), conditions=ALL_OPS, max_risk=70),
    rule("deny", "deny", priority=1, resources=("db",), conditions=fact("risk", "gte", 90)),
    rule("base", resources=("wiki",)),
)


@SETTINGS
@given(
    st.dictionaries(st.sampled_from(FACT_NAMES), ANY_FACT, max_size=7),
    st.text(max_size=30) | st.sampled_from(["git.corp.example", "10.20.0.1", "fd00:20::1"]),
    st.integers(-5, 70000),
    st.sampled_from(["tcp", "udp", "sctp", ""]),
    st.lists(st.text(max_size=20) | st.sampled_from(["10.20.1.1", "::1"]), max_size=3),
    st.text(max_size=20),
)
def test_evaluation_never_raises(
    facts: dict[str, object],
    host: str,
    port: int,
    protocol: str,
    addresses: list[str],
    exe: str,
) -> None:
    engine = PolicyEngine(clock=lambda: NOW)
    engine.load(EVAL_BUNDLE)
    engine.set_facts(facts)
    request = AccessRequest(
        app=AppIdentity(None, None, exe, exe),
        host=host,
        port=port,
        protocol=protocol,
        addresses=tuple(addresses),
    )
    for decision in (engine.decide(request), engine.explain(request), engine.decide(request)):
        assert "internal policy error" not in decision.reason
        assert 0 <= decision.risk <= 100
        assert 0.0 <= decision.confidence <= 1.0
    engine.reachable()


# --- differential against Cedar ---------------------------------------------------------

BOOL_FACTS = ["posture.disk.encrypted", "posture.firewall.enabled"]
INT_FACTS = ["posture.screen_lock.timeout_s", "risk"]
STR_FACTS = ["posture.os.name", "user.email"]
WORDS = ["linux", "macos", "windows", "eng", "ops", "hr", "alice@corp.example"]
GROUPS = ["eng", "ops", "hr", "contractors"]


def leaf() -> st.SearchStrategy[FactCondition]:
    return st.one_of(
        st.builds(
            lambda f, op, v: FactCondition(fact=f, op=op, value=v),
            st.sampled_from(BOOL_FACTS),
            st.sampled_from(["eq", "ne"]),
            st.booleans(),
        ),
        st.builds(
            lambda f, op, v: FactCondition(fact=f, op=op, value=v),
            st.sampled_from(INT_FACTS),
            st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
            st.integers(0, 700),
        ),
        st.builds(
            lambda f, op, v: FactCondition(fact=f, op=op, value=v),
            st.sampled_from(INT_FACTS),
            st.sampled_from(["in", "not_in"]),
            st.lists(st.integers(0, 700), max_size=3),
        ),
        st.builds(
            lambda f, op, v: FactCondition(fact=f, op=op, value=v),
            st.sampled_from(STR_FACTS),
            st.sampled_from(["eq", "ne"]),
            st.sampled_from(WORDS),
        ),
        st.builds(
            lambda f, op, v: FactCondition(fact=f, op=op, value=v),
            st.sampled_from(STR_FACTS),
            st.sampled_from(["in", "not_in"]),
            st.lists(st.sampled_from(WORDS), max_size=3),
        ),
        st.builds(
            lambda f, v: FactCondition(fact=f, op="glob", value=v),
            st.sampled_from(STR_FACTS),
            st.sampled_from(["*", "lin*", "*o*", "*@corp.example"]),
        ),
        st.builds(
            lambda op, v: FactCondition(fact="user.groups", op=op, value=v),
            st.sampled_from(["eq", "ne"]),
            st.sampled_from(GROUPS),
        ),
        st.builds(
            lambda op, v: FactCondition(fact="user.groups", op=op, value=v),
            st.sampled_from(["in", "not_in"]),
            st.lists(st.sampled_from(GROUPS), max_size=3),
        ),
        st.builds(
            lambda f, op: FactCondition(fact=f, op=op),
            st.sampled_from([*BOOL_FACTS, *STR_FACTS, "user.groups", "posture.missing"]),
            st.sampled_from(["exists", "not_empty"]).filter(lambda o: True),
        ).filter(
            lambda c: not (c.op == "not_empty" and c.fact in [*BOOL_FACTS, "posture.missing"])
        ),
    )


PROFILES: dict[str, Condition] = {
    "managed": AllOf(
        of=(
            FactCondition(fact="posture.disk.encrypted", op="eq", value=True),
            FactCondition(fact="posture.screen_lock.timeout_s", op="lte", value=600),
        )
    ),
    "linux": FactCondition(fact="posture.os.name", op="eq", value="linux"),
}

conditions: st.SearchStrategy[Condition] = st.recursive(
    leaf() | st.sampled_from([RefOf(profile="managed"), RefOf(profile="linux")]),
    lambda inner: st.one_of(
        st.builds(lambda xs: AllOf(of=tuple(xs)), st.lists(inner, max_size=3)),
        st.builds(lambda xs: AnyOf(of=tuple(xs)), st.lists(inner, max_size=3)),
        st.builds(lambda x: NotOf(of=x), inner),
    ),
    max_leaves=6,
)

APPS = [
    AppIdentity(1, 1, "/usr/bin/git", "git", "ab" * 32),
    AppIdentity(2, 1, "/usr/bin/psql", "psql"),
    AppIdentity(3, 1, "/opt/x/git", "git"),
]
APP_MATCHES = [
    AppMatch(exe="/usr/bin/git"),
    AppMatch(name="git"),
    AppMatch(name="psql"),
    AppMatch(sha256="ab" * 32),
    AppMatch(name="git", exe="/opt/x/git"),
]

rules_st = st.lists(
    st.builds(
        lambda effect, resources, apps, cond, max_risk: (effect, resources, apps, cond, max_risk),
        st.sampled_from(["allow", "deny"]),
        st.sampled_from([("git",), ("db",), ("wiki",), ("git", "db"), ("*",)]),
        st.lists(st.sampled_from(APP_MATCHES), max_size=2),
        st.none() | conditions,
        st.none() | st.integers(0, 60),
    ),
    max_size=8,
)

requests_st = st.builds(
    lambda app, dest, protocol: AccessRequest(
        app=app, host=dest[0], port=dest[1], protocol=protocol, addresses=dest[2]
    ),
    st.sampled_from(APPS),
    st.sampled_from(
        [
            ("git.corp.example", 22, ()),
            ("git.corp.example", 80, ()),
            ("a.b.git.corp.example", 443, ()),
            ("10.20.1.1", 5432, ()),
            ("db.corp.example", 5432, ("10.20.7.7",)),
            ("fd00:20::9", 5432, ()),
            ("wiki.corp.example", 8080, ()),
            ("nothing.example", 443, ()),
        ]
    ),
    st.sampled_from(["tcp", "udp"]),
)

facts_st = st.fixed_dictionaries(
    {
        **{f: st.booleans() for f in BOOL_FACTS},
        "posture.screen_lock.timeout_s": st.integers(0, 700),
        "posture.os.name": st.sampled_from(WORDS),
    }
)


@SETTINGS
@given(
    rules_st,
    st.lists(requests_st, min_size=1, max_size=4),
    facts_st,
    st.lists(st.sampled_from(GROUPS), max_size=3, unique=True),
)
def test_same_decisions_as_cedar(
    rule_specs: list[tuple[object, ...]],
    requests: list[AccessRequest],
    facts: dict[str, object],
    groups: list[str],
) -> None:
    rules = tuple(
        Rule(
            id=f"r{i}",
            effect=effect,
            resources=resources,
            apps=tuple(apps),  # type: ignore[arg-type]
            conditions=cond,
            max_risk=max_risk,  # type: ignore[arg-type]
        )
        for i, (effect, resources, apps, cond, max_risk) in enumerate(rule_specs)
    )
    b = bundle(
        *rules,
        user=UserInfo(subject="u", email="alice@corp.example", groups=tuple(groups)),
        profiles=PROFILES,
    )
    b = decode_bundle(encode_bundle(b))  # exactly what a client would hold
    engine = PolicyEngine(clock=lambda: NOW, record=False)
    engine.load(b)
    engine.set_facts(facts)
    policy_set = cedar.policies(b)
    for request in requests:
        ours = engine.decide(request)
        ctx = cedar.context(
            request,
            {**facts, "user.groups": groups, "user.email": "alice@corp.example"},
            ours.risk,
        )
        theirs = cedarpy.is_authorized(cedar.request_dict(ctx), policy_set, [])
        assert not theirs.diagnostics.errors or theirs.decision is not None
        assert ours.allowed == theirs.allowed, (
            f"ours={ours.effect} rule={ours.rule_id} reason={ours.reason!r}\n"
            f"cedar={theirs.decision} errors={list(theirs.diagnostics.errors)}\n{policy_set}"
        )
        if ours.effect is Effect.DENY and ours.rule_id is not None:
            assert ours.rule_id in {r.id for r in rules if r.effect == "deny"}
