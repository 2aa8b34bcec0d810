"""Rolling quality of one model over its last outcomes: pure logic, no Kafka, no Prometheus.

Every window holds the model's last ``size`` outcomes that the measure applies to:

- label coverage: every outcome; 1 when a real label came, 0 when the feedback window closed;
- accuracy: outcomes with a verdict (``correct`` set: classification, something predicted),
  next to the majority baseline on the same outcomes (the share of their most frequent label:
  what always answering that label would score);
- log loss: outcomes with a ``label_probability`` (classification, something predicted),
  ``-ln p`` with ``p`` clipped to ``[1e-15, 1]``;
- ROC AUC: binary outcomes (a bool label) with a score, the positive-class probability;
- precision and recall: binary outcomes with a yes/no prediction (an anomaly model's flag);
  precision over the last ``size`` predicted positive, recall over the last ``size`` labelled
  positive;
- MAE and RMSE: regression outcomes (numeric label and prediction, no verdict), on
  ``label - prediction``.

Timed-out outcomes count wherever they apply: their label is what the spec's timeout policy says
happened, and the model learned it.
"""

from __future__ import annotations

import math

from schemas.predictions import Outcome
from services.metrics_sink.rolling import RollingMajority, RollingMean, RollingRocAuc

PROBABILITY_FLOOR = 1e-15
"""Probabilities are clipped to at least this before their log is taken (log loss <= 34.5)."""


def log_loss(label_probability: float) -> float:
    """``-ln p`` of the probability given to what happened, ``p`` clipped to ``[1e-15, 1]``.

    >>> round(log_loss(0.5), 4), log_loss(1.0), round(log_loss(0.0), 2)
    (0.6931, 0.0, 34.54)
    """
    return abs(math.log(min(1.0, max(PROBABILITY_FLOOR, label_probability))))


def regression_error(outcome: Outcome) -> float | None:
    """``label - prediction`` for a regression outcome; None for anything else."""
    label, predicted = outcome.label, outcome.prediction
    numeric = (int, float)
    if (outcome.correct is not None or isinstance(label, bool) or isinstance(predicted, bool)
            or not isinstance(label, numeric) or not isinstance(predicted, numeric)):
        return None
    return float(label) - float(predicted)


class ModelQuality:
    """One model's rolling windows of ``size`` outcomes each (see the module's docstring)."""

    def __init__(self, size: int) -> None:
        self.label_coverage = RollingMean(size)
        self.accuracy = RollingMean(size)
        self.majority = RollingMajority(size)
        self.log_loss = RollingMean(size)
        self.roc_auc = RollingRocAuc(size)
        self.absolute_error = RollingMean(size)
        self.squared_error = RollingMean(size)
        self.precision = RollingMean(size)
        self.recall = RollingMean(size)

    def observe(self, outcome: Outcome) -> None:
        """Add ``outcome`` to every window it applies to (the ROC AUC waits for a refresh)."""
        self.label_coverage.update(0.0 if outcome.timed_out else 1.0)
        if outcome.correct is not None:
            self.accuracy.update(1.0 if outcome.correct else 0.0)
            self.majority.update(outcome.label)
        if outcome.label_probability is not None:
            self.log_loss.update(log_loss(outcome.label_probability))
        if isinstance(outcome.label, bool) and outcome.score is not None:
            self.roc_auc.update(outcome.score, outcome.label)
        if isinstance(outcome.label, bool) and isinstance(outcome.prediction, bool):
            if outcome.prediction:
                self.precision.update(1.0 if outcome.label else 0.0)
            if outcome.label:
                self.recall.update(1.0 if outcome.prediction else 0.0)
        error = regression_error(outcome)
        if error is not None:
            self.absolute_error.update(abs(error))
            self.squared_error.update(error * error)

    @property
    def mae(self) -> float:
        """Mean absolute error over the window (0 when empty)."""
        return self.absolute_error.mean

    @property
    def rmse(self) -> float:
        """Root mean squared error over the window (0 when empty)."""
        return math.sqrt(max(0.0, self.squared_error.mean))

    def summary(self) -> dict[str, float]:
        """The measures that have data, rounded for humans; ROC AUC as of its last refresh."""
        measures: dict[str, tuple[int, float | None]] = {
            "label_coverage": (len(self.label_coverage), self.label_coverage.mean),
            "accuracy": (len(self.accuracy), self.accuracy.mean),
            "majority_baseline": (len(self.majority), self.majority.share),
            "log_loss": (len(self.log_loss), self.log_loss.mean),
            "roc_auc": (len(self.roc_auc), self.roc_auc.value),
            "precision": (len(self.precision), self.precision.mean),
            "recall": (len(self.recall), self.recall.mean),
            "mae": (len(self.absolute_error), self.mae),
            "rmse": (len(self.squared_error), self.rmse),
        }
        return {name: round(value, 4) for name, (count, value) in measures.items()
                if count and value is not None}
