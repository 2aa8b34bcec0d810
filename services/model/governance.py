"""Which model serves: the champion/challenger race and the reaction to drift alerts.

Every change (promotion, champion reset, fresh challenger) bumps what it must in the
:class:`~services.model.learner.Learner` and is published as a
:class:`~schemas.model_events.ModelEvent`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from schemas.alerts import DriftAlert
from schemas.model_events import ModelEvent, ModelEventKind
from schemas.spec import PromotionSpec
from services.model.learner import Learner
from services.model.metrics import ModelMetrics
from services.model.promotion import ChallengerRace

DriftReaction = Literal["none", "add_challenger", "reset_champion"]
Predictions = dict[str, tuple[int, object, float | None]]
"""model name -> (version, prediction, score), as stored with a pending event."""


class Governor:
    """Scores challengers on every label and acts on concept-drift alerts on the champion."""

    def __init__(
        self,
        learner: Learner,
        promotion: PromotionSpec,
        on_concept_drift: DriftReaction,
        publish: Callable[[ModelEvent], None],
        metrics: ModelMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self.learner = learner
        self.race = ChallengerRace(promotion)
        self._on_concept_drift = on_concept_drift
        self._publish = publish
        self._metrics = metrics
        self._clock = clock

    def after_label(self, predictions: Predictions, y: object, labels_seen: int) -> None:
        """Score the models on one label; promote a challenger that has won the race.

        Models dropped since the event was predicted (a fresh challenger replaced by a newer
        one) are left out: they can no longer be promoted."""
        serving = {model.name for model in self.learner.models}
        losses = {model: self._loss(prediction, y)
                  for model, (_, prediction, _) in predictions.items() if model in serving}
        champion = self.learner.champion.name
        won = self.race.record(champion, losses)
        if won is None:
            return
        new = self.learner.promote(won.challenger)
        self.race.restart()
        self._announce(
            "promoted", new.name, new.version, champion, labels_seen,
            f"won {won.wins} and lost {won.losses} of {won.labels} labels",
            statistic=won.statistic, threshold=won.threshold,
        )

    def on_alert(self, alert: DriftAlert, labels_seen: int) -> None:
        """Apply the spec's ``on_concept_drift`` to a concept-drift alert on the champion."""
        champion = self.learner.champion
        if alert.kind != "concept" or alert.model != champion.name:
            return
        reason = f"drift alert {alert.alert_id}"
        if self._on_concept_drift == "add_challenger":
            fresh = self.learner.start_fresh_challenger()
            self.race.restart()
            self._announce("challenger_started", fresh.name, fresh.version, champion.name,
                           labels_seen, reason)
        elif self._on_concept_drift == "reset_champion":
            reset = self.learner.reset_champion()
            self.race.restart()
            self._announce("champion_reset", reset.name, reset.version, reset.name,
                           labels_seen, reason)

    def _loss(self, prediction: object, y: object) -> float:
        if self.learner.label.type != "regression":
            return 0.0 if prediction == y else 1.0
        if not isinstance(prediction, int | float) or not isinstance(y, int | float):
            return float("inf")
        return abs(float(prediction) - float(y))

    def _announce(
        self, kind: ModelEventKind, model: str, version: int, previous: str | None,
        labels_seen: int, reason: str, statistic: float | None = None,
        threshold: float | None = None,
    ) -> None:
        self._metrics.model_changes(kind=kind).inc()
        self._publish(ModelEvent(
            event_id=str(uuid.uuid4()), kind=kind, model=model, model_version=version,
            previous_model=previous, reason=reason, statistic=statistic, threshold=threshold,
            labels_seen=labels_seen, at=self._clock(),
        ))
