"""Accuracy before the labels come: confidence-based estimation, kept calibrated online.

A probabilistic classifier says how sure it is of each answer (the probability of the class it
predicted: its *confidence*). Among the predictions whose labels have come, the sink counts how
often answers of each confidence were right (:class:`ConfidenceCalibration`: bins of
confidence, each a rolling window of the latest outcomes). The expected accuracy of a prediction
still waiting for its label is its bin's rate of right answers; the estimated accuracy of all
those waiting is the mean of theirs (:class:`AccuracyEstimate`). This is the confidence-based
performance estimation that NannyML runs in batch, here per message and bounded in memory.

What it can see: a shift of the inputs (covariate shift) or of the label mix that moves the
predictions into regions where the model is less (or more) sure, and where the calibration
says how right such answers were. What it cannot see: a change of the concept. A model that is
confidently wrong about a world that changed still says it is sure, and the calibration learns
otherwise only from labels, as the realised accuracy does.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque

from schemas.predictions import Outcome, Prediction

BINS = 20
"""Bins of confidence over [0, 1]; a binary classifier's answers use the upper half."""


def confidence_of(prediction: Prediction) -> float | None:
    """The probability the model gave to the class it predicted; None when it gave none (a
    regressor, or a model that has learned nothing yet)."""
    if prediction.probabilities:
        return max(prediction.probabilities.values())
    if prediction.score is not None and isinstance(prediction.prediction, bool):
        return max(prediction.score, 1.0 - prediction.score)
    return None


def outcome_confidence(outcome: Outcome) -> float | None:
    """A binary outcome's confidence, from its positive-class score (what is known of a
    prediction the sink did not see)."""
    if outcome.score is None or not isinstance(outcome.prediction, bool):
        return None
    return max(outcome.score, 1.0 - outcome.score)


class ConfidenceCalibration:
    """How often answers of each confidence were right, over the latest ``per_bin`` outcomes of
    each bin. A bin with few outcomes leans on the confidence itself (``prior`` pseudo-outcomes
    at the bin's middle): a model is taken at its word until its labels say otherwise."""

    def __init__(self, bins: int = BINS, per_bin: int = 500, prior: float = 10.0) -> None:
        self.bins = bins
        self._per_bin = per_bin
        self._prior = prior
        self._windows: list[deque[bool]] = [deque() for _ in range(bins)]
        self._right = [0] * bins

    def bin_of(self, confidence: float) -> int:
        """The bin of ``confidence`` (clipped to [0, 1])."""
        return min(self.bins - 1, max(0, int(confidence * self.bins)))

    def observe(self, confidence: float, correct: bool) -> None:
        """One outcome: an answer given with ``confidence`` was ``correct`` or not."""
        index = self.bin_of(confidence)
        window = self._windows[index]
        window.append(correct)
        self._right[index] += correct
        if len(window) > self._per_bin:
            self._right[index] -= window.popleft()

    def expected(self, index: int) -> float:
        """The share of right answers expected of a prediction in bin ``index``."""
        middle = (index + 0.5) / self.bins
        return ((self._right[index] + self._prior * middle)
                / (len(self._windows[index]) + self._prior))

    def outcomes(self, index: int) -> int:
        """Outcomes the bin's rate rests on (at most ``per_bin``)."""
        return len(self._windows[index])


class AccuracyEstimate:
    """One model's predictions waiting for their labels, and the accuracy expected of them.

    :meth:`predicted` files a prediction under its confidence bin; :meth:`resolved` takes it out
    when its outcome comes and teaches the calibration what its confidence was worth. At most
    ``capacity`` predictions wait (the oldest is dropped first, counted in :attr:`dropped`);
    :meth:`estimate` costs one pass over the bins, whatever the number waiting.
    """

    def __init__(self, capacity: int = 100_000, calibration: ConfidenceCalibration | None = None
                 ) -> None:
        self.calibration = calibration or ConfidenceCalibration()
        self._capacity = capacity
        self._waiting: OrderedDict[str, int] = OrderedDict()  # event id -> confidence bin
        self._per_bin = [0] * self.calibration.bins
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def predicted(self, event_id: str, confidence: float) -> float:
        """File a prediction made with ``confidence``; return the accuracy expected of it now."""
        index = self.calibration.bin_of(confidence)
        previous = self._waiting.pop(event_id, None)
        if previous is not None:  # the same prediction read twice: counted once
            self._per_bin[previous] -= 1
        self._waiting[event_id] = index
        self._per_bin[index] += 1
        if len(self._waiting) > self._capacity:
            _, oldest = self._waiting.popitem(last=False)
            self._per_bin[oldest] -= 1
            self.dropped += 1
        return self.calibration.expected(index)

    def resolved(self, event_id: str, correct: bool, confidence: float | None) -> None:
        """The outcome of ``event_id`` came: it stops waiting, and the calibration learns from
        it (with the confidence filed, or else ``confidence``; neither: nothing to learn)."""
        index = self._waiting.pop(event_id, None)
        if index is not None:
            self._per_bin[index] -= 1
            self.calibration.observe((index + 0.5) / self.calibration.bins, correct)
        elif confidence is not None:
            self.calibration.observe(confidence, correct)

    def estimate(self) -> float:
        """The expected accuracy of the predictions waiting for their labels; NaN when none
        waits."""
        waiting = sum(self._per_bin)
        if waiting == 0:
            return math.nan
        return sum(count * self.calibration.expected(index)
                   for index, count in enumerate(self._per_bin) if count) / waiting
