"""Session states, the snapshot front ends render, and the events the engine emits.

The tray icon, the tray menu and ``rustronaut status`` are functions of ``Snapshot``
alone. Every change of state is an ``Event``; decisions, posture changes and errors are
events too, delivered in order to every subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from core.i18n import QT_TRANSLATE_NOOP, translate
from core.policy.api import Decision

__all__ = [
    "POSTURE_STATUS_WORDS",
    "AccessView",
    "ErrorInfo",
    "Event",
    "EventKind",
    "PostureItem",
    "ResourceView",
    "SessionState",
    "Snapshot",
    "TunnelView",
    "posture_status_word",
    "posture_summary",
]


class SessionState(StrEnum):
    """Where the session is. Ordered as a sign-in normally walks through them."""

    SIGNED_OUT = "signed_out"  # no usable tokens: the user must sign in
    SIGNING_IN = "signing_in"  # browser or device-code flow running
    ENROLLING = "enrolling"  # registering this device's public keys
    CHECKING_POSTURE = "checking_posture"  # collecting and reporting posture
    CONNECTING = "connecting"  # fetching the signed bundle, tunnel up, proxy on
    CONNECTED = "connected"  # tunnel healthy, every resource reachable
    DEGRADED = "degraded"  # connected, but some resources blocked (posture/risk)
    #: connected, but every resource is blocked by something the device can fix
    #: (posture, risk): the tunnel is up and the resources' fixes are the next step
    BLOCKED = "blocked"
    OFFLINE = "offline"  # controller unreachable: last valid bundle until it expires
    #: the gateway in use stopped answering (or a failover is under way) after the
    #: session was connected: never shown as "connected" over a silent tunnel
    RECONNECTING = "reconnecting"
    DISCONNECTING = "disconnecting"  # tearing the tunnel and proxy down
    DISCONNECTED = "disconnected"  # signed in, deliberately not connected
    ERROR = "error"  # stopped with a cause and a next step (see Snapshot.error)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A user-readable failure: what happened and what to do next."""

    title: str
    detail: str
    next_step: str
    #: stable, machine-readable cause (the local API's error codes, docs/local-api.md)
    code: str = ""


@dataclass(frozen=True, slots=True)
class ResourceView:
    """One resource as the employee sees it."""

    name: str
    address: str
    reachable: bool
    reason: str = ""
    fix: str = ""
    #: blocked by something the device can fix (posture, risk) rather than by entitlement;
    #: such resources make the session DEGRADED
    fixable: bool = False


@dataclass(frozen=True, slots=True)
class PostureItem:
    """One posture fact: ``status`` is "pass", "fail" or "unknown".

    ``required``: the organization's policy reads this fact (a check that can block
    access); otherwise it is shown "for your information" and never counted as a check.
    """

    name: str
    label: str
    value: str
    status: str
    fix: str = ""
    required: bool = True


#: The words (with a shape: colour is never the only signal) for each posture status,
#: the same in the posture window and in ``rustronaut status``. English, marked for
#: translation: show them with :func:`posture_status_word` (or
#: ``translate("core.engine.state", POSTURE_STATUS_WORDS[status])``).
POSTURE_STATUS_WORDS = {
    "pass": QT_TRANSLATE_NOOP("core.engine.state", "✓ Pass"),
    "fail": QT_TRANSLATE_NOOP("core.engine.state", "✕ Fail"),
    "unknown": QT_TRANSLATE_NOOP("core.engine.state", "? Unknown"),
}


def posture_status_word(status: str) -> str:
    """The words for a posture ``status`` in the installed language ("? Unknown" for a
    status not known). Pure."""
    word = POSTURE_STATUS_WORDS.get(status, POSTURE_STATUS_WORDS["unknown"])
    return translate("core.engine.state", word)


def posture_summary(posture: tuple[PostureItem, ...]) -> str:
    """One line on the checks the policy requires (informational facts never count):
    "1 check needs attention · 2 of 3 pass", "All good · 3 of 3 checks pass". Pure."""
    required = [p for p in posture if p.required]
    passed = sum(1 for p in required if p.status == "pass")
    failed = sum(1 for p in required if p.status == "fail")
    if not posture:
        return translate("core.engine.state", "No posture checks yet")
    if not required:
        return translate("core.engine.state", "Your policy requires no device checks")
    total = len(required)
    # "1 check" has its own sentence: English needs no catalogue for the singular, and
    # the "%n" plural still gets every form a language has
    if failed:
        if failed == 1:
            text = translate(
                "core.engine.state", "1 check needs attention · {passed} of {total} pass"
            )
        else:
            text = translate(
                "core.engine.state",
                "%n checks need attention · {passed} of {total} pass",
                None,
                failed,
            )
        return text.format(passed=passed, total=total)
    unknown = total - passed
    if unknown:  # never "all good" over checks that could not be made
        if unknown == 1:
            text = translate(
                "core.engine.state", "1 check could not be made · {passed} of {total} pass"
            )
        else:
            text = translate(
                "core.engine.state",
                "%n checks could not be made · {passed} of {total} pass",
                None,
                unknown,
            )
        return text.format(passed=passed, total=total)
    return translate("core.engine.state", "All good · {passed} of {total} checks pass").format(
        passed=passed, total=total
    )


