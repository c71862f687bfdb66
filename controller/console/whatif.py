"""The what-if page: would user U on device D reach resource R (with app A), and why.

A GET form (it changes nothing): pick a user, then one of their devices (the device list
follows the chosen user on reload), a resource and optionally an app. The answer comes
from ``controller.whatif.evaluate``: the client's engine with the bundle the controller
would issue to that device now and the device's last posture facts. With a draft, the
same question is also answered against the policy after publishing it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute, Route

from controller.console.policy import load_draft, published_policy
from controller.drafts import DraftError, apply
from controller.whatif import WhatIf, evaluate

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from controller.console.base import Console
    from controller.storage import DeviceRecord

__all__ = ["routes"]

_MAX_PARAM = 512


def _param(request: Request, name: str) -> str:
    value = request.query_params.get(name, "")
    return value[:_MAX_PARAM].strip()


def _when(at: int | None) -> str:
    if at is None:
        return ""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _view(result: WhatIf) -> dict[str, Any]:
    return {
        "effect": result.effect,
        "rule_id": result.rule_id,
        "reason": result.reason,
        "resource_id": result.resource_id,
        "resource_name": result.resource_name,
        "unmet": result.unmet,
        "risk": result.risk,
        "stale": result.stale,
        "facts": result.facts,
        "subject": result.subject,
        "groups": result.groups,
    }


def routes(console: Console) -> list[BaseRoute]:
    """``/whatif`` (query: ``user``, ``device``, ``resource``, ``app``)."""
    service = console.service

    async def whatif_page(request: Request) -> Response:
        admin = await console.admin(request)
        user = _param(request, "user")
        device_id = _param(request, "device")
        resource_id = _param(request, "resource")
        app = _param(request, "app")
        devices: list[DeviceRecord] = [
            d for d in service.storage.list_devices() if d.status == "active"
        ]
        users = sorted({d.user_id for d in devices} | set(service.storage.list_identities()))
        mine = [d for d in devices if d.user_id == user]
        published = published_policy(service)
        draft = load_draft(service, admin.user_id)
        after = None
        if draft is not None:
            try:
                after = apply(published, draft)
            except DraftError:
                after = None
        resource_ids = sorted(set(published.resources) | set(after.resources if after else ()))
        names = {i: r.name for i, r in (after.resources.items() if after else ())}
        names.update((i, r.name) for i, r in published.resources.items())
        context: dict[str, Any] = {
            "users": users,
            "devices": [{"id": d.device_id, "name": d.name, "platform": d.platform} for d in mine],
            "resources": [
                {
                    "id": rid,
                    "name": names.get(rid, ""),
                    "draft_only": rid not in published.resources,
                }
                for rid in resource_ids
            ],
            "q": {"user": user, "device": device_id, "resource": resource_id, "app": app},
            "error": "",
            "result": None,
            "draft_result": None,
            "device": None,
        }
        if not (user and device_id and resource_id):
            if device_id or resource_id:
                context["error"] = "Choose a user, one of their devices and a resource."
            return console.render(request, "whatif.html", context, admin, page="whatif")
        dev = next((d for d in mine if d.device_id == device_id), None)
        if dev is None:
            context["error"] = f"{user} has no active device {device_id!r}."
            return console.render(request, "whatif.html", context, admin, status=404, page="whatif")
        if resource_id not in resource_ids:
            context["error"] = f"There is no resource {resource_id!r}."
            return console.render(request, "whatif.html", context, admin, status=404, page="whatif")
        now = service.clock()
        facts = dict(dev.posture or {})
        context["device"] = {
            "id": dev.device_id,
            "name": dev.name,
            "posture_at": _when(dev.posture_at),
            "reported": dev.posture_at is not None,
        }
        if resource_id in published.resources:
            bundle = service.preview_bundle(dev.device_id)
            context["result"] = _view(
                evaluate(
                    bundle,
                    facts,
                    resource_id=resource_id,
                    app=app,
                    now=now,
                    posture_at=dev.posture_at,
                )
            )
        if after is not None and resource_id in after.resources:
            bundle = service.preview_bundle(
                dev.device_id,
                resources=list(after.resources.values()),
                rules=list(after.rules.values()),
            )
            context["draft_result"] = _view(
                evaluate(
                    bundle,
                    facts,
                    resource_id=resource_id,
                    app=app,
                    now=now,
                    posture_at=dev.posture_at,
                )
            )
        return console.render(request, "whatif.html", context, admin, page="whatif")

    return [Route("/whatif", whatif_page, methods=["GET"])]
