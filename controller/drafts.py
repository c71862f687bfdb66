"""Policy drafts: an admin's staged resource and rule edits, validated, diffed, published.

A draft is per admin and holds only what they changed: for each touched resource or
rule id, its new body (the wire model's JSON, defaults omitted) or ``None`` for a
deletion, plus the policy version it was started from (``base_version``). The policy
after publishing is the published one with the draft laid over it (:func:`apply`); what
publishing changes is the difference between the two (:func:`diff`), so a staged edit
that someone else already made, or undid, simply drops out of the diff.

Validation uses the models the controller and the client use (``core.wire.policy``
``Resource`` / ``Rule``, decoded strictly by msgspec, as the admin API does), then the
whole policy after publishing is checked the way a client checks a bundle
(``decode_bundle``: unknown resources, duplicate ids, id characters, condition depth,
profiles), so a draft that validates is one every client will accept.

Pure and UI-free: the console's pages and ``ControllerService.publish_policy`` call it.

Errors::

    DraftError (ValueError)   the text is not a valid resource/rule or the policy after
                              the change would be refused; ``message`` says why
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from core.wire.policy import (
    BundleFormatError,
    PolicyBundle,
    Resource,
    Rule,
    UserInfo,
    decode_bundle,
    encode_bundle,
)

__all__ = [
    "MAX_BODY_CHARS",
    "Change",
    "Draft",
    "DraftError",
    "Kind",
    "Policy",
    "PolicyDiff",
    "apply",
    "body_of",
    "canonical_text",
    "check_policy",
    "diff",
    "parse_body",
]

Kind = Literal["resource", "rule"]

#: Longest JSON text accepted from the editor (a rule with many conditions fits easily).
MAX_BODY_CHARS = 256 * 1024
#: At most this many staged changes in one draft (a publish is one transaction).
MAX_STAGED = 2000


def body_of(item: Resource | Rule | dict[str, Any]) -> dict[str, Any]:
    """The JSON object of a resource or rule (defaults omitted; lists, not tuples): what
    storage holds and drafts compare."""
    body: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(item))
    return body


class DraftError(ValueError):
    """A refused edit or draft; ``str(exc)`` is the message for the admin."""


@dataclass(frozen=True, slots=True)
class Policy:
    """A whole policy: resources and rules by id (the published one, or one after a
    draft is applied)."""

    resources: Mapping[str, Resource]
    rules: Mapping[str, Rule]

    @classmethod
    def of(cls, resources: Iterable[Resource], rules: Iterable[Rule]) -> Policy:
        """A policy from lists of models (as ``ControllerService.resources()`` gives)."""
        return cls({r.id: r for r in resources}, {r.id: r for r in rules})

    def items(self, kind: Kind) -> Mapping[str, Resource | Rule]:
        """The resources or the rules."""
        return self.resources if kind == "resource" else self.rules

    def rules_naming(self, resource_id: str) -> list[str]:
        """Ids of the rules that name ``resource_id``, sorted."""
        return sorted(r.id for r in self.rules.values() if resource_id in r.resources)


@dataclass(frozen=True, slots=True)
class Draft:
    """An admin's staged edits. ``resources``/``rules`` map an id to its new JSON body or
    ``None`` (deleted). Immutable: every edit returns a new draft."""

    base_version: int
    resources: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    rules: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    updated_at: int = 0

    def staged(self, kind: Kind) -> Mapping[str, dict[str, Any] | None]:
        """The staged resources or rules."""
        return self.resources if kind == "resource" else self.rules

    @property
    def empty(self) -> bool:
        """True when nothing is staged."""
        return not self.resources and not self.rules

    @property
    def size(self) -> int:
        """How many ids are staged."""
        return len(self.resources) + len(self.rules)

    def with_change(
        self, kind: Kind, item_id: str, body: dict[str, Any] | None, published: Policy
    ) -> Draft:
        """The draft with ``item_id`` staged as ``body`` (None: deleted). Staging what is
        already published (same body, or deleting an id that is not published) removes
        the entry instead, so the draft only ever holds real changes."""
        staged = dict(self.staged(kind))
        current = published.items(kind).get(item_id)
        body = None if body is None else body_of(body)
        if (body is None and current is None) or (
            body is not None and current is not None and body_of(current) == body
        ):
            staged.pop(item_id, None)
        else:
            staged[item_id] = body
        if len(staged) + len(self.staged("rule" if kind == "resource" else "resource")) > (
            MAX_STAGED
        ):
            raise DraftError(f"a draft holds at most {MAX_STAGED} changes: publish first")
        if kind == "resource":
            return Draft(self.base_version, staged, self.rules, self.updated_at)
        return Draft(self.base_version, self.resources, staged, self.updated_at)

    def without(self, kind: Kind, item_id: str) -> Draft:
        """The draft with the staged change of ``item_id`` undone."""
        staged = {k: v for k, v in self.staged(kind).items() if k != item_id}
        if kind == "resource":
            return Draft(self.base_version, staged, self.rules, self.updated_at)
        return Draft(self.base_version, self.resources, staged, self.updated_at)

    def rebased(self, version: int) -> Draft:
        """The same edits, now counted as made from policy ``version``."""
        return Draft(version, self.resources, self.rules, self.updated_at)

    def to_json(self) -> str:
        """The stored form (``policy_drafts.body``)."""
        return json.dumps(
            {"resources": dict(self.resources), "rules": dict(self.rules)}, sort_keys=True
        )

    @classmethod
    def from_json(cls, text: str, base_version: int, updated_at: int = 0) -> Draft:
        """Read a stored draft. Entries that no longer validate are dropped (a draft is
        a convenience; the published policy is the truth)."""
        try:
            raw = json.loads(text)
        except ValueError:
            return cls(base_version, updated_at=updated_at)
        out: dict[str, dict[str, dict[str, Any] | None]] = {"resources": {}, "rules": {}}
        models: tuple[tuple[str, type[Resource] | type[Rule]], ...] = (
            ("resources", Resource),
            ("rules", Rule),
        )
        for section, model in models:
            items = raw.get(section) if isinstance(raw, dict) else None
            if not isinstance(items, dict):
                continue
            for key, body in items.items():
                if body is None:
                    out[section][str(key)] = None
                    continue
                try:
                    item: Resource | Rule = msgspec.convert(body, model)
                except (msgspec.ValidationError, ValueError):
                    continue
                if item.id == key:
                    out[section][key] = body_of(item)
        return cls(base_version, out["resources"], out["rules"], updated_at)


def parse_body(text: str, kind: Kind, *, path_id: str | None) -> Resource | Rule:
    """The editor's JSON ``text`` as a ``Resource`` or ``Rule``, strictly (wrong types,
    unknown fields and missing fields are refused, as by the admin API).

    ``path_id`` is the id in the page's URL (None for a new item): the body's id must
    equal it. Raises ``DraftError`` with a message naming the field.
    """
    if len(text) > MAX_BODY_CHARS:
        raise DraftError(f"the {kind} is {len(text)} characters, over {MAX_BODY_CHARS}")
    if not text.strip():
        raise DraftError(f"the {kind} is empty: write it as a JSON object")
    model: type[Resource] | type[Rule] = Resource if kind == "resource" else Rule
    try:
        item = msgspec.json.decode(text.encode("utf-8", "surrogatepass"), type=model)
    except msgspec.ValidationError as exc:
        raise DraftError(f"invalid {kind}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise DraftError(f"not valid JSON: {exc}") from None
    except (UnicodeError, RecursionError):
        raise DraftError("not valid JSON text") from None
    if path_id is not None and item.id != path_id:
        raise DraftError(
            f"the {kind}'s id {item.id!r} differs from the one being edited ({path_id!r}); "
            f"to rename, add a new {kind} and delete this one"
        )
    return item


def apply(published: Policy, draft: Draft) -> Policy:
    """The policy after publishing ``draft`` over ``published``. Staged bodies are
    converted back to models (they were validated when staged); one that no longer
    converts raises ``DraftError``."""
    resources = dict(published.resources)
    rules = dict(published.rules)
    for target, staged, model in (
        (resources, draft.resources, Resource),
        (rules, draft.rules, Rule),
    ):
        for item_id, body in staged.items():
            if body is None:
                target.pop(item_id, None)
                continue
            try:
                target[item_id] = msgspec.convert(body, model)  # type: ignore[assignment]
            except (msgspec.ValidationError, ValueError) as exc:
                raise DraftError(f"staged {item_id!r} is no longer valid: {exc}") from None
    return Policy(
        dict(sorted(resources.items())),
        dict(sorted(rules.items())),
    )


def check_policy(policy: Policy) -> None:
    """Refuse (``DraftError``) a policy a client would refuse in its bundle: rules naming
    unknown resources or condition profiles, duplicate or malformed ids, conditions
    nested too deep, bad hosts or networks. The same ``decode_bundle`` the client runs
    on every bundle it receives, over a probe bundle holding this policy."""
    for rule in policy.rules.values():
        missing = [r for r in rule.resources if r != "*" and r not in policy.resources]
        if missing:
            names = ", ".join(repr(m) for m in missing)
            raise DraftError(f"rule {rule.id!r} names unknown resources: {names}")
    probe = PolicyBundle(
        version=1,
        device_id="draft-check",
        issued_at=0,
        expires_at=1,
        user=UserInfo(subject="draft-check"),
        resources=tuple(policy.resources.values()),
        rules=tuple(policy.rules.values()),
    )
    try:
        decode_bundle(encode_bundle(probe))
    except BundleFormatError as exc:
        raise DraftError(f"a client would refuse this policy: {exc}") from None


def canonical_text(item: Resource | Rule | dict[str, Any] | None) -> str:
    """Sorted-key, indented JSON of a resource or rule (what the editor and the diff
    show); "" for None."""
    if item is None:
        return ""
    return json.dumps(body_of(item), sort_keys=True, indent=2, ensure_ascii=False)


#: A diff line's class: header, hunk marker, added, removed, context.
LineKind = Literal["hdr", "hunk", "add", "del", "ctx"]


@dataclass(frozen=True, slots=True)
class Change:
    """One resource or rule that publishing adds, removes or changes."""

    kind: Kind
    item_id: str
    action: Literal["added", "removed", "changed"]
    before: str
    after: str
    #: the unified diff of ``before`` → ``after``, line by line with its class
    lines: tuple[tuple[LineKind, str], ...]

    @property
    def label(self) -> str:
        """For the audit log: ``rule eng-wiki changed``."""
        return f"{self.kind} {self.item_id} {self.action}"


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    """What publishing changes, resources first, each by id."""

    changes: tuple[Change, ...]

    @property
    def empty(self) -> bool:
        """True when publishing would change nothing."""
        return not self.changes

    def of(self, kind: Kind) -> list[Change]:
        """The changes to resources or to rules."""
        return [c for c in self.changes if c.kind == kind]

    def summary(self) -> str:
        """One line for the audit log: ``rule a added; resource b removed``."""
        return "; ".join(c.label for c in self.changes) or "no changes"


def _line_kind(line: str) -> LineKind:
    if line.startswith(("+++", "---")):
        return "hdr"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return "ctx"


def diff(before: Policy, after: Policy) -> PolicyDiff:
    """What changes from ``before`` to ``after``: added, removed and changed resources
    and rules, each with a unified diff of its canonical JSON."""
    changes: list[Change] = []
    kinds: tuple[Kind, Kind] = ("resource", "rule")
    for kind in kinds:
        old, new = before.items(kind), after.items(kind)
        for item_id in sorted(old.keys() | new.keys()):
            a = canonical_text(old.get(item_id))
            b = canonical_text(new.get(item_id))
            if a == b:
                continue
            action: Literal["added", "removed", "changed"] = (
                "added" if not a else "removed" if not b else "changed"
            )
            lines = difflib.unified_diff(
                a.splitlines(),
                b.splitlines(),
                fromfile=f"published/{kind}/{item_id}" if a else "/dev/null",
                tofile=f"draft/{kind}/{item_id}" if b else "/dev/null",
                lineterm="",
                n=3,
            )
            changes.append(
                Change(kind, item_id, action, a, b, tuple((_line_kind(x), x) for x in lines))
            )
    return PolicyDiff(tuple(changes))
