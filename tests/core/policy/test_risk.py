"""RiskTracker: posture weights, each behavioural signal, caps, decay, bundle weights."""

from __future__ import annotations

import time

import pytest

from core.policy import risk as R
from core.policy.api import AccessRequest, AppIdentity, Decision, Effect
from core.policy.risk import DEFAULT_POSTURE_WEIGHTS, SIGNALS, RiskTracker
from core.wire.policy import RiskSettings
from tests.core.policy.helpers import NOW

pytestmark = pytest.mark.unit

ALLOW = Decision(Effect.ALLOW, "r", "ok", resource="git")
DENY = Decision(Effect.DENY, None, "no", resource="git")


def request(exe: str = "/usr/bin/git") -> AccessRequest:
    return AccessRequest(app=AppIdentity(1, 1, exe, exe.rsplit("/", 1)[-1]), host="h", port=1)


def test_posture_failures_weigh_in_while_failing() -> None:
    t = RiskTracker(clock=lambda: NOW)
    t.set_posture({"posture.disk.encrypted": False, "posture.firewall.enabled": True})
    assert t.score() == DEFAULT_POSTURE_WEIGHTS["posture.disk.encrypted"]
    t.set_posture({"posture.disk.encrypted": True})
    assert t.score() == 0
    t.set_posture({})  # unknown is not a failure (it lowers confidence instead)
    assert t.score() == 0


def test_bundle_overrides_weights() -> None:
    settings = RiskSettings(
        weights={"deny_streak": 33.0}, posture_weights={"posture.disk.encrypted": 50.0}
    )
    t = RiskTracker(settings, clock=lambda: NOW)
    t.set_posture({"posture.disk.encrypted": False})
    assert t.score() == 50
    for _ in range(R.DENY_STREAK):
        t.observe(request(), DENY, NOW)
    assert t.score(NOW) == 50 + 33
    snap = t.snapshot(NOW)
    assert {s.name: s.weight for s in snap.signals}["deny_streak"] == 33.0


def test_deny_streak_fires_and_resets_on_allow() -> None:
    t = RiskTracker(clock=lambda: NOW)
    for _ in range(R.DENY_STREAK - 1):
        assert t.observe(request(), DENY, NOW) == ()
    t.observe(request(), ALLOW, NOW)
    for _ in range(R.DENY_STREAK - 1):
        assert "deny_streak" not in t.observe(request(), DENY, NOW)
    assert "deny_streak" in t.observe(request(), DENY, NOW)
    assert t.score(NOW) == SIGNALS["deny_streak"].weight


def test_burst_fires_once_per_window() -> None:
    t = RiskTracker(clock=lambda: NOW)
    fired = [t.observe(request(), ALLOW, NOW + i * 0.01) for i in range(R.BURST_COUNT + 20)]
    assert sum("burst" in f for f in fired) == 1
    assert fired[R.BURST_COUNT] == ("burst",)


def test_no_burst_when_spread_out() -> None:
    t = RiskTracker(clock=lambda: NOW)
    fired = [t.observe(request(), ALLOW, NOW + i) for i in range(200)]
    assert not any("burst" in f for f in fired)


def test_new_pair_after_warmup_and_only_once() -> None:
    t = RiskTracker(clock=lambda: NOW)
    for i in range(R.NEW_PAIR_WARMUP):
        t.observe(request(f"/bin/app{i}"), ALLOW, NOW + i)  # learning: no signal
    assert t.score(NOW + R.NEW_PAIR_WARMUP) == 0
    assert t.observe(request("/bin/new"), ALLOW, NOW + 100) == ("new_pair",)
    assert t.observe(request("/bin/new"), ALLOW, NOW + 101) == ()


def test_signal_contribution_is_capped() -> None:
    t = RiskTracker(clock=lambda: NOW)
    for i in range(R.NEW_PAIR_WARMUP):
        t.observe(request("/bin/same"), ALLOW, NOW + i)
    for i in range(50):
        t.observe(request(f"/bin/x{i}"), ALLOW, NOW + 100 + i * 0.001)
    contribution = {s.name: s.contribution for s in t.snapshot(NOW + 100.05).signals}
    assert contribution["new_pair"] <= SIGNALS["new_pair"].cap


def test_unusual_hour_after_learning() -> None:
    t = RiskTracker(clock=lambda: NOW)
    base = time.mktime((2027, 1, 4, 10, 0, 0, 0, 0, -1))  # a Monday, 10:00 local
    for i in range(R.HOUR_MIN_SAMPLES):
        assert "unusual_hour" not in t.observe(request(), ALLOW, base + i)
    night = time.mktime((2027, 1, 5, 3, 0, 0, 0, 0, -1))
    assert "unusual_hour" in t.observe(request(), ALLOW, night)
    assert "unusual_hour" not in t.observe(request(), ALLOW, night + 60)  # once an hour
    assert "unusual_hour" not in t.observe(request(), ALLOW, base + 86400)  # usual hour


def test_decay_halves_each_half_life() -> None:
    t = RiskTracker(RiskSettings(half_life_s=100.0), clock=lambda: NOW)
    for _ in range(R.DENY_STREAK):
        t.observe(request(), DENY, NOW)
    w = SIGNALS["deny_streak"].weight
    assert t.score(NOW) == pytest.approx(w)
    assert t.score(NOW + 100) == pytest.approx(w / 2)
    assert t.score(NOW + 300) == pytest.approx(w / 8)
    assert t.snapshot(NOW + 100).signals[2].contribution == pytest.approx(w / 2, abs=0.01)


def test_score_is_capped_at_100() -> None:
    t = RiskTracker(RiskSettings(posture_weights={"posture.a": 80.0, "posture.b": 80.0}))
    t.set_posture({"posture.a": False, "posture.b": False})
    assert t.score() == 100
    assert t.snapshot().score == 100


def test_snapshot_lists_named_signals_and_active_parts() -> None:
    t = RiskTracker(clock=lambda: NOW)
    t.set_posture({"posture.firewall.enabled": False})
    for _ in range(R.DENY_STREAK):
        t.observe(request(), DENY, NOW)
    snap = t.snapshot(NOW)
    assert [s.name for s in snap.signals] == list(SIGNALS)
    assert all(s.description for s in snap.signals)
    assert snap.active == ("posture.firewall.enabled", "deny_streak")
    assert snap.score == 20 + 20


def test_reset_keeps_settings_and_posture() -> None:
    t = RiskTracker(RiskSettings(weights={"deny_streak": 5.0}), clock=lambda: NOW)
    t.set_posture({"posture.firewall.enabled": False})
    for _ in range(R.DENY_STREAK):
        t.observe(request(), DENY, NOW)
    t.reset()
    assert t.score(NOW) == 20
    for _ in range(R.DENY_STREAK):
        t.observe(request(), DENY, NOW)
    assert t.score(NOW) == 25


def test_active_matches_snapshot() -> None:
    t = RiskTracker(clock=lambda: NOW)
    assert t.active(NOW) == ()
    t.set_posture({"posture.disk.encrypted": False})
    for _ in range(R.DENY_STREAK):
        t.observe(request(), DENY, NOW)
    assert t.active(NOW) == t.snapshot(NOW).active == ("posture.disk.encrypted", "deny_streak")
    later = NOW + 3600 * 24
    assert t.active(later) == ("posture.disk.encrypted",)  # decayed away
    assert t.score(later) == DEFAULT_POSTURE_WEIGHTS["posture.disk.encrypted"]
