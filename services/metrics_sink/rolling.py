"""Rolling windows over the last observations: pure logic."""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable


class RollingMean:
    """The mean of the last ``size`` observations, in O(1) per update (amortised).

    The running total is summed afresh once every ``size`` updates, so rounding errors of the
    running additions and subtractions never pile up, however long the stream.
    """

    def __init__(self, size: int) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._total = 0.0
        self._until_resum = size

    def update(self, value: float) -> float:
        """Add ``value``; return the new mean."""
        if len(self._values) == self._values.maxlen:
            self._total -= self._values[0]
        self._values.append(value)
        self._total += value
        self._until_resum -= 1
        if self._until_resum == 0:
            self._total = math.fsum(self._values)
            self._until_resum = len(self._values)
        return self.mean

    @property
    def mean(self) -> float:
        """The current mean (0 when empty)."""
        return self._total / len(self._values) if self._values else 0.0

    def __len__(self) -> int:
        return len(self._values)


class RollingMajority:
    """The share of the most frequent label among the last ``size`` labels: the accuracy a
    model that always answers that label would have had on the same outcomes."""

    def __init__(self, size: int) -> None:
        self._labels: deque[object] = deque(maxlen=size)
        self._counts: Counter[object] = Counter()

    def update(self, label: object) -> None:
        """Add ``label`` (hashable: a class), dropping the oldest beyond ``size``."""
        if len(self._labels) == self._labels.maxlen:
            oldest = self._labels[0]
            self._counts[oldest] -= 1
            if not self._counts[oldest]:
                del self._counts[oldest]
        self._labels.append(label)
        self._counts[label] += 1

    @property
    def share(self) -> float:
        """The most frequent label's share (0 when empty)."""
        return max(self._counts.values()) / len(self._labels) if self._labels else 0.0

    def __len__(self) -> int:
        return len(self._labels)


def roc_auc(pairs: Iterable[tuple[float, bool]]) -> float | None:
    """ROC AUC of ``(score, is_positive)`` pairs, in O(n log n).

    The share of (positive, negative) pairs in which the positive has the higher score, a tie
    counting one half (the Mann-Whitney statistic). None when either class is absent.

    >>> roc_auc([(0.9, True), (0.4, False), (0.4, True), (0.1, False)])
    0.875
    >>> roc_auc([(0.3, True), (0.6, True)]) is None
    True
    """
    ordered = sorted(pairs, key=lambda pair: pair[0])
    ordered_pairs = 0.0
    negatives_below = 0
    start = 0
    while start < len(ordered):
        end = start
        while end < len(ordered) and ordered[end][0] == ordered[start][0]:
            end += 1
        positives_here = sum(1 for _, positive in ordered[start:end] if positive)
        negatives_here = (end - start) - positives_here
        ordered_pairs += positives_here * (negatives_below + 0.5 * negatives_here)
        negatives_below += negatives_here
        start = end
    positives = len(ordered) - negatives_below
    if positives == 0 or negatives_below == 0:
        return None
    return ordered_pairs / (positives * negatives_below)


class RollingRocAuc:
    """ROC AUC of the last ``size`` ``(score, is_positive)`` observations, computed lazily.

    :meth:`update` is O(1); :meth:`refresh` recomputes over the window in O(size log size), so a
    caller decides how often to pay for it (:attr:`changes` counts updates since the last one).
    :attr:`value` is the result of the last refresh: None before any, and while the window held
    a single class.
    """

    def __init__(self, size: int) -> None:
        self._pairs: deque[tuple[float, bool]] = deque(maxlen=size)
        self.changes = 0
        """Updates since the last :meth:`refresh`."""
        self.value: float | None = None

    def update(self, score: float, positive: bool) -> None:
        """Add one observation (the window drops its oldest when full)."""
        self._pairs.append((score, positive))
        self.changes += 1

    def refresh(self) -> float | None:
        """Recompute :attr:`value` over the window and return it."""
        self.value = roc_auc(self._pairs)
        self.changes = 0
        return self.value

    def __len__(self) -> int:
        return len(self._pairs)
