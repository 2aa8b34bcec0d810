"""Binning and the Population Stability Index (PSI): pure functions, no state.

PSI compares a recent distribution ``q`` with a reference distribution ``p`` over the same bins::

    PSI = sum_i (q_i - p_i) * ln(q_i / p_i)

Proportions below :data:`EPSILON` (empty bins) count as :data:`EPSILON`, so a bin empty on one
side adds a large but finite term. The usual reading: below 0.1 no shift, 0.1-0.2 a moderate
shift, above 0.2 a significant one.

Numeric values are binned by edges fixed once from the reference window (its quantiles, or equal
widths on a known range such as ``[0, 1]`` for probabilities); a value goes to the first bin whose
upper edge it does not exceed, so every bin is ``(lower, upper]`` and values beyond the reference's
range fall in the first or last bin.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

EPSILON = 1e-4
"""The smallest proportion a bin counts for (instead of zero)."""

def psi(reference: Sequence[float], recent: Sequence[float], epsilon: float = EPSILON) -> float:
    """PSI of two proportion vectors over the same bins (each summing to 1, or to 0 if empty)."""
    if len(reference) != len(recent):
        raise ValueError(f"{len(reference)} reference bins but {len(recent)} recent bins")
    total = 0.0
    for p, q in zip(reference, recent, strict=True):
        p, q = max(p, epsilon), max(q, epsilon)
        total += (q - p) * math.log(q / p)
    return total


def psi_of_counts(reference: Mapping[K, int], recent: Mapping[K, int], keys: Iterable[K]) -> float:
    """PSI of two histograms restricted to ``keys``, each normalised over those keys."""
    keys = list(keys)
    reference_total = sum(reference.get(key, 0) for key in keys)
    recent_total = sum(recent.get(key, 0) for key in keys)
    if reference_total == 0 or recent_total == 0:
        raise ValueError("PSI of an empty histogram")
    return psi([reference.get(key, 0) / reference_total for key in keys],
               [recent.get(key, 0) / recent_total for key in keys])


def quantile_edges(values: Sequence[float], bins: int) -> tuple[float, ...]:
    """The inner edges splitting ``values`` into ``bins`` bins of (nearly) equal counts.

    Edges are values of the sample (nearest rank), without repeats: a feature with few distinct
    values (an hour, a position) gets one bin per value rather than empty duplicates. An edge may
    be the sample's maximum, leaving the last bin empty in the reference: recent values above the
    reference's range then show up as a shift.
    """
    if not values:
        raise ValueError("quantile edges of an empty sample")
    ordered = sorted(values)
    # The k-th edge is the smallest value with at least k/bins of the sample at or below it.
    return tuple(sorted({ordered[max(0, -(-len(ordered) * k // bins) - 1)]
                         for k in range(1, bins)}))


def uniform_edges(low: float, high: float, bins: int) -> tuple[float, ...]:
    """The inner edges of ``bins`` equal-width bins on ``[low, high]``."""
    return tuple(low + (high - low) * k / bins for k in range(1, bins))


def bin_index(edges: Sequence[float], value: float) -> int:
    """The bin of ``value``: ``0`` up to ``edges[0]``, ..., ``len(edges)`` above the last edge."""
    return bisect_left(edges, value)


def psi_noise_threshold(bins: int, n_reference: int, n_recent: int, alpha: float) -> float:
    """The PSI that samples this large, over ``bins`` bins, exceed by chance alone with
    probability at most ``alpha``: with no shift, ``PSI * n*m/(n+m)`` is about chi-square with
    ``bins - 1`` degrees of freedom, and Laurent and Massart's bound
    ``P(X >= k + 2 sqrt(k x) + 2 x) <= exp(-x)`` gives the level. Infinite when a side is empty
    or there is a single bin (no verdict is possible).

    ``schemas/spec_drift.py`` (``ShiftSpec``) applies the same bound to full windows at
    ``alpha = 1e-6`` to refuse windows too small for the spec's ``psi_threshold``.
    """
    if bins < 2 or n_reference < 1 or n_recent < 1:
        return math.inf
    k, x = bins - 1, math.log(1 / alpha)
    return (k + 2 * math.sqrt(k * x) + 2 * x) * (1 / n_reference + 1 / n_recent)