@dataclass(frozen=True, slots=True)
class TunnelView:
    """The tunnel as shown: interface, gateway, health and how its packets travel.

    ``gateway`` always names the gateway (in relay mode WireGuard's own peer endpoint is
    the helper's local bridge, ``127.0.0.1:<port>``, which is never shown). The transport
    fields are set for a tunnel whose spec lists relays (issue 21), from the helper's
    ``TransportStatus``; empty for a plain UDP tunnel: ``transport`` "udp" or "relay",
    ``relay`` the relay in use, ``transport_state`` "direct", "relay", "trying" or
    "no_path", ``transport_reason`` the helper's reason code (``udp_ok``, ``udp_blocked``,
    ``udp_silent``, ``relay_failed``, ``udp_back``, ``no_certificate``, ``relays_down``)
    and ``transport_since`` the Unix time of the last change.
    """

    interface: str
    gateway: str
    handshake_age_s: float | None
    rx_bytes: int
    tx_bytes: int
    transport: str = ""
    relay: str | None = None
    transport_state: str = ""
    transport_reason: str = ""
    transport_since: float | None = None


@dataclass(frozen=True, slots=True)
class AccessView:
    """How apps reach company resources right now (the main window says which applies).

    ``mode``: "transparent" — every app's connections to the resources are redirected to
    the decider, no settings needed; "proxy" — only apps pointed at the proxy port or the
    PAC file reach them. ``fenced``: only the decider may send into the tunnel (the kill
    switch). ``dns_suffixes``: names the client resolves through the tunnel's DNS.
    """

    mode: str
    fenced: bool
    proxy_address: str | None = None
    transparent_address: str | None = None
    dns_suffixes: tuple[str, ...] = ()
    #: local routes more specific than a range the tunnel carries ("net via iface"),
    #: overridden by the fence (a rogue DHCP or router may add them)
    overridden_routes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a front end needs to draw the session; replaced, never mutated."""

    state: SessionState = SessionState.SIGNED_OUT
    user: str | None = None
    device_id: str | None = None
    organization: str | None = None
    resources: tuple[ResourceView, ...] = ()
    posture: tuple[PostureItem, ...] = ()
    tunnel: TunnelView | None = None
    risk: int = 0
    risk_signals: tuple[str, ...] = ()
    error: ErrorInfo | None = None
    always_on: bool = False
    session_expires_at: float | None = None
    #: whether the sign-in renews itself (a refresh token) or simply ends at its expiry
    session_renewable: bool | None = None
    #: how far this computer's clock is off the controller's (seconds, + = ahead), when
    #: measured and large enough to matter
    clock_skew_s: float | None = None
    policy_version: int | None = None
    policy_expires_at: float | None = None
    proxy_address: str | None = None
    #: how apps reach the resources (None: not connected)
    access: AccessView | None = None
    #: why the controller cannot be used right now (TLS, DNS, timeout, HTTP status), while
    #: the last good policy stays in force; None when it answers
    controller_problem: ErrorInfo | None = None
    #: why the organization's managed settings were rejected and what applies instead
    #: (``EffectiveSettings.managed_rejected``); None while they are accepted
    managed_rejected: str | None = None
    #: set while the policy's signing keys are trusted only because they were the first
    #: ones seen (no trust anchors configured): a development setup, said loudly
    policy_trust_notice: str | None = None


class EventKind(StrEnum):
    """Kinds of engine events."""

    STATE = "state"  # Snapshot changed (state or any field)
    DECISION = "decision"  # the proxy decided a connection
    POSTURE = "posture"  # a posture fact changed
    NOTICE = "notice"  # something the user should be told (notification)
    ERROR = "error"  # a failure with a next step
    SETTINGS = "settings"  # the effective settings changed (any writer)


@dataclass(frozen=True, slots=True)
class Event:
    """One engine event. ``snapshot`` is the snapshot after the event."""

    kind: EventKind
    snapshot: Snapshot
    time: float
    message: str = ""
    decision: Decision | None = None
    app: str = ""
    destination: str = ""
    details: dict[str, str] = field(default_factory=dict)
