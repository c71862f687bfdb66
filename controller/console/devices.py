"""The console's device pages: the list (``/console/devices``) and one device
(``/console/devices/{id}``) with its posture facts, reachable resources and recent
decisions; revoke (with a required confirmation) and posture re-check, both audited.

The client version shown is the one the device's last posture report carries
(``posture.client.version``); enrollment does not send one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from controller.console.base import Admin
from controller.console.overview import (
    device_view,
    device_views,
    failing_checks,
    reachability,
)
from controller.console.web import read_form
from controller.storage.base import DeviceRecord, NotFoundError

if TYPE_CHECKING:
    from controller.console.base import Console

__all__ = ["routes"]

_ID_RE = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")
_NOTICES = {
    "revoked": "The device was revoked: its access ended and it was told at once.",
    "recheck": "The device was asked to re-check its posture now.",
}


def routes(console: Console) -> list[BaseRoute]:
    """``/devices``, ``/devices/{id}`` and the revoke/recheck actions."""
    service = console.service

    def find(device_id: str) -> DeviceRecord | None:
        if not _ID_RE.match(device_id):
            return None
        try:
            return service.storage.get_device(device_id)
        except NotFoundError:
            return None

    def not_found(request: Request, admin: Admin, device_id: str) -> Response:
        return console.render(
            request,
            "error.html",
            {
                "status": 404,
                "title": "No such device",
                "message": f"There is no device {device_id[:80]!r}.",
                "hint": "",
                "signin_link": False,
            },
            admin,
            status=404,
            page="devices",
        )

    async def device_list(request: Request) -> Response:
        admin = await console.admin(request)
        now = service.now()
        views = device_views(service, service.storage.list_devices())
        # Active first, then most recently seen.
        views.sort(key=lambda v: (v.status != "active", -(v.last_seen or 0), v.name))
        return console.render(
            request, "devices.html", {"devices": views, "now": now}, admin, page="devices"
        )

    def detail(
        request: Request,
        admin: Admin,
        dev: DeviceRecord,
        *,
        status: int = 200,
        error: str = "",
        notice: str = "",
    ) -> Response:
        reach = reachability(service, dev) if dev.status == "active" else ()
        view = device_view(
            dev,
            now=service.now(),
            bundle_ttl_s=service.config.bundle_ttl_s,
            failing=failing_checks(reach) if reach and dev.posture_at else None,
        )
        facts: list[tuple[str, Any]] = sorted((dev.posture or {}).items())
        decisions = service.storage.list_decisions(device_id=dev.device_id, limit=50)
        ctx = {
            "dev": view,
            "facts": facts,
            "reach": reach,
            "failing": failing_checks(reach),
            "decisions": decisions,
            "error": error,
            "notice": notice,
            "wg_public_key": dev.wg_public_key,
            "revoked_at": dev.revoked_at,
            "bundle_version": dev.bundle_version,
            "lease_until": dev.lease_until,
            "client_version": str((dev.posture or {}).get("posture.client.version", ""))[:64],
        }
        return console.render(request, "device.html", ctx, admin, status=status, page="devices")

    async def device_page(request: Request) -> Response:
        admin = await console.admin(request)
        device_id = request.path_params["device_id"]
        dev = find(device_id)
        if dev is None:
            return not_found(request, admin, device_id)
        notice = _NOTICES.get(request.query_params.get("done", ""), "")
        return detail(request, admin, dev, notice=notice)

    async def revoke(request: Request) -> Response:
        admin = await console.admin(request)
        form = await read_form(request)
        console.check_csrf(request, form, admin)
        device_id = request.path_params["device_id"]
        dev = find(device_id)
        if dev is None:
            return not_found(request, admin, device_id)
        if form.get("confirm") != "yes":
            return detail(
                request,
                admin,
                dev,
                status=400,
                error="Tick the box to confirm the revocation: it cannot be undone.",
            )
        was_active = dev.status == "active"
        service.revoke(device_id)
        if was_active:
            console.audit(
                admin,
                "device_revoke",
                f"revoked device {dev.name!r} ({device_id}) of {dev.user_id}",
                device_id=device_id,
            )
        return RedirectResponse(f"/console/devices/{device_id}?done=revoked", status_code=303)

    async def recheck(request: Request) -> Response:
        admin = await console.admin(request)
        form = await read_form(request)
        console.check_csrf(request, form, admin)
        device_id = request.path_params["device_id"]
        dev = find(device_id)
        if dev is None:
            return not_found(request, admin, device_id)
        if dev.status != "active":
            return detail(
                request, admin, dev, status=409, error="A revoked device cannot re-check."
            )
        # The same as the admin API's posture-recheck: an event the device acts on.
        service.events.publish(
            "posture_recheck", device_id, "an administrator asked for a posture re-check"
        )
        console.audit(
            admin,
            "device_recheck",
            f"asked device {dev.name!r} ({device_id}) of {dev.user_id} to re-check its posture",
            device_id=device_id,
        )
        return RedirectResponse(f"/console/devices/{device_id}?done=recheck", status_code=303)

    return [
        Route("/devices", device_list, methods=["GET"]),
        Route("/devices/{device_id}", device_page, methods=["GET"]),
        Route("/devices/{device_id}/revoke", revoke, methods=["POST"]),
        Route("/devices/{device_id}/recheck", recheck, methods=["POST"]),
    ]
