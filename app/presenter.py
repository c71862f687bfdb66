"""Pure functions from engine state to what the tray shows: labels, tooltip, menu model.

Nothing here imports Qt, so the whole "what does the employee see in state X" table is
tested without a display. The tray and the windows render these values and nothing more.
All functions are pure and safe to call from any thread.
"""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass
from enum import StrEnum

from app.icons import IconKind
from core.clock import sign_in_words, skew_words
from core.engine.state import ResourceView, SessionState, Snapshot, TunnelView

__all__ = [
    "BUSY_STATES",
    "CONNECTED_STATES",
    "LOST_LABEL",
    "REACHABLE_STATES",
    "STARTING_LABEL",
    "Action",
    "IconKind",
    "MenuEntry",
    "ResourceStatus",
    "access_line",
    "blocked_fixes",
    "blocked_lines",
    "can_extend",
    "can_retry",
    "clock_line",
    "controller_line",
    "format_age",
    "format_bytes",
    "icon_for",
    "managed_line",
    "menu_model",
    "next_step",
    "owner_text",
    "resource_status",
    "session_line",
    "state_label",
    "tooltip",
    "trust_line",
    "tunnel_summary",
]

#: States in which the engine is working towards (or away from) a connection.
BUSY_STATES = frozenset(
    {
        SessionState.SIGNING_IN,
        SessionState.ENROLLING,
        SessionState.CHECKING_POSTURE,
        SessionState.CONNECTING,
        SessionState.RECONNECTING,
        SessionState.DISCONNECTING,
    }
)

#: States with a tunnel up (Disconnect is offered, the tunnel is shown).
CONNECTED_STATES = frozenset({SessionState.CONNECTED, SessionState.DEGRADED, SessionState.BLOCKED})

#: The only states in which a resource may be shown "reachable": access really flows.
#: (BLOCKED has the tunnel up but every resource blocked; OFFLINE and the rest have no
#: verified access, so a resource the policy allows is "not connected", never "reachable".)
REACHABLE_STATES = frozenset({SessionState.CONNECTED, SessionState.DEGRADED})


class Action(StrEnum):
    """What a menu entry does; ``app.actions.Actions`` maps each to an engine call or window."""

    SIGN_IN = "sign_in"
    RESTART = "restart"  # start the agent again after the engine went away
    EXTEND = "extend"  # sign in again now, before the session ends (menu or notification)
    RETRY = "retry"  # try to connect again now, without waiting for the next attempt
    SIGN_OUT = "sign_out"
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    OPEN_MAIN = "open_main"
    POSTURE = "posture"
    ACTIVITY = "activity"
    SETTINGS = "settings"
    DIAGNOSTICS = "diagnostics"
    SHOW_DIAGNOSTICS = "show_diagnostics"  # open the folder of the last diagnostics file
    ABOUT = "about"
    QUIT = "quit"


_LABELS: dict[SessionState, str] = {
    SessionState.SIGNED_OUT: "Signed out",
    SessionState.SIGNING_IN: "Signing in…",
    SessionState.ENROLLING: "Registering this device…",
    SessionState.CHECKING_POSTURE: "Checking this device…",
    SessionState.CONNECTING: "Connecting…",
    SessionState.CONNECTED: "Connected",
    SessionState.DEGRADED: "Connected — some access blocked",
    SessionState.BLOCKED: "Connected — access blocked",
    SessionState.OFFLINE: "Offline — using last policy",
    SessionState.RECONNECTING: "Reconnecting — the gateway stopped answering",
    SessionState.DISCONNECTING: "Disconnecting…",
    SessionState.DISCONNECTED: "Not connected",
    SessionState.ERROR: "Problem",
}


#: What the tray says between start-up and the engine being ready.
STARTING_LABEL = "Starting…"

#: What the tray says when the engine it was attached to went away (agent stopped).
LOST_LABEL = "Rustronaut is not running"

#: What to do about a lost engine (the menu's Restart entry does it).
LOST_NEXT_STEP = "Choose Restart Rustronaut to start it again."

#: Next steps for error codes whose engine text may be empty (the cause is well known).
_DEFAULT_NEXT_STEPS = {
    "helper_unavailable": (
        "Start the Rustronaut helper service (or reinstall Rustronaut), then Connect again."
    ),
}

