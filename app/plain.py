"""Strings from the controller, the provider, the device or the user, made fit to show.

Every such string is data (DESIGN §7.8): a resource's reason may carry ``<b>``, a link
styled "reset your password here", an ANSI colour sequence, a newline that forges a line,
or a bidi override. The views show them as plain text (``app.widgets``); this module
escapes their control, bidi and invisible characters (``core.text.safe_line``) once, where
they enter the UI: ``clean_snapshot`` for the snapshot the bridge hands the views,
``clean_details`` for an event's details. No Qt; pure; any thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from core.engine.state import (
    AccessView,
    ErrorInfo,
    PostureItem,
    ResourceView,
    Snapshot,
    TunnelView,
)
from core.text import safe_line

__all__ = ["clean", "clean_details", "clean_optional", "clean_snapshot"]


def clean(text: str) -> str:
    """``text`` on one line, every control/bidi/invisible character a visible escape."""
    return safe_line(text)


def clean_optional(text: str | None) -> str | None:
    """:func:`clean` for an optional string."""
    return None if text is None else safe_line(text)


def clean_details(details: Mapping[str, str]) -> dict[str, str]:
    """An event's ``details`` with every key and value cleaned."""
    return {safe_line(k): safe_line(v) for k, v in details.items()}


def _resource(r: ResourceView) -> ResourceView:
    return dataclasses.replace(
        r,
        name=safe_line(r.name),
        address=safe_line(r.address),
        reason=safe_line(r.reason),
        fix=safe_line(r.fix),
    )


def _posture(p: PostureItem) -> PostureItem:
    return dataclasses.replace(
        p,
        name=safe_line(p.name),
        label=safe_line(p.label),
        value=safe_line(p.value),
        status=safe_line(p.status),
        fix=safe_line(p.fix),
    )


def _tunnel(t: TunnelView | None) -> TunnelView | None:
    if t is None:
        return None
    return dataclasses.replace(
        t,
        interface=safe_line(t.interface),
        gateway=safe_line(t.gateway),
        relay=None if t.relay is None else safe_line(t.relay),  # the controller's name
    )


def _error(e: ErrorInfo | None) -> ErrorInfo | None:
    if e is None:
        return None
    return dataclasses.replace(
        e,
        title=safe_line(e.title),
        detail=safe_line(e.detail),
        next_step=safe_line(e.next_step),
        code=safe_line(e.code),
    )


def _access(a: AccessView | None) -> AccessView | None:
    if a is None:
        return None
    return dataclasses.replace(
        a,
        mode=safe_line(a.mode),
        proxy_address=clean_optional(a.proxy_address),
        transparent_address=clean_optional(a.transparent_address),
        dns_suffixes=tuple(safe_line(x) for x in a.dns_suffixes),
    )


def clean_snapshot(s: Snapshot) -> Snapshot:
    """``s`` with every string that came from elsewhere cleaned.

    Returns ``s`` itself when nothing needed escaping (the common case), so equality and
    identity checks downstream stay cheap.
    """
    cleaned = dataclasses.replace(
        s,
        user=clean_optional(s.user),
        device_id=clean_optional(s.device_id),
        organization=clean_optional(s.organization),
        resources=tuple(_resource(r) for r in s.resources),
        posture=tuple(_posture(p) for p in s.posture),
        tunnel=_tunnel(s.tunnel),
        risk_signals=tuple(safe_line(x) for x in s.risk_signals),
        error=_error(s.error),
        controller_problem=_error(s.controller_problem),
        proxy_address=clean_optional(s.proxy_address),
        access=_access(s.access),
        managed_rejected=clean_optional(s.managed_rejected),
    )
    return s if cleaned == s else cleaned
