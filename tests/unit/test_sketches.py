"""time_since_last, decayed_count and distinct_count against brute force over the raw history."""

from __future__ import annotations

import math
import random

import pytest

from schemas.spec import AggregateSpec
from services.features.aggregates import absorb, features_before, new_state
from services.features.sketches import SKETCH_SIZE

EPOCH = 1_700_000_000.0
SINCE = AggregateSpec(name="since", entity="user", function="time_since_last")
DECAYED = AggregateSpec(name="decayed", entity="user", function="decayed_count",
                        half_life_seconds=30.0)


def distinct(size: float = 600.0) -> AggregateSpec:
    return AggregateSpec(name="distinct", entity="user", function="distinct_count", field="item",
                         size_seconds=size)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_time_since_last_and_decayed_count_equal_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    state = new_state()
    history: list[float] = []
    clock = EPOCH
    for _ in range(2000):
        clock += rng.uniform(0, 20)
        t = clock - (rng.uniform(0, 10) if rng.random() < 0.2 else 0.0)  # some late events
        got = features_before(state, [SINCE, DECAYED], t)
        expected_since = None if not history else max(0.0, t - max(history))
        expected_decayed = sum(2 ** (-max(0.0, t - ti) / 30.0) for ti in history)
        if expected_since is None:
            assert got["since"] is None
        else:
            assert got["since"] == pytest.approx(expected_since)
        # Late events are decayed to the newest time seen, so an event earlier than the newest
        # one sees them at most fully decayed: compare against both bounds.
        decayed = got["decayed"]
        assert decayed is not None
        newest = max(history, default=t)
        ceiling = sum(2 ** (-(max(newest, t) - ti) / 30.0) for ti in history) * 2 ** (
            max(0.0, newest - t) / 30.0)
        assert decayed <= ceiling + 1e-6
        if t >= newest:
            assert decayed == pytest.approx(expected_decayed, rel=1e-9, abs=1e-12)
        absorb(state, [SINCE, DECAYED], t, {})
        history.append(t)


def test_distinct_count_is_exact_below_the_sketch_size_and_point_in_time() -> None:
    rng = random.Random(5)
    aggregate = distinct()
    state = new_state()
    history: list[tuple[float, str]] = []
    for n in range(3000):
        t = EPOCH + n * 0.5
        item = f"i{rng.randrange(40)}"
        start = math.floor(t / 600.0) * 600.0
        expected = len({it for ti, it in history if start <= ti < start + 600.0})
        assert features_before(state, [aggregate], t)["distinct"] == expected
        absorb(state, [aggregate], t, {"item": item})
        history.append((t, item))


@pytest.mark.parametrize("true_count", [100, 1000, 20_000])
def test_distinct_count_estimates_large_cardinalities_within_a_third(true_count: int) -> None:
    aggregate = distinct(size=10**6)
    state = new_state()
    for n in range(true_count):
        absorb(state, [aggregate], EPOCH + n * 1e-3, {"item": f"item-{n}"})
        absorb(state, [aggregate], EPOCH + n * 1e-3, {"item": f"item-{n}"})  # repeats ignored
    estimate = features_before(state, [aggregate], EPOCH + true_count * 1e-3)["distinct"]
    assert estimate is not None
    assert abs(estimate - true_count) / true_count < 0.34
    sketch = next(iter(state["aggregates"]["distinct"].values()))
    assert len(sketch) <= SKETCH_SIZE


def test_distinct_count_ignores_missing_values() -> None:
    aggregate = distinct()
    state = new_state()
    for item in (None, "a", None, "a", "b"):
        absorb(state, [aggregate], EPOCH, {"item": item})
    assert features_before(state, [aggregate], EPOCH + 1)["distinct"] == 2.0
