"""Policy pages: resources and rules as published, the admin's draft, JSON editors, the
diff before publishing, publish and discard.

Edits never touch the live policy: they are staged in the admin's draft
(``controller.drafts``, table ``policy_drafts``), each validated with the models the
controller and the client use plus the whole policy after publishing as a client checks
a bundle. An invalid edit is answered with the same page, the admin's text kept in the
textarea and the message in ``.form-error``; nothing is saved. Publishing applies the
draft in one storage transaction with the policy version bump
(``ControllerService.publish_policy``), refused when someone changed the policy since
the draft was started (the draft is then moved onto the new policy, so the admin reviews
the new diff and publishes again). Every publish and discard is audited with the ids it
changed.

URLs (under ``/console``): ``/policy``; ``/policy/diff``; ``/policy/rules/{id}`` and
``/policy/resources/{id}`` (GET: editor; POST ``action`` = ``save`` | ``delete`` |
``revert``); ``/policy/new-rule``, ``/policy/new-resource`` (GET: editor; POST: add);
``/policy/publish``, ``/policy/discard`` (POST). Every POST needs the CSRF token.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Route

from controller.console.web import read_form
from controller.drafts import (
    Draft,
    DraftError,
    Kind,
    Policy,
    apply,
    body_of,
    canonical_text,
    check_policy,
    diff,
    parse_body,
)
from controller.errors import Conflict, Unprocessable

if TYPE_CHECKING:
    from starlette.datastructures import FormData
    from starlette.requests import Request
    from starlette.responses import Response

    from controller.console.base import Admin, Console
    from controller.service import ControllerService
    from core.wire.policy import Resource, Rule

__all__ = ["load_draft", "published_policy", "routes"]

#: Fixed notices shown after a redirect (never text taken from the query string).
_NOTICES = {
    "saved": "Saved in your draft. Review the diff, then publish.",
    "deleted": "Deletion staged in your draft.",
    "reverted": "The staged change was undone.",
    "published": "Published: every device is being sent a new signed bundle.",
    "discarded": "Your draft was discarded.",
    "nothing": "Your draft changes nothing: there is nothing to publish.",
}

_NEW_RULE = """{
  "id": "",
  "effect": "allow",
  "resources": [],
  "priority": 0,
  "description": ""
}"""
_NEW_RESOURCE = """{
  "id": "",
  "name": "",
  "hosts": [],
  "cidrs": [],
  "ports": [443],
  "protocols": ["tcp"]
}"""


def published_policy(service: ControllerService) -> Policy:
    """The live policy (resources and rules by id)."""
    return Policy.of(service.resources(), service.rules())


def load_draft(service: ControllerService, admin_id: str) -> Draft | None:
    """The admin's stored draft, or None."""
    row = service.storage.get_policy_draft(admin_id)
    if row is None:
        return None
    body, base_version, updated_at = row
    return Draft.from_json(body, base_version, updated_at)


def _store_draft(service: ControllerService, admin_id: str, draft: Draft) -> None:
    if draft.empty:
        service.storage.delete_policy_draft(admin_id)
    else:
        service.storage.put_policy_draft(
            admin_id, draft.to_json(), draft.base_version, service.now()
        )


def _item_url(kind: Kind, item_id: str) -> str:
    section = "rules" if kind == "rule" else "resources"
    return f"/console/policy/{section}/{quote(item_id, safe='')}"


