"""The audit log page: break-glass reports from devices and every admin change
(``admin:*``), newest first, filtered by kind, user and device, paged by offset.

Everything shown comes from devices or admins, so it is only ever rendered through the
autoescaping templates; the filters travel in the query string (a GET changes nothing).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from controller.console.base import Console
    from controller.storage import AuditEntry

__all__ = ["KINDS", "PAGE_SIZE", "routes"]

#: rows per page (``limit`` may ask for fewer or up to ``MAX_PAGE``)
PAGE_SIZE = 50
MAX_PAGE = 200
#: the kind filter's choices: value -> (label, exact kind, kind prefix)
KINDS: dict[str, tuple[str, str | None, str | None]] = {
    "": ("any", None, None),
    "break_glass": ("break-glass reports", "break_glass", None),
    "admin": ("admin changes", None, "admin:"),
}
_MAX_FILTER = 200
_MAX_OFFSET = 1_000_000


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        number = default
    return min(max(number, low), high)


def _view(entry: AuditEntry) -> dict[str, Any]:
    when = datetime.fromtimestamp(entry.at, UTC)
    return {
        "record_id": entry.record_id,
        "iso": when.isoformat(),
        "when": when.strftime("%Y-%m-%d %H:%M:%S"),
        "kind": entry.kind,
        "user_id": entry.user_id,
        "device_id": entry.device_id,
        "detail": entry.detail,
    }


def routes(console: Console) -> list[BaseRoute]:
    """``/audit``: the audit log (query: ``kind``, ``user``, ``device``, ``limit``,
    ``offset``)."""

    async def audit_page(request: Request) -> Response:
        admin = await console.admin(request)
        q = request.query_params
        kind = q.get("kind", "")
        if kind not in KINDS:
            kind = ""
        user = q.get("user", "")[:_MAX_FILTER].strip()
        device = q.get("device", "")[:_MAX_FILTER].strip()
        limit = _int(q.get("limit"), PAGE_SIZE, 1, MAX_PAGE)
        offset = _int(q.get("offset"), 0, 0, _MAX_OFFSET)
        _label, exact, prefix = KINDS[kind]
        # One more than shown: whether an older page exists.
        rows = console.service.storage.search_audit(
            kind=exact,
            kind_prefix=prefix,
            user=user or None,
            device=device or None,
            limit=limit + 1,
            offset=offset,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        base = {"kind": kind, "user": user, "device": device, "limit": str(limit)}

        def page_url(at: int) -> str:
            params = {k: v for k, v in {**base, "offset": str(at)}.items() if v}
            if params.get("limit") == str(PAGE_SIZE):
                del params["limit"]
            if params.get("offset") == "0":
                del params["offset"]
            return "?" + urlencode(params) if params else "?"

        context: dict[str, Any] = {
            "rows": [_view(r) for r in rows],
            "kinds": [(value, label) for value, (label, _e, _p) in KINDS.items()],
            "filter": {"kind": kind, "user": user, "device": device},
            "offset": offset,
            "newer_url": page_url(max(0, offset - limit)) if offset > 0 else None,
            "older_url": page_url(offset + limit) if more else None,
        }
        return console.render(request, "audit.html", context, admin, page="audit")

    return [Route("/audit", audit_page, methods=["GET"])]
