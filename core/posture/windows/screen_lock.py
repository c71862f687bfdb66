"""Windows ``screen_lock.*`` from the registry.

The machine inactivity limit (``InactivityTimeoutSecs``, Group Policy "Interactive
logon: Machine inactivity limit") locks the session on its own. Otherwise the
password-protected screen saver does: ``ScreenSaveActive`` = 1, ``ScreenSaverIsSecure``
= 1, a ``SCRNSAVE.EXE`` set and ``ScreenSaveTimeOut`` seconds — the user's values under
``HKCU\\Control Panel\\Desktop``, overridden by the policy key. A missing key (exit 1)
is an empty key.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.text import parse_int
from core.posture.windows.tools import RegValue, reg_values

__all__ = ["COLLECTOR", "REG_DESKTOP", "REG_INACTIVITY", "REG_POLICY", "screen_lock_from"]

REG_DESKTOP = ("reg", "query", r"HKCU\Control Panel\Desktop")
REG_POLICY = ("reg", "query", r"HKCU\Software\Policies\Microsoft\Windows\Control Panel\Desktop")
REG_INACTIVITY = (
    "reg",
    "query",
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System",
    "/v",
    "InactivityTimeoutSecs",
)


def _int(value: RegValue | None) -> int | None:
    if isinstance(value, int):
        return value
    return parse_int(value) if isinstance(value, str) else None


def screen_lock_from(
    desktop: Mapping[str, RegValue],
    policy: Mapping[str, RegValue],
    machine: Mapping[str, RegValue],
) -> dict[str, Answer]:
    """Effective screen-lock facts from the three keys' values (names lower-cased)."""
    inactivity = _int(machine.get("inactivitytimeoutsecs"))
    if inactivity is not None and inactivity > 0:
        return {"screen_lock.enabled": True, "screen_lock.timeout_s": inactivity}
    merged = {**desktop, **policy}
    active = str(merged.get("screensaveactive", "0")) == "1"
    secure = str(merged.get("screensaverissecure", "0")) == "1"
    saver = str(merged.get("scrnsave.exe", "")).strip()
    timeout = _int(merged.get("screensavetimeout"))
    on = active and secure and bool(saver) and timeout is not None and timeout > 0
    return {
        "screen_lock.enabled": on,
        "screen_lock.timeout_s": timeout if on and timeout else Unknown("screen lock is off"),
    }


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    desktop = await ctx.run(REG_DESKTOP)
    policy = await ctx.run(REG_POLICY, ok_codes=(0, 1))
    machine = await ctx.run(REG_INACTIVITY, ok_codes=(0, 1))
    return screen_lock_from(
        reg_values(desktop.stdout),
        reg_values(policy.stdout) if policy.ok else {},
        reg_values(machine.stdout) if machine.ok else {},
    )


COLLECTOR = Collector(
    "windows-screen-lock", ("screen_lock.enabled", "screen_lock.timeout_s"), _collect, cheap=True
)
