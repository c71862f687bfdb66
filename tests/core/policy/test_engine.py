"""PolicyEngine: deny by default, precedence, matching, explanations, cache, reachability."""

from __future__ import annotations

import ipaddress
import time

import pytest

from core.policy.api import AppIdentity, Effect
from core.policy.conditions import UNKNOWN_VALUE
from core.policy.engine import PolicyEngine, allowed_networks, reachable_resources
from core.policy.explain import DEFAULT_REMEDIATION, RISK_REMEDIATION
from core.policy.store import PolicyStore
from core.wire.policy import AllOf, AppMatch, PolicyBundle, Resource
from tests.core.policy.helpers import (
    APP,
    CURL,
    DEVICE,
    KEYS,
    NOW,
    bundle,
    fact,
    req,
    rule,
    token,
)

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def engine(b: PolicyBundle | None, clock: Clock | None = None, **facts: object) -> PolicyEngine:
    e = PolicyEngine(clock=clock or Clock(), record=False)
    e.load(b)
    e.set_facts({k.replace("__", "."): v for k, v in facts.items()})
    return e


def test_no_bundle_denies_everything() -> None:
    d = engine(None).decide(req())
    assert d.effect is Effect.DENY
    assert d.rule_id is None
    assert "no valid policy" in d.reason


def test_empty_bundle_denies_by_default() -> None:
    d = engine(bundle()).decide(req())
    assert not d.allowed
    assert d.rule_id is None
    assert d.reason == "no rule allows git to reach Git"


def test_unknown_destination_denied_naming_it() -> None:
    d = engine(bundle(rule("a"))).decide(req(host="evil.example", port=443))
    assert not d.allowed
    assert d.resource is None
    assert d.reason == "no resource in the policy covers evil.example:443/tcp"


def test_baseline_allow() -> None:
    d = engine(bundle(rule("base", priority=0))).decide(req())
    assert d.allowed
    assert d.rule_id == "base"
    assert d.resource == "git"
    assert d.reason == "allowed by rule base"
    assert d.confidence == 1.0


def test_deny_wins_at_equal_priority() -> None:
    b = bundle(rule("allow", priority=5), rule("deny", "deny", priority=5))
    d = engine(b).decide(req())
    assert d.effect is Effect.DENY
    assert d.rule_id == "deny"
    b2 = bundle(rule("deny", "deny", priority=5), rule("allow", priority=5))
    assert engine(b2).decide(req()).rule_id == "deny"  # order in the bundle is irrelevant


def test_higher_priority_wins() -> None:
    b = bundle(rule("deny-low", "deny", priority=1), rule("allow-high", priority=10))
    assert engine(b).decide(req()).rule_id == "allow-high"
    b = bundle(rule("allow-low", priority=1), rule("deny-high", "deny", priority=10))
    assert engine(b).decide(req()).rule_id == "deny-high"


def test_conditional_deny_above_baseline_allow() -> None:
    b = bundle(
        rule("base", priority=0),
        rule(
            "no-fw", "deny", priority=100, conditions=fact("posture.firewall.enabled", "eq", False)
        ),
    )
    assert engine(b, posture__firewall__enabled=True).decide(req()).rule_id == "base"
    d = engine(b, posture__firewall__enabled=False).decide(req())
    assert d.rule_id == "no-fw"
    assert not d.allowed
    assert d.unmet[0].fact == "posture.firewall.enabled"
    assert d.unmet[0].remediation == DEFAULT_REMEDIATION["posture.firewall.enabled"]


def test_unknown_fact_does_not_trigger_a_conditional_rule() -> None:
    b = bundle(
        rule("base", priority=0),
        rule("need-disk", priority=10, conditions=fact("posture.disk.encrypted", "eq", True)),
    )
    e = engine(b)
    d = e.decide(req())
    assert d.rule_id == "base"  # lower allow still applies
    assert d.confidence == 0.0  # the only fact it needed was unknown


