"""The console's overview page (``/console/``): devices online, decisions per minute,
top denied resources and posture failures.

"Online" means enrolled, not revoked and seen in the last ``ONLINE_WINDOW_S`` seconds,
where *seen* is the later of the device's last accepted posture report and its last
bundle fetch (the lease it was given ends ``bundle_ttl_s`` after the fetch). Decision
telemetry is not used for it: telemetry may be off on a device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.policy.compiled import CompiledPolicy, compile_bundle
from core.policy.engine import Reachability, reachable_resources

if TYPE_CHECKING:
    from controller.console.base import Console
    from controller.service import ControllerService
    from controller.storage.base import DeviceRecord

__all__ = [
    "ONLINE_WINDOW_S",
    "Chart",
    "DeviceView",
    "device_view",
    "device_views",
    "failing_checks",
    "last_seen",
    "posture_failures",
    "reachability",
    "routes",
]

#: a device seen within this many seconds counts as online
ONLINE_WINDOW_S = 300
_CHART_W = 720
_CHART_H = 160
_MINUTES = 60


def last_seen(dev: DeviceRecord, bundle_ttl_s: int) -> int | None:
    """When the device last talked to the controller (posture report or bundle fetch)."""
    seen = [t for t in (dev.posture_at,) if t]
    if dev.lease_until:
        seen.append(dev.lease_until - bundle_ttl_s)
    return max(seen) if seen else None


def reachability(
    service: ControllerService,
    dev: DeviceRecord,
    compiled: dict[str, CompiledPolicy] | None = None,
) -> tuple[Reachability, ...]:
    """Per resource: may the device reach it with its last posture facts, and if not,
    what is missing (the policy engine the client runs). ``compiled`` caches the policy
    per user across calls (one page evaluating many devices compiles it once per user)."""
    cp = compiled.get(dev.user_id) if compiled is not None else None
    if cp is None:
        # The bundle the device would get now: the what-if page's, so the two agree.
        cp = compile_bundle(service.preview_bundle(dev.device_id))
        if compiled is not None:
            compiled[dev.user_id] = cp
    return reachable_resources(cp, dev.posture or {}, now=service.now(), risk=0)


def failing_checks(reach: tuple[Reachability, ...]) -> list[str]:
    """The distinct unmet POSTURE requirements behind the refused resources (for IT).
    A missing group is access, not posture: it is not listed."""
    out: list[str] = []
    for r in reach:
        if r.allowed:
            continue
        for u in r.unmet:
            if u.fact.startswith("posture.") and u.requirement not in out:
                out.append(u.requirement)
    return out


def posture_failures(
    service: ControllerService, records: list[DeviceRecord]
) -> dict[str, list[str]]:
    """Device id → its failing posture checks, for active devices that reported posture
    (none failing: an empty list; no report: absent)."""
    compiled: dict[str, CompiledPolicy] = {}
    return {
        dev.device_id: failing_checks(reachability(service, dev, compiled))
        for dev in records
        if dev.status == "active" and dev.posture_at
    }


@dataclass(frozen=True, slots=True)
class DeviceView:
    """A device as the console's tables show it."""

    device_id: str
    user: str
    name: str
    platform: str
    status: str
    last_seen: int | None
    online: bool
    #: "ok", "failed" or "unknown" (no report yet)
    posture: str
    posture_at: int | None
    reachable: tuple[str, ...]
    address: str | None
    created_at: int
    #: the failing posture checks (empty when ok or unknown)
    failing: tuple[str, ...] = ()


def device_views(service: ControllerService, records: list[DeviceRecord]) -> list[DeviceView]:
    """The table rows of ``records``, posture judged by the policy engine."""
    failing = posture_failures(service, records)
    now, ttl = service.now(), service.config.bundle_ttl_s
    return [
        device_view(d, now=now, bundle_ttl_s=ttl, failing=failing.get(d.device_id)) for d in records
    ]


def device_view(
    dev: DeviceRecord, *, now: int, bundle_ttl_s: int, failing: list[str] | None = None
) -> DeviceView:
    """The table row of a device; ``failing``: its failing posture checks (see
    ``posture_failures``; None when it has no report)."""
    seen = last_seen(dev, bundle_ttl_s)
    posture = "unknown" if not dev.posture_at or failing is None else "failed" if failing else "ok"
    return DeviceView(
        device_id=dev.device_id,
        user=dev.user_id,
        name=dev.name,
        platform=dev.platform,
        status=dev.status,
        last_seen=seen,
        online=dev.status == "active" and seen is not None and now - seen <= ONLINE_WINDOW_S,
        posture=posture,
        posture_at=dev.posture_at,
        reachable=dev.reachable,
        address=dev.address,
        created_at=dev.created_at,
        failing=tuple(failing or ()),
    )


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute of the chart (SVG coordinates)."""

    x: float
    width: float
    allow_y: float
    allow_h: float
    deny_y: float
    deny_h: float
    minute: int
    allowed: int
    denied: int


@dataclass(frozen=True, slots=True)
class Chart:
    """The decisions-per-minute bar chart, laid out for the template's inline SVG."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    peak: int
    total_allowed: int
    total_denied: int
    start: int
    end: int


def chart(per_minute: dict[int, tuple[int, int]], now: int) -> Chart:
    """Stacked bars (allow below, deny above), one per minute of the last hour."""
    end = now // 60 * 60
    start = end - (_MINUTES - 1) * 60
    slots = [per_minute.get(start + i * 60, (0, 0)) for i in range(_MINUTES)]
    peak = max((a + d for a, d in slots), default=0)
    top = 18  # a band above the bars for the "peak" label, which the tallest bar hid
    plot_h = _CHART_H - 20 - top  # and room below for the axis labels
    slot_w = _CHART_W / _MINUTES
    bars: list[Bar] = []
    for i, (allowed, denied) in enumerate(slots):
        scale = plot_h / peak if peak else 0.0
        ah = allowed * scale
        dh = denied * scale
        bars.append(
            Bar(
                x=round(i * slot_w + 1, 2),
                width=round(slot_w - 2, 2),
                allow_y=round(top + plot_h - ah, 2),
                allow_h=round(ah, 2),
                deny_y=round(top + plot_h - ah - dh, 2),
                deny_h=round(dh, 2),
                minute=start + i * 60,
                allowed=allowed,
                denied=denied,
            )
        )
    return Chart(
        width=_CHART_W,
        height=_CHART_H,
        bars=tuple(bars),
        peak=peak,
        total_allowed=sum(a for a, _ in slots),
        total_denied=sum(d for _, d in slots),
        start=start,
        end=end,
    )


def routes(console: Console) -> list[BaseRoute]:
    """``/``: the overview."""
    service = console.service

    async def overview(request: Request) -> Response:
        admin = await console.admin(request)
        now = service.now()
        views = device_views(service, service.storage.list_devices())
        stats = service.storage.console_stats(now=service.clock())
        failures = [(v, list(v.failing)) for v in views if v.posture == "failed"]
        return console.render(
            request,
            "overview.html",
            {
                "now": now,
                "online": sum(1 for v in views if v.online),
                "active": sum(1 for v in views if v.status == "active"),
                "total": len(views),
                "chart": chart(stats.per_minute, now),
                "top_denied": stats.top_denied,
                "failures": failures,
                "online_window_min": ONLINE_WINDOW_S // 60,
            },
            admin,
            page="overview",
        )

    return [Route("/", overview, methods=["GET"])]
