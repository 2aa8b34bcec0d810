"""The drift service's processing of one message: update the monitors, alert on drift.

By topic:

* ``features`` (:class:`~schemas.features.FeatureVector`): the covariate monitors, one per
  watched feature (``covariate.py``).
* ``outcomes`` (:class:`~schemas.predictions.Outcome`): concept drift on every model's error
  stream (``detectors.py``, classification only), label shift and prediction drift on the
  champion's outcomes (``outcomes.py``).

With implicit labels (``on_timeout = "negative"``: an event without a label by the end of its
feedback window is a negative), a model's outcomes are watched only once its first window has
closed. Before that only the labels that come quickly are back (clicks, no non-clicks yet), a
biased sample whose end would look like a drift of its errors and of the label rate. An outcome
is known at ``event_time + label_delay_seconds``; model ``m``'s outcomes count once that is at
least the ``event_time`` of ``m``'s first outcome plus ``feedback_window_seconds``. Until then
``streamml_drift_models_unwatched`` counts ``m`` and the health details say from when it will be
watched. (A restarted drift service waits one window again.) With explicit labels
(``on_timeout = "drop"``) every outcome is a label that came: there is nothing to wait for, and
outcomes are watched from the first.

Each detection becomes one :class:`~schemas.alerts.DriftAlert` on the alerts topic, keyed by its
target; ``stream_position`` is the number of observations the firing monitor had seen and
``event_time`` the event time of the last one. A message that does not decode raises
:class:`~services.common.dead_letters.DeadLetter`; messages of other topics are ignored.

A message's alerts are sent once its monitors are updated. While the producer's queue is full
the unsent ones wait and :class:`~services.common.failures.Retriable` is raised; the loop calls
again with the same message, which then only sends what waits (monitors see a message once).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from confluent_kafka import Message
from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas.alerts import DriftAlert, DriftKind
from schemas.codec import ContractError, decode, encode
from schemas.features import FeatureVector
from schemas.predictions import Outcome
from schemas.spec import PipelineSpec
from services.common.failures import BrokenInvariant, DeadLetter, Retriable
from services.drift.budget import alpha_per_observation
from services.drift.covariate import CovariateMonitor
from services.drift.detectors import ErrorStreamMonitor
from services.drift.outcomes import OutcomeShifts
from services.drift.windows import Signal

MODELS_REMEMBERED = 64
"""Models remembered as watched, and as waiting for their first feedback window to close (the
one unseen longest is forgotten beyond that)."""


def _bound(models: OrderedDict[str, Any]) -> None:
    """Forget the models seen longest ago beyond :data:`MODELS_REMEMBERED`."""
    while len(models) > MODELS_REMEMBERED:
        models.popitem(last=False)


class _Producer(Protocol):
    def produce(self, topic: str, value: bytes, key: bytes) -> None: ...


@dataclass
class DriftState:
    """Everything the drift monitors have learned of the stream, as a checkpoint holds it."""

    covariate: CovariateMonitor
    shifts: OutcomeShifts
    concept_monitors: dict[str, ErrorStreamMonitor]
    unwatched: OrderedDict[str, float]
    watched: OrderedDict[str, None]


class DriftMetrics:
    """Alerts raised, observations fed and the latest shift statistics of this service.

    Labels stay bounded: kinds and detectors are fixed sets, targets are feature names from the
    spec, ``label_rate``/``label`` and ``score`` (model names are left out).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.alerts = Counter(
            "streamml_drift_alerts_raised_total", "Drift alerts published, by kind and detector.",
            ["kind", "detector"], registry=registry,
        ).labels
        self.observations = Counter(
            "streamml_drift_observations_total", "Observations fed to detectors, by kind.",
            ["kind"], registry=registry,
        ).labels
        self.statistic = Gauge(
            "streamml_drift_statistic",
            "The latest statistic of each shift check (covariate, label, prediction), by target.",
            ["kind", "detector", "target"], registry=registry,
        ).labels
        self.threshold = Gauge(
            "streamml_drift_threshold", "The threshold each shift statistic is compared with.",
            ["kind", "detector", "target"], registry=registry,
        ).labels
        self.unwatched = Gauge(
            "streamml_drift_models_unwatched",
            "Models whose outcomes are not watched yet: implicit labels, first feedback window "
            "still open (no concept, label or prediction alert can come from them).",
            registry=registry,
        )


