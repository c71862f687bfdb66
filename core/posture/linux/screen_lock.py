"""Linux ``screen_lock.*``: GNOME (``gsettings``), KDE Plasma (``kreadconfig``), logind.

GNOME locks on idle when ``org.gnome.desktop.screensaver lock-enabled`` is true and
``org.gnome.desktop.session idle-delay`` is above 0 (0 = never blank); the lock comes
``lock-delay`` seconds after blanking. KDE's ``kscreenlockerrc`` has ``Autolock``
(default true), ``Timeout`` in minutes (default 5) and ``LockGrace`` in seconds
(default 5). The desktop named in ``XDG_CURRENT_DESKTOP`` is asked first; without a
readable desktop setting, systemd-logind's ``IdleAction=lock`` counts. Anything else
is unknown — a headless machine has no screen lock to prove.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import CommandError, ParseError, ToolFailedError, ToolMissingError

__all__ = [
    "COLLECTOR",
    "kde_argv",
    "parse_gsettings_bool",
    "parse_gsettings_uint",
    "parse_logind",
    "parse_timespan",
]

LOCK_ENABLED = ("gsettings", "get", "org.gnome.desktop.screensaver", "lock-enabled")
IDLE_DELAY = ("gsettings", "get", "org.gnome.desktop.session", "idle-delay")
LOCK_DELAY = ("gsettings", "get", "org.gnome.desktop.screensaver", "lock-delay")
LOGIND = ("loginctl", "show-session", "-p", "IdleAction", "-p", "IdleActionUSec")

Facts = dict[str, Answer]


def parse_gsettings_bool(text: str) -> bool:
    """``true``/``false`` → bool; raises ``ParseError``."""
    value = text.strip()
    if value in ("true", "false"):
        return value == "true"
    raise ParseError(f"gsettings boolean: {value[:40]!r}")


def parse_gsettings_uint(text: str) -> int:
    """``uint32 300`` (or ``300``) → 300; raises ``ParseError``."""
    m = re.fullmatch(r"(?:u?int(?:32|64)\s+)?(\d+)", text.strip())
    if m is None:
        raise ParseError(f"gsettings integer: {text.strip()[:40]!r}")
    return int(m.group(1))


def kde_argv(tool: str, key: str, default: str) -> tuple[str, ...]:
    """``kreadconfig5/6 --file kscreenlockerrc --group Daemon --key KEY --default D``."""
    return (
        tool,
        "--file",
        "kscreenlockerrc",
        "--group",
        "Daemon",
        "--key",
        key,
        "--default",
        default,
    )


_SPAN_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600, "d": 86400}


def parse_timespan(text: str) -> int:
    """A systemd timespan (``30min``, ``1h 30min``, ``0``) → whole seconds; ParseError."""
    text = text.strip()
    if text in ("0", ""):
        return 0
    total = 0.0
    for part in text.split():
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(us|ms|s|min|h|d)", part)
        if m is None:
            raise ParseError(f"timespan: {text[:40]!r}")
        total += float(m.group(1)) * _SPAN_UNITS[m.group(2)]
    return int(total)


def parse_logind(text: str) -> Facts:
    """``loginctl show-session -p IdleAction -p IdleActionUSec`` (manager) → facts."""
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    action = props.get("IdleAction")
    if action is None or "IdleActionUSec" not in props:
        raise ParseError("loginctl: no IdleAction")
    after = parse_timespan(props["IdleActionUSec"])
    if action == "lock" and after > 0:
        return {"screen_lock.enabled": True, "screen_lock.timeout_s": after}
    reason = Unknown(f"no desktop screen-lock settings; logind IdleAction={action}")
    return {"screen_lock.enabled": reason, "screen_lock.timeout_s": reason}


async def _gnome(ctx: CollectContext) -> Facts | None:
    # Three independent reads: run them together (this collector is a watcher).
    try:
        results = await asyncio.gather(
            ctx.run(LOCK_ENABLED), ctx.run(IDLE_DELAY), ctx.run(LOCK_DELAY)
        )
    except ToolMissingError:
        return None
    except ToolFailedError as exc:
        if "schema" in exc.stderr.lower():
            return None  # GNOME settings not installed
        raise
    enabled = parse_gsettings_bool(results[0].stdout)
    idle = parse_gsettings_uint(results[1].stdout)
    lock_delay = parse_gsettings_uint(results[2].stdout)
    on = enabled and idle > 0
    return {
        "screen_lock.enabled": on,
        "screen_lock.timeout_s": idle + lock_delay if on else Unknown("screen lock is off"),
    }


async def _kde(ctx: CollectContext) -> Facts | None:
    for tool in ("kreadconfig6", "kreadconfig5"):
        try:
            auto, timeout, grace = await asyncio.gather(
                ctx.run(kde_argv(tool, "Autolock", "true")),
                ctx.run(kde_argv(tool, "Timeout", "5")),
                ctx.run(kde_argv(tool, "LockGrace", "5")),
            )
        except ToolMissingError:
            continue
        if auto.stdout.strip() not in ("true", "false"):
            raise ParseError(f"kscreenlockerrc Autolock: {auto.stdout.strip()[:40]!r}")
        minutes, grace_s = timeout.stdout.strip(), grace.stdout.strip()
        if not minutes.isdigit() or not grace_s.isdigit():
            raise ParseError(f"kscreenlockerrc Timeout/LockGrace: {minutes!r}/{grace_s!r}")
        on = auto.stdout.strip() == "true" and int(minutes) > 0
        return {
            "screen_lock.enabled": on,
            "screen_lock.timeout_s": int(minutes) * 60 + int(grace_s)
            if on
            else Unknown("screen lock is off"),
        }
    return None


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    desktop = os.environ.get("XDG_CURRENT_DESKTOP", "").upper()
    probes = (_kde, _gnome) if "KDE" in desktop else (_gnome, _kde)
    for probe in probes:
        facts = await probe(ctx)
        if facts is not None:
            return facts
    try:
        return parse_logind((await ctx.run(LOGIND)).stdout)
    except CommandError as exc:
        reason = Unknown(f"no GNOME/KDE screen-lock settings; {exc.tool}: {exc}")
        return {"screen_lock.enabled": reason, "screen_lock.timeout_s": reason}


COLLECTOR = Collector(
    "linux-screen-lock", ("screen_lock.enabled", "screen_lock.timeout_s"), _collect, cheap=True
)
