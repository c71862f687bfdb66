"""Desktop notifications for what matters, rate-limited so they never flood.

``notices_for`` is a pure function (previous snapshot, event) → notices: connected
("Your work resources are reachable" only when every one is; otherwise which are
blocked, why and the fix), access withdrawn (reason and fix), sign-in about to expire
(with **Extend**, ``EXPIRY_WARNING_S`` before the end on the controller's clock), sign-in
needed (only when the provider ended the session, never after a deliberate sign-out),
the session's end, errors such as a missing helper, and the engine's own NOTICE events.
``RateLimiter`` drops repeats of one key within ``per_key_s`` and caps the total at
``burst`` per ``window_s`` (critical notices, i.e. errors, are never dropped by the cap:
entering ERROR always tells the employee once). ``Notifier`` wires both to a
``QSystemTrayIcon`` on the GUI thread and runs a notice's action (e.g. Extend → sign in)
when its bubble is clicked.

Text is text: titles and bodies carry resource names, reasons and errors from the
controller. ``notices_for`` reads the snapshot cleaned (``app.plain``); ``Notifier.show``
escapes control characters once more and, where the desktop's notification server reads
the body as markup (freedesktop servers: GNOME, KDE, dunst, mako…), escapes ``<``, ``>``
and ``&`` so a ``<b>`` or a link is shown as the characters it is (``notification_body``).
Our own words are in the installed language (``core.i18n``, context ``app.notify``), built
when a notice is made, never at import.
"""

from __future__ import annotations

import html
import math
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QSystemTrayIcon

from app.plain import clean, clean_snapshot
from app.presenter import (
    REACHABLE_STATES,
    Action,
    blocked_fixes,
    lost_label,
    lost_next_step,
    next_step,
)
from core.engine.state import Event, EventKind, SessionState, Snapshot
from core.i18n import QT_TRANSLATE_NOOP, translate
from core.text import safe_line, safe_text

__all__ = [
    "ERROR_REPEAT_S",
    "EXPIRY_WARNING_S",
    "SIGN_IN_NEEDED",
    "Notice",
    "Notifier",
    "RateLimiter",
    "connected_notice",
    "diagnostics_failed_notice",
    "diagnostics_notice",
    "expiry_notice",
    "lost_notice",
    "notices_for",
    "notification_body",
    "session_ended_notice",
]

#: Whether the platform's notification server reads the body as markup (freedesktop's
#: ``body-markup``); macOS and Windows show it as plain text.
BODY_IS_MARKUP = not sys.platform.startswith(("darwin", "win"))


def notification_body(body: str, *, markup: bool = BODY_IS_MARKUP) -> str:
    """``body`` as a notification shows it literally: control characters escaped (our
    own line breaks kept), and ``<>&`` escaped where the server reads markup."""
    text = safe_text(body, keep_newlines=True)
    return html.escape(text, quote=False) if markup else text


#: Warn this long before the sign-in session expires (on the controller's clock). The tray
#: says it itself, from the snapshot: the engine's own warning (its ``session_warning_s``)
#: is for front ends without a timer, and is not repeated here.
EXPIRY_WARNING_S = 10 * 60

#: The same error is told again after this long (it came back after a recovery), not
#: sooner: a flapping helper must not flood the desktop.
ERROR_REPEAT_S = 10.0


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification: ``key`` groups repeats for rate limiting; ``action`` runs on click."""

    key: str
    title: str
    body: str
    severity: str = "info"  # "info" | "warning" | "critical"
    action: Action | None = None
    repeat_s: float | None = None  # per-key interval override for the rate limiter


def lost_notice() -> Notice:
    """Told once when the engine this tray was attached to goes away (Restart on click)."""
    return Notice("engine-lost", lost_label(), lost_next_step(), "critical", Action.RESTART)


#: Body of every "sign in again" notice (English; shown translated by ``_sign_in_needed``).
SIGN_IN_NEEDED = QT_TRANSLATE_NOOP("app.notify", "Sign in again to reach your work resources.")


def _sign_in_needed() -> str:
    return translate("app.notify", SIGN_IN_NEEDED)


def _to_fix(fix: str) -> str:
    return translate("app.notify", "To fix: {fix}").format(fix=fix)


class RateLimiter:
    """Admit at most one notice per key per ``per_key_s`` and ``burst`` per ``window_s``.

    Not thread-safe; used on the GUI thread. ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        *,
        per_key_s: float = 60.0,
        burst: int = 3,
        window_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_key_s = per_key_s
        self._burst = burst
        self._window_s = window_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._recent: deque[float] = deque()

    def admit(self, key: str, *, per_key_s: float | None = None, urgent: bool = False) -> bool:
        """True if a notice with ``key`` may be shown now (and record it).

        ``per_key_s`` overrides the per-key interval for this key (e.g. the expiry warning
        repeats only every few minutes). ``urgent`` notices skip the burst cap (but count
        towards it): a flood of routine notices must not hide an error.
        """
        now = self._clock()
        last = self._last.get(key)
        gap = self._per_key_s if per_key_s is None else per_key_s
        if last is not None and now - last < gap:
            return False
        while self._recent and now - self._recent[0] >= self._window_s:
            self._recent.popleft()
        if len(self._recent) >= self._burst and not urgent:
            return False
        self._last[key] = now
        self._recent.append(now)
        return True


