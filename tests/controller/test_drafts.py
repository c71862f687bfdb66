"""Policy drafts (``controller.drafts``) and what-if (``controller.whatif``), pure; plus the
storage's atomic ``apply_policy`` on SQLite (and PostgreSQL when there)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from controller.drafts import (
    Draft,
    DraftError,
    Policy,
    apply,
    canonical_text,
    check_policy,
    diff,
    parse_body,
)
from controller.storage import ConflictError, NotFoundError, open_storage
from controller.whatif import STALE_POSTURE_S, app_identity, evaluate
from core.policy.api import AccessRequest, AppIdentity
from core.policy.engine import PolicyEngine
from core.wire.policy import PolicyBundle, Resource, Rule, UserInfo

pytestmark = pytest.mark.unit

WIKI: dict[str, Any] = {"id": "wiki", "name": "Wiki", "cidrs": ["10.20.0.0/24"], "ports": [443]}
DB: dict[str, Any] = {"id": "db", "name": "DB", "hosts": ["db.corp.example"], "ports": [5432]}
ENG: dict[str, Any] = {
    "id": "eng-wiki",
    "effect": "allow",
    "resources": ["wiki"],
    "priority": 10,
    "conditions": {
        "kind": "all",
        "of": [
            {"kind": "fact", "fact": "user.groups", "op": "eq", "value": "engineering"},
            {"kind": "fact", "fact": "posture.disk.encrypted", "op": "eq", "value": True},
        ],
    },
}


def _policy(resources: list[dict[str, Any]], rules: list[dict[str, Any]]) -> Policy:
    return Policy.of(
        [msgspec.convert(r, Resource) for r in resources],
        [msgspec.convert(r, Rule) for r in rules],
    )


def _json(body: dict[str, Any]) -> str:
    return msgspec.json.encode(body).decode()


# -- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("{", "not valid JSON"),
        ("[1]", "Expected `object`"),
        ('{"id": "r", "effect": "maybe", "resources": ["wiki"]}', "$.effect"),
        ('{"id": "r", "effect": "allow", "resources": "wiki"}', "$.resources"),
        ('{"id": "r", "effect": "allow", "resources": ["wiki"], "priority": "1"}', "$.priority"),
        ('{"id": "r", "effect": "allow", "resources": ["wiki"], "extra": 1}', "extra"),
        ('{"effect": "allow", "resources": ["wiki"]}', "missing required field `id`"),
        ('{"id": "r", "effect": "allow", "resources": []}', "$.resources"),
        ('{"id": "r", "effect": "allow", "resources": ["w"], "max_risk": 101}', "$.max_risk"),
    ],
)
def test_parse_rule_refuses_bad_json_and_types(text: str, message: str) -> None:
    with pytest.raises(DraftError, match=r".*" + message.replace("$", r"\$").replace("[", r"\[")):
        parse_body(text, "rule", path_id=None)


def test_parse_refuses_an_id_other_than_the_urls() -> None:
    with pytest.raises(DraftError, match="differs from the one being edited"):
        parse_body(_json(ENG), "rule", path_id="other")
    assert parse_body(_json(ENG), "rule", path_id="eng-wiki").id == "eng-wiki"


def test_parse_resource_checks_hosts_and_networks() -> None:
    with pytest.raises(DraftError, match="neither hosts nor cidrs"):
        parse_body('{"id": "x", "name": "X"}', "resource", path_id=None)
    with pytest.raises(DraftError, match="bad CIDR"):
        parse_body('{"id": "x", "name": "X", "cidrs": ["10.0.0.1/8"]}', "resource", path_id=None)
    with pytest.raises(DraftError, match="not a lower-case host"):
        parse_body('{"id": "x", "name": "X", "hosts": ["<b>"]}', "resource", path_id=None)


def test_parse_refuses_oversized_text() -> None:
    with pytest.raises(DraftError, match="over"):
        parse_body(" " * 300_000, "rule", path_id=None)


# -- drafts ----------------------------------------------------------------------------


def test_staging_apply_and_diff() -> None:
    published = _policy([WIKI], [ENG])
    draft = Draft(base_version=3)
    draft = draft.with_change("resource", "db", DB, published)
    rule = {**ENG, "id": "eng-db", "resources": ["db"]}
    draft = draft.with_change("rule", "eng-db", rule, published)
    changed = {**ENG, "priority": 20}
    draft = draft.with_change("rule", "eng-wiki", changed, published)
    after = apply(published, draft)
    check_policy(after)
    assert sorted(after.resources) == ["db", "wiki"]
    assert after.rules["eng-wiki"].priority == 20
    d = diff(published, after)
    assert [c.label for c in d.changes] == [
        "resource db added",
        "rule eng-db added",
        "rule eng-wiki changed",
    ]
    change = d.of("rule")[1]
    assert ("del", '-  "priority": 10,') in change.lines
    assert ("add", '+  "priority": 20,') in change.lines
    assert change.lines[0] == ("hdr", "--- published/rule/eng-wiki")
    # Round trip through the stored form.
    again = Draft.from_json(draft.to_json(), 3)
    assert again == draft


def test_staging_what_is_published_is_no_change() -> None:
    published = _policy([WIKI], [ENG])
    draft = Draft(1).with_change("rule", "eng-wiki", {**ENG, "priority": 5}, published)
    assert draft.size == 1
    # Editing it back to the published body drops the entry.
    body = msgspec.to_builtins(published.rules["eng-wiki"])
    assert draft.with_change("rule", "eng-wiki", body, published).empty
    # Deleting something never published: nothing staged.
    assert Draft(1).with_change("rule", "ghost", None, published).empty
    # Adding then deleting a new rule: nothing staged.
    added = Draft(1).with_change("rule", "new", {**ENG, "id": "new"}, published)
    assert added.with_change("rule", "new", None, published).empty


def test_delete_is_staged_and_diffed() -> None:
    published = _policy([WIKI, DB], [ENG])
    draft = Draft(1).with_change("resource", "db", None, published)
    after = apply(published, draft)
    assert list(after.resources) == ["wiki"]
    d = diff(published, after)
    assert [c.label for c in d.changes] == ["resource db removed"]
    assert d.changes[0].lines[1] == ("hdr", "+++ /dev/null")


@pytest.mark.parametrize(
    ("resources", "rules", "message"),
    [
        ([WIKI], [{**ENG, "resources": ["nope"]}], "unknown resources: 'nope'"),
        ([WIKI], [{**ENG, "id": "bad id"}], "may only use letters"),
        ([{**WIKI, "id": "w<script>"}], [], "may only use letters"),
        (
            [WIKI],
            [{**ENG, "conditions": {"kind": "ref", "profile": "managed"}}],
            "unknown condition profile",
        ),
    ],
)
def test_check_policy_refuses_what_a_client_would(
    resources: list[dict[str, Any]], rules: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(DraftError, match=message):
        check_policy(_policy(resources, rules))


def test_deleting_a_resource_a_rule_names_fails_the_check() -> None:
    published = _policy([WIKI], [ENG])
    after = apply(published, Draft(1).with_change("resource", "wiki", None, published))
    with pytest.raises(DraftError, match="unknown resources"):
        check_policy(after)


def test_stored_draft_with_garbage_keeps_what_is_valid() -> None:
    text = _json(
        {
            "resources": {"wiki": WIKI, "bad": {"id": "bad"}, "mismatch": DB},
            "rules": {"gone": None, "eng-wiki": ENG},
        }
    )
    draft = Draft.from_json(text, 7, 100)
    assert set(draft.resources) == {"wiki"}
    assert dict(draft.rules) == {"gone": None, "eng-wiki": ENG}
    assert Draft.from_json("not json", 7).empty


def test_canonical_text_is_sorted_and_stable() -> None:
    rule = msgspec.convert(ENG, Rule)
    text = canonical_text(rule)
    assert text.index('"conditions"') < text.index('"effect"') < text.index('"id"')
    assert canonical_text(msgspec.to_builtins(rule)) == text
    assert canonical_text(None) == ""


# -- what-if ---------------------------------------------------------------------------


def _bundle(groups: tuple[str, ...] = ("engineering",)) -> PolicyBundle:
    now = int(time.time())
    policy = _policy(
        [WIKI, DB],
        [
            ENG,
            {"id": "ssh-db", "effect": "allow", "resources": ["db"], "apps": [{"name": "psql"}]},
        ],
    )
    return PolicyBundle(
        version=1,
        device_id="dev_1",
        issued_at=now,
        expires_at=now + 3600,
        user=UserInfo(subject="alice", email="alice@example.com", groups=groups),
        resources=tuple(policy.resources.values()),
        rules=tuple(policy.rules.values()),
    )


def _engine(bundle: PolicyBundle, facts: dict[str, object]) -> PolicyEngine:
    engine = PolicyEngine(record=False)
    engine.load(bundle)
    engine.set_facts(facts)
    return engine


def test_whatif_allow_agrees_with_the_engine() -> None:
    bundle, facts = _bundle(), {"posture.disk.encrypted": True}
    result = evaluate(bundle, facts, resource_id="wiki", now=time.time(), posture_at=None)
    assert result.effect == "allow"
    assert result.rule_id == "eng-wiki"
    app = AppIdentity(pid=None, uid=None, exe="/usr/bin/curl", name="curl")
    decision = _engine(bundle, facts).explain(AccessRequest(app, "10.20.0.7", 443))
    assert decision.allowed
    assert decision.rule_id == result.rule_id


def test_whatif_deny_without_a_rule_agrees_with_the_engine() -> None:
    bundle = _bundle(groups=("sales",))
    facts = {"posture.disk.encrypted": True}
    result = evaluate(bundle, facts, resource_id="wiki", now=time.time(), posture_at=None)
    assert result.effect == "deny"
    assert result.rule_id is None
    assert [u.fact for u in result.unmet] == ["user.groups"]
    app = AppIdentity(pid=None, uid=None, exe="/usr/bin/curl", name="curl")
    decision = _engine(bundle, facts).explain(AccessRequest(app, "10.20.0.7", 443))
    assert not decision.allowed
    assert decision.rule_id is None
    assert decision.reason == result.reason


def test_whatif_deny_for_failing_posture_names_the_fact() -> None:
    bundle = _bundle()
    now = time.time()
    failing = evaluate(
        bundle,
        {"posture.disk.encrypted": False},
        resource_id="wiki",
        now=now,
        posture_at=int(now) - STALE_POSTURE_S - 5,
    )
    assert failing.effect == "deny"
    (unmet,) = failing.unmet
    assert unmet.fact == "posture.disk.encrypted"
    assert not unmet.missing
    assert unmet.current == "false"
    assert "encryption" in unmet.remediation
    assert "posture.disk.encrypted" in unmet.requirement
    assert failing.stale
    missing = evaluate(bundle, {}, resource_id="wiki", now=now, posture_at=None)
    assert missing.unmet[0].missing
    assert not missing.stale


def test_whatif_with_an_app() -> None:
    bundle, now = _bundle(), time.time()
    for app, effect in (
        ("psql", "allow"),
        ("/usr/bin/psql", "allow"),
        ("curl", "deny"),
        ("", "allow"),
    ):
        result = evaluate(bundle, {}, resource_id="db", app=app, now=now, posture_at=None)
        assert result.effect == effect, app
    assert app_identity("") is None
    assert app_identity("/usr/bin/psql") == AppIdentity(None, None, "/usr/bin/psql", "psql")


# -- storage ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: SQLite, and a REAL PostgreSQL (skipped locally when missing;
    fails under CI, see ``postgres_url``)."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'c.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    import psycopg

    name = f"d{os.getpid()}_{abs(hash(request.node.name)) % 10**8}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    yield base.replace("/postgres?", f"/{name}?")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.integration
def test_apply_policy_is_atomic_and_versioned(db_url: str) -> None:
    s = open_storage(db_url)
    try:
        assert s.policy_version() == 0
        v1 = s.apply_policy(expected_version=0, put_resources={"wiki": WIKI}, put_rules={"r": ENG})
        assert v1 == 1
        assert s.policy_version() == 1
        assert [r["id"] for r in s.list_resources()] == ["wiki"]
        # A publisher that started from version 0 is refused; nothing is written.
        with pytest.raises(ConflictError, match="changed since you started editing"):
            s.apply_policy(expected_version=0, put_resources={"db": DB}, delete_rules=["r"])
        assert [r["id"] for r in s.list_resources()] == ["wiki"]
        assert [r["id"] for r in s.list_rules()] == ["eng-wiki"]
        assert s.policy_version() == 1
        # A missing delete rolls everything back, the version bump too.
        with pytest.raises(NotFoundError):
            s.apply_policy(expected_version=1, put_resources={"db": DB}, delete_rules=["ghost"])
        assert s.policy_version() == 1
        assert len(s.list_resources()) == 1
        assert s.apply_policy(expected_version=None, delete_rules=["r"]) == 2
        assert s.bump_policy_version() == 3
        # Drafts: one per admin.
        assert s.get_policy_draft("a") is None
        s.put_policy_draft("a", "{}", 3, 10)
        s.put_policy_draft("a", '{"x": 1}', 3, 11)
        assert s.get_policy_draft("a") == ('{"x": 1}', 3, 11)
        assert s.delete_policy_draft("a")
        assert not s.delete_policy_draft("a")
    finally:
        s.close()


@pytest.mark.integration
def test_concurrent_publishers_from_one_version_one_wins(db_url: str) -> None:
    """Two instances (connections) publish from the same version at once: one wins."""
    first, second = open_storage(db_url), open_storage(db_url)
    try:
        first.apply_policy(expected_version=None, put_resources={"wiki": WIKI})
        start = threading.Barrier(2)
        outcome: dict[str, object] = {}

        def publish(name: str, storage: Any, body: dict[str, Any]) -> None:
            start.wait()
            try:
                outcome[name] = storage.apply_policy(
                    expected_version=1, put_resources={body["id"]: body}
                )
            except ConflictError as exc:
                outcome[name] = exc

        threads = [
            threading.Thread(target=publish, args=("a", first, DB)),
            threading.Thread(target=publish, args=("b", second, {**DB, "id": "db2"})),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        wins = [v for v in outcome.values() if v == 2]
        losses = [v for v in outcome.values() if isinstance(v, ConflictError)]
        assert len(wins) == 1
        assert len(losses) == 1
        assert first.policy_version() == 2
        assert len(first.list_resources()) == 2  # wiki + the winner's, never both
    finally:
        first.close()
        second.close()