def test_unmet_requirements_with_remediation_precedence() -> None:
    cond = AllOf(
        of=(
            fact("posture.disk.encrypted", "eq", True, remediation="Use BitLocker (IT KB-12)."),
            fact("posture.firewall.enabled", "eq", True),
            fact("posture.os.version", "version_gte", "14.4"),
            fact("user.groups", "eq", "eng"),
        )
    )
    b = bundle(rule("git", conditions=cond, remediation={"posture.firewall.enabled": "Rule text."}))
    d = engine(
        b,
        posture__disk__encrypted=False,
        posture__firewall__enabled=False,
        posture__os__version="13.1",
    ).decide(req())
    assert not d.allowed
    assert d.rule_id is None
    assert d.reason == (
        "Git needs disk encryption on — it is off; needs the firewall on — it is off; "
        "needs the operating system version 14.4 or newer — it is 13.1"
    )
    assert [(u.fact, u.requirement, u.remediation) for u in d.unmet] == [
        (
            "posture.disk.encrypted",
            "posture.disk.encrypted must be true (currently false)",
            "Use BitLocker (IT KB-12).",
        ),
        (
            "posture.firewall.enabled",
            "posture.firewall.enabled must be true (currently false)",
            "Rule text.",
        ),
        (
            "posture.os.version",
            'posture.os.version must be version "14.4" or newer (currently "13.1")',
            DEFAULT_REMEDIATION["posture.os.version"],
        ),
    ]
    assert d.confidence == 1.0


def test_unknown_posture_explained_as_unknown_and_lowers_confidence() -> None:
    cond = AllOf(of=(fact("posture.disk.encrypted", "eq", True), fact("user.groups", "eq", "eng")))
    d = engine(bundle(rule("git", conditions=cond)), posture__disk__encrypted=UNKNOWN_VALUE).decide(
        req()
    )
    assert not d.allowed
    (u,) = d.unmet
    assert u.requirement.endswith("(currently unknown)")
    assert "re-run the device check" in u.remediation
    assert d.confidence == 0.5


def test_stale_facts_lower_confidence_but_still_count() -> None:
    e = engine(bundle(rule("git", conditions=fact("posture.disk.encrypted", "eq", True))))
    e.set_facts({"posture.disk.encrypted": True}, stale={"posture.disk.encrypted"})
    d = e.decide(req())
    assert d.allowed
    assert d.confidence == 0.0


@pytest.mark.parametrize(
    ("apps", "app", "allowed"),
    [
        ((), CURL, True),
        ((AppMatch(exe="/usr/bin/git"),), APP, True),
        ((AppMatch(exe="/usr/bin/git"),), CURL, False),
        ((AppMatch(name="git"),), AppIdentity(1, 1, "/opt/git/bin/git", "git"), True),
        ((AppMatch(sha256="ab" * 32),), APP, True),
        ((AppMatch(name="git", sha256="cd" * 32),), APP, False),  # every field must match
        ((AppMatch(name="ssh"), AppMatch(name="git")), APP, True),
    ],
)
def test_app_matching(apps: tuple[AppMatch, ...], app: AppIdentity, allowed: bool) -> None:
    d = engine(bundle(rule("r", apps=apps))).decide(req(app=app))
    assert d.allowed is allowed


def test_app_specific_deny_only_hits_that_app() -> None:
    b = bundle(rule("base"), rule("no-curl", "deny", priority=5, apps=(AppMatch(name="curl"),)))
    assert engine(b).decide(req(app=APP)).allowed
    assert engine(b).decide(req(app=CURL)).rule_id == "no-curl"


@pytest.mark.parametrize(
    ("host", "port", "protocol", "addresses", "resource"),
    [
        ("git.corp.example", 22, "tcp", (), "git"),
        ("a.b.git.corp.example", 443, "tcp", (), "git"),  # wildcard, any depth
        ("git.corp.example", 8080, "tcp", (), None),  # port not listed
        ("git.corp.example", 22, "udp", (), None),  # protocol not listed
        ("xgit.corp.example", 22, "tcp", (), None),  # not a label boundary
        ("10.20.3.4", 5432, "tcp", (), "db"),  # CIDR v4
        ("fd00:20::7", 5432, "tcp", (), "db"),  # CIDR v6
        ("db.corp.example", 5432, "tcp", ("10.20.9.9",), "db"),  # resolved address
        ("db.corp.example", 5432, "tcp", ("10.21.0.1",), None),
        ("wiki.corp.example", 53, "udp", (), "wiki"),  # no ports: all ports
    ],
)
def test_destination_matching(
    host: str, port: int, protocol: str, addresses: tuple[str, ...], resource: str | None
) -> None:
    b = bundle(rule("all", resources=("*",)))
    d = engine(b).decide(req(host=host, port=port, protocol=protocol, addresses=addresses))
    assert d.resource == resource
    assert d.allowed is (resource is not None)