def _blocked(s: Snapshot) -> set[str]:
    return {r.name for r in s.resources if not r.reachable}


def notices_for(prev: Snapshot | None, event: Event, *, now: float) -> list[Notice]:
    """What to tell the employee about ``event`` given the snapshot before it. Pure.

    Both snapshots are read cleaned (``app.plain.clean_snapshot``): every string from
    elsewhere in a notice is escaped, and only our own line breaks separate its lines.
    """
    cur = clean_snapshot(event.snapshot)
    prev = clean_snapshot(prev) if prev is not None else None
    out: list[Notice] = []
    if event.kind is EventKind.NOTICE and event.message:
        notice = _engine_notice(event)
        if notice is not None:
            out.append(notice)
    before = prev.state if prev is not None else None
    # Entering ERROR (by any event kind) tells once, with the next step; a later event
    # carrying the same error (e.g. the ERROR event after the STATE one) does not repeat it.
    if (
        cur.state is SessionState.ERROR
        and cur.error is not None
        and (before is not SessionState.ERROR or prev is None or prev.error != cur.error)
    ):
        out.append(
            Notice(
                "error:" + (cur.error.code or cur.error.title),
                cur.error.title,
                f"{cur.error.detail}\n{next_step(cur)}".strip(),
                "critical",
                Action.OPEN_MAIN,
                repeat_s=ERROR_REPEAT_S,
            )
        )
    if cur.state is SessionState.BLOCKED and before is not SessionState.BLOCKED:
        fixes = blocked_fixes(cur)
        body = translate("app.notify", "Every resource is blocked until this device is fixed.")
        if fixes:
            body += "\n" + "\n".join(_to_fix(fix) for fix in fixes)
        title = translate("app.notify", "Connected — access blocked")
        out.append(Notice("access-blocked", title, body, "warning", Action.OPEN_MAIN))
    if cur.state in REACHABLE_STATES and before not in REACHABLE_STATES:
        out.append(connected_notice(cur))
    elif cur.state in REACHABLE_STATES and prev is not None:
        # Withdrawn while connected (on arrival ``connected_notice`` says what is blocked).
        newly_blocked = _blocked(cur) - _blocked(prev)
        for r in cur.resources:
            if r.name in newly_blocked:
                body = r.reason or translate("app.notify", "Access was withdrawn.")
                if r.fix:
                    body += "\n" + _to_fix(r.fix)
                title = translate("app.notify", "Access to {name} withdrawn").format(name=r.name)
                out.append(Notice("blocked:" + r.name, title, body, "warning"))
    # A change of state to SIGNED_OUT says nothing by itself: a deliberate sign-out (here,
    # in another window or the CLI) must not ask to sign in again. The engine tells when
    # the provider ended the session (a NOTICE with action "sign_in"), and the timer
    # tells when the session reached its end (``session_ended_notice``).
    expiring = expiry_notice(cur, now=now)
    if expiring is not None:
        out.append(expiring)
    return out