def _when(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else ""


def _resource_summary(res: Resource) -> dict[str, str]:
    ports = ", ".join(str(p) if isinstance(p, int) else f"{p.first}-{p.last}" for p in res.ports)
    return {
        "name": res.name,
        "targets": ", ".join((*res.hosts, *res.cidrs)),
        "ports": ports or "any",
        "protocols": "/".join(res.protocols),
    }


def _rule_summary(rule: Rule) -> dict[str, str]:
    return {
        "effect": rule.effect,
        "priority": str(rule.priority),
        "resources": ", ".join(rule.resources),
        "conditions": "yes" if rule.conditions is not None else "",
        "apps": str(len(rule.apps)) if rule.apps else "any",
        "description": rule.description,
    }


def _rows(
    kind: Kind, published: Policy, after: Policy, draft: Draft | None
) -> list[dict[str, Any]]:
    """One row per id published or staged, with its draft state."""
    staged = draft.staged(kind) if draft else {}
    old, new = published.items(kind), after.items(kind)
    rows: list[dict[str, Any]] = []
    for item_id in sorted(old.keys() | new.keys()):
        shown = new.get(item_id) or old[item_id]
        if item_id not in staged:
            state = ""
        elif item_id not in new:
            state = "deleted"
        elif item_id not in old:
            state = "added"
        else:
            state = "changed"
        summary = (
            _resource_summary(shown)  # type: ignore[arg-type]
            if kind == "resource"
            else _rule_summary(shown)  # type: ignore[arg-type]
        )
        rows.append({"id": item_id, "state": state, "url": _item_url(kind, item_id), **summary})
    return rows


def _draft_view(service: ControllerService, draft: Draft | None) -> dict[str, Any]:
    version = service.policy_version()
    if draft is None:
        return {"size": 0, "version": version, "stale": False}
    return {
        "size": draft.size,
        "base_version": draft.base_version,
        "version": version,
        "stale": draft.base_version != version,
        "updated": _when(draft.updated_at),
    }


def routes(console: Console) -> list[BaseRoute]:
    """The policy pages (see the module docstring)."""
    service = console.service

    async def policy_page(request: Request) -> Response:
        admin = await console.admin(request)
        published = published_policy(service)
        draft = load_draft(service, admin.user_id)
        try:
            after = apply(published, draft) if draft else published
        except DraftError:
            after = published  # a stale staged body: shown as published, fixed on edit
        notice = _NOTICES.get(request.query_params.get("notice", ""), "")
        context = {
            "resources": _rows("resource", published, after, draft),
            "rules": _rows("rule", published, after, draft),
            "draft": _draft_view(service, draft),
            "notice": notice,
        }
        return console.render(request, "policy.html", context, admin, page="policy")

    def editor(
        request: Request,
        admin: Admin,
        kind: Kind,
        item_id: str | None,
        text: str,
        *,
        error: str = "",
        status: int = 200,
        state: str = "",
    ) -> Response:
        action = f"/console/policy/new-{kind}" if item_id is None else _item_url(kind, item_id)
        context = {
            "kind": kind,
            "item_id": item_id,
            "body": text,
            "error": error,
            "action": action,
            "state": state,
        }
        template = "rule_edit.html" if kind == "rule" else "resource_edit.html"
        return console.render(request, template, context, admin, status=status, page="policy")

    def item_state(kind: Kind, item_id: str, published: Policy, draft: Draft | None) -> str:
        if draft is None or item_id not in draft.staged(kind):
            return ""
        if draft.staged(kind)[item_id] is None:
            return "deleted"
        return "changed" if item_id in published.items(kind) else "added"

    def edit_page(kind: Kind) -> Any:
        async def handler(request: Request) -> Response:
            admin = await console.admin(request)
            key = "rule_id" if kind == "rule" else "resource_id"
            item_id = request.path_params[key]
            published = published_policy(service)
            draft = load_draft(service, admin.user_id)
            state = item_state(kind, item_id, published, draft)
            staged = draft.staged(kind) if draft else {}
            if item_id in staged and staged[item_id] is not None:
                text = canonical_text(staged[item_id])
            elif item_id in published.items(kind):
                text = canonical_text(published.items(kind)[item_id])
            else:
                return console.render(
                    request,
                    "error.html",
                    {
                        "title": "Not found",
                        "message": f"There is no {kind} {item_id!r}.",
                        "status": 404,
                    },
                    admin,
                    status=404,
                    page="policy",
                )
            if request.method == "GET":
                return editor(request, admin, kind, item_id, text, state=state)
            form = await read_form(request)
            console.check_csrf(request, form, admin)
            action = str(form.get("action", "save"))
            body = str(form.get("body", ""))
            if action == "revert":
                if draft is not None:
                    _store_draft(service, admin.user_id, draft.without(kind, item_id))
                return RedirectResponse("/console/policy?notice=reverted", status_code=303)
            if action == "delete":
                return stage(request, admin, kind, item_id, None, body, published, draft)
            return stage(request, admin, kind, item_id, body, body, published, draft)

        return handler

    def stage(
        request: Request,
        admin: Admin,
        kind: Kind,
        path_id: str | None,
        body: str | None,
        shown: str,
        published: Policy,
        draft: Draft | None,
    ) -> Response:
        """Validate one edit (``body`` None: delete ``path_id``), stage it, save."""
        base = draft or Draft(service.policy_version())
        try:
            if body is None:
                assert path_id is not None
                item_id, value = path_id, None
            else:
                item = parse_body(body, kind, path_id=path_id)
                item_id, value = item.id, body_of(item)
                if path_id is None:
                    current = apply(published, base)
                    if item_id in current.items(kind):
                        raise DraftError(
                            f"a {kind} with id {item_id!r} already exists: edit that one"
                        )
            updated = base.with_change(kind, item_id, value, published)
            after = apply(published, updated)
            if kind == "resource" and value is None and after.rules_naming(item_id):
                users = ", ".join(after.rules_naming(item_id))
                raise DraftError(
                    f"resource {item_id!r} is used by rules {users}: change or delete them first"
                )
            check_policy(after)
        except DraftError as exc:
            state = item_state(kind, path_id, published, draft) if path_id else ""
            return editor(
                request, admin, kind, path_id, shown, error=str(exc), status=422, state=state
            )
        _store_draft(service, admin.user_id, updated)
        notice = "deleted" if value is None else "saved"
        return RedirectResponse(f"/console/policy?notice={notice}", status_code=303)

    def new_page(kind: Kind) -> Any:
        async def handler(request: Request) -> Response:
            admin = await console.admin(request)
            if request.method == "GET":
                template = _NEW_RULE if kind == "rule" else _NEW_RESOURCE
                return editor(request, admin, kind, None, template)
            form = await read_form(request)
            console.check_csrf(request, form, admin)
            body = str(form.get("body", ""))
            published = published_policy(service)
            draft = load_draft(service, admin.user_id)
            return stage(request, admin, kind, None, body, body, published, draft)

        return handler

    def diff_context(admin: Admin, *, error: str = "") -> dict[str, Any]:
        published = published_policy(service)
        draft = load_draft(service, admin.user_id)
        problem = error
        try:
            after = apply(published, draft) if draft else published
            if draft is not None and not error:
                check_policy(after)
        except DraftError as exc:
            after, problem = published, str(exc)
        changes = diff(published, after)
        return {
            "changes": changes.changes,
            "draft": _draft_view(service, draft),
            "has_draft": draft is not None,
            "error": problem,
            "effects": service.policy_effect(after) if not changes.empty else [],
        }

    async def diff_page(request: Request) -> Response:
        admin = await console.admin(request)
        notice = _NOTICES.get(request.query_params.get("notice", ""), "")
        context = {**diff_context(admin), "notice": notice}
        return console.render(request, "policy_diff.html", context, admin, page="policy")

    async def publish(request: Request) -> Response:
        admin = await console.admin(request)
        form = await read_form(request)
        console.check_csrf(request, form, admin)
        draft = load_draft(service, admin.user_id)
        if draft is None:
            return RedirectResponse("/console/policy/diff?notice=nothing", status_code=303)
        seen = _form_int(form, "version")
        try:
            version = service.policy_version()
            if draft.base_version != version or seen != version:
                raise Conflict("the policy changed since you started editing: review the new diff")
            after = apply(published_policy(service), draft)
            changes = service.publish_policy(expected_version=draft.base_version, after=after)
        except Conflict as exc:
            # Move the draft onto the policy as it is now: the admin reviews the new diff
            # (their edits over someone else's) and publishes again, knowingly.
            _store_draft(service, admin.user_id, draft.rebased(service.policy_version()))
            return refused(request, admin, str(exc), 409)
        except (Unprocessable, DraftError) as exc:
            return refused(request, admin, str(exc), 422)
        service.storage.delete_policy_draft(admin.user_id)
        if changes.empty:
            return RedirectResponse("/console/policy?notice=nothing", status_code=303)
        console.audit(
            admin,
            "policy.publish",
            f"version {service.policy_version()}: {changes.summary()}",
        )
        return RedirectResponse("/console/policy?notice=published", status_code=303)

    def refused(request: Request, admin: Admin, message: str, status: int) -> Response:
        context = {**diff_context(admin, error=message), "notice": ""}
        return console.render(
            request, "policy_diff.html", context, admin, status=status, page="policy"
        )

    async def discard(request: Request) -> Response:
        admin = await console.admin(request)
        form = await read_form(request)
        console.check_csrf(request, form, admin)
        draft = load_draft(service, admin.user_id)
        if draft is not None:
            service.storage.delete_policy_draft(admin.user_id)
            ids = [f"resource {i}" for i in sorted(draft.resources)]
            ids += [f"rule {i}" for i in sorted(draft.rules)]
            console.audit(admin, "policy.discard", "draft discarded: " + ", ".join(ids))
        return RedirectResponse("/console/policy?notice=discarded", status_code=303)

    return [
        Route("/policy", policy_page, methods=["GET"]),
        Route("/policy/diff", diff_page, methods=["GET"]),
        Route("/policy/publish", publish, methods=["POST"]),
        Route("/policy/discard", discard, methods=["POST"]),
        Route("/policy/new-rule", new_page("rule"), methods=["GET", "POST"]),
        Route("/policy/new-resource", new_page("resource"), methods=["GET", "POST"]),
        Route("/policy/rules/{rule_id:path}", edit_page("rule"), methods=["GET", "POST"]),
        Route(
            "/policy/resources/{resource_id:path}", edit_page("resource"), methods=["GET", "POST"]
        ),
    ]


def _form_int(form: FormData, name: str) -> int | None:
    raw = form.get(name)
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)