def test_any_host_resource_and_overlapping_resources() -> None:
    anything = Resource(id="web", name="Web", hosts=("*",), ports=(443,))
    b = bundle(
        rule("web", resources=("web",)),
        rule("no-git", "deny", priority=1, resources=("git",)),
        resources=(anything, bundle().resources[0]),
    )
    e = engine(b)
    assert e.decide(req(host="example.org")).rule_id == "web"
    assert e.decide(req(host="git.corp.example")).rule_id == "no-git"  # union of both


def test_max_risk_blocks_allow_and_explains() -> None:
    b = bundle(rule("git", max_risk=10))
    e = engine(b, posture__firewall__enabled=False)  # posture failure adds 20
    d = e.decide(req())
    assert not d.allowed
    assert d.risk == 20
    assert d.unmet[0].fact == "risk"
    assert d.unmet[0].remediation == RISK_REMEDIATION
    assert "posture.firewall.enabled" in d.signals
    e.update_facts({"posture.firewall.enabled": True})
    assert e.decide(req()).allowed


def test_risk_fact_in_conditions() -> None:
    b = bundle(rule("base"), rule("risky", "deny", priority=9, conditions=fact("risk", "gte", 25)))
    assert engine(b, posture__disk__encrypted=True).decide(req()).allowed
    assert engine(b, posture__disk__encrypted=False).decide(req()).rule_id == "risky"


def test_time_window_condition() -> None:
    lt = time.localtime(NOW)
    hours = fact("time.hour", "in", [lt.tm_hour])
    days = fact("time.weekday", "not_in", [lt.tm_wday])
    assert engine(bundle(rule("r", conditions=hours))).decide(req()).allowed
    assert not engine(bundle(rule("r", conditions=days))).decide(req()).allowed


def test_user_facts_come_from_the_bundle() -> None:
    cond = AllOf(
        of=(
            fact("user.email", "regex", "[a-z]+@corp\\.example"),
            fact("user.groups", "in", ["eng"]),
        )
    )
    assert engine(bundle(rule("r", conditions=cond))).decide(req()).allowed


def test_expiry_removes_access_at_once() -> None:
    clock = Clock()
    b = bundle(rule("r"))
    e = engine(b, clock)
    assert e.decide(req()).allowed
    clock.t = b.expires_at
    d = e.decide(req())
    assert not d.allowed
    assert "expired" in d.reason


def test_fact_change_invalidates_cached_decisions() -> None:
    b = bundle(rule("r", conditions=fact("posture.disk.encrypted", "eq", True)))
    e = engine(b, posture__disk__encrypted=True)
    first = e.decide(req())
    assert e.decide(req()) is first  # cached
    e.update_facts({"posture.disk.encrypted": False})
    assert not e.decide(req()).allowed


def test_bundle_change_through_store_takes_effect(tmp_path: object) -> None:
    clock = Clock()
    store = PolicyStore(device_id=DEVICE, keys=KEYS, clock=clock)
    e = PolicyEngine(store, clock=clock, record=False)
    assert not e.decide(req()).allowed
    store.update(token(bundle(rule("r"), version=1)))
    assert e.decide(req()).allowed
    store.update(token(bundle(rule("d", "deny"), version=2)))
    assert e.decide(req()).rule_id == "d"
    store.clear(delete_cache=False)
    assert "no valid policy" in e.decide(req()).reason


def test_explain_does_not_record_and_decide_does() -> None:
    e = PolicyEngine(clock=Clock(), record=True)
    e.load(bundle())
    for _ in range(8):
        e.explain(req())
    assert e.tracker.score() == 0
    for _ in range(8):
        e.decide(req())
    assert e.tracker.snapshot().score > 0  # deny streak


