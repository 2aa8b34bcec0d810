"""Aggregates that are not sums over buckets: pure logic, JSON-friendly state.

* ``distinct_count``: a K-minimum-values sketch per bucket (the K smallest 64-bit hashes of the
  values seen). Buckets merge by union; below K distinct values the count is exact, above it the
  estimate ``(K - 1) / h_K`` has a relative standard error of about ``1 / sqrt(K - 2)`` (13%).
* ``time_since_last``: seconds from the entity's previous event to this one (``None`` at first).
* ``decayed_count``: ``sum(2 ** -((t - t_i) / half_life))`` over the entity's earlier events.
"""

from __future__ import annotations

import hashlib
import heapq
from typing import Any

from schemas.spec import AggregateSpec

SKETCH_SIZE = 64
_HASH_SPACE = float(2**64)


def value_hash(value: object) -> int:
    """A stable 64-bit hash of a field value (the same across processes and restarts)."""
    digest = hashlib.blake2b(repr(value).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def absorb_distinct(buckets: dict[str, Any], key: str, value: object) -> None:
    """Add ``value`` to the sketch of bucket ``key``; missing values are not counted."""
    if value is None:
        return
    sketch: list[int] = buckets.setdefault(key, [])
    hashed = value_hash(value)
    if hashed in sketch:
        return
    if len(sketch) < SKETCH_SIZE:
        sketch.append(hashed)
        sketch.sort()
    elif hashed < sketch[-1]:
        sketch[-1] = hashed
        sketch.sort()


def distinct_estimate(
    state: dict[str, Any], aggregate: AggregateSpec, first: float, last: float
) -> float:
    """Distinct values in the buckets from ``first`` to ``last`` (bucket starts, inclusive)."""
    buckets: dict[str, list[int]] = state["aggregates"].get(aggregate.name, {})
    union: set[int] = set()
    for start, sketch in buckets.items():
        if first <= float(start) <= last:
            union.update(sketch)
    if len(union) < SKETCH_SIZE:
        return float(len(union))
    kth = heapq.nsmallest(SKETCH_SIZE, union)[-1]
    return (SKETCH_SIZE - 1) / ((kth + 1) / _HASH_SPACE)


def unwindowed_value(
    state: dict[str, Any], aggregate: AggregateSpec, event_time: float
) -> float | None:
    """``time_since_last`` or ``decayed_count`` as of ``event_time``, before the event."""
    stored: list[float] | None = state["aggregates"].get(aggregate.name)
    if aggregate.function == "time_since_last":
        return None if stored is None else max(0.0, event_time - stored[1])
    if stored is None:
        return 0.0
    value, at = stored
    return _decay(value, event_time - at, aggregate)


def absorb_unwindowed(state: dict[str, Any], aggregate: AggregateSpec, event_time: float) -> None:
    """Add one event at ``event_time``."""
    stored: list[float] | None = state["aggregates"].get(aggregate.name)
    if aggregate.function == "time_since_last":
        newest = event_time if stored is None else max(stored[1], event_time)
        state["aggregates"][aggregate.name] = [0.0, newest]
        return
    if stored is None:
        state["aggregates"][aggregate.name] = [1.0, event_time]
        return
    value, at = stored
    if event_time >= at:
        state["aggregates"][aggregate.name] = [
            _decay(value, event_time - at, aggregate) + 1,
            event_time,
        ]
    else:  # a late event: decay its contribution to the stored time instead
        state["aggregates"][aggregate.name] = [value + _decay(1.0, at - event_time, aggregate), at]


def _decay(value: float, elapsed: float, aggregate: AggregateSpec) -> float:
    half_life = aggregate.half_life_seconds or 1.0
    return float(value * 2.0 ** (-max(0.0, elapsed) / half_life))