class DriftHandler:
    """Every drift monitor of one pipeline spec, fed from the features and outcomes topics."""

    def __init__(
        self,
        spec: PipelineSpec,
        producer: _Producer,
        alerts_topic: str,
        metrics: DriftMetrics,
        *,
        features_topic: str = "features",
        outcomes_topic: str = "outcomes",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._concept = spec.drift.concept
        self._window = spec.label.feedback_window_seconds
        self._implicit_labels = spec.label.on_timeout == "negative"
        self._unwatched: OrderedDict[str, float] = OrderedDict()
        """Models not watched yet -> when their first feedback window closes (stream time, epoch
        seconds); only with implicit labels."""
        self._watched: OrderedDict[str, None] = OrderedDict()
        """Models watched, the one seen last at the end."""
        self._producer = producer
        self._alerts_topic = alerts_topic
        self._features_topic = features_topic
        self._outcomes_topic = outcomes_topic
        self._metrics = metrics
        self._clock = clock
        alpha = alpha_per_observation(spec)
        self.covariate = CovariateMonitor(spec, alpha)
        self.shifts = OutcomeShifts(spec, alpha)
        self.concept_monitors: dict[str, ErrorStreamMonitor] = {}
        """Concept-drift monitors by model (champion and challengers)."""
        self._unsent: deque[DriftAlert] = deque()
        """Alerts of the message ``_unsent_of`` not sent yet."""
        self._unsent_of: tuple[str | None, int | None, int | None] | None = None
        self.alerts_raised = 0
        """Alerts raised by this process (each is sent once raised)."""

    def state(self) -> DriftState:
        """The monitors' state, for a checkpoint (live objects: pickle it before going on)."""
        return DriftState(self.covariate, self.shifts, self.concept_monitors, self._unwatched,
                          self._watched)

    def restore(self, state: DriftState) -> None:
        """Continue from a checkpointed state (of the same drift and label settings)."""
        self.covariate, self.shifts = state.covariate, state.shifts
        self.concept_monitors = state.concept_monitors
        self._unwatched, self._watched = state.unwatched, state.watched
        self._metrics.unwatched.set(len(self._unwatched))

    def handle(self, message: Message) -> None:
        """Dispatch one consumed message by topic; send the alerts it raised.

        Raises :class:`Retriable` while the producer cannot take an alert (the same message must
        come again), :class:`BrokenInvariant` if another message comes first.
        """
        where = (message.topic(), message.partition(), message.offset())
        if self._unsent:
            if where != self._unsent_of:
                raise BrokenInvariant(f"alerts of {self._unsent_of} unsent while {where} came "
                                      f"(a retried message must come again)")
            self._send()
            return
        topic = message.topic()
        try:
            if topic == self._features_topic:
                self._on_features(decode(FeatureVector, message.value()))
            elif topic == self._outcomes_topic:
                self._on_outcome(decode(Outcome, message.value()))
        except ContractError as error:
            raise DeadLetter.from_contract_error(error) from error
        self._unsent_of = where
        self._send()

    def on_idle(self) -> None:
        """Nothing to do on time alone."""

    def positions(self) -> dict[str, object]:
        """Observations seen by each monitor family (for the health endpoint)."""
        return {
            "covariate": self.covariate.position,
            "label": None if self.shifts.label is None else self.shifts.label.position,
            "prediction": {model: w.position for model, w in self.shifts.predictions.items()},
            "concept": {model: m.position for model, m in self.concept_monitors.items()},
            "unwatched": {model: {"watched_from": datetime.fromtimestamp(closes, UTC).isoformat()}
                          for model, closes in self._unwatched.items()},
        }

    def _on_features(self, vector: FeatureVector) -> None:
        if not self.covariate.windows:
            return
        self._metrics.observations(kind="covariate").inc()
        for signal in self.covariate.update(vector.features):
            self._publish(signal, vector.event_time)

    def _on_outcome(self, outcome: Outcome) -> None:
        if not self._settled(outcome):
            return
        observed, signals = self.shifts.update(outcome)
        for kind in observed:
            self._metrics.observations(kind=kind).inc()
        for signal in signals:
            self._publish(signal, outcome.event_time)
        if outcome.correct is not None:
            self._on_error(outcome, 0.0 if outcome.correct else 1.0)

    def _settled(self, outcome: Outcome) -> bool:
        """Whether ``outcome``'s model is watched: explicit labels, or ``outcome`` became known
        after the model's first feedback window closed (which starts the watch)."""
        model = outcome.model
        if not self._implicit_labels:
            return True
        if model in self._watched:
            self._watched.move_to_end(model)
            return True
        event_time = outcome.event_time.timestamp()
        closes = self._unwatched.setdefault(model, event_time + self._window)
        if event_time + outcome.label_delay_seconds < closes:
            _bound(self._unwatched)
            self._metrics.unwatched.set(len(self._unwatched))
            return False
        del self._unwatched[model]
        self._watched[model] = None
        _bound(self._watched)
        self._metrics.unwatched.set(len(self._unwatched))
        return True

    def _on_error(self, outcome: Outcome, error: float) -> None:
        monitor = self.concept_monitors.get(outcome.model)
        if monitor is None:
            monitor = self.concept_monitors[outcome.model] = ErrorStreamMonitor(self._concept)
        self._metrics.observations(kind="concept").inc()
        detection = monitor.update(error)
        if detection is not None:
            self._alert("concept", self._concept.detector, f"error:{outcome.model}",
                        outcome.model, detection.statistic, detection.threshold,
                        detection.position, outcome.event_time)

    def _publish(self, signal: Signal, event_time: datetime) -> None:
        for finding in signal.check.findings:
            labels = {"kind": signal.kind, "detector": finding.detector,
                      "target": signal.metric_target}
            self._metrics.statistic(**labels).set(finding.statistic)
            self._metrics.threshold(**labels).set(finding.threshold)
        alert = signal.check.alert
        if alert is not None:
            self._alert(signal.kind, alert.detector, signal.target, signal.model,
                        alert.statistic, alert.threshold, signal.check.position, event_time)

    def _alert(
        self, kind: DriftKind, detector: str, target: str, model: str | None,
        statistic: float, threshold: float, position: int, event_time: datetime,
    ) -> None:
        alert = DriftAlert(
            alert_id=str(uuid.uuid4()), kind=kind, detector=detector, target=target,
            model=model, statistic=statistic, threshold=threshold, stream_position=position,
            event_time=event_time, detected_at=self._clock(),
        )
        self._unsent.append(alert)
        self.alerts_raised += 1

    def _send(self) -> None:
        """Hand the waiting alerts to the producer, in order; count each one taken."""
        while self._unsent:
            alert = self._unsent[0]
            try:
                self._producer.produce(self._alerts_topic, value=encode(alert),
                                       key=alert.target.encode())
            except BufferError as error:
                raise Retriable(f"the producer's queue is full, {len(self._unsent)} drift "
                                f"alert(s) wait: {error}") from error
            self._unsent.popleft()
            self._metrics.alerts(kind=alert.kind, detector=alert.detector).inc()
