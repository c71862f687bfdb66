"""Policy expiry against trusted time: the clock set back never extends access (issue 17).

Findings: with the clock set back a day, a fetched bundle was refused as "not yet valid"
(the tray sat on "connecting"), and a bundle already held kept granting access past its
hard expiry because expiry was judged by the local clock. The clocks are injected: a
wall clock the person can set, and an elapsed clock (counts suspend) nobody can.
"""

from __future__ import annotations

import pytest

from core.clock import TrustedTime
from core.policy.errors import BundleExpiredError
from core.policy.store import PolicyStore
from tests.core.policy.helpers import DEVICE, KEYS, NOW, bundle, rule, token

pytestmark = pytest.mark.unit

DAY = 86400.0
LIFETIME = 600


class Clocks:
    """A settable wall clock and an elapsed clock that only moves forward."""

    def __init__(self, wall: float = NOW) -> None:
        self.wall = wall
        self.elapsed = 1000.0

    def sleep(self, seconds: float) -> None:
        """Time passes: both clocks move."""
        self.wall += seconds
        self.elapsed += seconds

    def trusted(self) -> TrustedTime:
        return TrustedTime(wall=lambda: self.wall, elapsed=lambda: self.elapsed)


def _token(version: int = 1) -> str:
    return token(
        bundle(rule("r"), version=version, issued_at=int(NOW), expires_at=int(NOW) + LIFETIME)
    )


def _store(trusted: TrustedTime) -> PolicyStore:
    return PolicyStore(device_id=DEVICE, keys=KEYS, trusted=trusted)


def test_setting_the_clock_back_after_the_bundle_came_never_extends_it() -> None:
    clocks = Clocks()
    trusted = clocks.trusted()
    trusted.observe(NOW)  # the controller's Date on the answer that carried the bundle
    store = _store(trusted)
    store.update(_token())
    clocks.wall -= DAY  # the employee sets the clock back a day
    assert store.current() is not None  # still inside its lifetime
    clocks.sleep(LIFETIME - 1)
    assert store.current() is not None
    clocks.sleep(1)
    assert store.current() is None  # expired on time, whatever the wall clock says


def test_a_bundle_fetched_with_the_clock_a_day_behind_is_accepted_and_expires_on_time() -> None:
    clocks = Clocks(wall=NOW - DAY)
    trusted = clocks.trusted()
    trusted.observe(NOW)  # the Date header of the bundle's own answer
    store = _store(trusted)
    assert store.update(_token()) is True  # not "issued in the future"
    assert trusted.skew_s == pytest.approx(-DAY)
    clocks.sleep(LIFETIME)
    assert store.current() is None


def test_the_clock_forward_does_not_withdraw_access_the_controller_says_is_valid() -> None:
    clocks = Clocks(wall=NOW + DAY)
    trusted = clocks.trusted()
    trusted.observe(NOW)
    store = _store(trusted)
    assert store.update(_token()) is True  # not "expired"
    clocks.sleep(LIFETIME / 2)
    assert store.current() is not None
    clocks.sleep(LIFETIME / 2)
    assert store.current() is None


def test_without_any_controller_time_a_bundle_lasts_its_lifetime_at_most() -> None:
    # No Date seen yet (e.g. the cached bundle at an offline start): the wall clock is all
    # there is, but the signed issue time is a floor carried forward on the elapsed clock.
    clocks = Clocks()
    trusted = clocks.trusted()
    store = _store(trusted)
    store.update(_token())
    clocks.wall -= DAY
    clocks.sleep(LIFETIME - 1)
    assert store.current() is not None
    clocks.sleep(1)
    assert store.current() is None
    # and it cannot come back through the cache path or a re-delivery either
    with pytest.raises(BundleExpiredError):
        _store(trusted).update(_token())


def test_trusted_time_never_goes_backwards() -> None:
    clocks = Clocks()
    trusted = clocks.trusted()
    trusted.observe(NOW)
    clocks.sleep(10)
    trusted.observe(NOW - 3600)  # an answer claiming an older time moves nothing
    assert trusted.now() == pytest.approx(NOW + 10)
    trusted.at_least(NOW - 5)  # an older issue time neither
    assert trusted.now() == pytest.approx(NOW + 10)
    trusted.observe(NOW + 20)  # a newer one does
    assert trusted.now() == pytest.approx(NOW + 20)


def test_a_date_after_the_floor_keeps_the_later_of_both() -> None:
    clocks = Clocks(wall=NOW - DAY)
    trusted = clocks.trusted()
    trusted.at_least(NOW)  # a verified bundle's issue time
    assert trusted.now() == pytest.approx(NOW)  # the clock set back does not go below it
    clocks.sleep(30)
    trusted.observe(NOW)  # a stale Date does not pull time back behind the floor
    assert trusted.now() == pytest.approx(NOW + 30)
