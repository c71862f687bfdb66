"""Time you can trust: the controller's time carried forward on a clock that counts sleep.

The local wall clock (``time.time``) is whatever the person at the keyboard set it to.
Access decisions that must not be extended by setting it back (a policy bundle's hard
expiry) are judged against ``TrustedTime.now()`` instead: the controller's time as last
verified (an HTTP ``Date`` header on an authenticated answer; a signed bundle's issue
time as a lower bound) plus the seconds elapsed since, on ``awake_or_asleep`` — a clock that keeps
counting while the machine is suspended and that nobody can set. Before the first
verified observation there is nothing better than the wall clock, and ``now()`` says so
(``anchored`` is False).

``TrustedTime`` also keeps the last few differences "local − controller" and exposes
their median as ``skew_s`` (the tray and ``rustronaut status`` show it).

``shared()`` is the process's instance: the control-plane client feeds it and the
policy store reads it unless a test injects its own. ``skew_words`` and
``sign_in_words`` are the sentences the CLI and the tray show, so both say the same.
Imports nothing from the project.
Not thread-safe: use from one thread (the agent's loop).
"""

from __future__ import annotations

import collections
import datetime
import statistics
import sys
import time
from collections.abc import Callable

from core.i18n import QT_TRANSLATE_NOOP, translate

__all__ = [
    "SKEW_SHOWN_S",
    "TrustedTime",
    "awake_or_asleep",
    "shared",
    "sign_in_words",
    "skew_words",
]

SKEW_SAMPLES = 5
"""How many recent answers the skew is the median of (one odd answer does not count)."""

SKEW_SHOWN_S = 60.0
"""A clock off by more than this is worth telling the employee (tokens and policies carry
times checked to the minute; smaller skews are network noise and NTP slew)."""


def awake_or_asleep() -> float:
    """Seconds on a clock that keeps counting while the machine is suspended."""
    # time.monotonic (and asyncio's timers) stop during suspend on Linux and macOS, so a
    # timer gap measured with it never shows a sleep: after a resume the tick simply
    # comes late by the machine's reckoning. CLOCK_BOOTTIME (Linux) and Darwin's
    # CLOCK_MONOTONIC include the suspended time. Elsewhere (Windows) time.monotonic.
    if sys.platform == "darwin":
        return time.clock_gettime(time.CLOCK_MONOTONIC)
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        return time.clock_gettime(boottime)
    return time.monotonic()


class TrustedTime:
    """The controller's time, carried forward on ``elapsed`` (see the module docstring).

    ``wall`` is the local clock (compared with the controller's to measure the skew, and
    the fallback before any observation); ``elapsed`` a clock nobody can set that counts
    suspend. Both are injectable so tests need no faketime.
    """

    def __init__(
        self,
        *,
        wall: Callable[[], float] = time.time,
        elapsed: Callable[[], float] = awake_or_asleep,
        samples: int = SKEW_SAMPLES,
    ) -> None:
        self.wall = wall
        self.elapsed = elapsed
        # (controller time, elapsed then): from a Date header / from a signed issue time
        self._anchor: tuple[float, float] | None = None
        self._floor: tuple[float, float] | None = None
        self._skews: collections.deque[float] = collections.deque(maxlen=samples)

    @property
    def anchored(self) -> bool:
        """Whether a controller ``Date`` has been observed (else ``now`` leans on the wall)."""
        return self._anchor is not None

    def now(self) -> float:
        """Unix seconds: the last verified controller time plus the time elapsed since.

        Before the first ``observe``: the wall clock, but never less than a floor given
        by ``at_least`` carried forward — so setting the clock back never moves ``now``
        before a signed issue time already seen. Never goes backwards while anchored.
        """
        if self._anchor is not None:
            return self._carried(self._anchor)
        wall = self.wall()
        return wall if self._floor is None else max(wall, self._carried(self._floor))

    def _carried(self, point: tuple[float, float]) -> float:
        at, then = point
        return at + (self.elapsed() - then)

    def observe(self, controller_time: float) -> None:
        """Record the controller's time read from an answer just received (its ``Date``).

        Counts for the skew. Trusted time never goes backwards: an observation behind the
        current estimate (a ``Date`` truncated to the second, a slow answer) moves
        nothing, so no answer can extend access.
        """
        self._skews.append(self.wall() - controller_time)
        if self._anchor is None:
            floor = self._carried(self._floor) if self._floor is not None else controller_time
            self._anchor = (max(controller_time, floor), self.elapsed())
        elif controller_time > self.now():
            self._anchor = (controller_time, self.elapsed())

    def at_least(self, controller_time: float) -> None:
        """Record that the controller's time has reached ``controller_time`` (a verified
        bundle's issue time: perhaps old, so a lower bound only, not a skew sample)."""
        if self._anchor is not None:
            if controller_time > self.now():
                self._anchor = (controller_time, self.elapsed())
        elif self._floor is None or controller_time > self._carried(self._floor):
            self._floor = (controller_time, self.elapsed())

    @property
    def skew_s(self) -> float | None:
        """Local − controller in seconds (+ = this computer is ahead), the median of the
        last few answers; None until measured."""
        return statistics.median(self._skews) if self._skews else None

    def reset(self) -> None:
        """Forget every observation (a new controller, tests)."""
        self._anchor = None
        self._floor = None
        self._skews.clear()


