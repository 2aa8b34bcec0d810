"""The sink's processing of one message: update the metrics it stands for."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from functools import partial

from confluent_kafka import Message
from pydantic import ValidationError

from schemas.alerts import DriftAlert
from schemas.codec import ContractError, decode
from schemas.dead_letters import DeadLetterHeaders
from schemas.model_events import ModelEvent
from schemas.predictions import Outcome, Prediction
from services.common.dead_letters import DeadLetter
from services.metrics_sink.estimate import AccuracyEstimate, confidence_of, outcome_confidence
from services.metrics_sink.metrics import SinkMetrics
from services.metrics_sink.quality import ModelQuality
from services.metrics_sink.rolling import RollingMean
from services.metrics_sink.scores import QUANTILES, ScoreWindow

SEGMENT_SERIES = 50
"""Per model, the segments whose rolling accuracy is exported (the most recently active)."""


@dataclass(frozen=True)
class SinkTopics:
    """Full names of the topics the sink reads, and the prefix to strip from sources."""

    predictions: str
    outcomes: str
    alerts: str
    dead_letters: str
    prefix: str
    model_events: str = "model-events"


class SinkHandler:
    """Implements :class:`services.common.consumer_loop.Handler` for the metrics sink.

    Each model's rolling quality (:class:`ModelQuality`, windows of ``window`` outcomes) is
    exported on every outcome, except its ROC AUC, which costs a sort of the window: it is
    recomputed once ``roc_auc_every`` outcomes changed it, and when the inputs are idle.
    """

    def __init__(
        self, topics: SinkTopics, metrics: SinkMetrics, window: int, roc_auc_every: int = 100
    ) -> None:
        self._topics = topics
        self._metrics = metrics
        self._roc_auc_every = roc_auc_every
        self.quality: defaultdict[str, ModelQuality] = defaultdict(lambda: ModelQuality(window))
        self.estimates: dict[str, AccuracyEstimate] = {}
        self.scores: dict[str, ScoreWindow] = {}
        self.segments: OrderedDict[tuple[str, str], RollingMean] = OrderedDict()
        """(model, segment) -> its rolling accuracy; at most SEGMENT_SERIES per model kept."""
        self._window = window
        """Per model that predicts on ``predictions``: its predictions waiting for labels."""

    def handle(self, message: Message) -> None:
        """Update the metrics for one message of any of the four topics."""
        topic = message.topic()
        if topic == self._topics.dead_letters:
            self._on_dead_letter(message)
            return
        try:
            if topic == self._topics.predictions:
                self._on_prediction(decode(Prediction, message.value()))
            elif topic == self._topics.outcomes:
                self._on_outcome(decode(Outcome, message.value()))
            elif topic == self._topics.alerts:
                self._on_alert(decode(DriftAlert, message.value()))
            elif topic == self._topics.model_events:
                self._on_model_event(decode(ModelEvent, message.value()))
        except ContractError as error:
            raise DeadLetter.from_contract_error(error) from error

    def on_idle(self) -> None:
        """Bring every model's ROC AUC up to date with its window."""
        for model, quality in self.quality.items():
            if quality.roc_auc.changes:
                self._refresh_roc_auc(model, quality)

    def _on_prediction(self, prediction: Prediction) -> None:
        version = str(prediction.model_version)
        self._metrics.predictions(model=prediction.model, version=version).inc()
        latency = (prediction.predicted_at - prediction.event_time).total_seconds()
        self._metrics.event_to_prediction(model=prediction.model).observe(max(0.0, latency))
        self._scores(prediction.model).observe(prediction)
        confidence = confidence_of(prediction)
        if confidence is not None:
            self._estimate(prediction.model).predicted(prediction.event_id, confidence)

    def _scores(self, model: str) -> ScoreWindow:
        scores = self.scores.get(model)
        if scores is None:
            scores = self.scores[model] = ScoreWindow(self._window)
            for q in QUANTILES:
                self._metrics.score_quantile.labels(model=model, q=str(q)).set_function(
                    partial(scores.quantile, q))
            self._metrics.positive_share.labels(model=model).set_function(scores.positive_share)
        return scores

    def _estimate(self, model: str) -> AccuracyEstimate:
        estimate = self.estimates.get(model)
        if estimate is None:
            estimate = self.estimates[model] = AccuracyEstimate()
            self._metrics.estimated_accuracy.labels(model=model).set_function(estimate.estimate)
            self._metrics.estimate_waiting.labels(model=model).set_function(
                lambda: len(estimate))
        return estimate

    def _on_outcome(self, outcome: Outcome) -> None:
        self._metrics.outcomes(
            model=outcome.model, version=str(outcome.model_version),
            timed_out=str(outcome.timed_out).lower(),
        ).inc()
        self._metrics.label_delay(model=outcome.model).observe(outcome.label_delay_seconds)
        model = outcome.model
        quality = self.quality[model]
        quality.observe(outcome)
        estimate = self.estimates.get(model)
        if estimate is not None and outcome.correct is not None:
            estimate.resolved(outcome.event_id, outcome.correct, outcome_confidence(outcome))
        self._metrics.label_coverage(model=model).set(quality.label_coverage.mean)
        if outcome.correct is not None and outcome.segment is not None:
            self._on_segment_outcome(model, outcome.segment, outcome.correct)
        if outcome.correct is not None:
            self._metrics.rolling_accuracy(model=model).set(quality.accuracy.mean)
            self._metrics.majority_baseline(model=model).set(quality.majority.share)
        if outcome.label_probability is not None:
            self._metrics.rolling_log_loss(model=model).set(quality.log_loss.mean)
        if len(quality.precision):
            self._metrics.rolling_precision(model=model).set(quality.precision.mean)
        if len(quality.recall):
            self._metrics.rolling_recall(model=model).set(quality.recall.mean)
        if len(quality.absolute_error):
            self._metrics.rolling_mae(model=model).set(quality.mae)
            self._metrics.rolling_rmse(model=model).set(quality.rmse)
        if quality.roc_auc.changes >= self._roc_auc_every:
            self._refresh_roc_auc(model, quality)

    def _on_segment_outcome(self, model: str, segment: str, correct: bool) -> None:
        key = (model, segment)
        window = self.segments.pop(key, None) or RollingMean(self._window)
        self.segments[key] = window  # the most recently active last
        window.update(1.0 if correct else 0.0)
        self._metrics.segment_accuracy.labels(model=model, segment=segment).set(window.mean)
        if sum(1 for kept, _ in self.segments if kept == model) > SEGMENT_SERIES:
            oldest = next(k for k in self.segments if k[0] == model)
            del self.segments[oldest]
            self._metrics.segment_accuracy.remove(*oldest)

    def _refresh_roc_auc(self, model: str, quality: ModelQuality) -> None:
        auc = quality.roc_auc.refresh()
        if auc is None:
            self._metrics.rolling_roc_auc.remove(model)
        else:
            self._metrics.rolling_roc_auc.labels(model=model).set(auc)

    def _on_alert(self, alert: DriftAlert) -> None:
        self._metrics.drift_alerts(kind=alert.kind, detector=alert.detector).inc()
        self._metrics.last_drift_alert(kind=alert.kind).set(alert.detected_at.timestamp())

    def _on_model_event(self, event: ModelEvent) -> None:
        self._metrics.model_events(kind=event.kind).inc()
        self._metrics.last_model_event(kind=event.kind).set(event.at.timestamp())
        if event.kind in ("promoted", "champion_reset"):
            self._metrics.champion_version.set(event.model_version)

    def _on_dead_letter(self, message: Message) -> None:
        try:
            headers = DeadLetterHeaders.from_kafka_headers(message.headers() or [])
            source = headers.source_topic.removeprefix(self._topics.prefix)
            reason: str = headers.reason_code
        except ValidationError:
            source, reason = "unknown", "unlabelled"
        self._metrics.dead_letters(source=source, reason=reason).inc()