#: When the engine gives neither a next step nor a known code.
_GENERIC_NEXT_STEP = "Try again. If it keeps happening, collect diagnostics and contact IT."


def next_step(snapshot: Snapshot) -> str:
    """What to do about the snapshot's error (never empty when there is an error)."""
    err = snapshot.error
    if err is None:
        return ""
    return err.next_step or _DEFAULT_NEXT_STEPS.get(err.code, _GENERIC_NEXT_STEP)


def owner_text(hosted_by: str | None) -> str:
    """Who keeps the session, and so what survives quitting this app (About window)."""
    if hosted_by == "tray":
        return "Runs inside this app: quitting it disconnects."
    if hosted_by in {"agent", "cli"}:
        who = "the Rustronaut agent" if hosted_by == "agent" else "the rustronaut command"
        return f"Kept by {who}: it stays up when you quit this app."
    return "Not running."


def state_label(snapshot: Snapshot, *, starting: bool = False, lost: bool = False) -> str:
    """One short line for the state (menu header, window header)."""
    if lost:
        return LOST_LABEL
    if starting:
        return STARTING_LABEL
    label = _LABELS[snapshot.state]
    if snapshot.state is SessionState.ERROR and snapshot.error is not None:
        return f"Problem: {snapshot.error.title}"
    return label


def icon_for(state: SessionState, *, starting: bool = False, lost: bool = False) -> IconKind:
    """The tray icon for ``state``; every state maps to exactly one icon."""
    if lost:
        return IconKind.ERROR
    if starting or state in BUSY_STATES:
        return IconKind.BUSY
    return {
        SessionState.SIGNED_OUT: IconKind.SIGNED_OUT,
        SessionState.CONNECTED: IconKind.CONNECTED,
        SessionState.DEGRADED: IconKind.DEGRADED,
        SessionState.BLOCKED: IconKind.BLOCKED,
        SessionState.OFFLINE: IconKind.OFFLINE,
        SessionState.DISCONNECTED: IconKind.DISCONNECTED,
        SessionState.ERROR: IconKind.ERROR,
    }[state]


class ResourceStatus(StrEnum):
    """How one resource is shown: only ``REACHABLE`` while access really flows."""

    REACHABLE = "reachable"
    BLOCKED = "blocked"
    NOT_CONNECTED = "not connected"


def resource_status(snapshot: Snapshot, resource: ResourceView) -> ResourceStatus:
    """``REACHABLE`` only while connected (``REACHABLE_STATES``) and the policy allows it;
    a resource the policy blocks is ``BLOCKED`` (its reason and fix are worth showing in
    any state); otherwise ``NOT_CONNECTED``."""
    if not resource.reachable:
        return ResourceStatus.BLOCKED
    if snapshot.state in REACHABLE_STATES:
        return ResourceStatus.REACHABLE
    return ResourceStatus.NOT_CONNECTED


def blocked_fixes(snapshot: Snapshot) -> tuple[str, ...]:
    """The distinct fixes of the blocked resources, in order (what BLOCKED asks for)."""
    seen: dict[str, None] = {}
    for r in snapshot.resources:
        if not r.reachable and r.fix:
            seen.setdefault(r.fix, None)
    return tuple(seen)


