"""The models of one model service and the predict-then-learn discipline: pure logic.

:meth:`Learner.predict` asks every model (the champion first) about one input; :meth:`Learner.learn`
teaches every model one label on exactly the input it predicted with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from schemas.events import LabelValue
from schemas.spec import LabelSpec, ModelSpec, ModelsSpec, SpecError
from services.model.estimators import build_estimator
from services.model.segments import Segments

_TRUE_STRINGS = {"1", "true", "yes", "y", "t"}
_FALSE_STRINGS = {"0", "false", "no", "n", "f"}


class InvalidLabel(ValueError):
    """A label value that cannot be turned into the spec's label type; the message says why."""


@dataclass
class ModelPrediction:
    """One model's answer for one input."""

    model: str
    version: int
    role: Literal["champion", "challenger"]
    prediction: bool | int | float | str | None
    probabilities: dict[str, float] | None
    score: float | None


@dataclass
class ServedModel:
    """A named estimator built from ``spec``, its version and its role."""

    name: str
    estimator: Any
    spec: ModelSpec
    version: int = 1
    role: Literal["champion", "challenger"] = "champion"
    threshold: Any = None
    """Anomaly task: the rolling quantile of its recent scores (River ``RollingQuantile``)."""
    scored: int = 0
    """Anomaly task: events scored so far."""


