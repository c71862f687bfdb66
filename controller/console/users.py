"""Users and groups: everyone the controller knows, their groups, their devices; edit the
admin-managed groups.

A user's groups in a bundle are the union of the groups their identity provider put in
their last token (read-only here) and the admin-managed groups set in the controller
(``Storage.set_user_groups``), which this page edits (``form.groups``, POST, CSRF) through
``ControllerService.set_user_groups`` — devices and gateways follow at once — with an
audit entry per change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Route

from controller.console.web import read_form
from core.controlplane.models import UserGroups

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from controller.console.base import Admin, Console

__all__ = ["MAX_GROUPS", "GroupsError", "parse_groups", "routes"]

#: At most this many admin-managed groups per user (the admin API's limit).
MAX_GROUPS = 64

_NOTICES = {"saved": "Groups saved: the user's devices and the gateways follow now."}
_RULES = "group names are 1 to 64 letters, digits and ._:@- (at most 64 groups)"


class GroupsError(ValueError):
    """The groups text is refused; the message says why."""


def parse_groups(text: str) -> list[str]:
    """Groups from the form's text: one per line or comma-separated, trimmed, sorted,
    without duplicates, each valid under the admin API's rules (``UserGroups``: 1 to 64
    of ``A-Za-z0-9._:@-``, at most 64). Raises ``GroupsError``."""
    names = {part.strip() for line in text.splitlines() for part in line.split(",")}
    names.discard("")
    if len(names) > MAX_GROUPS:
        raise GroupsError(f"at most {MAX_GROUPS} groups per user")
    groups = sorted(names)
    try:
        msgspec.convert({"user": "x", "groups": groups}, UserGroups)
    except msgspec.ValidationError:
        bad = next(g for g in groups if not _valid(g))
        raise GroupsError(f"{bad[:70]!r} is not allowed: {_RULES}") from None
    return groups


def _valid(name: str) -> bool:
    try:
        msgspec.convert({"user": name, "groups": []}, UserGroups)
    except msgspec.ValidationError:
        return False
    return True


def routes(console: Console) -> list[BaseRoute]:
    """``/users`` (GET) and ``/users/groups`` (POST: ``user``, ``groups``, ``csrf``)."""
    service = console.service

    def page(
        request: Request,
        admin: Admin,
        *,
        error: str = "",
        error_user: str = "",
        text: str = "",
        status: int = 200,
    ) -> Response:
        identities = service.storage.list_identities()
        managed = dict(service.storage.list_users())
        devices = service.storage.list_devices()
        ids = set(identities) | set(managed) | {d.user_id for d in devices}
        rows: list[dict[str, Any]] = []
        for user_id in sorted(ids):
            subject, email, token_groups = identities.get(user_id, ("", "", []))
            own = [d for d in devices if d.user_id == user_id]
            admin_groups = managed.get(user_id, [])
            rows.append(
                {
                    "user_id": user_id,
                    "subject": subject,
                    "email": email,
                    "provider_groups": token_groups,
                    "admin_groups": admin_groups,
                    "groups_text": text if user_id == error_user else "\n".join(admin_groups),
                    "error": error if user_id == error_user else "",
                    "devices": sum(1 for d in own if d.status == "active"),
                    "devices_total": len(own),
                    "seen": user_id in identities,
                }
            )
        new_error = error if error_user and error_user not in ids else ""
        context = {
            "rows": rows,
            "notice": _NOTICES.get(request.query_params.get("notice", ""), ""),
            "new_error": new_error,
            "new_user": error_user if new_error else "",
            "new_text": text if new_error else "",
        }
        return console.render(request, "users.html", context, admin, status=status, page="users")

    async def users_page(request: Request) -> Response:
        admin = await console.admin(request)
        return page(request, admin)

    async def set_groups(request: Request) -> Response:
        admin = await console.admin(request)
        form = await read_form(request)
        console.check_csrf(request, form, admin)
        user_id = str(form.get("user", "")).strip()
        text = str(form.get("groups", ""))
        if not _valid(user_id):
            return page(
                request,
                admin,
                error="the user id must be 1 to 64 letters, digits and ._:@-",
                error_user=user_id or " ",
                text=text,
                status=422,
            )
        try:
            groups = parse_groups(text)
        except GroupsError as exc:
            return page(request, admin, error=str(exc), error_user=user_id, text=text, status=422)
        before = service.storage.get_user_groups(user_id) or []
        service.set_user_groups(user_id, groups)
        console.audit(
            admin,
            "user.groups",
            f"groups of {user_id}: [{', '.join(before)}] -> [{', '.join(groups)}]",
        )
        return RedirectResponse("/console/users?notice=saved", status_code=303)

    return [
        Route("/users", users_page, methods=["GET"]),
        Route("/users/groups", set_groups, methods=["POST"]),
    ]
