"""Pure arithmetic of the benchmark: percentiles, trends, and whether lag stayed bounded.

>>> percentile([3.0, 1.0, 2.0, 4.0], 0.5)
3.0
>>> summarize([1.0, 2.0, 3.0]).p50
2.0
>>> verdict = judge_lag([(0.0, 0.0), (1.0, 10.0), (2.0, 12.0), (3.0, 9.0)], rate=1000.0)
>>> verdict.bounded
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

Series = Sequence[tuple[float, float]]
"""(seconds since the start of a window, value) samples, in time order."""


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the value at rank ``int(q * n)`` of the sorted values (the
    largest for q = 1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class Summary:
    """Percentiles of a set of latencies (milliseconds), and how many there were."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(values: Sequence[float]) -> Summary:
    """p50, p95, p99 and max of ``values`` (NaN when empty)."""
    return Summary(len(values), percentile(values, 0.5), percentile(values, 0.95),
                   percentile(values, 0.99), max(values, default=float("nan")))


def slope(series: Series) -> float:
    """Least-squares growth per second of ``series``; 0 for fewer than two distinct times."""
    if len(series) < 2:
        return 0.0
    n = len(series)
    mean_t = sum(t for t, _ in series) / n
    mean_v = sum(v for _, v in series) / n
    spread = sum((t - mean_t) ** 2 for t, _ in series)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in series) / spread


@dataclass(frozen=True)
class LagVerdict:
    """Whether a lag series stayed bounded at an offered rate, with the figures that decided."""

    bounded: bool
    end: float
    """Mean of the last three samples (messages)."""
    growth_per_second: float
    """Slope over the second half of the window (messages/s)."""
    end_limit: float
    growth_limit: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge_lag(series: Series, rate: float, end_seconds: float = 2.0,
              growth_share: float = 0.03, floor: float = 200.0,
              noise_seconds: float = 1.0) -> LagVerdict:
    """Bounded when the lag ends at most ``max(floor, end_seconds * rate)`` messages behind and
    did not grow over the second half of the window: growth counts when its slope exceeds
    ``growth_share * rate`` per second *and* it adds up, over that half, to more than the
    noise, ``max(floor / 4, noise_seconds * rate)`` messages.

    A pipeline that keeps up holds a lag of a few hundred milliseconds of events (batches,
    checkpoint pauses, transactions every second, gauges refreshed every few seconds: hence a
    second of noise); one that does not falls behind by the difference between offered and
    served rates, which adds up over the window. An empty series is not bounded (nothing was
    measured).
    """
    end_limit = max(floor, end_seconds * rate)
    growth_limit = growth_share * rate
    if not series:
        return LagVerdict(False, float("nan"), float("nan"), end_limit, growth_limit)
    tail = [value for _, value in series[-3:]]
    end = sum(tail) / len(tail)
    half_span = (series[-1][0] - series[0][0]) / 2
    growth = slope([(t, v) for t, v in series if t >= series[0][0] + half_span])
    grew = growth > growth_limit and growth * half_span > max(floor / 4, noise_seconds * rate)
    bounded = end <= end_limit and not grew
    return LagVerdict(bounded, end, growth, end_limit, growth_limit)


def next_rate(history: Sequence[tuple[float, bool]], ladder: Sequence[float],
              refinements: int, tolerance: float = 0.1) -> float | None:
    """The next offered rate of the search for the highest sustained one, or None when done.

    ``history`` holds (rate, passed) of the steps so far, in order. Climb ``ladder`` until a
    rate fails (or the ladder ends); when the first rung fails, halve it (down to the lowest
    rung / 8). Once a pass lies below a fail, bisect (geometric mean) between the highest pass
    and the lowest fail above it, ``refinements`` times at most and while they are more than
    ``tolerance`` apart.

    >>> next_rate([], [500, 1000, 2000], 2)
    500
    >>> next_rate([(500, True), (1000, True), (2000, False)], [500, 1000, 2000], 2)
    1414
    >>> next_rate([(500, False)], [500, 1000], 2)
    250
    >>> next_rate([(500, False), (250, True), (354, True)], [500, 1000], 1) is None
    True
    """
    passed = [rate for rate, ok in history if ok]
    best = max(passed, default=None)
    above = [rate for rate, ok in history if not ok and (best is None or rate > best)]
    if not above:
        return next((rung for rung in ladder if best is None or rung > best), None)
    low_fail = min(above)
    if best is None:
        candidate = low_fail / 2
        return round(candidate) if candidate >= min(ladder) / 8 else None
    bracketed = next(index for index in range(len(history))
                     if any(ok for _, ok in history[:index + 1])
                     and any(not ok for _, ok in history[:index + 1]))
    if len(history) - bracketed - 1 >= refinements or low_fail / best - 1 <= tolerance:
        return None
    return round(math.sqrt(best * low_fail))


def drain_rate(times: Sequence[float], low: float = 0.1, high: float = 0.9) -> float:
    """Events/s over the middle of a drained stream, from the time of each output (seconds,
    any order): with the times sorted and ``n`` of them, from the output that completes
    ``low`` of the stream (number ``ceil(low * n)``) to the one that completes ``high`` of it
    (number ``ceil(high * n)``), the outputs between over the time between. Start-up (group
    join, models built) and the last stragglers stay out. NaN when fewer than two outputs
    are in that span or no time passed.

    >>> drain_rate([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 100.0])
    1.0
    >>> drain_rate([5.0])
    nan
    """
    ordered = sorted(times)
    n = len(ordered)
    first = max(0, math.ceil(low * n) - 1)
    last = min(n - 1, math.ceil(high * n) - 1)
    if last <= first or ordered[last] <= ordered[first]:
        return float("nan")
    return (last - first) / (ordered[last] - ordered[first])


def accuracy(predictions: Mapping[str, Any], labels: Mapping[str, Any]) -> float | None:
    """Share of the predictions equal to their event's label, over the events that have both a
    label and a prediction other than None (a model that has learned nothing may say None);
    None when there are none.

    >>> accuracy({"a": True, "b": False, "c": None, "d": True}, {"a": True, "b": True, "c": True})
    0.5
    """
    judged = [(value, labels[key]) for key, value in predictions.items()
              if value is not None and key in labels]
    if not judged:
        return None
    return sum(1 for value, label in judged if value == label) / len(judged)


def ratio(part: float | None, whole: float | None) -> float | None:
    """``part / whole``, or None when either is missing, NaN or the whole is not positive.

    >>> ratio(2516.0, 73886.0) is not None, ratio(None, 1.0), ratio(1.0, 0.0)
    (True, None, None)
    """
    if part is None or whole is None or part != part or whole != whole or whole <= 0:
        return None
    return part / whole