def format_bytes(n: int) -> str:
    """Human size with binary units: ``1536`` → ``"1.5 KiB"``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_age(seconds: float | None) -> str:
    """``None`` → ``"never"``; otherwise ``"12 s ago"``, ``"3 min ago"``, ``"2 h ago"``."""
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago"


def tunnel_summary(tunnel: TunnelView | None) -> str:
    """One line about the tunnel for the main window and tooltip."""
    if tunnel is None:
        return "No tunnel"
    return (
        f"{tunnel.gateway} via {tunnel.interface} · handshake {format_age(tunnel.handshake_age_s)}"
        f" · ↓ {format_bytes(tunnel.rx_bytes)} ↑ {format_bytes(tunnel.tx_bytes)}"
    )


def access_line(snapshot: Snapshot) -> str:
    """How apps reach company resources now (the main window's "Apps:" row). Plain text."""
    access = snapshot.access
    if access is None:
        return "—"
    if access.mode == "transparent":
        line = "Every app reaches company resources directly — no proxy settings needed"
    else:
        where = access.proxy_address or snapshot.proxy_address or "the local proxy"
        line = f"Apps reach company resources through the proxy {where} (SOCKS5 or HTTP)"
        if not access.fenced:
            line += "; this computer cannot redirect other apps"
    if access.dns_suffixes:
        line += f" · names under {', '.join(access.dns_suffixes)} resolve through the tunnel"
    if access.overridden_routes:
        line += (
            f" · this network's route {', '.join(access.overridden_routes)} is overridden:"
            " company traffic still goes only through the tunnel"
        )
    return line


def managed_line(snapshot: Snapshot) -> str | None:
    """The line "Managed configuration rejected — <reason>" while the organization's
    managed settings are rejected (the reason names the file and key, and says what
    applies instead); None otherwise. Plain text: show it with ``Qt.PlainText``."""
    if snapshot.managed_rejected is None:
        return None
    return f"Managed configuration rejected — {snapshot.managed_rejected}"


def tooltip(snapshot: Snapshot, *, starting: bool = False, lost: bool = False) -> str:
    """The tray tooltip: state, user and resources, in at most four short lines.

    Kept plain text (no HTML): some StatusNotifierItem hosts show markup verbatim.
    """
    if lost:
        return f"Rustronaut — {LOST_LABEL}\n{LOST_NEXT_STEP}"
    if starting:
        return f"Rustronaut — {STARTING_LABEL}"
    lines = [f"Rustronaut — {state_label(snapshot)}"]
    if snapshot.user:
        org = f" ({snapshot.organization})" if snapshot.organization else ""
        lines.append(f"Signed in as {snapshot.user}{org}")
    if snapshot.state is SessionState.BLOCKED:
        fixes = blocked_fixes(snapshot)
        lines.append(f"To fix: {fixes[0]}" if fixes else "Every resource is blocked")
    elif snapshot.resources and snapshot.state in REACHABLE_STATES:
        ok = sum(1 for r in snapshot.resources if r.reachable)
        lines.append(f"{ok} of {len(snapshot.resources)} resources reachable")
    if snapshot.state is SessionState.ERROR and snapshot.error is not None:
        lines.append(next_step(snapshot))
    return "\n".join(lines)


def controller_line(snapshot: Snapshot) -> str | None:
    """Why the controller cannot be used right now, while the last good policy stays in
    force ("The controller has a problem: Service Unavailable"); None when it answers."""
    problem = snapshot.controller_problem
    if problem is None:
        return None
    return f"{problem.title}: {problem.detail} — your last policy stays in force"


def trust_line(snapshot: Snapshot) -> str | None:
    """The first-use trust warning of an unmanaged (development) setup, else None."""
    return snapshot.policy_trust_notice or None


def clock_line(snapshot: Snapshot) -> str | None:
    """The clock warning ("This computer's clock is 10 minutes ahead of the controller's —
    set the date and time") when the measured skew is over a minute; same words as
    ``rustronaut status``."""
    return skew_words(snapshot.clock_skew_s)


def session_line(snapshot: Snapshot, *, now: float | None = None) -> str | None:
    """When the sign-in ends and whether it renews ("Signed in until 18:40, renews
    automatically"); same words as ``rustronaut status``. None when signed out."""
    if not snapshot.user:
        return None
    return sign_in_words(snapshot.session_expires_at, snapshot.session_renewable, now=now)


@dataclass(frozen=True, slots=True)
class MenuEntry:
    """One tray menu row.

    ``kind`` is "header" (disabled text), "action", "separator" or "submenu";
    ``action`` is set for actions, ``children`` for submenus. Equality is by value, so the
    tray rebuilds its menu only when the model really changed.
    """

    kind: str
    text: str = ""
    action: Action | None = None
    enabled: bool = True
    children: tuple[MenuEntry, ...] = ()
    tooltip: str = ""


def _sep() -> MenuEntry:
    return MenuEntry("separator")


#: The widest menu row, in characters: a longer reason or fix is wrapped over several
#: rows so it is read in full (menus never wrap, and a tooltip is hover-only).
MENU_WRAP = 60


def _wrapped(text: str, *, first: str = "", rest: str = "   ") -> list[str]:
    return textwrap.wrap(text, MENU_WRAP, initial_indent=first, subsequent_indent=rest) or [first]


def blocked_lines(resource: ResourceView) -> tuple[str, ...]:
    """The rows of a blocked resource's submenu: its reason and its fix, in full, wrapped
    to ``MENU_WRAP`` characters ("Why: …", "To fix: …"), then its address."""
    lines = _wrapped(resource.reason or "Your organization's policy blocks it.", first="Why: ")
    if resource.fix:
        lines += _wrapped(resource.fix, first="To fix: ")
    return tuple(lines)


def _resource_entries(snapshot: Snapshot) -> tuple[MenuEntry, ...]:
    if not snapshot.resources:
        return (MenuEntry("header", "No resources yet", enabled=False),)
    rows = []
    for r in snapshot.resources:
        status = resource_status(snapshot, r)
        if status is ResourceStatus.REACHABLE:
            rows.append(
                MenuEntry("action", f"✓ {r.name} — reachable", Action.OPEN_MAIN, tooltip=r.address)
            )
        elif status is ResourceStatus.NOT_CONNECTED:
            rows.append(
                MenuEntry(
                    "action", f"○ {r.name} — not connected", Action.OPEN_MAIN, tooltip=r.address
                )
            )
        else:
            # A submenu, so the reason and the fix are read in full without hovering.
            children = tuple(
                MenuEntry("action", line, Action.OPEN_MAIN) for line in blocked_lines(r)
            )
            children += (
                MenuEntry("header", r.address, enabled=False),
                _sep(),
                MenuEntry("action", "Open Rustronaut", Action.OPEN_MAIN),
            )
            tip = f"{r.reason}\n{r.fix}".strip() if r.reason or r.fix else r.address
            title = f"✕ {r.name} — {r.reason or 'blocked'}"
            rows.append(MenuEntry("submenu", title, children=children, tooltip=tip))
    return tuple(rows)


def can_retry(snapshot: Snapshot) -> bool:
    """Whether "Retry now" is offered: offline, or a problem while signed in."""
    return snapshot.state is SessionState.OFFLINE or (
        snapshot.state is SessionState.ERROR and bool(snapshot.user)
    )


def can_extend(snapshot: Snapshot) -> bool:
    """Whether "Extend sign-in…" is offered: signed in to a session that ends at a known
    time and does not renew itself."""
    return (
        bool(snapshot.user)
        and snapshot.session_expires_at is not None
        and snapshot.session_renewable is not True
        and snapshot.state not in {SessionState.SIGNED_OUT, SessionState.SIGNING_IN}
    )


def menu_model(
    snapshot: Snapshot, *, starting: bool = False, break_glass: bool = True, lost: bool = False
) -> tuple[MenuEntry, ...]:
    """The whole tray menu for ``snapshot``, top to bottom.

    Sign in / Sign out and Connect / Disconnect follow the state; under always-on the
    Disconnect entry reads "Disconnect (break-glass)…" because it asks for a reason.
    With ``break_glass`` False (managed ``allow_break_glass`` off) an always-on session
    shows a disabled "Disconnect (not allowed)". While ``starting`` (engine not loaded
    yet) only windows that need no engine, and Quit. When ``lost`` (the engine this tray
    was attached to went away) "Rustronaut is not running" and Restart. In BLOCKED the
    fixes follow the header; in ERROR the next step does; a clock off by more than a
    minute is said next; the user's line is followed by when the sign-in ends (and
    "Extend sign-in…" when it does not renew itself). Offline, or in a problem while
    signed in, "Retry now" follows. A blocked resource is a submenu with its reason and
    fix in full, wrapped to ``MENU_WRAP`` characters.
    """
    if lost:
        return (
            MenuEntry("header", LOST_LABEL, enabled=False),
            _sep(),
            MenuEntry("action", "Restart Rustronaut", Action.RESTART),
            MenuEntry("action", "Open Rustronaut", Action.OPEN_MAIN),
            MenuEntry("action", "About Rustronaut", Action.ABOUT),
            _sep(),
            MenuEntry("action", "Quit", Action.QUIT),
        )
    if starting:
        return (
            MenuEntry("header", STARTING_LABEL, enabled=False),
            _sep(),
            MenuEntry("action", "Open Rustronaut", Action.OPEN_MAIN),
            MenuEntry("action", "About Rustronaut", Action.ABOUT),
            _sep(),
            MenuEntry("action", "Quit", Action.QUIT),
        )
    st = snapshot.state
    entries: list[MenuEntry] = [MenuEntry("header", state_label(snapshot), enabled=False)]
    if st is SessionState.BLOCKED:
        fixes = blocked_fixes(snapshot) or ("Open Rustronaut to see why.",)
        entries.extend(
            MenuEntry("action", line, Action.OPEN_MAIN, tooltip=fix)
            for fix in fixes
            for line in _wrapped(fix, first="To fix: ")
        )
    elif st is SessionState.ERROR and snapshot.error is not None:
        step = next_step(snapshot)
        entries.append(MenuEntry("action", step, Action.OPEN_MAIN, tooltip=snapshot.error.detail))
    if can_retry(snapshot):
        entries.append(MenuEntry("action", "Retry now", Action.RETRY))
    clock = clock_line(snapshot)
    if clock is not None:
        # A wrong clock breaks sign-in and policy checks: say so next to the state.
        entries.append(MenuEntry("action", clock, Action.OPEN_MAIN, tooltip=clock))
    if snapshot.user:
        entries.append(MenuEntry("header", snapshot.user, enabled=False))
        session = session_line(snapshot)
        if session is not None:
            entries.append(MenuEntry("header", session, enabled=False))
        if can_extend(snapshot):
            entries.append(MenuEntry("action", "Extend sign-in…", Action.EXTEND))
    managed = managed_line(snapshot)
    if managed is not None:
        # IT must hear of it: the settings in force are not the ones deployed.
        entries.append(
            MenuEntry("action", "Managed configuration rejected", Action.OPEN_MAIN, tooltip=managed)
        )
    entries.append(_sep())

    signed_in = st not in {SessionState.SIGNED_OUT, SessionState.SIGNING_IN}
    if st is SessionState.SIGNED_OUT or (st is SessionState.ERROR and not snapshot.user):
        entries.append(MenuEntry("action", "Sign in…", Action.SIGN_IN))
    elif st is SessionState.SIGNING_IN:
        entries.append(MenuEntry("action", "Signing in…", Action.SIGN_IN, enabled=False))

    if signed_in and snapshot.user:
        if st in CONNECTED_STATES or st in {
            SessionState.OFFLINE,
            SessionState.CONNECTING,
            SessionState.RECONNECTING,
            SessionState.CHECKING_POSTURE,
            SessionState.ENROLLING,
        }:
            if not snapshot.always_on:
                entries.append(MenuEntry("action", "Disconnect", Action.DISCONNECT))
            elif break_glass:
                entries.append(MenuEntry("action", "Disconnect (break-glass)…", Action.DISCONNECT))
            else:
                entries.append(
                    MenuEntry(
                        "action",
                        "Disconnect (not allowed)",
                        Action.DISCONNECT,
                        enabled=False,
                        tooltip="Your organization keeps this connection always on.",
                    )
                )
        elif st is SessionState.DISCONNECTING:
            entries.append(MenuEntry("action", "Disconnecting…", Action.DISCONNECT, enabled=False))
        else:
            entries.append(MenuEntry("action", "Connect", Action.CONNECT))

    entries.append(MenuEntry("submenu", "Resources", children=_resource_entries(snapshot)))
    entries.append(_sep())
    entries.append(MenuEntry("action", "Open Rustronaut", Action.OPEN_MAIN))
    entries.append(MenuEntry("action", "Posture", Action.POSTURE))
    entries.append(MenuEntry("action", "Activity", Action.ACTIVITY))
    entries.append(MenuEntry("action", "Settings", Action.SETTINGS))
    entries.append(_sep())
    entries.append(MenuEntry("action", "Collect diagnostics…", Action.DIAGNOSTICS))
    entries.append(MenuEntry("action", "About Rustronaut", Action.ABOUT))
    if signed_in and snapshot.user:
        entries.append(MenuEntry("action", "Sign out", Action.SIGN_OUT))
    entries.append(_sep())
    entries.append(MenuEntry("action", "Quit", Action.QUIT))
    return tuple(entries)


def seconds_until(ts: float | None, now: float | None = None) -> float | None:
    """Seconds from ``now`` (default: wall clock) until ``ts``; None when ``ts`` is None."""
    if ts is None:
        return None
    return ts - (time.time() if now is None else now)
