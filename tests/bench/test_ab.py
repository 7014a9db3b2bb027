"""The `ab` scenario's round order gives neither system an advantage of place."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

from bench.ab import round_order

NAMES = ["direct", "baseline", "current"]


def test_both_systems_run_as_often_in_each_place_of_a_round() -> None:
    rounds = [round_order(NAMES, number) for number in range(8)]
    places = Counter((name, place) for order in rounds for place, name in enumerate(order))
    for place in range(3):
        assert places[("baseline", place)] == places[("current", place)] > 0


def test_each_system_follows_the_direct_target_the_other_and_itself_equally() -> None:
    sequence = [name for number in range(8) for name in round_order(NAMES, number)]
    after = Counter(pairwise(sequence))
    assert after[("direct", "baseline")] == after[("direct", "current")]
    assert after[("current", "baseline")] == after[("baseline", "current")]
    assert after[("baseline", "baseline")] == after[("current", "current")]