#: Engine notices the UI already tells better from the snapshot (with resource and fix),
#: or shows elsewhere (the device code is in the sign-in window): by the engine's
#: ``notice`` detail, its message in the installed language, or (an agent from before the
#: detail) its English words.
_DERIVED_NOTICES = frozenset({"connected", "access_withdrawn"})
_DERIVED_PREFIXES = ("Connected", "Access withdrawn")


def _derived(event: Event) -> bool:
    if "user_code" in event.details or event.details.get("notice") in _DERIVED_NOTICES:
        return True
    return "notice" not in event.details and event.message.startswith(_DERIVED_PREFIXES)


def _engine_notice(event: Event) -> Notice | None:
    """An engine NOTICE as a notification, or None when the UI says it another way."""
    details = event.details
    if _derived(event):
        return None
    action = details.get("action")
    if action in {"extend", "extend_session", "signed_out"}:
        # The expiry warning is the tray's own (at EXPIRY_WARNING_S); a deliberate
        # sign-out needs no notification: the employee just did it.
        return None
    if action == "sign_in":
        # The provider no longer accepts the sign-in: the engine's words, then ours.
        # (``detail`` alone, in the engine's language; an older agent's English message)
        why = clean(details.get("detail") or event.message.removeprefix("Sign-in needed: "))
        body = f"{why}\n{_sign_in_needed()}" if why else _sign_in_needed()
        title = translate("app.notify", "Sign-in needed")
        return Notice("signin-needed", title, body, "warning", Action.SIGN_IN, 5 * 60)
    key = details.get("key", "notice:" + event.message)
    return Notice(key, "Rustronaut", clean(event.message))


def connected_notice(snapshot: Snapshot) -> Notice:
    """The notice on arrival in a connected state: "Your work resources are reachable"
    only when every resource is; otherwise which ones are blocked, why and the fix. Pure."""
    blocked = [r for r in snapshot.resources if not r.reachable]
    connected = translate("app.notify", "Connected")
    if not snapshot.resources:
        body = translate("app.notify", "No work resources are assigned to you yet.")
        return Notice("connected", connected, body)
    if not blocked:
        body = translate("app.notify", "Your work resources are reachable.")
        return Notice("connected", connected, body)
    total = len(snapshot.resources)
    lines = [
        translate(
            "app.notify", "{reachable} of %n work resources are reachable.", None, total
        ).format(reachable=total - len(blocked))
    ]
    for r in blocked:
        if r.reason:
            line = translate("app.notify", "{name} is blocked: {reason}")
            lines.append(line.format(name=r.name, reason=r.reason))
        else:
            lines.append(translate("app.notify", "{name} is blocked.").format(name=r.name))
        if r.fix:
            lines.append(_to_fix(r.fix))
    return Notice(
        "connected",
        translate("app.notify", "Connected — some access blocked"),
        "\n".join(lines),
        "warning",
        Action.OPEN_MAIN,
    )


def _left(snapshot: Snapshot, now: float) -> float | None:
    """Seconds left of the sign-in on the controller's clock (the expiry is the provider's
    time: a clock that is off would otherwise move the warning), None when unknown."""
    exp = snapshot.session_expires_at
    if exp is None or not snapshot.user or snapshot.session_renewable is True:
        return None
    return exp - (now - (snapshot.clock_skew_s or 0.0))


def expiry_notice(snapshot: Snapshot, *, now: float) -> Notice | None:
    """The "sign-in expires soon — Extend" notice when within ``EXPIRY_WARNING_S`` of the
    end (on the controller's clock) of a sign-in that does not renew itself. Pure."""
    left = _left(snapshot, now)
    if left is None or not 0 < left <= EXPIRY_WARNING_S:
        return None
    minutes = max(1, math.ceil(left / 60))
    return Notice(
        "expiring",
        translate("app.notify", "Sign-in expires soon"),
        translate("app.notify", "Your sign-in ends in %n min. Click to extend it.", None, minutes),
        "warning",
        Action.EXTEND,
        repeat_s=5 * 60,
    )


def session_ended_notice(snapshot: Snapshot, *, now: float) -> Notice | None:
    """ "Your sign-in has ended" (Sign in on click) once a sign-in that does not renew itself
    has passed its end on the controller's clock; None before. Pure."""
    left = _left(snapshot, now)
    if left is None or left > 0:
        return None
    return Notice(
        "signin-needed",
        translate("app.notify", "Your sign-in has ended"),
        _sign_in_needed(),
        "warning",
        Action.SIGN_IN,
        repeat_s=5 * 60,
    )


