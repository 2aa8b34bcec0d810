"""The champion's recent scores and positive answers: pure logic, read when scraped.

For an anomaly model (``models.task = "anomaly"``) the score is its anomaly score and a positive
answer is a flag; for a binary classifier, the positive-class probability and a predicted
positive. Both are kept for the last ``size`` predictions; quantiles are computed when asked
(at a scrape), not per prediction.
"""

from __future__ import annotations

import math
from collections import deque

from schemas.predictions import Prediction

QUANTILES = (0.5, 0.9, 0.99)


class ScoreWindow:
    """The last ``size`` scores, and the last ``size`` yes/no answers, of one model."""

    def __init__(self, size: int) -> None:
        self._scores: deque[float] = deque(maxlen=size)
        self._answers: deque[bool] = deque(maxlen=size)
        self._positives = 0

    def observe(self, prediction: Prediction) -> None:
        """Add a prediction's score (if any) and its answer (if a yes/no one)."""
        if prediction.score is not None:
            self._scores.append(prediction.score)
        if isinstance(prediction.prediction, bool):
            if len(self._answers) == self._answers.maxlen:
                self._positives -= self._answers[0]
            self._answers.append(prediction.prediction)
            self._positives += prediction.prediction

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the scores kept (nearest rank); NaN when none."""
        if not self._scores:
            return math.nan
        ordered = sorted(self._scores)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    def positive_share(self) -> float:
        """Share of the answers kept that were yes (flagged); NaN when none."""
        return self._positives / len(self._answers) if self._answers else math.nan
