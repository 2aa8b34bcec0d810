"""Windowed aggregates against a brute-force recomputation over the raw event history.

The reference below does not use buckets at all: it keeps every event and, for each new event at
time ``t``, selects the earlier events of the same entity whose event time lies in the window
serving ``t``. Tumbling (size S): the window ``[kS, kS + S)`` containing ``t``. Hopping (size S,
step P): the windows ``[kP, kP + S)`` that contain ``t`` run from the oldest, ``k0 = floor((t -
S) / P) + 1``, to the newest, ``k1 = floor(t / P)``; the feature covers ``[k0 P, k1 P + P)``.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass

import orjson
import pytest

from schemas.spec import AggregateFunction, AggregateSpec
from services.features.aggregates import EntityState, absorb, features_before, new_state

FUNCTIONS: tuple[AggregateFunction, ...] = ("count", "sum", "mean", "min", "max", "last")
EPOCH = 1_700_000_000.0


@dataclass(frozen=True)
class Window:
    kind: str
    size: float
    step: float | None

    @property
    def width(self) -> float:
        return self.step if self.step is not None else self.size


WINDOWS = [
    Window("tumbling", 60.0, None),
    Window("tumbling", 7.5, None),
    Window("hopping", 60.0, 15.0),
    Window("hopping", 100.0, 30.0),  # size not a multiple of the step
    Window("hopping", 40.0, 40.0),  # step equal to size: tumbling in disguise
]


def aggregates_for(window: Window) -> list[AggregateSpec]:
    specs = [
        AggregateSpec(
            name=f"{function}_x", entity="user", function=function, field="x",
            window=window.kind,
            size_seconds=window.size, step_seconds=window.step,
        )
        for function in FUNCTIONS
    ]
    specs.append(AggregateSpec(name="events", entity="user", function="count",
                               window=window.kind,
                               size_seconds=window.size, step_seconds=window.step))
    return specs


def window_interval(aggregate: AggregateSpec, t: float) -> tuple[float, float]:
    """[start, end) of event times the window serving ``t`` covers."""
    if aggregate.window == "tumbling":
        k = math.floor(t / aggregate.window_seconds)
        return k * aggregate.window_seconds, (k + 1) * aggregate.window_seconds
    step = aggregate.step_seconds
    assert step is not None
    oldest = math.floor((t - aggregate.window_seconds) / step) + 1
    newest = math.floor(t / step)
    return oldest * step, (newest + 1) * step


def brute_force(
    aggregate: AggregateSpec, history: list[tuple[float, dict[str, object]]], t: float
) -> float | None:
    start, end = window_interval(aggregate, t)
    in_window = [fields for time, fields in history if start <= time < end]
    if aggregate.function == "count":
        return float(len(in_window))
    numbers = [
        float(value) for fields in in_window
        if isinstance(value := fields.get(str(aggregate.field)), int | float)
        and not isinstance(value, bool)
    ]
    if aggregate.function == "sum":
        return float(sum(numbers))
    if not numbers:
        return None
    return {
        "mean": lambda: sum(numbers) / len(numbers),
        "min": lambda: min(numbers),
        "max": lambda: max(numbers),
        "last": lambda: numbers[-1],
    }[aggregate.function]()


def random_fields(rng: random.Random) -> dict[str, object]:
    roll = rng.random()
    if roll < 0.1:
        return {}  # field missing
    if roll < 0.2:
        return {"x": None}
    if roll < 0.25:
        return {"x": True}  # a bool is not a number here
    if roll < 0.3:
        return {"x": "seven"}
    if roll < 0.65:
        return {"x": rng.randint(-50, 50)}
    return {"x": rng.randint(-400, 400) / 4}  # exact in binary: sums stay exact


def random_stream(
    rng: random.Random, length: int, max_gap: float, max_lateness: float
) -> list[tuple[str, float, dict[str, object]]]:
    """(entity, event time, fields) in stream order; times jitter back by up to max_lateness."""
    clock = EPOCH + rng.randint(0, 1000) / 4
    stream = []
    for _ in range(length):
        clock += rng.randint(0, int(max_gap * 4)) / 4
        lateness = rng.randint(0, int(max_lateness * 4)) / 4 if rng.random() < 0.3 else 0.0
        stream.append((rng.choice(["u1", "u2", "u3"]), clock - lateness, random_fields(rng)))
    return stream


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: f"{w.kind}-{w.size:g}-{w.step}")
def test_features_equal_brute_force_over_earlier_events(window: Window, seed: int) -> None:
    rng = random.Random(seed * 1009 + int(window.size))
    aggregates = aggregates_for(window)
    # Events are at most one bucket width late: the documented reach of eviction.
    stream = random_stream(rng, 1500, max_gap=window.size / 6, max_lateness=window.width)
    states: dict[str, EntityState] = {}
    history: dict[str, list[tuple[float, dict[str, object]]]] = {}
    windows_with_data = 0
    for entity, t, fields in stream:
        state = states.setdefault(entity, new_state())
        past = history.setdefault(entity, [])
        expected = {a.name: brute_force(a, past, t) for a in aggregates}
        assert features_before(state, aggregates, t) == expected, (entity, t, len(past))
        windows_with_data += expected["events"] != 0.0
        absorb(state, aggregates, t, fields)
        past.append((t, fields))
    assert windows_with_data > len(stream) / 2  # the windows were not trivially empty


@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: f"{w.kind}-{w.size:g}-{w.step}")
def test_state_survives_a_json_round_trip(window: Window) -> None:
    aggregates = aggregates_for(window)
    rng = random.Random(7)
    state = new_state()
    for _, t, fields in random_stream(rng, 200, window.size / 5, window.width):
        absorb(state, aggregates, t, fields)
    restored = orjson.loads(orjson.dumps(state))
    probe = EPOCH + 10_000_000.0
    last_time = max(float(key) for buckets in state["aggregates"].values() for key in buckets)
    for t in (last_time, last_time + window.width / 2, probe):
        assert features_before(restored, aggregates, t) == features_before(state, aggregates, t)


def test_empty_window_gives_zero_counts_and_unknown_statistics() -> None:
    aggregates = aggregates_for(WINDOWS[0])
    values = features_before(new_state(), aggregates, EPOCH)
    assert values == {"count_x": 0.0, "sum_x": 0.0, "mean_x": None, "min_x": None,
                      "max_x": None, "last_x": None, "events": 0.0}


def test_window_with_only_missing_values_counts_but_has_no_statistics() -> None:
    aggregates = aggregates_for(WINDOWS[0])
    state = new_state()
    absorb(state, aggregates, EPOCH, {"x": None})
    absorb(state, aggregates, EPOCH + 1, {})
    values = features_before(state, aggregates, EPOCH + 2)
    assert values["count_x"] == values["events"] == 2.0
    assert values["sum_x"] == 0.0
    assert values["mean_x"] is values["min_x"] is values["max_x"] is values["last_x"] is None


def test_last_is_the_latest_in_stream_order_not_in_event_time() -> None:
    [last] = [a for a in aggregates_for(WINDOWS[0]) if a.function == "last"]
    state = new_state()
    t = math.floor(EPOCH / 60) * 60
    absorb(state, [last], t + 30, {"x": 1})
    absorb(state, [last], t + 10, {"x": 2})  # arrives later with an earlier time
    assert features_before(state, [last], t + 40) == {"last_x": 2.0}


def test_an_event_never_sees_its_own_value() -> None:
    aggregates = aggregates_for(WINDOWS[2])
    history = new_state()
    absorb(history, aggregates, EPOCH, {"x": 10})
    seen = []
    for own in (-1000, 0, 1000, None):
        state = copy.deepcopy(history)
        seen.append(features_before(state, aggregates, EPOCH + 5))
        absorb(state, aggregates, EPOCH + 5, {"x": own})
    assert all(values == seen[0] for values in seen)
    assert seen[0]["count_x"] == 1.0
    assert seen[0]["max_x"] == 10.0


def test_an_event_shapes_the_features_of_the_next_one() -> None:
    aggregates = aggregates_for(WINDOWS[2])
    state = new_state()
    absorb(state, aggregates, EPOCH, {"x": 10})
    absorb(state, aggregates, EPOCH + 5, {"x": 1000})
    assert features_before(state, aggregates, EPOCH + 6)["max_x"] == 1000.0


@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: f"{w.kind}-{w.size:g}-{w.step}")
def test_state_stays_bounded_on_a_long_stream(window: Window) -> None:
    aggregates = aggregates_for(window)
    rng = random.Random(11)
    state = new_state()
    buckets_needed = math.ceil(window.size / window.width)
    largest = 0
    stream = random_stream(rng, 20_000, max_gap=window.width / 2, max_lateness=window.width)
    for _, t, fields in stream:
        absorb(state, aggregates, t, fields)
        largest = max(largest, *(len(b) for b in state["aggregates"].values()))
    span = stream[-1][1] - stream[0][1]
    assert span > 1000 * window.size  # the stream covered far more buckets than are kept
    assert largest <= buckets_needed + 2
