"""Desktop notifications for what matters, rate-limited so they never flood.

``notices_for`` is a pure function (previous snapshot, event) → notices: connected,
access withdrawn (reason and fix), sign-in about to expire (with **Extend**), sign-in
needed, errors such as a missing helper, and the engine's own NOTICE events.
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
"""

from __future__ import annotations

import html
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QSystemTrayIcon

from app.plain import clean, clean_snapshot
from app.presenter import LOST_LABEL, LOST_NEXT_STEP, Action, blocked_fixes, next_step
from core.engine.state import Event, EventKind, SessionState, Snapshot
from core.text import safe_line, safe_text

__all__ = [
    "ERROR_REPEAT_S",
    "EXPIRY_WARNING_S",
    "LOST_NOTICE",
    "Notice",
    "Notifier",
    "RateLimiter",
    "expiry_notice",
    "notices_for",
    "notification_body",
]

#: Whether the platform's notification server reads the body as markup (freedesktop's
#: ``body-markup``); macOS and Windows show it as plain text.
BODY_IS_MARKUP = not sys.platform.startswith(("darwin", "win"))


def notification_body(body: str, *, markup: bool = BODY_IS_MARKUP) -> str:
    """``body`` as a notification shows it literally: control characters escaped (our
    own line breaks kept), and ``<>&`` escaped where the server reads markup."""
    text = safe_text(body, keep_newlines=True)
    return html.escape(text, quote=False) if markup else text


#: Warn this long before the sign-in session expires.
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


#: Told once when the engine this tray was attached to goes away (Restart on click).
LOST_NOTICE = Notice("engine-lost", LOST_LABEL, LOST_NEXT_STEP, "critical", Action.RESTART)


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
        body = "Every resource is blocked until this device is fixed."
        if fixes:
            body += "\n" + "\n".join(f"To fix: {fix}" for fix in fixes)
        out.append(
            Notice(
                "access-blocked", "Connected — access blocked", body, "warning", Action.OPEN_MAIN
            )
        )
    if cur.state is SessionState.CONNECTED and before not in {
        SessionState.CONNECTED,
        SessionState.DEGRADED,
    }:
        out.append(Notice("connected", "Connected", "Your work resources are reachable."))
    newly_blocked = _blocked(cur) - (_blocked(prev) if prev is not None else set())
    if newly_blocked and cur.state in {SessionState.DEGRADED, SessionState.CONNECTED}:
        for r in cur.resources:
            if r.name in newly_blocked:
                body = r.reason or "Access was withdrawn."
                if r.fix:
                    body += f"\nTo fix: {r.fix}"
                title = f"Access to {r.name} withdrawn"
                out.append(Notice("blocked:" + r.name, title, body, "warning"))
    if (
        cur.state is SessionState.SIGNED_OUT
        and before is not None
        and before is not SessionState.SIGNED_OUT
        and before is not SessionState.SIGNING_IN
    ):
        out.append(
            Notice(
                "signin-needed",
                "Sign-in needed",
                "Sign in again to reach your work resources.",
                "warning",
                Action.SIGN_IN,
            )
        )
    expiring = expiry_notice(cur, now=now)
    if expiring is not None:
        out.append(expiring)
    return out


#: Engine notices the UI already tells better from the snapshot (with resource and fix),
#: or shows elsewhere (the device code is in the sign-in window).
_DERIVED_PREFIXES = ("Connected", "Access withdrawn")


def _engine_notice(event: Event) -> Notice | None:
    """An engine NOTICE as a notification, or None when the UI says it another way."""
    details = event.details
    if "user_code" in details or event.message.startswith(_DERIVED_PREFIXES):
        return None
    if details.get("action") in {"extend", "extend_session"}:
        # Same key as the UI's own expiry warning, so only one of them is shown.
        return Notice(
            "expiring",
            "Sign-in expires soon",
            clean(event.message),
            "warning",
            Action.EXTEND,
            5 * 60,
        )
    key = details.get("key", "notice:" + event.message)
    return Notice(key, "Rustronaut", clean(event.message))


def expiry_notice(snapshot: Snapshot, *, now: float) -> Notice | None:
    """The "sign-in expires soon — Extend" notice when within ``EXPIRY_WARNING_S``. Pure."""
    exp = snapshot.session_expires_at
    if exp is None or not snapshot.user or not 0 < exp - now <= EXPIRY_WARNING_S:
        return None
    minutes = max(1, int((exp - now) // 60))
    return Notice(
        "expiring",
        "Sign-in expires soon",
        f"Your sign-in ends in {minutes} min. Click to extend it.",
        "warning",
        Action.EXTEND,
        repeat_s=5 * 60,
    )


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
        self.shown: list[Notice] = []
        tray.messageClicked.connect(self._clicked)
        self._timer = QTimer(self)
        self._timer.setInterval(60_000)
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
            self._offer(n)

    def offer(self, n: Notice) -> None:
        """Show ``n`` if the setting and the rate limiter allow it."""
        self._offer(n)

    def check_expiry(self) -> None:
        """Timer slot: warn about an expiring sign-in even when no event arrives."""
        if self._prev is not None:
            n = expiry_notice(self._prev, now=self._clock())
            if n is not None:
                self._offer(n)

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
