"""Point-in-time windowed aggregates per entity: pure logic, no Kafka.

State of one entity is a JSON-friendly dict:
``{"seq": n, "aggregates": {name: {bucket start: partial}}}``.
:func:`features_before` reads the aggregates as they stood *before* an event; :func:`absorb`
adds the event afterwards. Calling them in that order per event is what makes a feature vector
point-in-time: it never includes its own event or anything after it.

Windows are in event time. A tumbling window of size S holds the bucket ``[kS, kS + S)`` that
contains the event's time. A hopping window of size S and step P holds the buckets of width P
from the oldest window still containing the event time: ``[t - S + P, t]`` rounded down to P.
``last`` is the value of the entity's most recent event (in stream order) inside the window.
"""

from __future__ import annotations

import math
from typing import Any, TypeAlias

from schemas.spec import WINDOWED_FUNCTIONS, AggregateSpec
from services.features.sketches import (
    absorb_distinct,
    absorb_unwindowed,
    distinct_estimate,
    unwindowed_value,
)

Partial: TypeAlias = list[float]
"""[count, numeric count, sum, min, max, last value, stream sequence of the last value]."""

EntityState: TypeAlias = dict[str, Any]

_COUNT, _NUMERIC, _SUM, _MIN, _MAX, _LAST, _LAST_SEQ = range(7)


def new_state() -> EntityState:
    """The state of an entity that has seen nothing."""
    return {"seq": 0, "aggregates": {}}


def bucket_width(aggregate: AggregateSpec) -> float:
    """The bucket width: the window size when tumbling, the step when hopping."""
    if aggregate.window == "hopping" and aggregate.step_seconds is not None:
        return aggregate.step_seconds
    return aggregate.window_seconds


def window_buckets(aggregate: AggregateSpec, event_time: float) -> tuple[float, float]:
    """The first and last bucket start (inclusive) of the window that serves ``event_time``."""
    width = bucket_width(aggregate)
    last = math.floor(event_time / width) * width
    if aggregate.window == "tumbling":
        return last, last
    first = math.floor((event_time - aggregate.window_seconds) / width + 1) * width
    return first, last


def features_before(
    state: EntityState, aggregates: list[AggregateSpec], event_time: float
) -> dict[str, float | None]:
    """Each aggregate's value over the window serving ``event_time``, from ``state`` alone.

    Counts and sums of an empty window are 0; mean, min, max and last are ``None``.
    """
    values: dict[str, float | None] = {}
    for aggregate in aggregates:
        if aggregate.function not in WINDOWED_FUNCTIONS:
            values[aggregate.name] = unwindowed_value(state, aggregate, event_time)
            continue
        if aggregate.function == "distinct_count":
            values[aggregate.name] = distinct_estimate(
                state, aggregate, *window_buckets(aggregate, event_time)
            )
            continue
        first, last = window_buckets(aggregate, event_time)
        partials = [
            partial
            for start, partial in state["aggregates"].get(aggregate.name, {}).items()
            if first <= float(start) <= last
        ]
        values[aggregate.name] = _combine(aggregate, partials)
    return values


def absorb(
    state: EntityState,
    aggregates: list[AggregateSpec],
    event_time: float,
    fields: dict[str, object],
) -> EntityState:
    """Add one event to ``state`` (mutated and returned); drop buckets no window needs any more.

    An event whose aggregated field is missing or not numeric is counted but not summed.
    """
    state["seq"] += 1
    for aggregate in aggregates:
        if aggregate.function not in WINDOWED_FUNCTIONS:
            absorb_unwindowed(state, aggregate, event_time)
            continue
        buckets = state["aggregates"].setdefault(aggregate.name, {})
        width = bucket_width(aggregate)
        key = _bucket_key(math.floor(event_time / width) * width)
        if aggregate.function == "distinct_count":
            absorb_distinct(buckets, key, fields.get(aggregate.field or ""))
            _evict(buckets, aggregate, event_time)
            continue
        partial = buckets.get(key)
        if partial is None:
            partial = [0.0] * 7
            buckets[key] = partial
        partial[_COUNT] += 1
        value = fields.get(aggregate.field) if aggregate.field else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
            first_value = partial[_NUMERIC] == 0
            partial[_NUMERIC] += 1
            partial[_SUM] += number
            partial[_MIN] = number if first_value else min(partial[_MIN], number)
            partial[_MAX] = number if first_value else max(partial[_MAX], number)
            partial[_LAST] = number
            partial[_LAST_SEQ] = state["seq"]
        _evict(buckets, aggregate, event_time)
    return state


def _evict(buckets: dict[str, Partial], aggregate: AggregateSpec, newest_time: float) -> None:
    first, _ = window_buckets(aggregate, newest_time)
    horizon = first - bucket_width(aggregate)
    for key in [key for key in buckets if float(key) < horizon]:
        del buckets[key]


def _bucket_key(start: float) -> str:
    return repr(float(start))


def _combine(aggregate: AggregateSpec, partials: list[Partial]) -> float | None:
    function = aggregate.function
    if function == "count":
        return float(sum(partial[_COUNT] for partial in partials))
    numeric = [partial for partial in partials if partial[_NUMERIC] > 0]
    if function == "sum":
        return float(sum(partial[_SUM] for partial in numeric))
    if not numeric:
        return None
    if function == "mean":
        return sum(p[_SUM] for p in numeric) / sum(p[_NUMERIC] for p in numeric)
    if function == "min":
        return min(partial[_MIN] for partial in numeric)
    if function == "max":
        return max(partial[_MAX] for partial in numeric)
    return max(numeric, key=lambda partial: partial[_LAST_SEQ])[_LAST]