_SHARED = TrustedTime()


def shared() -> TrustedTime:
    """This process's trusted time (fed by the control-plane client)."""
    return _SHARED


# ------------------------------------------------------------------------------ words
# Literal per entry: lupdate extracts literals only.
_WEEKDAYS = (
    QT_TRANSLATE_NOOP("core.clock", "Mon"),
    QT_TRANSLATE_NOOP("core.clock", "Tue"),
    QT_TRANSLATE_NOOP("core.clock", "Wed"),
    QT_TRANSLATE_NOOP("core.clock", "Thu"),
    QT_TRANSLATE_NOOP("core.clock", "Fri"),
    QT_TRANSLATE_NOOP("core.clock", "Sat"),
    QT_TRANSLATE_NOOP("core.clock", "Sun"),
)
_MONTHS = (
    QT_TRANSLATE_NOOP("core.clock", "Jan"),
    QT_TRANSLATE_NOOP("core.clock", "Feb"),
    QT_TRANSLATE_NOOP("core.clock", "Mar"),
    QT_TRANSLATE_NOOP("core.clock", "Apr"),
    QT_TRANSLATE_NOOP("core.clock", "May"),
    QT_TRANSLATE_NOOP("core.clock", "Jun"),
    QT_TRANSLATE_NOOP("core.clock", "Jul"),
    QT_TRANSLATE_NOOP("core.clock", "Aug"),
    QT_TRANSLATE_NOOP("core.clock", "Sep"),
    QT_TRANSLATE_NOOP("core.clock", "Oct"),
    QT_TRANSLATE_NOOP("core.clock", "Nov"),
    QT_TRANSLATE_NOOP("core.clock", "Dec"),
)


def _amount(seconds: float) -> str:
    # One source text per English form (English ships no catalogue); each is a plural for
    # the languages that have other forms.
    minutes = round(seconds / 60)
    if minutes < 120:
        n = max(1, minutes)
        if n == 1:
            return translate("core.clock", "%n minute", None, n)
        return translate("core.clock", "%n minutes", None, n)
    if minutes < 48 * 60:
        n = round(minutes / 60)
        if n == 1:
            return translate("core.clock", "%n hour", None, n)
        return translate("core.clock", "%n hours", None, n)
    n = round(minutes / 1440)
    if n == 1:
        return translate("core.clock", "%n day", None, n)
    return translate("core.clock", "%n days", None, n)


def skew_words(skew_s: float | None) -> str | None:
    """The clock warning ("This computer's clock is 10 minutes ahead of the controller's —
    set the date and time"), or None when the skew is unknown or within ``SKEW_SHOWN_S``."""
    if skew_s is None or abs(skew_s) <= SKEW_SHOWN_S:
        return None
    amount = _amount(abs(skew_s))
    if skew_s > 0:
        text = translate(
            "core.clock",
            "This computer's clock is {amount} ahead of the controller's — set the date and time",
        )
    else:
        text = translate(
            "core.clock",
            "This computer's clock is {amount} behind the controller's — set the date and time",
        )
    return text.format(amount=amount)


def _when(ts: float, now: float) -> str:
    at = datetime.datetime.fromtimestamp(ts)
    clock = f"{at:%H:%M}"
    if at.date() == datetime.datetime.fromtimestamp(now).date():
        return clock
    return translate("core.clock", "{weekday} {day} {month} {time}").format(
        weekday=translate("core.clock", _WEEKDAYS[at.weekday()]),
        day=at.day,
        month=translate("core.clock", _MONTHS[at.month - 1]),
        time=clock,
    )


def sign_in_words(
    expires_at: float | None, renewable: bool | None, *, now: float | None = None
) -> str | None:
    """When the sign-in ends and whether it renews, in local time: "Signed in until 18:40,
    renews automatically" / "Signed in until 18:40, then you need to sign in again".
    None when nothing is known (signed out)."""
    now = time.time() if now is None else now
    if expires_at is None:
        if renewable is True:
            return translate("core.clock", "Signed in, renews automatically")
        return None
    when = _when(expires_at, now)
    if renewable is True:
        text = translate("core.clock", "Signed in until {when}, renews automatically")
        return text.format(when=when)
    if renewable is False:
        text = translate("core.clock", "Signed in until {when}, then you need to sign in again")
        return text.format(when=when)
    return translate("core.clock", "Signed in until {when}").format(when=when)
