"""Rolling quality windows: pure logic."""

from __future__ import annotations

from collections import deque


class RollingMean:
    """The mean of the last ``size`` observations, in O(1) per update."""

    def __init__(self, size: int) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._total = 0.0

    def update(self, value: float) -> float:
        """Add ``value``; return the new mean."""
        if len(self._values) == self._values.maxlen:
            self._total -= self._values[0]
        self._values.append(value)
        self._total += value
        return self.mean

    @property
    def mean(self) -> float:
        """The current mean (0 when empty)."""
        return self._total / len(self._values) if self._values else 0.0

    def __len__(self) -> int:
        return len(self._values)
