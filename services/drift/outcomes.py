"""Label shift and prediction drift, watched on the champion's outcomes.

Only outcomes with ``role == "champion"`` count, so each label is seen once whatever the number of
challengers.

* **Label shift** (``drift.label``), one monitor whatever the champion: a binary label by its
  positive rate (target ``label_rate``, detector ``rate_difference``), a multiclass label by PSI
  over the classes (a class unseen in the reference is one more bin), a regression label by PSI
  over quantile bins (both with target ``label``).
* **Prediction drift** (``drift.prediction``), one monitor per champion model (target
  ``score:<model>``; a newly promoted champion starts from a fresh reference): PSI of the
  ``score``, over equal-width bins on ``[0, 1]`` for classifiers (the score is a probability) and
  over quantile bins of the reference for regression. Outcomes without a score are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.alerts import DriftKind
from schemas.events import LabelValue
from schemas.predictions import Outcome
from schemas.spec import PipelineSpec
from schemas.spec_drift import LabelShiftSpec, ShiftSpec
from services.drift.baselines import (
    DEFAULT_ALPHA_PER_OBSERVATION,
    CategoricalBaseline,
    NumericBaseline,
    RateBaseline,
)
from services.drift.soft_bins import ProbabilityBaseline
from services.drift.windows import Baseline, ShiftWindows, Signal

PREDICTION_MONITORS = 4
"""Champions whose prediction monitors are kept (the oldest is dropped beyond that)."""

_TRUE_STRINGS = frozenset({"1", "true", "yes", "y", "t"})


def is_positive(label: LabelValue) -> bool:
    """A binary label's truth: the model service sends bools; numbers and strings are read the
    way it reads them (non-zero, ``"true"``/``"yes"``/``"1"``)."""
    if isinstance(label, str):
        return label.strip().lower() in _TRUE_STRINGS
    return bool(label)


class OutcomeShifts:
    """The label and prediction monitors of one spec; :meth:`update` takes one outcome."""

    def __init__(self, spec: PipelineSpec, alpha: float = DEFAULT_ALPHA_PER_OBSERVATION) -> None:
        """``alpha``: each statistic's false-alarm probability per observation
        (:mod:`services.drift.budget`); a check's is ``check_every`` times that."""
        self._drift = spec.drift
        self._alpha = alpha
        self._label_type = spec.label.type
        self.label_target = "label_rate" if self._label_type == "binary" else "label"
        self.label: ShiftWindows[object] | None = (
            self._label_windows() if spec.drift.label.enabled else None
        )
        self.predictions: dict[str, ShiftWindows[object]] = {}

    def update(self, outcome: Outcome) -> tuple[list[DriftKind], list[Signal]]:
        """Feed one outcome (the champion's only); return the kinds of monitor it was an
        observation for, and the checks that were due."""
        if outcome.role != "champion":
            return [], []
        observed: list[DriftKind] = []
        signals = []
        if self.label is not None:
            observed.append("label")
            value = is_positive(outcome.label) if self._label_type == "binary" else outcome.label
            check = self.label.update(value)
            if check is not None:
                signals.append(Signal("label", self.label_target, None, check))
        if self._drift.prediction.enabled and outcome.score is not None:
            observed.append("prediction")
            check = self._prediction_windows(outcome.model).update(outcome.score)
            if check is not None:
                signals.append(Signal("prediction", f"score:{outcome.model}", outcome.model,
                                      check))
        return observed, signals

    def _label_windows(self) -> ShiftWindows[object]:
        spec = self._drift.label
        alpha = min(0.5, self._alpha * spec.check_every)
        return ShiftWindows.for_spec(_LabelBaseline(self._label_type, spec, alpha), spec)

    def _prediction_windows(self, model: str) -> ShiftWindows[object]:
        windows = self.predictions.get(model)
        if windows is not None:
            return windows
        spec = self._drift.prediction
        probabilities = self._label_type != "regression"
        windows = self.predictions[model] = ShiftWindows.for_spec(
            _ScoreBaseline(spec, probabilities, min(0.5, self._alpha * spec.check_every)), spec)
        while len(self.predictions) > PREDICTION_MONITORS:
            del self.predictions[next(iter(self.predictions))]
        return windows


# Fitters are classes, not closures, so the monitors pickle into the drift service's checkpoints.

@dataclass(frozen=True)
class _LabelBaseline:
    """Fits the label's baseline: its positive rate (binary), classes or quantile bins."""

    label_type: str
    spec: LabelShiftSpec
    alpha: float

    def __call__(self, reference: Sequence[object]) -> Baseline[object]:
        spec, alpha = self.spec, self.alpha
        if self.label_type == "binary":
            return RateBaseline(reference, rate_threshold=spec.rate_threshold, alpha=alpha)
        if self.label_type == "multiclass":
            return CategoricalBaseline(reference, bins=spec.bins, psi_threshold=spec.psi_threshold,
                                       alpha=alpha)
        return NumericBaseline(reference, bins=spec.bins, psi_threshold=spec.psi_threshold,
                               alpha=alpha)


@dataclass(frozen=True)
class _ScoreBaseline:
    """Fits a model's score baseline: soft bins of ``[0, 1]`` for probabilities
    (:mod:`services.drift.soft_bins`), the reference's quantiles for regression."""

    spec: ShiftSpec
    probabilities: bool
    alpha: float

    def __call__(self, reference: Sequence[object]) -> Baseline[object]:
        spec = self.spec
        if self.probabilities:
            return ProbabilityBaseline(reference, bins=spec.bins,
                                       psi_threshold=spec.psi_threshold, alpha=self.alpha)
        return NumericBaseline(reference, bins=spec.bins, psi_threshold=spec.psi_threshold,
                               alpha=self.alpha)
