"""Which relay: lowest RTT, load spread among the near-best, failed ones excluded (issue 21)."""

from __future__ import annotations

import random

import pytest

from wg_backends.relay.choose import Measure, choose, rank

pytestmark = pytest.mark.unit

M = Measure


@pytest.mark.parametrize(
    ("measures", "exclude", "want"),
    [
        ([], (), None),
        ([M("a", False)], (), None),
        ([M("a", True, 10.0, 5)], (), "a"),
        ([M("a", True, 10.0, 5), M("b", True, 40.0, 0)], (), "a"),  # b is far slower
        ([M("a", True, 10.0, 5), M("b", True, 14.0, 1)], (), "b"),  # within 5 ms: less load
        ([M("a", True, 100.0, 5), M("b", True, 124.0, 1)], (), "b"),  # within 25 %
        ([M("a", True, 100.0, 5), M("b", True, 126.0, 1)], (), "a"),  # beyond 25 %
        ([M("a", True, 10.0, 5), M("b", True, 11.0, None)], (), "a"),  # unknown load: busiest
        ([M("a", True, 10.0, 5), M("b", True, 50.0, 0)], ("a",), "b"),  # a failed this round
        ([M("a", True, 10.0, 5), M("b", False)], ("a",), None),
    ],
)
def test_choose_table(measures: list[Measure], exclude: tuple[str, ...], want: str | None) -> None:
    assert choose(measures, exclude=exclude, rng=random.Random(1)) == want


def test_a_tie_is_broken_at_random_so_load_spreads() -> None:
    measures = [M("a", True, 10.0, 3), M("b", True, 12.0, 3), M("c", True, 11.0, 3)]
    picks = {choose(measures, rng=random.Random(seed)) for seed in range(50)}
    assert picks == {"a", "b", "c"}


def test_rank_puts_the_choice_first_then_by_rtt_and_skips_the_dead() -> None:
    measures = [M("a", True, 10.0, 9), M("b", True, 12.0, 1), M("c", True, 80.0, 0), M("d", False)]
    assert rank(measures, rng=random.Random(0)) == ["b", "a", "c"]
    assert rank(measures, exclude=["b"], rng=random.Random(0)) == ["a", "c"]
    assert rank([M("d", False)]) == []