def test_internal_error_is_a_deny_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    e = engine(bundle(rule("r")))

    def boom(*_a: object, **_k: object) -> object:
        raise RuntimeError("bug")

    monkeypatch.setattr(e, "_decide", boom)
    d = e.decide(req())
    assert not d.allowed
    assert "internal policy error" in d.reason
    assert not e.explain(req()).allowed


def test_reachable_resources_and_networks() -> None:
    b = bundle(
        rule("git", resources=("git",)),
        rule("db", resources=("db",), conditions=fact("posture.disk.encrypted", "eq", True)),
        rule("wiki-curl", resources=("wiki",), apps=(AppMatch(name="curl"),)),
        rule("wiki-no-git", "deny", priority=5, resources=("wiki",), apps=(AppMatch(name="git"),)),
    )
    reach = {r.resource.id: r for r in reachable_resources(b, {}, now=NOW)}
    assert reach["git"].allowed
    assert reach["git"].rule_id == "git"
    assert not reach["db"].allowed
    assert reach["db"].unmet[0].fact == "posture.disk.encrypted"
    assert reach["wiki"].allowed  # some app (curl) may; git's deny is app-specific
    assert allowed_networks(reach.values()) == ()
    reach2 = reachable_resources(b, {"posture.disk.encrypted": True}, now=NOW)
    assert allowed_networks(reach2) == (
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd00:20::/32"),
    )
    for_git = {r.resource.id: r.allowed for r in reachable_resources(b, {}, app=APP, now=NOW)}
    assert for_git == {"git": True, "db": False, "wiki": False}


def test_engine_reachable_uses_current_facts() -> None:
    b = bundle(rule("db", resources=("db",), conditions=fact("posture.disk.encrypted", "eq", True)))
    e = engine(b, posture__disk__encrypted=True)
    assert [r.allowed for r in e.reachable()] == [False, True, False]


def test_condition_profiles_are_shared_and_explained() -> None:
    from core.wire.policy import RefOf

    managed = AllOf(
        of=(
            fact("posture.disk.encrypted", "eq", True),
            fact("posture.firewall.enabled", "eq", True),
        )
    )
    b = bundle(
        rule("git", conditions=RefOf(profile="managed")),
        rule("db", resources=("db",), conditions=AllOf(of=(RefOf(profile="managed"),))),
        profiles={"managed": managed},
    )
    e = engine(b, posture__disk__encrypted=True, posture__firewall__enabled=False)
    d = e.decide(req())
    assert not d.allowed
    assert [u.fact for u in d.unmet] == ["posture.firewall.enabled"]
    assert d.confidence == 1.0
    e.update_facts({"posture.firewall.enabled": True})
    assert e.decide(req()).allowed
    assert e.decide(req(host="10.20.0.5", port=5432)).allowed


@pytest.mark.parametrize(
    "bad",
    [
        lambda: token(bundle(rule("evil", resources=("*",)), version=1)),  # replayed older
        lambda: token(bundle(rule("evil", resources=("*",)), version=9, device_id="dev-2")),
        lambda: token(bundle(rule("evil", resources=("*",)), version=9))[:-6] + "AAAAAA",
        lambda: "garbage",
    ],
)
def test_refused_update_leaves_decisions_unchanged(bad: object) -> None:
    clock = Clock()
    store = PolicyStore(device_id=DEVICE, keys=KEYS, clock=clock)
    e = PolicyEngine(store, clock=clock, record=False)
    store.update(token(bundle(rule("git"), version=2)))
    before = [
        e.decide(req(host=h, port=p)) for h, p in (("git.corp.example", 22), ("10.20.0.1", 5432))
    ]
    with pytest.raises(ValueError):
        store.update(bad())  # type: ignore[operator]
    after = [
        e.decide(req(host=h, port=p)) for h, p in (("git.corp.example", 22), ("10.20.0.1", 5432))
    ]
    assert after == before
    assert [d.allowed for d in after] == [True, False]
