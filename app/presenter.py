"""Pure functions from engine state to what the tray shows: labels, tooltip, menu model.

Nothing here imports Qt, so the whole "what does the employee see in state X" table is
tested without a display. The tray and the windows render these values and nothing more.
All functions are pure and safe to call from any thread. Every word is in the installed
language (``core.i18n``, context ``app.presenter``); the data in it (resource names,
reasons, fixes, the engine's words) is shown as given.
"""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass
from enum import StrEnum

from app.icons import IconKind
from core.clock import sign_in_words, skew_words
from core.engine.state import ResourceView, SessionState, Snapshot, TunnelView
from core.i18n import QT_TRANSLATE_NOOP, translate

__all__ = [
    "BUSY_STATES",
    "CONNECTED_STATES",
    "LOST_LABEL",
    "LOST_NEXT_STEP",
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
    "lost_label",
    "lost_next_step",
    "managed_line",
    "menu_model",
    "next_step",
    "owner_text",
    "resource_status",
    "session_line",
    "starting_label",
    "state_label",
    "tooltip",
    "transport_label",
    "transport_line",
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


#: One short line per state, marked for translation (translated in ``state_label``).
_LABELS: dict[SessionState, str] = {
    SessionState.SIGNED_OUT: QT_TRANSLATE_NOOP("app.presenter", "Signed out"),
    SessionState.SIGNING_IN: QT_TRANSLATE_NOOP("app.presenter", "Signing in…"),
    SessionState.ENROLLING: QT_TRANSLATE_NOOP("app.presenter", "Registering this device…"),
    SessionState.CHECKING_POSTURE: QT_TRANSLATE_NOOP("app.presenter", "Checking this device…"),
    SessionState.CONNECTING: QT_TRANSLATE_NOOP("app.presenter", "Connecting…"),
    SessionState.CONNECTED: QT_TRANSLATE_NOOP("app.presenter", "Connected"),
    SessionState.DEGRADED: QT_TRANSLATE_NOOP("app.presenter", "Connected — some access blocked"),
    SessionState.BLOCKED: QT_TRANSLATE_NOOP("app.presenter", "Connected — access blocked"),
    SessionState.OFFLINE: QT_TRANSLATE_NOOP("app.presenter", "Offline — using last policy"),
    SessionState.RECONNECTING: QT_TRANSLATE_NOOP(
        "app.presenter", "Reconnecting — the gateway stopped answering"
    ),
    SessionState.DISCONNECTING: QT_TRANSLATE_NOOP("app.presenter", "Disconnecting…"),
    SessionState.DISCONNECTED: QT_TRANSLATE_NOOP("app.presenter", "Not connected"),
    SessionState.ERROR: QT_TRANSLATE_NOOP("app.presenter", "Problem"),
}


#: What the tray says between start-up and the engine being ready (English; shown
#: translated by :func:`starting_label`).
STARTING_LABEL = QT_TRANSLATE_NOOP("app.presenter", "Starting…")

#: What the tray says when the engine it was attached to went away (agent stopped)
#: (English; shown translated by :func:`lost_label`).
LOST_LABEL = QT_TRANSLATE_NOOP("app.presenter", "Rustronaut is not running")

#: What to do about a lost engine (the menu's Restart entry does it) (English; shown
#: translated by :func:`lost_next_step`).
LOST_NEXT_STEP = QT_TRANSLATE_NOOP("app.presenter", "Choose Restart Rustronaut to start it again.")

#: Next steps for error codes whose engine text may be empty (the cause is well known).
_DEFAULT_NEXT_STEPS = {
    "helper_unavailable": QT_TRANSLATE_NOOP(
        "app.presenter",
        "Start the Rustronaut helper service (or reinstall Rustronaut), then Connect again.",
    ),
}

#: When the engine gives neither a next step nor a known code.
_GENERIC_NEXT_STEP = QT_TRANSLATE_NOOP(
    "app.presenter", "Try again. If it keeps happening, collect diagnostics and contact IT."
)


def starting_label() -> str:
    """``STARTING_LABEL`` in the installed language."""
    return translate("app.presenter", STARTING_LABEL)


def lost_label() -> str:
    """``LOST_LABEL`` in the installed language."""
    return translate("app.presenter", LOST_LABEL)


def lost_next_step() -> str:
    """``LOST_NEXT_STEP`` in the installed language."""
    return translate("app.presenter", LOST_NEXT_STEP)


def next_step(snapshot: Snapshot) -> str:
    """What to do about the snapshot's error (never empty when there is an error)."""
    err = snapshot.error
    if err is None:
        return ""
    if err.next_step:
        return err.next_step
    return translate("app.presenter", _DEFAULT_NEXT_STEPS.get(err.code, _GENERIC_NEXT_STEP))


def owner_text(hosted_by: str | None) -> str:
    """Who keeps the session, and so what survives quitting this app (About window)."""
    if hosted_by == "tray":
        return translate("app.presenter", "Runs inside this app: quitting it disconnects.")
    if hosted_by == "agent":
        return translate(
            "app.presenter", "Kept by the Rustronaut agent: it stays up when you quit this app."
        )
    if hosted_by == "cli":
        return translate(
            "app.presenter", "Kept by the rustronaut command: it stays up when you quit this app."
        )
    return translate("app.presenter", "Not running.")


def state_label(snapshot: Snapshot, *, starting: bool = False, lost: bool = False) -> str:
    """One short line for the state (menu header, window header)."""
    if lost:
        return lost_label()
    if starting:
        return starting_label()
    if snapshot.state is SessionState.ERROR and snapshot.error is not None:
        return translate("app.presenter", "Problem: {title}").format(title=snapshot.error.title)
    tunnel = snapshot.tunnel
    if snapshot.state is SessionState.CONNECTED and tunnel is not None and tunnel.relay:
        return translate("app.presenter", "Connected via relay {relay}").format(relay=tunnel.relay)
    return translate("app.presenter", _LABELS[snapshot.state])


def transport_label(tunnel: TunnelView | None) -> str:
    """How the tunnel travels, in a few words (the main window's "Transport:" row):
    "Direct (UDP)", "Relay relay1", "No way through"; "—" without a tunnel and, for a
    tunnel without relays, "Direct (UDP)"."""
    if tunnel is None:
        return "—"
    if tunnel.transport_state == "no_path":
        return translate("app.presenter", "No way through this network")
    if tunnel.transport == "relay":
        return translate("app.presenter", "Encrypted relay {relay}").format(
            relay=tunnel.relay or "?"
        )
    return translate("app.presenter", "Direct (UDP)")


def transport_line(snapshot: Snapshot) -> str | None:
    """Why the tunnel travels as it does and what to do, in plain words, when it is not
    plain direct UDP ("This network blocks WireGuard's UDP. Your traffic is carried over
    an encrypted relay; it may be slower. We switch back automatically."); None on
    direct UDP or without a tunnel. Plain text."""
    tunnel = snapshot.tunnel
    if (
        tunnel is None
        or not tunnel.transport
        or snapshot.state
        not in CONNECTED_STATES
        | {
            SessionState.RECONNECTING,
            SessionState.CONNECTING,
        }
    ):
        return None
    if tunnel.transport_state == "no_path":
        return translate(
            "app.presenter",
            "This network lets neither WireGuard's UDP nor a relay through. Try another "
            "network (a phone hotspot, for example); if it keeps happening, contact IT.",
        )
    if tunnel.transport_reason == "no_certificate" and tunnel.transport != "relay":
        return translate(
            "app.presenter",
            "This device cannot use a relay yet (it has no relay certificate). Stay "
            "connected to the internet: it gets one from your organization shortly.",
        )
    if tunnel.transport != "relay":
        return None
    if tunnel.transport_reason == "udp_silent":
        why = translate("app.presenter", "WireGuard's UDP stopped getting through on this network.")
    elif tunnel.transport_reason == "relay_failed":
        why = translate("app.presenter", "The previous relay stopped answering.")
    else:
        why = translate("app.presenter", "This network blocks WireGuard's UDP.")
    return (
        why
        + " "
        + translate(
            "app.presenter",
            "Your traffic is carried over an encrypted relay; it may be slower. "
            "We switch back automatically.",
        )
    )


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


#: A size in each binary unit, smallest first (some languages write the units their way).
_SIZES = (
    QT_TRANSLATE_NOOP("app.presenter", "{size} B"),
    QT_TRANSLATE_NOOP("app.presenter", "{size} KiB"),
    QT_TRANSLATE_NOOP("app.presenter", "{size} MiB"),
    QT_TRANSLATE_NOOP("app.presenter", "{size} GiB"),
)


def format_bytes(n: int) -> str:
    """Human size with binary units: ``1536`` → ``"1.5 KiB"``."""
    value = float(n)
    for i, unit in enumerate(_SIZES):
        if value < 1024 or i == len(_SIZES) - 1:
            size = str(int(value)) if i == 0 else f"{value:.1f}"
            return translate("app.presenter", unit).format(size=size)
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_age(seconds: float | None) -> str:
    """``None`` → ``"never"``; otherwise ``"12 s ago"``, ``"3 min ago"``, ``"2 h ago"``."""
    if seconds is None:
        return translate("app.presenter", "never")
    s = max(0, int(seconds))
    if s < 60:
        return translate("app.presenter", "%n s ago", None, s)
    # lupdate drops a call whose count is an expression: the count is a plain name.
    minutes, hours = s // 60, s // 3600
    if s < 3600:
        return translate("app.presenter", "%n min ago", None, minutes)
    return translate("app.presenter", "%n h ago", None, hours)


def tunnel_summary(tunnel: TunnelView | None) -> str:
    """One line about the tunnel for the main window and tooltip."""
    if tunnel is None:
        return translate("app.presenter", "No tunnel")
    return translate(
        "app.presenter", "{gateway} via {interface} · handshake {age} · ↓ {received} ↑ {sent}"
    ).format(
        gateway=tunnel.gateway,
        interface=tunnel.interface,
        age=format_age(tunnel.handshake_age_s),
        received=format_bytes(tunnel.rx_bytes),
        sent=format_bytes(tunnel.tx_bytes),
    )


def access_line(snapshot: Snapshot) -> str:
    """How apps reach company resources now (the main window's "Apps:" row). Plain text."""
    access = snapshot.access
    if access is None:
        return "—"
    if access.mode == "transparent":
        line = translate(
            "app.presenter",
            "Every app reaches company resources directly — no proxy settings needed",
        )
    else:
        where = (
            access.proxy_address
            or snapshot.proxy_address
            or translate("app.presenter", "the local proxy")
        )
        line = translate(
            "app.presenter",
            "Apps reach company resources through the proxy {address} (SOCKS5 or HTTP)",
        ).format(address=where)
        if not access.fenced:
            line += "; " + translate("app.presenter", "this computer cannot redirect other apps")
    if access.dns_suffixes:
        line += " · " + translate(
            "app.presenter", "names under {suffixes} resolve through the tunnel"
        ).format(suffixes=", ".join(access.dns_suffixes))
    if access.overridden_routes:
        line += " · " + translate(
            "app.presenter",
            "this network's route {routes} is overridden:"
            " company traffic still goes only through the tunnel",
        ).format(routes=", ".join(access.overridden_routes))
    return line


def managed_line(snapshot: Snapshot) -> str | None:
    """The line "Managed configuration rejected — <reason>" while the organization's
    managed settings are rejected (the reason names the file and key, and says what
    applies instead); None otherwise. Plain text: show it with ``Qt.PlainText``."""
    if snapshot.managed_rejected is None:
        return None
    return translate("app.presenter", "Managed configuration rejected — {reason}").format(
        reason=snapshot.managed_rejected
    )


def tooltip(snapshot: Snapshot, *, starting: bool = False, lost: bool = False) -> str:
    """The tray tooltip: state, user and resources, in at most four short lines.

    Kept plain text (no HTML): some StatusNotifierItem hosts show markup verbatim.
    """
    head = translate("app.presenter", "Rustronaut — {state}")
    if lost:
        return head.format(state=lost_label()) + "\n" + lost_next_step()
    if starting:
        return head.format(state=starting_label())
    lines = [head.format(state=state_label(snapshot))]
    if snapshot.user and snapshot.organization:
        lines.append(
            translate("app.presenter", "Signed in as {user} ({organization})").format(
                user=snapshot.user, organization=snapshot.organization
            )
        )
    elif snapshot.user:
        lines.append(translate("app.presenter", "Signed in as {user}").format(user=snapshot.user))
    if snapshot.state is SessionState.BLOCKED:
        fixes = blocked_fixes(snapshot)
        lines.append(
            _to_fix(fixes[0]) if fixes else translate("app.presenter", "Every resource is blocked")
        )
    elif snapshot.resources and snapshot.state in REACHABLE_STATES:
        ok = sum(1 for r in snapshot.resources if r.reachable)
        total = len(snapshot.resources)
        lines.append(
            translate("app.presenter", "{reachable} of %n resources reachable", None, total).format(
                reachable=ok
            )
        )
    if snapshot.state is SessionState.ERROR and snapshot.error is not None:
        lines.append(next_step(snapshot))
    tunnel = snapshot.tunnel
    if tunnel is not None and tunnel.relay and snapshot.state in CONNECTED_STATES:
        lines.append(transport_label(tunnel))
    return "\n".join(lines)


def controller_line(snapshot: Snapshot) -> str | None:
    """Why the controller cannot be used right now, while the last good policy stays in
    force ("The controller has a problem: Service Unavailable"); None when it answers."""
    problem = snapshot.controller_problem
    if problem is None:
        return None
    return translate(
        "app.presenter", "{problem}: {detail} — your last policy stays in force"
    ).format(problem=problem.title, detail=problem.detail)


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


def _why_prefix() -> str:
    return translate("app.presenter", "Why:") + " "


def _fix_prefix() -> str:
    # One caption for a fix everywhere (menu rows, wrapped lines, tooltip).
    return translate("app.presenter", "To fix:") + " "


def _to_fix(fix: str) -> str:
    return _fix_prefix() + fix


def blocked_lines(resource: ResourceView) -> tuple[str, ...]:
    """The rows of a blocked resource's submenu: its reason and its fix, in full, wrapped
    to ``MENU_WRAP`` characters ("Why: …", "To fix: …"), then its address."""
    reason = resource.reason or translate("app.presenter", "Your organization's policy blocks it.")
    lines = _wrapped(reason, first=_why_prefix())
    if resource.fix:
        lines += _wrapped(resource.fix, first=_fix_prefix())
    return tuple(lines)


def _resource_entries(snapshot: Snapshot) -> tuple[MenuEntry, ...]:
    if not snapshot.resources:
        return (MenuEntry("header", translate("app.presenter", "No resources yet"), enabled=False),)
    rows = []
    for r in snapshot.resources:
        status = resource_status(snapshot, r)
        if status is ResourceStatus.REACHABLE:
            text = "✓ " + translate("app.presenter", "{name} — reachable").format(name=r.name)
            rows.append(MenuEntry("action", text, Action.OPEN_MAIN, tooltip=r.address))
        elif status is ResourceStatus.NOT_CONNECTED:
            text = "○ " + translate("app.presenter", "{name} — not connected").format(name=r.name)
            rows.append(MenuEntry("action", text, Action.OPEN_MAIN, tooltip=r.address))
        else:
            # A submenu, so the reason and the fix are read in full without hovering.
            children = tuple(
                MenuEntry("action", line, Action.OPEN_MAIN) for line in blocked_lines(r)
            )
            children += (
                MenuEntry("header", r.address, enabled=False),
                _sep(),
                MenuEntry("action", _open_main(), Action.OPEN_MAIN),
            )
            tip = f"{r.reason}\n{r.fix}".strip() if r.reason or r.fix else r.address
            why = r.reason or translate("app.presenter", "blocked")
            title = "✕ " + translate("app.presenter", "{name} — {reason}").format(
                name=r.name, reason=why
            )
            rows.append(MenuEntry("submenu", title, children=children, tooltip=tip))
    return tuple(rows)


def _open_main() -> str:
    return translate("app.presenter", "Open Rustronaut")


def _about() -> str:
    return translate("app.presenter", "About Rustronaut")


def _quit() -> str:
    return translate("app.presenter", "Quit")


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
            MenuEntry("header", lost_label(), enabled=False),
            _sep(),
            MenuEntry("action", translate("app.presenter", "Restart Rustronaut"), Action.RESTART),
            MenuEntry("action", _open_main(), Action.OPEN_MAIN),
            MenuEntry("action", _about(), Action.ABOUT),
            _sep(),
            MenuEntry("action", _quit(), Action.QUIT),
        )
    if starting:
        return (
            MenuEntry("header", starting_label(), enabled=False),
            _sep(),
            MenuEntry("action", _open_main(), Action.OPEN_MAIN),
            MenuEntry("action", _about(), Action.ABOUT),
            _sep(),
            MenuEntry("action", _quit(), Action.QUIT),
        )
    st = snapshot.state
    entries: list[MenuEntry] = [MenuEntry("header", state_label(snapshot), enabled=False)]
    transport = transport_line(snapshot)
    if transport is not None:
        # Why the relay (or no path), read in full: menus never wrap on their own.
        entries.extend(
            MenuEntry("action", line, Action.OPEN_MAIN, tooltip=transport)
            for line in _wrapped(transport, rest="")
        )
    if st is SessionState.BLOCKED:
        fixes = blocked_fixes(snapshot) or (
            translate("app.presenter", "Open Rustronaut to see why."),
        )
        entries.extend(
            MenuEntry("action", line, Action.OPEN_MAIN, tooltip=fix)
            for fix in fixes
            for line in _wrapped(fix, first=_fix_prefix())
        )
    elif st is SessionState.ERROR and snapshot.error is not None:
        step = next_step(snapshot)
        entries.append(MenuEntry("action", step, Action.OPEN_MAIN, tooltip=snapshot.error.detail))
    if can_retry(snapshot):
        entries.append(MenuEntry("action", translate("app.presenter", "Retry now"), Action.RETRY))
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
            entries.append(
                MenuEntry("action", translate("app.presenter", "Extend sign-in…"), Action.EXTEND)
            )
    managed = managed_line(snapshot)
    if managed is not None:
        # IT must hear of it: the settings in force are not the ones deployed.
        entries.append(
            MenuEntry(
                "action",
                translate("app.presenter", "Managed configuration rejected"),
                Action.OPEN_MAIN,
                tooltip=managed,
            )
        )
    entries.append(_sep())

    signed_in = st not in {SessionState.SIGNED_OUT, SessionState.SIGNING_IN}
    if st is SessionState.SIGNED_OUT or (st is SessionState.ERROR and not snapshot.user):
        entries.append(MenuEntry("action", translate("app.presenter", "Sign in…"), Action.SIGN_IN))
    elif st is SessionState.SIGNING_IN:
        entries.append(
            MenuEntry(
                "action", translate("app.presenter", "Signing in…"), Action.SIGN_IN, enabled=False
            )
        )

    if signed_in and snapshot.user:
        if st in CONNECTED_STATES or st in {
            SessionState.OFFLINE,
            SessionState.CONNECTING,
            SessionState.RECONNECTING,
            SessionState.CHECKING_POSTURE,
            SessionState.ENROLLING,
        }:
            if not snapshot.always_on:
                entries.append(
                    MenuEntry("action", translate("app.presenter", "Disconnect"), Action.DISCONNECT)
                )
            elif break_glass:
                entries.append(
                    MenuEntry(
                        "action",
                        translate("app.presenter", "Disconnect (break-glass)…"),
                        Action.DISCONNECT,
                    )
                )
            else:
                entries.append(
                    MenuEntry(
                        "action",
                        translate("app.presenter", "Disconnect (not allowed)"),
                        Action.DISCONNECT,
                        enabled=False,
                        tooltip=translate(
                            "app.presenter", "Your organization keeps this connection always on."
                        ),
                    )
                )
        elif st is SessionState.DISCONNECTING:
            entries.append(
                MenuEntry(
                    "action",
                    translate("app.presenter", "Disconnecting…"),
                    Action.DISCONNECT,
                    enabled=False,
                )
            )
        else:
            entries.append(
                MenuEntry("action", translate("app.presenter", "Connect"), Action.CONNECT)
            )

    resources = translate("app.presenter", "Resources")
    entries.append(MenuEntry("submenu", resources, children=_resource_entries(snapshot)))
    entries.append(_sep())
    entries.append(MenuEntry("action", _open_main(), Action.OPEN_MAIN))
    entries.append(MenuEntry("action", translate("app.presenter", "Posture"), Action.POSTURE))
    entries.append(MenuEntry("action", translate("app.presenter", "Activity"), Action.ACTIVITY))
    entries.append(MenuEntry("action", translate("app.presenter", "Settings"), Action.SETTINGS))
    entries.append(_sep())
    entries.append(
        MenuEntry("action", translate("app.presenter", "Collect diagnostics…"), Action.DIAGNOSTICS)
    )
    entries.append(MenuEntry("action", _about(), Action.ABOUT))
    if signed_in and snapshot.user:
        entries.append(MenuEntry("action", translate("app.presenter", "Sign out"), Action.SIGN_OUT))
    entries.append(_sep())
    entries.append(MenuEntry("action", _quit(), Action.QUIT))
    return tuple(entries)


def seconds_until(ts: float | None, now: float | None = None) -> float | None:
    """Seconds from ``now`` (default: wall clock) until ``ts``; None when ``ts`` is None."""
    if ts is None:
        return None
    return ts - (time.time() if now is None else now)
