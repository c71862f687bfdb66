"""Risk score 0–100: failing posture plus behavioural signals that decay over time.

Two parts, both visible by name with their weights (never magic numbers in code):

* **posture**: each posture fact that is known and false (``posture.disk.encrypted =
  false``) adds its weight from :data:`DEFAULT_POSTURE_WEIGHTS` (overridden by the
  bundle's ``risk.posture_weights``). It lasts as long as the failure does.
* **behaviour**: the proxy's decision stream feeds :meth:`RiskTracker.observe`; the
  signals in :data:`SIGNALS` fire (bursts, first use of an app→resource pair, streaks of
  denials, an hour this user rarely works) and add their weight (the bundle's
  ``risk.weights`` override it), each capped, all decaying exponentially with the
  bundle's half-life.

The score is ``min(100, posture + behaviour)``. Rules set ``max_risk``; conditions can
read the ``risk`` fact. Not thread-safe: call from one thread (the engine's loop).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from core.i18n import QT_TRANSLATE_NOOP, translate
from core.policy.api import AccessRequest, Decision, Effect
from core.wire.policy import RiskSettings
from core.wire.posture import fact_words

__all__ = [
    "DEFAULT_POSTURE_WEIGHTS",
    "SIGNALS",
    "RiskSnapshot",
    "RiskTracker",
    "SignalSpec",
    "SignalView",
    "risk_label",
]


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """A behavioural signal: its default weight, the most it may add, and when it fires;
    ``label`` is how the employee reads it (the tray, ``rustronaut status``), in English:
    :func:`risk_label` translates it."""

    name: str
    weight: float
    cap: float
    description: str
    label: str = ""


#: Every behavioural signal with its default weight and cap (the bundle may re-weight).
SIGNALS: Final[Mapping[str, SignalSpec]] = {
    s.name: s
    for s in (
        SignalSpec(
            "burst",
            15.0,
            30.0,
            "more than 60 connections within 10 seconds",
            QT_TRANSLATE_NOOP("core.policy.risk", "A burst of connections"),
        ),
        SignalSpec(
            "new_pair",
            3.0,
            15.0,
            "first use of an app → resource pair",
            QT_TRANSLATE_NOOP("core.policy.risk", "An app reached a resource for the first time"),
        ),
        SignalSpec(
            "deny_streak",
            20.0,
            40.0,
            "8 denied connections in a row",
            QT_TRANSLATE_NOOP("core.policy.risk", "Many connections refused in a row"),
        ),
        SignalSpec(
            "unusual_hour",
            10.0,
            10.0,
            "activity at an hour this user rarely works",
            QT_TRANSLATE_NOOP("core.policy.risk", "Activity at an unusual hour"),
        ),
    )
}

#: Risk added while a posture fact is known and false (bundle ``risk.posture_weights``).
DEFAULT_POSTURE_WEIGHTS: Final[Mapping[str, float]] = {
    "posture.disk.encrypted": 25.0,
    "posture.firewall.enabled": 20.0,
    "posture.av.running": 15.0,
    "posture.updates.auto": 10.0,
    "posture.screen_lock.enabled": 10.0,
    "posture.secure_boot.enabled": 5.0,
}


def risk_label(name: str) -> str:
    """What adds risk, as the employee reads it: a failing posture fact by its label and
    state ("Antivirus not running"), a signal by its label ("Many connections refused in
    a row"), in the installed language; any other name as is. Never raises."""
    spec = SIGNALS.get(name)
    if spec is not None:
        return translate("core.policy.risk", spec.label) if spec.label else spec.description
    if name.startswith("posture."):
        words = fact_words(name)
        text = translate("core.policy.risk", "{label} {state}")
        return text.format(label=words.label, state=words.no)
    return name


# Thresholds of the signals above (kept beside them; described in SIGNALS).
BURST_WINDOW_S: Final = 10.0
BURST_COUNT: Final = 60
DENY_STREAK: Final = 8
NEW_PAIR_WARMUP: Final = 50  # observations before "new pair" means anything
HOUR_MIN_SAMPLES: Final = 200  # observations before "unusual hour" means anything
HOUR_RARE_SHARE: Final = 0.01  # an hour with under 1 % of the user's activity is rare
_MAX_PAIRS = 20_000


@dataclass(frozen=True, slots=True)
class SignalView:
    """One signal as the UI shows it: weight, what it adds now, when it last fired."""

    name: str
    description: str
    weight: float
    contribution: float
    last_fired: float | None


@dataclass(frozen=True, slots=True)
class RiskSnapshot:
    """The score and where it comes from."""

    score: int
    posture: tuple[tuple[str, float], ...]
    signals: tuple[SignalView, ...]

    @property
    def active(self) -> tuple[str, ...]:
        """Names of what currently adds risk (posture facts and signals)."""
        return tuple(name for name, _ in self.posture) + tuple(
            s.name for s in self.signals if s.contribution >= 0.5
        )

    @property
    def active_labels(self) -> tuple[str, ...]:
        """:attr:`active` as the employee reads it (:func:`risk_label`)."""
        return tuple(risk_label(name) for name in self.active)


class RiskTracker:
    """Tracks the device's risk; fed with decisions, read by the engine on each decision.

    ``version`` changes whenever a signal fires, the posture changes or the settings
    change (the engine keys its decision cache on the rounded score instead).
    Thread-safe: the proxy feeds it from its own thread while the UI reads it.
    """

    def __init__(
        self, settings: RiskSettings | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        if not hasattr(self, "_lock"):  # ``reset`` re-runs __init__ holding the lock
            self._lock = threading.RLock()
        self._values = dict.fromkeys(SIGNALS, 0.0)
        self._active = False
        self._last_fired: dict[str, float | None] = dict.fromkeys(SIGNALS, None)
        self._t = clock()
        self._posture: tuple[tuple[str, float], ...] = ()
        self._posture_sum = 0.0
        self._recent: deque[float] = deque()
        self._burst_until = 0.0
        self._denials = 0
        self._pairs: set[tuple[str, str]] = set()
        self._observed = 0
        self._hours = [0] * 24
        self._hour_fired_at = -1.0
        self._posture_facts: Mapping[str, object] = {}
        self.version = 0
        self.configure(settings or RiskSettings())

    def configure(self, settings: RiskSettings) -> None:
        """Apply the bundle's weights and half-life (posture risk re-computed). Idempotent."""
        with self._lock:
            self._settings = settings
            self._weights = {n: settings.weights.get(n, s.weight) for n, s in SIGNALS.items()}
            self._posture_weights = {**DEFAULT_POSTURE_WEIGHTS, **settings.posture_weights}
            self._rate = math.log(2) / settings.half_life_s
            self.set_posture(self._posture_facts)

    def set_posture(self, facts: Mapping[str, object]) -> None:
        """Re-compute posture risk from ``posture.*`` facts (False counts; unknown not)."""
        with self._lock:
            self._posture_facts = dict(facts)
            failing = tuple(
                (name, w)
                for name, w in sorted(self._posture_weights.items())
                if w > 0 and facts.get(name) is False
            )
            if failing != self._posture:
                self._posture = failing
                self._posture_sum = sum(w for _, w in failing)
                self.version += 1

    def _decay_to(self, now: float) -> None:
        if now > self._t:
            factor = math.exp(-self._rate * (now - self._t))
            for name in self._values:
                self._values[name] *= factor
            self._t = now

    def _fire(self, name: str, now: float) -> None:
        spec = SIGNALS[name]
        self._values[name] = min(spec.cap, self._values[name] + self._weights[name])
        self._active = True
        self._last_fired[name] = now
        self.version += 1

    def score(self, now: float | None = None) -> float:
        """The current score (0–100, not rounded). Cheap: one ``exp``."""
        if not self._active:  # nothing fired lately: posture only, no maths, no lock
            return min(100.0, self._posture_sum)
        with self._lock:  # (if another thread ended the activity meantime: sum is 0)
            now = self._clock() if now is None else now
            behaviour = sum(self._values.values())
            if now > self._t:
                behaviour *= math.exp(-self._rate * (now - self._t))
            if behaviour < 0.001:  # decayed away: back to the fast path
                self._active = False
                self._values = dict.fromkeys(SIGNALS, 0.0)
                behaviour = 0.0
            return min(100.0, self._posture_sum + behaviour)

    def observe(
        self, request: AccessRequest, decision: Decision, now: float | None = None
    ) -> tuple[str, ...]:
        """Feed one decision; return the names of the signals it fired (often none).

        Never raises for any request/decision. Call once per real connection attempt
        (not for ``policy explain``).
        """
        with self._lock:
            now = self._clock() if now is None else now
            self._decay_to(now)
            fired: list[str] = []
            self._observed += 1
            # burst: too many connections in a sliding window (fires once per window)
            recent = self._recent
            recent.append(now)
            while recent and recent[0] < now - BURST_WINDOW_S:
                recent.popleft()
            if len(recent) > BURST_COUNT and now >= self._burst_until:
                fired.append("burst")
                self._burst_until = now + BURST_WINDOW_S
            # deny streak
            if decision.effect is Effect.DENY:
                self._denials += 1
                if self._denials >= DENY_STREAK:
                    fired.append("deny_streak")
                    self._denials = 0
            else:
                self._denials = 0
            # new app → resource pair
            if decision.resource is not None:
                pair = (request.app.exe or request.app.name, decision.resource)
                if pair not in self._pairs and len(self._pairs) < _MAX_PAIRS:
                    self._pairs.add(pair)
                    if self._observed > NEW_PAIR_WARMUP:
                        fired.append("new_pair")
            # unusual hour for this user (learned histogram of local hours)
            hour = time.localtime(now).tm_hour
            total = self._observed - 1
            if (
                total >= HOUR_MIN_SAMPLES
                and self._hours[hour] < HOUR_RARE_SHARE * total
                and now - self._hour_fired_at >= 3600
            ):
                fired.append("unusual_hour")
                self._hour_fired_at = now
            self._hours[hour] += 1
            for name in fired:
                self._fire(name, now)
            return tuple(fired)

    def active(self, now: float | None = None) -> tuple[str, ...]:
        """Names of what adds risk now (failing posture facts, then signals adding at
        least 0.5): what a Decision lists in ``signals``. Cheaper than ``snapshot``."""
        with self._lock:
            names = tuple(name for name, _ in self._posture)
            if not self._active:
                return names
            now = self._clock() if now is None else now
            factor = math.exp(-self._rate * (now - self._t)) if now > self._t else 1.0
            return names + tuple(n for n, v in self._values.items() if v * factor >= 0.5)

    def snapshot(self, now: float | None = None) -> RiskSnapshot:
        """Score and its parts for the UI (``rustronaut status``, the tray's risk panel)."""
        with self._lock:
            now = self._clock() if now is None else now
            factor = math.exp(-self._rate * (now - self._t)) if now > self._t else 1.0
            views = tuple(
                SignalView(
                    name=name,
                    description=SIGNALS[name].description,
                    weight=self._weights[name],
                    contribution=round(self._values[name] * factor, 2),
                    last_fired=self._last_fired[name],
                )
                for name in SIGNALS
            )
            return RiskSnapshot(score=round(self.score(now)), posture=self._posture, signals=views)

    def reset(self) -> None:
        """Forget behaviour (sign-out / another user). Posture weights stay."""
        with self._lock:
            posture = self._posture_facts
            self.__init__(self._settings, clock=self._clock)  # type: ignore[misc]
            self.set_posture(posture)
