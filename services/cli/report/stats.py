"""Small statistics for the report: percentiles, histograms and readable bucket widths.

>>> percentile([1.0, 2.0, 3.0, 4.0], 0.5)
2.5
>>> nice_bucket_seconds(600.0, target_buckets=60)
10.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

NICE_SECONDS: tuple[float, ...] = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 91 * 86400,
)
"""Bucket widths a reader can take in at a glance: 1 s up to a quarter (replayed data may span
years of event time)."""


@dataclass(frozen=True)
class Percentiles:
    """The median, 95th and 99th percentile of ``count`` values (``None`` each when empty)."""

    count: int
    p50: float | None
    p95: float | None
    p99: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        """Percentiles of ``values`` (any order), interpolated as :func:`percentile` does."""
        ordered = sorted(values)
        if not ordered:
            return cls(0, None, None, None)
        return cls(len(ordered), percentile(ordered, 0.50, presorted=True),
                   percentile(ordered, 0.95, presorted=True),
                   percentile(ordered, 0.99, presorted=True))


@dataclass(frozen=True)
class Histogram:
    """Counts of values in ``len(counts)`` equal bins; ``edges`` has one more entry than that.

    A bin holds ``edges[i] <= value < edges[i + 1]``; the last bin also holds its upper edge.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]


def percentile(values: Sequence[float], q: float, presorted: bool = False) -> float:
    """The ``q``-quantile (0 <= q <= 1) of non-empty ``values``, linearly interpolated.

    The same definition as numpy's default: rank ``q * (n - 1)`` between the two nearest values.
    Raises ``ValueError`` on empty ``values`` or ``q`` outside [0, 1].
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    ordered = values if presorted else sorted(values)
    rank = q * (len(ordered) - 1)
    below = math.floor(rank)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (rank - below)


def histogram(values: Sequence[float], bins: int, low: float = 0.0) -> Histogram:
    """Count ``values`` in ``bins`` equal bins from ``low`` to their maximum.

    Values below ``low`` go to the first bin. With no values, or all equal to ``low``, the bins
    span ``low`` to ``low + 1``.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    high = max(values, default=low)
    if high <= low:
        high = low + 1.0
    width = (high - low) / bins
    edges = (*(low + width * index for index in range(bins)), high)
    counts = [0] * bins
    for value in values:
        index = min(max(int((value - low) / width), 0), bins - 1)
        counts[index] += 1
    return Histogram(edges, tuple(counts))


def nice_bucket_seconds(span_seconds: float, target_buckets: int = 60) -> float:
    """The smallest width in :data:`NICE_SECONDS` that cuts ``span_seconds`` into at most
    ``target_buckets`` buckets (the largest width when none does)."""
    for width in NICE_SECONDS:
        if span_seconds / width <= target_buckets:
            return float(width)
    return float(NICE_SECONDS[-1])
