"""Whether the controller answers, and telling the employee about a captive portal once.

``Reachability`` classifies an exception as "controller unreachable" (transport errors,
timeouts, anything flagged ``unreachable``; a captive portal is one too) and, for a
portal, emits one ERROR event per episode saying what to do (sign in to the Wi-Fi),
never a silent fail-open. ``probe`` asks cheaply, with no state change, whether the
controller answers again (the offline retry in ``core.engine.live`` uses it).

Imports: the ports, ``core.engine.errors`` and ``core.engine.state``; never the engine.
Threading: the engine's loop only. ``probe`` raises nothing but cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.engine.errors import captive_portal, explain
from core.engine.ports import ControlPort, DevicePort
from core.engine.state import EventKind
from core.errors import UserFacing
from core.i18n import translate

__all__ = ["UNREACHABLE_CODES", "Reachability", "is_unreachable"]

#: Error codes that mean "the controller cannot be used right now" (keep the held policy).
UNREACHABLE_CODES = frozenset({"controller_unreachable", "tls", "captive_portal"})


class Reachability:
    """Classifies controller failures; remembers whether the portal was told about."""

    def __init__(
        self, *, control: ControlPort, device: DevicePort, emit: Callable[..., None]
    ) -> None:
        self._control = control
        self._device = device
        self._emit = emit
        self._portal_told = False

    def answered(self) -> None:
        """The controller answered: a later portal is a new episode, told again."""
        self._portal_told = False

    def unreachable(self, exc: BaseException) -> bool:
        """Is ``exc`` "controller unreachable"? A captive portal is, and the employee is
        told once per episode what to do (sign in to the Wi-Fi), never a silent fail-open."""
        if not is_unreachable(exc):
            return False
        if captive_portal(exc) is not None and not self._portal_told:
            self._portal_told = True
            info = explain(exc, during=translate("core.engine.reach", "reaching the controller"))
            self._emit(
                EventKind.ERROR,
                info.title,
                details={"detail": info.detail, "next": info.next_step, "captive_portal": "1"},
            )
        return True

    async def probe(self) -> bool:
        """Cheaply ask whether the controller answers (a posture nonce), without states."""
        if self._device.enrollment() is None:
            return True
        try:
            await self._control.posture_nonce()
        except Exception as exc:
            return not self.unreachable(exc)
        self.answered()
        return True


def is_unreachable(exc: BaseException) -> bool:
    """Does ``exc`` mean the controller could not be reached (rather than refused)?"""
    import httpx

    if isinstance(exc, httpx.TransportError | ConnectionError | asyncio.TimeoutError):
        return True
    # A controller that answers 5xx or "slow down" is out of service, not refusing us.
    return isinstance(exc, UserFacing) and exc.code in UNREACHABLE_CODES