class Learner:
    """The champion and its challengers for one label type.

    Raises :class:`~schemas.spec.SpecError` when ``on_timeout = "negative"`` and the spec's
    ``negative_value`` is not a label of its type (found at start, not at the first timeout).
    """

    def __init__(self, models: ModelsSpec, label: LabelSpec) -> None:
        self.label = label
        self.task = models.task
        self.anomaly = models.anomaly
        self.segment_by = models.segment_by
        self.segments = Segments(models.max_segments) if models.segment_by else None
        """With ``segment_by``: each segment's own copies of :attr:`models`, which then only
        name the models, their roles and versions."""
        if label.on_timeout == "negative":
            try:
                self.normalise_label(label.negative_value)
            except InvalidLabel as error:
                raise SpecError(f"label.negative_value: {error}") from error
        self.models = [ServedModel(models.champion.name, build_estimator(models.champion),
                                   models.champion)]
        self.models += [
            ServedModel(spec.name, build_estimator(spec), spec, role="challenger")
            for spec in models.challengers
        ]
        self.champion_version = 1
        """Bumped on every change of champion (promotion or reset)."""

    @property
    def champion(self) -> ServedModel:
        """The model that serves predictions (always first in :attr:`models`)."""
        return self.models[0]

    def promote(self, name: str) -> ServedModel:
        """Make challenger ``name`` the champion at a new version; the old one becomes a
        challenger (it may win back). Returns the new champion."""
        index = next(i for i, model in enumerate(self.models) if model.name == name)
        winner = self.models.pop(index)
        loser = self.models[0]
        loser.role, winner.role = "challenger", "champion"
        self.champion_version += 1
        winner.version = self.champion_version
        self.models.insert(0, winner)
        if self.segments is not None:
            self.segments.promote(name, self.champion_version)
        return winner

    def reset_champion(self) -> ServedModel:
        """Replace the champion's estimator by a fresh one, at a new version."""
        champion = self.champion
        champion.estimator = build_estimator(champion.spec)
        self.champion_version += 1
        champion.version = self.champion_version
        if self.segments is not None:
            self.segments.reset_champion(self.champion_version)
        return champion

    def start_fresh_challenger(self) -> ServedModel:
        """A fresh copy of the champion's estimator learning from now, named
        ``<spec name>-fresh-<champion version>``; it replaces any earlier fresh challenger."""
        spec = self.champion.spec
        name = f"{spec.name}-fresh-{self.champion_version}"
        fresh = ServedModel(name, build_estimator(spec), spec, role="challenger")
        self.models = [
            model for model in self.models
            if model.role == "champion" or "-fresh-" not in model.name
        ] + [fresh]
        if self.segments is not None:
            self.segments.add_fresh(fresh)
        return fresh

    def normalise_label(self, value: LabelValue) -> bool | int | float | str:
        """The label as the models learn it: bool for binary, float for regression.

        Binary: a bool, 0 or 1, or a true/false word (``"1"``, ``"true"``, ``"yes"``, ``"y"``,
        ``"t"`` and their opposites, any case). Regression: a finite number, or a string that
        is one; not a bool. Multiclass: any value is a class. Anything else raises
        :class:`InvalidLabel`.
        """
        kind = self.label.type
        if kind == "binary":
            if isinstance(value, str):
                word = value.strip().lower()
                if word in _TRUE_STRINGS or word in _FALSE_STRINGS:
                    return word in _TRUE_STRINGS
            elif value in (0, 1):
                return bool(value)
            raise InvalidLabel(f"{value!r} is not a binary label (expected true/false, 1/0, "
                               "yes/no)")
        if kind == "regression":
            try:
                number = float(value) if not isinstance(value, bool) else math.nan
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise InvalidLabel(f"{value!r} is not a regression label (expected a finite "
                                   "number)")
            return number
        return value

    def timeout_label(self) -> bool | int | float | str:
        """The label a closed feedback window stands for (``on_timeout = "negative"``)."""
        return self.normalise_label(self.label.negative_value)

    def keeps_class_probabilities(self) -> bool:
        """Whether a pending event must keep each model's class probabilities until its label
        comes: for multiclass labels only (a binary label's probability follows from the score)."""
        return self.label.type == "multiclass"

    def label_probability(
        self, y: bool | int | float | str, score: float | None,
        probabilities: Mapping[str, float] | None,
    ) -> float | None:
        """The probability a model gave to the observed class ``y`` (normalised), in [0, 1].

        Binary: from ``score``, the positive-class probability. Multiclass: ``probabilities``
        (class as a string -> probability, as predicted); a class missing from them had 0.
        None for regression, and when the model predicted nothing (no score or probabilities).

        >>> models = ModelsSpec.model_validate(
        ...     {"champion": {"name": "m", "estimator": "linear_model.LogisticRegression"}})
        >>> binary = Learner(models, LabelSpec(type="binary", feedback_window_seconds=30))
        >>> round(binary.label_probability(False, 0.8, None), 6)
        0.2
        """
        if self.task == "anomaly":
            return None  # an anomaly score is no probability
        if self.label.type == "binary":
            if score is None:
                return None
            probability = score if y else 1.0 - score
        elif self.label.type == "multiclass":
            if probabilities is None:
                return None
            probability = probabilities.get(str(y), 0.0)
        else:
            return None
        return min(1.0, max(0.0, probability))

    def models_of(self, segment: str | None) -> list[ServedModel]:
        """The models that answer for ``segment`` (all of them without segments)."""
        if self.segments is None or segment is None:
            return self.models
        return self.segments.models(segment, self.models)

    def predict(self, x: dict[str, float], segment: str | None = None) -> list[ModelPrediction]:
        """Every model's prediction for ``x`` (its ``segment``'s copies), champion first."""
        return [self._predict_one(model, x) for model in self.models_of(segment)]

    def learn(self, x: dict[str, float], y: bool | int | float | str,
              segment: str | None = None) -> None:
        """Every model (of ``segment``) learns ``(x, y)`` once (anomaly detectors learned ``x``
        when they scored it, and learn nothing from labels)."""
        if self.task == "anomaly":
            return
        for model in self.models_of(segment):
            model.estimator.learn_one(x, y)

    def _score_one(self, model: ServedModel, x: dict[str, float]) -> ModelPrediction:
        """Anomaly task: score ``x``, flag it against the rolling quantile of the scores before
        it, then learn it (unsupervised, once: this is the only time ``x`` is seen)."""
        from river import stats

        if model.threshold is None:
            model.threshold = stats.RollingQuantile(self.anomaly.quantile,
                                                    window_size=self.anomaly.window)
        score = float(model.estimator.score_one(x))
        bar = model.threshold.get()
        flagged = model.scored >= self.anomaly.warmup and bar is not None and score > bar
        model.threshold.update(score)
        model.scored += 1
        model.estimator.learn_one(x)
        return ModelPrediction(model.name, model.version, model.role, flagged, None, score)

    def _predict_one(self, model: ServedModel, x: dict[str, float]) -> ModelPrediction:
        if self.task == "anomaly":
            return self._score_one(model, x)
        estimator = model.estimator
        if self.label.type == "regression":
            value = estimator.predict_one(x)
            score = None if value is None else float(value)
            return ModelPrediction(model.name, model.version, model.role, score, None, score)
        proba: dict[Any, float] = estimator.predict_proba_one(x) or {}
        probabilities = {str(label): float(p) for label, p in proba.items()}
        # River's own rule (predict_one): the most probable class, the first one on a tie.
        best = max(proba, key=lambda label: proba[label]) if proba else None
        if self.label.type == "binary":
            positive = float(proba.get(True, 0.0)) if proba else None
            return ModelPrediction(
                model.name, model.version, model.role, None if best is None else bool(best),
                probabilities or None, positive,
            )
        top = float(proba[best]) if best is not None else None
        return ModelPrediction(model.name, model.version, model.role, best,
                               probabilities or None, top)