def diagnostics_notice(path: str) -> Notice:
    """Where "Collect diagnostics…" saved its file; clicking shows it in its folder."""
    return Notice(
        "diagnostics",
        translate("app.notify", "Diagnostics saved"),
        translate(
            "app.notify", "Saved to {path}\nClick to show it in its folder, then send it to IT."
        ).format(path=path),
        "info",
        Action.SHOW_DIAGNOSTICS,
        repeat_s=0,
    )


def diagnostics_failed_notice(message: str) -> Notice:
    """Why "Collect diagnostics…" saved nothing."""
    title = translate("app.notify", "Diagnostics not saved")
    return Notice("diagnostics-failed", title, message, "critical", repeat_s=0)


_ICONS = {
    "info": QSystemTrayIcon.MessageIcon.Information,
    "warning": QSystemTrayIcon.MessageIcon.Warning,
    "critical": QSystemTrayIcon.MessageIcon.Critical,
}


class Notifier(QObject):
    """Shows admitted notices on ``tray`` and runs the last one's action when clicked.

    ``run_action`` is called with the notice's ``Action`` on click (GUI thread);
    ``enabled`` gates the automatic notices (the ``notifications`` setting).
    ``shown`` lists every notice displayed, newest last (for the tests and the log).
    """

    def __init__(
        self,
        tray: QSystemTrayIcon,
        run_action: Callable[[Action], None],
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.time,
        initial: Snapshot | None = None,
        enabled: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(tray)
        self._tray = tray
        self._run_action = run_action
        self._limiter = limiter or RateLimiter()
        self._clock = clock
        self._prev: Snapshot | None = initial
        self._enabled = enabled
        self._pending: Action | None = None
        self._told_expiry: float | None = None  # the expiry already warned about
        self._told_end: float | None = None  # the expiry whose end was already told
        self.shown: list[Notice] = []
        tray.messageClicked.connect(self._clicked)
        self._timer = QTimer(self)
        self._timer.setInterval(30_000)
        self._timer.timeout.connect(self.check_expiry)
        self._timer.start()

    def set_baseline(self, snapshot: Snapshot) -> None:
        """Compare future events with ``snapshot`` (when the engine is attached)."""
        self._prev = snapshot

    def on_event(self, event: Event) -> None:
        """Slot for ``EngineBridge.engine_event``."""
        notices = notices_for(self._prev, event, now=self._clock())
        self._prev = event.snapshot
        for n in notices:
            if n.key == "expiring":  # told once per sign-in, by this path or the timer
                if self._told_expiry == event.snapshot.session_expires_at:
                    continue
                self._told_expiry = event.snapshot.session_expires_at
            self._offer(n)

    def offer(self, n: Notice) -> None:
        """Show ``n`` if the setting and the rate limiter allow it."""
        self._offer(n)

    def check_expiry(self) -> None:
        """Timer slot: warn about an expiring sign-in, and tell when it has ended, even when
        no event arrives. Each is told once per sign-in (its expiry time)."""
        snap = self._prev
        if snap is None or snap.session_expires_at is None:
            return
        now, exp = self._clock(), snap.session_expires_at
        ended = session_ended_notice(snap, now=now)
        if ended is not None:
            if self._told_end != exp:
                self._told_end = exp
                self._offer(ended)
            return
        warning = expiry_notice(snap, now=now)
        if warning is not None and self._told_expiry != exp:
            self._told_expiry = exp
            self._offer(warning)

    def _offer(self, n: Notice) -> None:
        if not self._enabled():  # the ``notifications`` setting is off
            return
        if self._limiter.admit(n.key, per_key_s=n.repeat_s, urgent=n.severity == "critical"):
            self.show(n)

    def show(self, notice: Notice) -> None:
        """Display ``notice`` now (no rate limiting); title and body shown as text."""
        self.shown.append(notice)
        self._pending = notice.action
        title, body = safe_line(notice.title), notification_body(notice.body)
        self._tray.showMessage(title, body, _ICONS[notice.severity], 8000)

    def _clicked(self) -> None:
        action, self._pending = self._pending, None
        if action is not None:
            self._run_action(action)
